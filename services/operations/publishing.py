"""Publishing events: validate JSONL or CSV lines and publish the valid ones (`dphp publish`)."""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from services.common.settings import Settings


@dataclass
class Line:
    file: str
    line: int
    raw: bytes


@dataclass
class PublishResult:
    accepted: int = 0
    rejected: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    worker_failures: int = 0  # validating worker processes that died (the batched path)


def read_lines(path: Path) -> Iterator[Line]:
    """Events of a file with their 1-based physical line numbers; blank lines skipped."""
    if path.suffix.lower() == ".csv":
        yield from _csv_lines(path)
        return
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if raw.strip():
                yield Line(str(path), number, raw.rstrip(b"\r\n"))


def _csv_lines(path: Path) -> Iterator[Line]:
    from schemas.parsing import csv_row_to_json

    with open(path, newline="", encoding="utf-8", errors="strict") as f:
        reader = csv.reader(f)
        header: list[str] | None = None
        previous_end = 0
        for row in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if header is None:
                header = row
                continue
            try:
                raw = csv_row_to_json(header, row)
            except ValueError as exc:  # InvalidEvent is a ValueError
                yield Line(str(path), start, b"\x00csv:" + str(getattr(exc, "reason", exc)).encode())
                continue
            yield Line(str(path), start, raw)


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


async def publish(settings: Settings, files: list[Path], progress: Callable[[int], None] | None = None) -> PublishResult:
    """Validates every line of the files and publishes the valid events to their topics (idempotent
    producer, acks=all); `progress(n)` after each n events acknowledged."""
    from schemas.events import CONTENT_TYPE
    from schemas.parsing import InvalidEvent, event_key, parse_event, topic_kind
    from services.common.kafka import kafka_producer
    from services.common.topics import INPUT_MAX_MESSAGE_BYTES

    topics = {"registered": settings.topic_registered, "moved": settings.topic_moved,
              "meetings": settings.topic_meetings}
    headers = [("content-type", CONTENT_TYPE.encode())]
    result = PublishResult()
    # A valid record (value up to 1 MiB) with its key, headers and batch overhead: the input
    # topics' limit (services/common/topics.py), which aiokafka's default of 1 MiB is below.
    producer = kafka_producer(settings, linger_ms=10, max_batch_size=512 * 1024, request_timeout_ms=30000,
                              max_request_size=INPUT_MAX_MESSAGE_BYTES)
    try:
        await asyncio.wait_for(producer.start(), 20)
    except BaseException:
        await producer.stop()  # else aiokafka prints "Unclosed AIOKafkaProducer" at exit
        raise
    started = time.monotonic()
    pending: list[asyncio.Future] = []

    async def drain() -> None:
        await asyncio.gather(*pending)
        result.accepted += len(pending)
        if progress:
            progress(len(pending))
        pending.clear()

    try:
        for path in files:
            for line in read_lines(path):
                if line.raw.startswith(b"\x00csv:"):
                    result.rejected.append({"file": line.file, "line": line.line,
                                            "reason": line.raw[5:].decode()})
                    continue
                try:
                    event = parse_event(line.raw)
                except InvalidEvent as exc:
                    result.rejected.append({"file": line.file, "line": line.line, "reason": exc.reason})
                    continue
                pending.append(await producer.send(
                    topics[topic_kind(event)], value=line.raw, key=event_key(event), headers=headers))
                if len(pending) >= 5000:
                    await drain()
        await drain()
        await producer.flush()
    finally:
        await producer.stop()
    result.seconds = time.monotonic() - started
    return result

"""`dphp publish FILE...`: validate JSONL/CSV events and publish the valid ones."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import typer

from services.cli.common import OutputFormat, err, expected_errors, fail, load_settings
from services.cli.main import app


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


async def publish(settings, files: list[Path], progress=None) -> PublishResult:
    from schemas.events import CONTENT_TYPE
    from services.common.kafka import kafka_producer
    from services.common.topics import INPUT_MAX_MESSAGE_BYTES
    from schemas.parsing import InvalidEvent, event_key, parse_event, topic_kind

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


@app.command("publish")
@expected_errors
def publish_cmd(
    files: list[Path] = typer.Argument(..., help="JSONL files of CloudEvents, or CSV files (one event type each)"),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table, json or csv"),
) -> None:
    """Validate events and publish the valid ones (idempotent producer, acks=all).

    Rejected lines are reported with file, line number and reason; exit 1 if any was rejected.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    for f in files:
        if not f.is_file():
            fail(f"no such file: {f}", code=2)
    settings = load_settings()
    # aiokafka's own log lines ("Unable connect to ...") would add to the one-line error.
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
    total_lines = sum(count_lines(f) for f in files)
    with Progress(TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("publish", total=total_lines)
        result = asyncio.run(publish(settings, files, progress=lambda n: bar.advance(task, n)))
    rate = result.accepted / result.seconds if result.seconds > 0 else 0.0
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps({"accepted": result.accepted, "rejected": result.rejected}) + "\n")
    elif fmt is OutputFormat.csv:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["file", "line", "reason"], lineterminator="\n")
        w.writeheader()
        w.writerows(result.rejected)
        sys.stdout.write(buf.getvalue())
    else:
        for r in result.rejected[:50]:
            err.print(f"rejected {r['file']}:{r['line']}: {r['reason']}", soft_wrap=True, markup=False)
        if len(result.rejected) > 50:
            err.print(f"... and {len(result.rejected) - 50} more rejected lines (--format json lists all)")
    err.print(f"published {result.accepted} events in {result.seconds:.1f} s ({rate:,.0f} events/s); "
              f"rejected {len(result.rejected)}", markup=False)
    if result.rejected:
        raise typer.Exit(1)


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))

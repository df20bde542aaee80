"""Reading the dead-letter topic and re-publishing selected dead letters to their topics."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from schemas import deadletter as dl
from schemas.events import CONTENT_TYPE
from schemas.parsing import InvalidEvent, mask_nik
from services.common.failures import Backoff, Failure, Health, classify, retry_transient, short
from services.common.kafka import kafka_consumer, kafka_producer
from services.common.errors import OperatorError
from services.common.settings import Settings
from services.common.topics import DEAD_LETTER_MAX_MESSAGE_BYTES, partitions_of

log = logging.getLogger("dphp.dead-letter")

_NIK = re.compile(r"^\d{16}$")


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic: where it was, where it came from and why."""

    partition: int  # in the dead-letter topic
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @property
    def id(self) -> str:
        """`PARTITION:OFFSET` in the dead-letter topic: how `dphp dlq retry --id` names it."""
        return f"{self.partition}:{self.offset}"

    @property
    def original_topic(self) -> str:
        return self.headers.get(dl.ORIGINAL_TOPIC, "")

    @property
    def error_class(self) -> str:
        return self.headers.get(dl.ERROR_CLASS, "")

    def row(self) -> dict[str, object]:
        """What an operator may see: no event content, and a NIK key masked."""
        h = self.headers
        key = self.key.decode("utf-8", "replace") if self.key is not None else None
        if key is not None and _NIK.match(key):
            key = mask_nik(key)
        return {
            "id": self.id, "original_topic": self.original_topic,
            "original_partition": _int(h.get(dl.ORIGINAL_PARTITION)),
            "original_offset": _int(h.get(dl.ORIGINAL_OFFSET)),
            "consumer_group": h.get(dl.CONSUMER_GROUP, ""), "error_class": self.error_class,
            "reason": h.get(dl.ERROR_REASON, ""), "failed_at": h.get(dl.FAILED_AT, ""),
            "key": key, "bytes": len(self.value),
        }


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def read_dead_letters(settings: Settings, keep: Callable[[DeadLetter], bool] = lambda d: True) -> list[DeadLetter]:
    """Every record of the dead-letter topic up to its current end (no consumer group)."""
    ids = (await partitions_of(settings, [settings.topic_dead_letter]))[settings.topic_dead_letter]
    if not ids:  # no such topic yet: no dead letters
        return []
    # earliest: should the seeks below lose a race with the first fetch, it starts at the beginning too.
    consumer = kafka_consumer(settings, enable_auto_commit=False, group_id=None, request_timeout_ms=15000,
                              auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic_dead_letter, p) for p in ids]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > starts[tp]}
        for tp in tps:
            consumer.seek(tp, starts[tp])
        found: list[DeadLetter] = []
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=2000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= ends[tp]:
                        continue
                    d = DeadLetter(r.partition, r.offset, r.key, r.value or b"",
                                   {k: v.decode("utf-8", "replace") for k, v in r.headers
                                    if k.startswith(dl.PREFIX)})
                    if keep(d):
                        found.append(d)
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return sorted(found, key=lambda d: (d.partition, d.offset))
    finally:
        await consumer.stop()


def input_topics(settings: Settings) -> tuple[str, str, str]:
    """The only topics a dead letter goes back to (CONTRACT 2): the three the services consume."""
    return settings.topic_registered, settings.topic_moved, settings.topic_meetings


def check_retryable(settings: Settings, letters: Iterable[DeadLetter]) -> None:
    """Refuses the whole selection, in one line, if any dead letter names a topic other than the
    input topics (its `dphp.original.topic` header is whatever its writer put there: the recap
    topic, the dead-letter topic itself, any name, or nothing)."""
    allowed = input_topics(settings)
    refused = [d for d in letters if d.original_topic not in allowed]
    if refused:
        shown = ", ".join(f"{d.id} (to {d.original_topic!r})" for d in refused[:10])
        more = f" and {len(refused) - 10} more" if len(refused) > 10 else ""
        raise OperatorError(
            f"refusing to re-publish: {len(refused)} selected dead letter(s) name a topic that is not an "
            f"input topic ({', '.join(allowed)}): {shown}{more}; nothing was sent (narrow the selection "
            "with --id or --topic)")


async def republish(settings: Settings, letters: Iterable[DeadLetter]) -> int:
    """Sends each dead letter's original bytes, with its original key, to its original topic.

    Only to the input topics: the whole selection is checked before anything is sent, and a dead
    letter naming any other topic refuses all of it (`OperatorError`)."""
    letters = list(letters)
    check_retryable(settings, letters)
    producer = kafka_producer(settings)
    await producer.start()
    try:
        futures = [await producer.send(d.original_topic, value=d.value, key=d.key,
                                       headers=[("content-type", CONTENT_TYPE.encode()),
                                                (dl.RETRIED_FROM, d.id.encode())])
                   for d in letters]
        for f in futures:
            await f
    finally:
        await producer.stop()
    return len(letters)


class DeadLetterWriter:
    """Sends rejected records to the dead-letter topic: original key and bytes, reason in headers.

    Each record is sent once: when the broker is unreachable, only the records not yet
    acknowledged are sent again, with backoff. A record the topic refuses for its size (the topic
    was created by hand with a smaller limit than DPHP's) is not dropped: the service stops that
    batch loudly and tries again, so that an operator can raise the limit.
    """

    def __init__(self, settings: Settings, group_id: str, producer: AIOKafkaProducer | None = None,
                 written: WrittenDeadLetters | None = None) -> None:
        self.topic = settings.topic_dead_letter
        self.group_id = group_id
        self._settings = settings
        self._producer = producer
        # With a producer passed in (tests), what this writer sent; else the topic itself.
        self.written = written or (WrittenDeadLetters() if producer is not None else TopicDeadLetters(settings))
        self._health = Health("Kafka (dead-letter topic)", log)
        self.sent = 0

    async def start(self) -> None:
        if self._producer is None:
            self._producer = kafka_producer(self._settings, max_request_size=DEAD_LETTER_MAX_MESSAGE_BYTES)
            await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        await self.written.stop()

    async def send(self, rejected: Sequence[tuple[Any, InvalidEvent]]) -> list[tuple[Any, InvalidEvent]]:
        """Sends (record, why) pairs and waits until the broker acknowledged every one; returns
        those sent now.

        A record whose dead letter is in the topic already (a batch read again after an instance
        was killed, frozen or fenced between sending its dead letters and committing) is not sent
        again: the dead-letter topic holds each rejected record once."""
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        await retry_transient(self.written.refresh, self._health)
        pending = [(rec, why) for rec, why in rejected if self._key(rec) not in self.written.keys]
        if len(pending) < len(rejected):
            log.info("%d dead letter(s) of this batch are in the dead-letter topic already (the batch is read "
                     "again); not sent twice", len(rejected) - len(pending))
        rejected = pending
        backoff = Backoff()
        while pending:
            futures = []
            try:
                for rec, why in pending:
                    futures.append(await self._producer.send(self.topic, value=rec.value, key=rec.key,
                                                             headers=dead_letter_headers(rec, self.group_id, why, now)))
            except KafkaError as exc:
                futures += [None] * (len(pending) - len(futures))
                failure = exc
            else:
                failure = None
            results = await asyncio.gather(*(f for f in futures if f is not None), return_exceptions=True)
            outcome = iter(results)
            still = []
            for item, future in zip(pending, futures):
                result = next(outcome) if future is not None else failure
                if isinstance(result, BaseException):
                    failure = result
                    still.append(item)
            pending = still
            if not pending:
                break
            if classify(failure) is not Failure.TRANSIENT:
                log.error("the dead-letter topic %s refused %d record(s) (%s); retrying with backoff, "
                          "nothing is committed until they are written", self.topic, len(pending), short(failure))
            self._health.failed(failure)
            await backoff.wait()
        self._health.ok()
        for rec, why in rejected:
            self.written.keys.add(self._key(rec))
            log.warning("dead-lettered %s/%d@%d: %s", rec.topic, rec.partition, rec.offset, why.reason)
        self.sent += len(rejected)
        return list(rejected)

    def _key(self, rec: Any) -> DeadLetterKey:
        return (rec.topic, rec.partition, rec.offset, self.group_id)


DeadLetterKey = tuple[str, int, int, str]  # original topic, partition, offset; consumer group


class WrittenDeadLetters:
    """The dead letters known to be written, by `DeadLetterKey` (here: those this process sent)."""

    def __init__(self) -> None:
        self.keys: set[DeadLetterKey] = set()

    async def refresh(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class TopicDeadLetters(WrittenDeadLetters):
    """The dead letters in the dead-letter topic, read up to its end on each `refresh` (only what was
    added since the last one: dead letters are few, and a refresh happens only for a batch with
    invalid events)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings
        self._consumer = None
        self._next: dict[TopicPartition, int] = {}

    async def refresh(self, timeout_s: float = 30) -> None:
        topic = self._settings.topic_dead_letter
        if self._consumer is None:
            ids = (await partitions_of(self._settings, [topic]))[topic]
            consumer = kafka_consumer(self._settings, group_id=None, enable_auto_commit=False,
                                      auto_offset_reset="earliest")
            await consumer.start()
            tps = [TopicPartition(topic, p) for p in ids]
            consumer.assign(tps)
            starts = await consumer.beginning_offsets(tps) if tps else {}
            for tp in tps:
                consumer.seek(tp, starts[tp])
            self._consumer, self._next = consumer, dict(starts)
        tps = list(self._next)
        if not tps:
            return
        ends = await self._consumer.end_offsets(tps)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while any(self._next[tp] < ends[tp] for tp in tps):
            if asyncio.get_running_loop().time() > deadline:
                raise asyncio.TimeoutError("reading the dead-letter topic")
            batch = await self._consumer.getmany(*[tp for tp in tps if self._next[tp] < ends[tp]], timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    self._next[tp] = r.offset + 1
                    key = _key_of(dict(r.headers))
                    if key is not None:
                        self.keys.add(key)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


def _key_of(headers: dict[str, bytes]) -> DeadLetterKey | None:
    try:
        return (headers[dl.ORIGINAL_TOPIC].decode(), int(headers[dl.ORIGINAL_PARTITION]),
                int(headers[dl.ORIGINAL_OFFSET]), headers[dl.CONSUMER_GROUP].decode())
    except (KeyError, ValueError, UnicodeDecodeError):
        return None  # not a dead letter of ours


def dead_letter_headers(rec: Any, group_id: str, why: InvalidEvent, failed_at: str) -> list[tuple[str, bytes]]:
    """The headers of CONTRACT 1, UTF-8 (a character that cannot be encoded is escaped)."""
    reason = " ".join(why.reason.split())  # one line
    if len(reason) > dl.REASON_MAX_CHARS:
        reason = reason[:dl.REASON_MAX_CHARS - 1] + "…"
    values = (rec.topic, str(rec.partition), str(rec.offset), group_id, why.error_class, reason, failed_at)
    return [(name, value.encode("utf-8", "backslashreplace")) for name, value in zip(dl.HEADERS, values)]

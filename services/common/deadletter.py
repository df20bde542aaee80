"""Reading the dead-letter topic and re-publishing selected dead letters to their topics."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from schemas import deadletter as dl
from schemas.events import CONTENT_TYPE
from schemas.parsing import InvalidEvent, mask_nik
from services.common.failures import Backoff, Failure, Health, classify, short
from services.common.kafka import kafka_producer
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
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                group_id=None, request_timeout_ms=15000, auto_offset_reset="earliest",
                                **settings.kafka_security_kwargs())
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
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all",
                                **settings.kafka_security_kwargs())
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

    def __init__(self, settings: Settings, group_id: str, producer: AIOKafkaProducer | None = None) -> None:
        self.topic = settings.topic_dead_letter
        self.group_id = group_id
        self._settings = settings
        self._producer = producer
        self._health = Health("Kafka (dead-letter topic)", log)
        self.sent = 0

    async def start(self) -> None:
        if self._producer is None:
            self._producer = kafka_producer(self._settings, max_request_size=DEAD_LETTER_MAX_MESSAGE_BYTES)
            await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send(self, rejected: Sequence[tuple[Any, InvalidEvent]]) -> None:
        """Sends (record, why) pairs and waits until the broker acknowledged every one."""
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        pending = list(rejected)
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
            log.warning("dead-lettered %s/%d@%d: %s", rec.topic, rec.partition, rec.offset, why.reason)
        self.sent += len(rejected)


def dead_letter_headers(rec: Any, group_id: str, why: InvalidEvent, failed_at: str) -> list[tuple[str, bytes]]:
    """The headers of CONTRACT 1, UTF-8 (a character that cannot be encoded is escaped)."""
    reason = " ".join(why.reason.split())  # one line
    if len(reason) > dl.REASON_MAX_CHARS:
        reason = reason[:dl.REASON_MAX_CHARS - 1] + "…"
    values = (rec.topic, str(rec.partition), str(rec.offset), group_id, why.error_class, reason, failed_at)
    return [(name, value.encode("utf-8", "backslashreplace")) for name, value in zip(dl.HEADERS, values)]

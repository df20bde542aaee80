"""Reading the dead-letter topic and re-publishing selected dead letters to their topics."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.events import CONTENT_TYPE
from schemas.parsing import mask_nik
from services.common.errors import OperatorError
from services.common.settings import Settings
from services.common.topics import partitions_of

HEADER = "dphp."
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
        return self.headers.get("dphp.original.topic", "")

    @property
    def error_class(self) -> str:
        return self.headers.get("dphp.error.class", "")

    def row(self) -> dict[str, object]:
        """What an operator may see: no event content, and a NIK key masked."""
        h = self.headers
        key = self.key.decode("utf-8", "replace") if self.key is not None else None
        if key is not None and _NIK.match(key):
            key = mask_nik(key)
        return {
            "id": self.id, "original_topic": self.original_topic,
            "original_partition": _int(h.get("dphp.original.partition")),
            "original_offset": _int(h.get("dphp.original.offset")),
            "consumer_group": h.get("dphp.consumer.group", ""), "error_class": self.error_class,
            "reason": h.get("dphp.error.reason", ""), "failed_at": h.get("dphp.failed.at", ""),
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
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                group_id=None, request_timeout_ms=15000, **settings.kafka_security_kwargs())
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
                                    if k.startswith(HEADER)})
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
                                                ("dphp.retried.from", d.id.encode())])
                   for d in letters]
        for f in futures:
            await f
    finally:
        await producer.stop()
    return len(letters)

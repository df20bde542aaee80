"""Producing test events and reading the dead-letter topic through the real broker."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.events import CONTENT_TYPE, Event, MeetingHeld, VoterMoved
from services.common.settings import Settings


def topic_of(settings: Settings, event: Event) -> str:
    if isinstance(event, MeetingHeld):
        return settings.topic_meetings
    if isinstance(event, VoterMoved):
        return settings.topic_moved
    return settings.topic_registered


def key_of(event: Event) -> bytes:
    return (event.data.meeting_id if isinstance(event, MeetingHeld) else event.data.nik).encode()


async def produce(settings: Settings, items: Iterable[Event | tuple[str, bytes | None, bytes]]) -> int:
    """Sends events (or raw (topic, key, value) records) in the given order; returns the count."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True,
                                acks="all", linger_ms=5)
    await producer.start()
    n = 0
    try:
        futures = []
        for item in items:
            if isinstance(item, tuple):
                topic, key, value = item
            else:
                topic, key, value = topic_of(settings, item), key_of(item), item.model_dump_json().encode()
            futures.append(await producer.send(topic, value=value, key=key,
                                               headers=[("content-type", CONTENT_TYPE.encode())]))
            n += 1
        for f in futures:
            await f
    finally:
        await producer.stop()
    return n


async def read_all(settings: Settings, topic: str, expected: int, timeout_ms: int = 20000) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    records = []
    try:
        import time

        deadline = time.monotonic() + timeout_ms / 1000
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            for recs in batch.values():
                records.extend(recs)
    finally:
        await consumer.stop()
    return records

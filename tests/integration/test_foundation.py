"""The foundation against the real broker and database."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.common.db import migrate
from services.common.topics import ensure_topics, topic_specs

pytestmark = pytest.mark.integration


async def _consumer(settings, group: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        settings.topic_moved, bootstrap_servers=settings.kafka_bootstrap, group_id=group,
        enable_auto_commit=False, auto_offset_reset="earliest",
    )
    await consumer.start()
    return consumer


async def test_topics_are_created_with_their_partitions_and_compaction(settings):
    created = await ensure_topics(settings)
    assert sorted(created) == sorted(t.name for t in topic_specs(settings))
    assert await ensure_topics(settings) == []  # idempotent
    from services.common.topics import admin_client

    admin = admin_client(settings)
    await admin.start()
    try:
        described = await admin.describe_topics([settings.topic_registered, settings.topic_recap])
        partitions = {d["topic"]: len(d["partitions"]) for d in described}
        assert partitions[settings.topic_registered] == 6
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, settings.topic_recap)])
        entries = {c[0]: c[1] for c in configs[0].resources[0][4]}
        assert entries["cleanup.policy"] == "compact"
    finally:
        await admin.close()


async def test_group_commit_survives_a_consumer_restart(settings):
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for i in range(30):
            await producer.send_and_wait(settings.topic_moved, b"event-%d" % i, key=b"nik-%d" % (i % 7))
    finally:
        await producer.stop()

    group = settings.group_id("foundation")
    consumer = await _consumer(settings, group)
    seen: list[bytes] = []
    try:
        while len(seen) < 20:
            batch = await consumer.getmany(timeout_ms=2000, max_records=20 - len(seen))
            for records in batch.values():
                seen.extend(r.value for r in records)
        positions = {tp: await consumer.position(tp) for tp in consumer.assignment()}
        await consumer.commit()
    finally:
        await consumer.stop()

    restarted = await _consumer(settings, group)
    try:
        committed = {tp: await restarted.committed(tp) for tp in restarted.assignment()}
        assert {tp: committed.get(tp) or 0 for tp in positions} == positions
        rest: list[bytes] = []
        while len(rest) < 10:
            batch = await restarted.getmany(timeout_ms=2000)
            assert batch, "the rest of the records did not arrive"
            for records in batch.values():
                rest.extend(r.value for r in records)
    finally:
        await restarted.stop()
    # Exactly the records not consumed before the restart: none twice, none lost.
    assert sorted(seen + rest) == sorted(b"event-%d" % i for i in range(30))


async def test_rows_round_trip_through_postgres_and_migrate_is_idempotent(settings):
    first = await migrate(settings)
    assert first and first[0].startswith("001_")
    assert await migrate(settings) == []
    conn = await asyncpg.connect(settings.database_url)
    try:
        schema = settings.db_schema
        await conn.executemany(
            f"INSERT INTO {schema}.consumer_position (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4)",
            [("g", "t", p, 100 + p) for p in range(6)],
        )
        rows = await conn.fetch(f"SELECT partition, next_offset FROM {schema}.consumer_position ORDER BY partition")
        assert [(r["partition"], r["next_offset"]) for r in rows] == [(p, 100 + p) for p in range(6)]
    finally:
        await conn.execute(f"DROP SCHEMA {settings.db_schema} CASCADE")
        await conn.close()

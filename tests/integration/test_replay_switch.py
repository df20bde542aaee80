"""`dphp replay`'s switch-over is bounded (issue #10): it catches up to a fixed target, then
switches, or stops with one clear line leaving the live projection untouched. Each of these
looped (or waited) forever on the code before, holding the lock every batch of the services needs."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewPartitions

from services.common.errors import OperatorError
from services.common.topics import admin_client, ensure_topics
from services.projection import replay as replay_module
from services.projection.replay import replay
from tests.conftest import unique_settings
from tests.eventsets import event_set
from tests.integration.test_services import CAPACITY
from tests.strategies import make_registered
from tests.support.kafka import produce
from tests.support.services import dphp

# The bound of each test: far above what a bounded switch-over takes, so that a hang is a failure.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

UTC = dt.timezone.utc
NEW_NIK = "3316010101900123"


@pytest.fixture
def settings(stack):
    return unique_settings(stack, tps_capacity=CAPACITY, batch_max_records=50, replay_switch_timeout_s=3)


async def _sql(settings, query: str, *args):
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def _live_state(settings) -> dict:
    """What must not change when a replay stops: the generation, the positions, the rows, the schemas."""
    s = settings.db_schema
    return {
        "generation": (await _sql(settings, f"SELECT generation FROM {s}.projection_config"))[0][0],
        "positions": sorted(tuple(r) for r in await _sql(
            settings, f"SELECT group_id, topic, partition, next_offset FROM {s}.consumer_position")),
        "voters": (await _sql(settings, f"SELECT count(*) FROM {s}.voter"))[0][0],
        "schemas": sorted(r[0] for r in await _sql(
            settings, "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", f"{s}%")),
    }


async def _live_projection(settings) -> dict:
    """A live projection built from the topics (by a first replay), with positions."""
    await ensure_topics(settings)
    await produce(settings, event_set(47, voters=60))
    await replay(settings, keep_old=False)
    state = await _live_state(settings)
    assert state["voters"] > 0 and state["positions"] and state["schemas"] == [settings.db_schema]
    return state


async def _set_live_position(settings, service: str, topic: str, partition: int, offset: int) -> None:
    await _sql(settings, f"""INSERT INTO {settings.db_schema}.consumer_position
                             (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4) ON CONFLICT (group_id, topic, partition)
                             DO UPDATE SET next_offset = EXCLUDED.next_offset""",
               settings.group_id(service), topic, partition, offset)


async def test_a_partition_added_during_the_rebuild_is_read_to_its_target(settings):
    """A partition added meanwhile, whose records the live service applied: the rebuild's consumer
    never had it assigned, so the old switch-over waited for it forever."""
    await ensure_topics(settings)
    await produce(settings, event_set(47, voters=60))
    added = []

    async def add_partition() -> None:
        admin = admin_client(settings)
        await admin.start()
        try:
            await admin.create_partitions({settings.topic_registered: NewPartitions(total_count=7)})
        finally:
            await admin.close()
        event = make_registered("added-partition-1", dt.datetime(2024, 6, 24, 3, tzinfo=UTC), NEW_NIK)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            sent = await producer.send_and_wait(settings.topic_registered, partition=6, key=NEW_NIK.encode(),
                                                value=event.model_dump_json().encode())
        finally:
            await producer.stop()
        assert sent.partition == 6
        # As the registrations service stores it after applying the record (a rebalance gave it the partition).
        await _set_live_position(settings, "registrations", settings.topic_registered, 6, sent.offset + 1)
        added.append(sent.offset + 1)

    def progress(done: int, total: int) -> None:
        if not added:  # during the rebuild, once: the replay's loop waits while this runs
            worker = threading.Thread(target=lambda: asyncio.run(add_partition()))
            worker.start()
            worker.join()

    result = await replay(settings, keep_old=False, progress=progress)
    assert added == [1]
    s = settings.db_schema
    assert result.schema == s
    assert (await _sql(settings, f"SELECT count(*) FROM {s}.voter WHERE nik = $1", NEW_NIK))[0][0] == 1
    rows = await _sql(settings, f"SELECT next_offset FROM {s}.consumer_position WHERE topic = $1 AND partition = 6",
                      settings.topic_registered)
    assert [r[0] for r in rows] == [1]


@pytest.mark.parametrize("stale", ["beyond the end", "no such partition", "another topic"])
async def test_a_live_position_the_topics_cannot_satisfy_is_refused_clearly(settings, stale):
    """Stale position rows in the live schema (a topic recreated, a partition gone, a topic renamed):
    the old switch-over waited for them forever under its lock."""
    await _live_projection(settings)
    if stale == "beyond the end":
        await _set_live_position(settings, "registrations", settings.topic_registered, 0, 10_000)
        shown = f"{settings.topic_registered}[0] at 10000: beyond its end offset"
    elif stale == "no such partition":
        await _set_live_position(settings, "movements", settings.topic_moved, 99, 5)
        shown = f"{settings.topic_moved}[99] at 5: no such partition"
    else:
        await _set_live_position(settings, "meetings", "renamed.meeting-held", 0, 5)
        shown = "renamed.meeting-held[0] at 5: the group reads"
    before = await _live_state(settings)

    started = time.monotonic()
    with pytest.raises(OperatorError) as refused:
        await replay(settings)
    assert time.monotonic() - started < 30
    message = str(refused.value)
    assert "cannot satisfy" in message and shown in message and "untouched" in message, message
    assert "\n" not in message
    assert await _live_state(settings) == before  # nothing switched, the rebuild dropped

    if stale == "beyond the end":  # the command: one line, exit 1
        done = dphp(settings, "replay")
        assert done.returncode == 1 and done.stdout == ""
        lines = [line for line in done.stderr.splitlines() if not line.startswith("replay: ")]  # progress
        assert len(lines) == 1 and shown in lines[0] and "Traceback" not in done.stderr, done.stderr
        assert await _live_state(settings) == before


async def test_the_wait_for_the_lock_is_bounded(settings):
    """A transaction that holds the generation row (a service's batch, frozen): the old
    switch-over waited for it without limit."""
    before = await _live_projection(settings)
    holder = await asyncpg.connect(settings.database_url)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.fetchval(f"SELECT generation FROM {settings.db_schema}.projection_config FOR KEY SHARE")
        started = time.monotonic()
        with pytest.raises(OperatorError, match="could not lock the live projection") as refused:
            await replay(settings)
        took = time.monotonic() - started
        assert "\n" not in str(refused.value) and "untouched" in str(refused.value)
        assert took < 30, took
        await tx.rollback()
    finally:
        await holder.close()
    assert await _live_state(settings) == before


async def test_a_catch_up_that_does_not_finish_in_time_stops_the_replay(settings, monkeypatch):
    """The rebuild cannot reach the live positions (here: it drops the records the live service
    applied after the first replay): stopped after DPHP_REPLAY_SWITCH_TIMEOUT_S, not looped."""
    await _live_projection(settings)
    more = [e for e in event_set(53, voters=30) if e.type.endswith("voter-registered.v1")]
    await produce(settings, more)
    ends = {}
    for r in await _sql(settings, f"SELECT partition, next_offset FROM {settings.db_schema}.consumer_position "
                                  "WHERE topic = $1", settings.topic_registered):
        ends[r[0]] = r[1]
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic_registered, p) for p in range(6)]
        now = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    grown = [tp.partition for tp in tps if now[tp] > ends.get(tp.partition, 0)]
    assert grown
    for p in grown:  # as the live service stores them after applying the new records
        await _set_live_position(settings, "registrations", settings.topic_registered, p, now[TopicPartition(
            settings.topic_registered, p)])
    before = await _live_state(settings)

    submit = replay_module.ProjectionConsumer.submit
    old_ends = dict(ends)

    async def stuck(self, records):  # never gets past the first replay's positions
        await submit(self, [r for r in records
                            if r.topic != settings.topic_registered or r.offset < old_ends.get(r.partition, 0)])

    monkeypatch.setattr(replay_module.ProjectionConsumer, "submit", stuck)
    started = time.monotonic()
    with pytest.raises(OperatorError, match="did not catch up") as stopped:
        await replay(settings)
    took = time.monotonic() - started
    assert "DPHP_REPLAY_SWITCH_TIMEOUT_S" in str(stopped.value) and "untouched" in str(stopped.value)
    assert 3 <= took < 30, took
    assert await _live_state(settings) == before

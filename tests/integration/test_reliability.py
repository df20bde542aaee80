"""Issue #10's failure classes, each against the real database and broker.

- A database crash (an immediate stop: SIGQUIT to the postmaster) loses the last commits of
  `synchronous_commit=off`; the services must not store past the gap. With on (the default) it
  loses none.
- An event that validation accepts but the database refuses is isolated and dead-lettered.
- A frozen writer holding locks is cut off by the session timeouts.
- A dead letter near the record size limit reaches the dead-letter topic.
- No full NIK reaches PostgreSQL's server log through a redelivered batch or a lost race.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import asyncpg
import pytest

from schemas import deadletter as dl
from schemas.events import VoterRegistered
from services.common.db import migrate
from services.common.failures import Failure, classify
from services.common.kafka import kafka_producer
from services.common.topics import MAX_VALUE_BYTES, ensure_topics
from services.devstack import postgres
from services.devstack.process import free_port
from services.projection import store as st
from services.projection.consumer import ProjectionConsumer
from tests.conftest import unique_settings
from tests.eventsets import deliveries, event_set
from tests.integration.test_services import CAPACITY, assert_projection_equals, fold_of
from tests.support.kafka import produce, read_all
from tests.support.records import Record
from tests.support.services import start_services, wait_converged

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

#: The last seconds of commits stay in PostgreSQL's memory: an immediate stop surely loses some.
LOSSY_WAL = {"wal_writer_delay": "10000", "wal_writer_flush_after": "1GB", "wal_buffers": "64MB"}


@pytest.fixture
def own_postgres(tmp_path):
    layout = postgres.PostgresLayout(state=tmp_path / "pg", host="127.0.0.1", port=free_port())
    postgres.start(layout, log=lambda line: None, options=LOSSY_WAL)
    try:
        yield layout
    finally:
        postgres.stop(layout)


def crash(layout: postgres.PostgresLayout) -> None:
    """An immediate stop: the postmaster and its backends quit without writing anything."""
    pid = layout.process.pid()
    assert pid
    os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError("the postmaster did not exit after SIGQUIT")


async def stored_total(settings) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetchval(f"SELECT coalesce(sum(next_offset), 0) FROM {settings.db_schema}.consumer_position")
    except asyncpg.UndefinedTableError:  # not migrated yet
        return 0
    finally:
        await conn.close()


@pytest.mark.parametrize("overrides,commits_lost", [({"db_synchronous_commit": False}, True), ({}, False)],
                         ids=["commits-lost", "durable-default"])
async def test_database_crashes_lose_no_event(stack, own_postgres, tmp_path, overrides, commits_lost):
    layout = own_postgres
    settings = unique_settings(stack, database_url=layout.url, tps_capacity=CAPACITY, batch_max_records=300,
                               **overrides)
    await ensure_topics(settings)
    events = event_set(41, voters=4000)
    stream = deliveries(events, 41)
    chunks = [stream[i::5] for i in range(5)]
    procs = start_services(settings, tmp_path / "logs")
    lost_commits = 0
    try:
        await produce(settings, chunks[0])
        for _ in range(600):
            if await stored_total(settings) > 0:
                break
            await asyncio.sleep(0.2)
        for chunk in chunks[1:4]:
            await produce(settings, chunk)
            await asyncio.sleep(1.5)  # applying
            before = await stored_total(settings)
            crash(layout)
            postgres.start(layout, log=lambda line: None, options=LOSSY_WAL)  # crash recovery
            after = await stored_total(settings)
            lost_commits += after < before  # the positions went back: commits were lost
        await produce(settings, chunks[4])
        await wait_converged(settings, timeout=300, processes=procs)
    finally:
        for p in procs:
            p.stop()
    if not commits_lost:
        assert lost_commits == 0, f"{lost_commits} of 3 crashes took stored positions back with the default settings"
    else:
        assert lost_commits > 0, "no crash lost a commit: the test proved nothing"
    assert_projection_equals(settings, fold_of(events))
    for p in procs:
        assert "Traceback" not in p.output(), f"{p.service}:\n{p.output()[-4000:]}"


async def test_an_event_the_database_refuses_is_isolated_and_dead_lettered(settings):
    await ensure_topics(settings)
    await migrate(settings)
    # A constraint stands for any refusal that validation cannot foresee (class 23, like 22 or 54).
    conn = await asyncpg.connect(settings.database_url)
    await conn.execute(f"ALTER TABLE {settings.db_schema}.voter_event "
                       "ADD CONSTRAINT refused CHECK (event_id NOT LIKE 'refused-%')")
    events = [e for e in event_set(43, voters=600) if isinstance(e, VoterRegistered)][:500]
    refused = {3, 250, 251}
    values = []
    for i, e in enumerate(events):
        doc = e.model_dump(mode="json")
        if i in refused:
            doc["id"] = f"refused-{i}"
        values.append(json.dumps(doc).encode())
    records = [Record(settings.topic_registered, 0, i, events[i].data.nik.encode(), v) for i, v in enumerate(values)]
    consumer = ProjectionConsumer(settings, "registrations")
    await consumer.start()
    try:
        await asyncio.wait_for(consumer.handle(records), 60)
    finally:
        await consumer.stop()
    dead = await read_all(settings, settings.topic_dead_letter, expected=len(refused), timeout_ms=10000)
    headers = [dict(r.headers) for r in dead]
    assert sorted(int(h[dl.ORIGINAL_OFFSET]) for h in headers) == sorted(refused)
    assert {h[dl.ERROR_CLASS] for h in headers} == {dl.UNSTORABLE.encode()}
    assert all(events[i].data.nik.encode() not in h[dl.ERROR_REASON] for i in refused for h in headers)
    stored = await conn.fetchval(f"SELECT count(*) FROM {settings.db_schema}.voter_event")
    positions = await conn.fetch(f"SELECT partition, next_offset FROM {settings.db_schema}.consumer_position")
    await conn.close()
    assert stored == len({(e.data.nik, e.time, e.id) for i, e in enumerate(events) if i not in refused})
    assert [tuple(r) for r in positions] == [(0, len(records))]


async def test_a_frozen_writer_is_cut_off_and_its_work_redone_by_another(stack):
    settings = unique_settings(stack, db_idle_in_transaction_timeout_s=2, db_lock_timeout_s=1)
    await migrate(settings)
    events = [e for e in event_set(47, voters=30) if isinstance(e, VoterRegistered)]
    cutoff = st.eligibility_cutoff(settings.voting_day)
    rows = [st.registration_row(e.model_dump(), cutoff) for e in events]

    async def store_on_new_connection() -> st.ProjectionStore:
        s = st.ProjectionStore(await st.connect_writer(settings), settings.db_schema)
        await s.prepare()
        await s.ensure_config(settings.voting_day, CAPACITY)
        return s

    first, other = await store_on_new_connection(), await store_on_new_connection()
    await first.apply_registrations(rows[:5], "g", [("t", 0, 0, 5)])
    # The frozen instance: in the middle of its next batch, holding a voter's row lock.
    frozen = first.conn.transaction()
    await frozen.start()
    await first.conn.execute(f"SELECT 1 FROM {settings.db_schema}.voter WHERE nik = $1 FOR UPDATE", rows[0][1])
    with pytest.raises(asyncpg.PostgresError) as waited:
        await asyncio.wait_for(other.apply_registrations(rows, "g", [("t", 0, 5, 30)]), 15)
    assert classify(waited.value) is Failure.TRANSIENT  # a lock timeout: retried with backoff
    await asyncio.sleep(2.5)  # the frozen one's session has been ended by then
    await asyncio.wait_for(other.apply_registrations(rows, "g", [("t", 0, 5, 30)]), 15)
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
        await first.conn.execute("SELECT 1")  # it was cut off; its transaction rolled back
    assert await other.positions("g", "t") == {0: 30}
    await other.conn.close()


async def test_a_dead_letter_near_the_size_limit_reaches_the_dead_letter_topic(settings):
    await ensure_topics(settings)
    key = b"k" * 1000
    big = b"{" + b"x" * (MAX_VALUE_BYTES - 1)  # malformed JSON of exactly the largest valid size
    # The input topic takes it (any client may publish it) ...
    producer = kafka_producer(settings, max_request_size=2 * MAX_VALUE_BYTES)
    await producer.start()
    try:
        await (await producer.send(settings.topic_registered, key=key, value=big))
    finally:
        await producer.stop()
    # ... and the consumer's dead-letter writer sends it on, with its headers.
    consumer = ProjectionConsumer(settings, "registrations")
    await consumer.start()
    try:
        await asyncio.wait_for(consumer.handle([Record(settings.topic_registered, 0, 0, key, big)]), 60)
    finally:
        await consumer.stop()
    dead = await read_all(settings, settings.topic_dead_letter, expected=1, timeout_ms=10000)
    assert [(r.key, r.value) for r in dead] == [(key, big)]
    assert dict(dead[0].headers)[dl.ERROR_CLASS]


async def test_no_full_nik_in_the_database_log_after_redeliveries_and_races(stack, tmp_path):
    layout = postgres.PostgresLayout(state=tmp_path / "pg", host="127.0.0.1", port=free_port())
    postgres.start(layout, log=lambda line: None)
    try:
        settings = unique_settings(stack, database_url=layout.url)
        await migrate(settings)
        events = event_set(53, voters=50)
        regs = [e for e in events if isinstance(e, VoterRegistered)]
        cutoff = st.eligibility_cutoff(settings.voting_day)
        rows = [st.registration_row(e.model_dump(), cutoff) for e in regs]
        a = st.ProjectionStore(await st.connect_writer(settings), settings.db_schema)
        b = st.ProjectionStore(await st.connect_writer(settings), settings.db_schema)
        for s in (a, b):
            await s.prepare()
            await s.ensure_config(settings.voting_day, CAPACITY)
        # A lost race for new voters: b inserts some (other events of theirs, at TPS that are not
        # lokasi khusus, so that a waits for nothing before its merge) while a's batch runs.
        other_events = [r for r in rows if not r[-1]][:5]
        other_events = [(r[0] + "-b",) + r[1:] for r in other_events]
        async with b.conn.transaction():
            await b.apply_registrations(other_events, "g", [])
            racing = asyncio.create_task(a.apply_registrations(rows, "g", [("t", 0, 0, len(rows))]))
            await asyncio.sleep(0.5)
        await asyncio.wait_for(racing, 20)
        assert a.races >= 1
        await a.apply_registrations(rows, "g2", [("t", 0, 0, len(rows))])  # every event seen before
        await a.conn.close()
        await b.conn.close()
        niks = {r[1] for r in rows}
        log = layout.process.log_file.read_text(errors="replace")
        leaked = sorted(n for n in niks if n in log)
        assert not leaked, f"{len(leaked)} NIKs in PostgreSQL's log, e.g. {leaked[0][:4]}…:\n{log[-2000:]}"
    finally:
        postgres.stop(layout)


async def test_a_batch_read_again_by_another_instance_does_not_dead_letter_twice(settings):
    # An instance sent a batch's dead letters and was killed (or frozen, or fenced) before its
    # commit: the instance that reads the batch again finds them in the topic.
    from schemas.parsing import InvalidEvent
    from services.common.deadletter import DeadLetterWriter

    await ensure_topics(settings)
    group = settings.group_id("registrations")
    records = [Record(settings.topic_registered, p, o, b"k", b"{bad %d" % o) for p in (0, 1) for o in (3, 9)]
    letters = [(r, InvalidEvent("malformed JSON", "malformed")) for r in records]
    first = DeadLetterWriter(settings, group)
    await first.start()
    await first.send(letters[:3])
    await first.stop()
    taking_over = DeadLetterWriter(settings, group)
    await taking_over.start()
    try:
        await taking_over.send(letters)
        await taking_over.send(letters)  # and once more, from what it knows
    finally:
        await taking_over.stop()
    dead = await read_all(settings, settings.topic_dead_letter, expected=5, timeout_ms=5000)
    keys = sorted((int(dict(r.headers)[dl.ORIGINAL_PARTITION]), int(dict(r.headers)[dl.ORIGINAL_OFFSET]))
                  for r in dead)
    assert keys == [(0, 3), (0, 9), (1, 3), (1, 9)]


async def test_no_full_nik_in_the_database_log_when_it_refuses_a_row(own_postgres, stack):
    """A refused row (a constraint, a bound) is logged by the server without its values."""
    settings = unique_settings(stack, database_url=own_postgres.url)
    await migrate(settings)
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(f"ALTER TABLE {settings.db_schema}.voter_event "
                           "ADD CONSTRAINT refused CHECK (event_id NOT LIKE 'refused-%')")
        nik = "3316011506850003"
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(f"INSERT INTO {settings.db_schema}.voter_event (nik, event_time, event_id, registered, "
                               f"desa_code, tps_number, loksus) VALUES ('{nik}', now(), 'refused-1', true, "
                               "'33.16.09.1011', 1, false)")
    finally:
        await conn.close()
    log = own_postgres.process.log_file.read_text(errors="replace")
    assert "refused" in log  # the error itself is logged
    assert nik not in log, log[-2000:]

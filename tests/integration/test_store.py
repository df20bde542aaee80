"""The SQL layer alone (no Kafka): batches in any order equal the pure fold."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from schemas.events import MeetingHeld, VoterMoved, VoterRegistered
from services.common.db import migrate
from services.projection import queries
from services.projection import store as st
from services.projection.fold import Projection
from services.projection.recap import comparable_meetings, comparable_report, region_contains
from tests.eventsets import deliveries, event_set

pytestmark = pytest.mark.integration


async def apply_all(store: st.ProjectionStore, events, batch: int, cutoff, group: str = "g") -> None:
    for i in range(0, len(events), batch):
        chunk = events[i:i + batch]
        regs = [st.registration_row(e.model_dump(), cutoff) for e in chunk if isinstance(e, VoterRegistered)]
        moves = [st.movement_row(e.model_dump()) for e in chunk if isinstance(e, VoterMoved)]
        meetings = [st.meeting_row(e.model_dump()) for e in chunk if isinstance(e, MeetingHeld)]
        await store.apply_registrations(regs, f"{group}.reg", [("t", 0, i, i + len(chunk))])
        await store.apply_movements(moves, f"{group}.mov", [("t", 0, i, i + len(chunk))])
        await store.apply_meetings(meetings, f"{group}.meet", [("t", 0, i, i + len(chunk))])


@pytest.fixture
async def store(settings):
    await migrate(settings)
    conn = await asyncpg.connect(settings.database_url)
    s = st.ProjectionStore(conn, settings.db_schema)
    await s.prepare()
    await s.ensure_config(settings.voting_day, 3)
    yield s
    await conn.execute(f"DROP SCHEMA {settings.db_schema} CASCADE")
    await conn.close()


@pytest.mark.parametrize("seed,batch", [(1, 1000), (2, 37), (3, 1)])
async def test_batches_in_any_order_equal_the_fold(store, settings, seed, batch):
    events = event_set(seed, voters=150 if batch > 1 else 40)
    expected = Projection(tps_capacity=3)
    expected.apply(events)
    await apply_all(store, deliveries(events, seed), batch, st.eligibility_cutoff(settings.voting_day))

    records = await store.conn.fetch(f"SELECT * FROM {settings.db_schema}.recap_full")
    actual = comparable_report([queries._row(r) for r in records])
    assert actual == comparable_report(expected.recap())

    meetings = await queries.meetings(store.conn, settings.db_schema)
    assert comparable_meetings(meetings) == comparable_meetings(expected.meetings())


async def test_as_of_recap_equals_the_fold_of_earlier_events(store, settings):
    events = event_set(7, voters=150)
    expected = Projection(tps_capacity=3)
    expected.apply(events)
    await apply_all(store, deliveries(events, 7), 500, st.eligibility_cutoff(settings.voting_day))
    times = sorted({e.time for e in events})
    for t in (times[0], times[len(times) // 3], times[len(times) // 2], times[-1]):
        for region in ("ID", "33.16", "33.16.01", "33.16.01.2001", "33.16.09.1011/901"):
            rows = await queries.recap_as_of(store.conn, settings.db_schema, region, t)
            want = {k: v for k, v in comparable_report(expected.recap(as_of=t)).items()
                    if region_contains(region, k[1])}
            assert comparable_report(rows) == want, (t, region)


async def test_reapplying_everything_changes_nothing(store, settings):
    events = event_set(11, voters=100)
    cutoff = st.eligibility_cutoff(settings.voting_day)
    await apply_all(store, events, 250, cutoff)
    before = await store.conn.fetch(f"SELECT * FROM {settings.db_schema}.recap_full ORDER BY level, region_code")
    await apply_all(store, list(reversed(events)), 77, cutoff, group="again")
    after = await store.conn.fetch(f"SELECT * FROM {settings.db_schema}.recap_full ORDER BY level, region_code")
    assert [dict(r) for r in before] == [dict(r) for r in after]
    assert await store.positions("g.reg", "t") == {0: len(events)}


async def test_positions_are_stored_with_the_batch_whatever_the_names(store, settings):
    events = [e for e in event_set(5, voters=20) if isinstance(e, VoterRegistered)]
    cutoff = st.eligibility_cutoff(settings.voting_day)
    group, topic = "o'neil; DROP TABLE x; -- $values {values}", "voters.it's{group}"
    rows = [st.registration_row(e.model_dump(), cutoff) for e in events]
    await store.apply_registrations(rows, group, [(topic, 1, 0, 5), (topic, 0, 0, 7)])
    await store.apply_registrations(rows, group, [(topic, 0, 7, 9), (topic, 2, 0, 1)])
    assert await store.positions(group, topic) == {0: 9, 1: 5, 2: 1}
    voters = await store.conn.fetchval(f"SELECT count(*) FROM {settings.db_schema}.voter")
    assert voters == len({e.data.nik for e in events})


async def test_a_voter_inserted_meanwhile_by_another_service_is_merged_not_overwritten(store, settings):
    # The movements service inserts a voter that the registrations service's batch, merged
    # before that commit, takes as new: the batch hits the key, is rolled back and applied again.
    events = event_set(13, voters=30)
    regs = [e for e in events if isinstance(e, VoterRegistered)]
    moved_nik = regs[0].data.nik
    move = next((e for e in events if isinstance(e, VoterMoved) and e.data.nik == moved_nik), None)
    if move is None:
        move = VoterMoved.model_validate({
            **regs[0].model_dump(mode="json"), "id": "late-move", "type": "id.go.kpu.dphp.voter-moved.v1",
            "time": "2030-01-01T00:00:00+07:00",
            "data": {"nik": moved_nik, "reason": "pindah_memilih",
                     "to_tps": {"desa_code": "33.16.01.2001", "number": 2, "kind": "reguler"}},
        })
    cutoff = st.eligibility_cutoff(settings.voting_day)
    other_conn = await asyncpg.connect(settings.database_url)
    other = st.ProjectionStore(other_conn, settings.db_schema)
    await other.prepare()
    try:
        async with other_conn.transaction():  # held open: its voter row is not yet visible
            await other.apply_movements([st.movement_row(move.model_dump())], "g.mov", [("t", 0, 0, 1)])
            applying = asyncio.create_task(
                store.apply_registrations([st.registration_row(e.model_dump(), cutoff) for e in regs], "g.reg", [("t", 0, 0, 1)]))
            await asyncio.sleep(0.5)
            assert not applying.done()  # waits for the other transaction's voter row
        await asyncio.wait_for(applying, 10)
    finally:
        await other_conn.close()
    assert store.races == 1
    expected = Projection(tps_capacity=3)
    expected.apply([*regs, move])
    records = await store.conn.fetch(f"SELECT * FROM {settings.db_schema}.recap_full")
    assert comparable_report([queries._row(r) for r in records]) == comparable_report(expected.recap())


async def test_a_batch_is_stored_only_from_the_stored_position(store, settings):
    # Compare-and-set: a writer whose idea of the position is stale (it lost the partition to
    # another instance, or the database lost its last commits) stores nothing, rows included.
    events = [e for e in event_set(17, voters=40) if isinstance(e, VoterRegistered)]
    cutoff = st.eligibility_cutoff(settings.voting_day)
    rows = [st.registration_row(e.model_dump(), cutoff) for e in events]
    await store.apply_registrations(rows[:10], "g.reg", [("t", 0, 0, 10), ("t", 1, 0, 4)])
    voters = f"SELECT count(*) FROM {settings.db_schema}.voter"
    before = await store.conn.fetchval(voters)
    for stale in ([("t", 0, 0, 20)], [("t", 0, 5, 20)], [("t", 0, 10, 20), ("t", 1, 0, 8)], [("t", 2, 3, 9)]):
        with pytest.raises(st.PositionsMoved):
            await store.apply_registrations(rows[10:], "g.reg", stale)
        assert await store.conn.fetchval(voters) == before  # the rows were rolled back with it
    with pytest.raises(st.PositionsMoved):
        await store.apply_meetings([], "g.reg", [("t", 0, 3, 20)])
    assert await store.positions("g.reg", "t") == {0: 10, 1: 4}
    await store.apply_registrations(rows[10:], "g.reg", [("t", 0, 10, 20), ("t", 1, 4, 8), ("t", 2, 0, 9)])
    assert await store.positions("g.reg", "t") == {0: 20, 1: 8, 2: 9}
    assert await store.conn.fetchval(voters) == len({e.data.nik for e in events})

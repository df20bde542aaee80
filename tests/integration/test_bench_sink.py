"""The benchmark's sink stores as a service's lane does: a lost race is applied again, not fatal."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from bench import phases
from schemas.events import VoterMoved, VoterRegistered
from services.common.db import migrate
from services.projection import store as st
from tests.eventsets import event_set

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_sink_applies_a_batch_again_after_losing_a_race_for_a_new_voter(settings, monkeypatch):
    # One attempt inside the store, so that the race reaches the sink's own handling (with the
    # default five, a `make bench` of 2026-12-04 lost five in a row and the sink failed).
    monkeypatch.setattr(st.ProjectionStore, "RACE_ATTEMPTS", 1)
    cutoff = st.eligibility_cutoff(settings.voting_day)
    events = event_set(3, voters=60)
    move = next(e for e in events if isinstance(e, VoterMoved))
    rival = next(e for e in events if isinstance(e, VoterRegistered) and e.data.nik == move.data.nik)
    parsed = phases.Parsed({"registrations": [], "movements": [st.movement_row(move.model_dump())],
                            "meetings": []}, 1, 0.0)

    await migrate(settings)
    conn = await asyncpg.connect(settings.database_url)
    rival_store = st.ProjectionStore(conn, settings.db_schema)
    await rival_store.prepare()
    await rival_store.ensure_config(settings.voting_day, settings.tps_capacity)
    try:
        # Another writer inserts the same new voter and keeps its transaction open: the sink's
        # insert waits for it, then finds the voter there that its merge did not see.
        tx = conn.transaction()
        await tx.start()
        await rival_store.apply_registrations([st.registration_row(rival.model_dump(), cutoff)], "rival",
                                              [("rival", 0, 0, 1)])
        sink = asyncio.create_task(phases.sink(settings, parsed, settings.batch_max_records))
        probe = await asyncpg.connect(settings.database_url)
        try:
            for _ in range(300):
                waiting = await probe.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
                    f"%{settings.db_schema}.%")  # the query text is cut at 1 kB: the schema only
                if waiting or sink.done():
                    break
                await asyncio.sleep(0.05)
        finally:
            await probe.close()
        assert waiting, "the sink's insert never waited for the rival's voter"
        await tx.commit()
        result = await asyncio.wait_for(sink, 60)
        assert result.events == 1
        placed = await conn.fetchrow(
            f"SELECT desa_code, tps_number, reg_id FROM {settings.db_schema}.voter WHERE nik = $1", move.data.nik)
        # Both events are stored: the registration's identity, the later of the two placements.
        assert placed["reg_id"] == rival.id
        latest = max((rival, move), key=lambda e: (e.time, e.id))
        tps = latest.data.tps if latest is rival else move.data.to_tps
        assert (placed["desa_code"], placed["tps_number"]) == (tps.desa_code, tps.number)
    finally:
        await conn.execute(f'DROP SCHEMA "{settings.db_schema}" CASCADE')
        await conn.close()

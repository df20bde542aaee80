"""The report service as a process: the recap topic holds the fold's recap of every region, with the
privacy threshold applied (a small TPS's disability figures null)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time

import pytest

from schemas import regions
from schemas.events import VoterMoved, VoterRegistered
from schemas.recap import Recap
from services.common.topics import ensure_topics
from services.projection.fold import Projection
from services.projection.privacy import public_rows
from services.projection.recap import comparable_report, report_json
from tests.conftest import unique_settings
from tests.eventsets import event_set
from tests.support.kafka import produce, read_all
from tests.support.services import ServiceProcess, dphp_json, start_services, wait_converged

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CAPACITY = 3


@pytest.fixture
def settings(stack):
    return unique_settings(stack, tps_capacity=CAPACITY, batch_max_records=200, report_interval_s=0.3)


async def latest_recaps(settings) -> dict[str, Recap]:
    """The latest recap per region code on the recap topic (what compaction keeps)."""
    latest: dict[str, Recap] = {}
    for rec in await read_all(settings, settings.topic_recap, expected=10**9, timeout_ms=1500):
        assert not re.search(rb"[0-9]{16}", rec.value), "a 16-digit number (a NIK?) in a recap"
        recap = Recap.from_json(rec.value)
        assert rec.key == recap.key and recap.name
        latest[recap.region_code] = recap
    return latest


async def wait_for_recaps(settings, events) -> dict[str, Recap]:
    fold = Projection(tps_capacity=CAPACITY)
    fold.apply(events)
    # The recap topic carries the readers' figures: a small TPS's disability figures withheld.
    want = comparable_report(public_rows(report_json(fold.recap()), settings.privacy_min_voters))
    newest = max(e.time for e in events if isinstance(e, (VoterRegistered, VoterMoved)))
    deadline = time.monotonic() + 60
    while True:
        latest = await latest_recaps(settings)
        got = comparable_report([r.model_dump(mode="json") for r in latest.values()])
        if got == want:
            changed_last = max(latest.values(), key=lambda r: r.published_at)
            assert changed_last.as_of == newest
            return latest
        if time.monotonic() > deadline:
            raise AssertionError(f"recap topic differs from the fold: {len(got)} regions, want {len(want)}")
        await asyncio.sleep(0.5)


async def test_recap_topic_follows_the_projection_and_zeroes_emptied_regions(settings, tmp_path):
    await ensure_topics(settings)
    events = event_set(31, voters=300)
    first = next(e for e in events if isinstance(e, VoterRegistered))
    used = {e.data.tps.desa_code[:5] if isinstance(e, VoterRegistered) else e.data.to_tps.desa_code[:5]
            for e in events if isinstance(e, (VoterRegistered, VoterMoved))}
    kabupaten = next(k for k in regions.within("33", "kabupaten") if k not in used)
    elsewhere = regions.within(kabupaten, "desa")[0]  # in a kabupaten where the event set places no one
    doc = first.model_dump(mode="json")
    nik = first.data.nik[:12] + "9999"
    late = max(e.time for e in events) + dt.timedelta(days=1)
    newcomer = VoterRegistered.model_validate_json(json.dumps({
        **doc, "id": "report-newcomer", "subject": nik, "time": late.isoformat(),
        "data": {**doc["data"], "nik": nik, "tps": {"desa_code": elsewhere, "number": 1, "kind": "reguler"}},
    }))
    moved_back = VoterMoved.model_validate_json(json.dumps({
        **doc, "id": "report-moved-back", "type": "id.go.kpu.dphp.voter-moved.v1", "subject": nik,
        "time": (late + dt.timedelta(hours=1)).isoformat(),
        "data": {"nik": nik, "reason": "pindah_domisili", "to_tps": first.data.tps.model_dump()},
    }))
    procs = start_services(settings, tmp_path) + [ServiceProcess(settings, "report", tmp_path).start()]
    try:
        await produce(settings, [*events, newcomer])
        await wait_converged(settings, processes=procs)
        latest = await wait_for_recaps(settings, [*events, newcomer])
        assert latest[elsewhere].total == 1 and latest[kabupaten].level == "kabupaten"
        assert latest["ID"].name == "Indonesia"
        # Null for small TPS only (CONTRACT 5): both kinds are in this set, desa and above exact.
        tps = [r for r in latest.values() if r.level == "tps"]
        assert {r.total < settings.privacy_min_voters for r in tps} == {True, False}
        assert all((r.disabled is None) == (r.total < settings.privacy_min_voters) for r in tps)
        assert all(r.disabled is not None for r in latest.values() if r.level != "tps")
        status = dphp_json(settings, "status")
        assert dt.datetime.fromisoformat(status["recaps_published_at"]) == max(r.published_at for r in latest.values())

        await produce(settings, [moved_back])
        await wait_converged(settings, processes=procs)
        latest = await wait_for_recaps(settings, [*events, newcomer, moved_back])
        # The regions the newcomer left have no voter now: their latest recap is a zero one.
        for code in (elsewhere, elsewhere[:8], kabupaten, f"{elsewhere}/001"):
            assert latest[code].total == 0 and latest[code].male == latest[code].female == 0, code
    finally:
        for p in procs:
            p.stop()
    assert "Traceback" not in procs[-1].output()


async def test_the_recap_topic_applies_the_threshold_the_projection_records(settings, tmp_path):
    """Found by review: the report service applied its own DPHP_PRIVACY_MIN_VOTERS while the
    reader's views apply the one `migrate` last recorded; the topic and the views could disagree."""
    from services.common.db import migrate

    await ensure_topics(settings)
    events = event_set(31, voters=300)
    procs = start_services(settings, tmp_path) + [ServiceProcess(settings, "report", tmp_path).start()]
    try:
        await produce(settings, events)
        await wait_converged(settings, processes=procs)
        await wait_for_recaps(settings, events)  # with the threshold of 10: some TPS withheld
        await migrate(settings.model_copy(update={"privacy_min_voters": 0}))  # another process records 0
        deadline = time.monotonic() + 30
        while True:
            tps = [r for r in (await latest_recaps(settings)).values() if r.level == "tps"]
            if all(r.disabled is not None for r in tps) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert all(r.disabled is not None for r in tps), "the recap topic kept withholding at the old threshold"
    finally:
        for p in procs:
            p.stop()

"""Database restart mid-stream: the services wait, resume, and the final state equals the fold.

The test runs a PostgreSQL server of its own on a free port, so that stopping it never
disturbs the shared database; the broker is the session's.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from schemas.events import MeetingHeld
from services.operations.status import gather_status
from services.common.topics import ensure_topics
from services.devstack import postgres
from tests.conftest import unique_settings
from tests.eventsets import deliveries, event_set
from tests.integration.test_services import CAPACITY, assert_projection_equals, fold_of
from tests.support.kafka import produce, read_all
from tests.support.services import start_services, wait_converged

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

UNAVAILABLE = re.compile(r"PostgreSQL unavailable \(")
REACHABLE = re.compile(r"PostgreSQL reachable again after [0-9.]+ s; resumed")


async def applying(settings, procs, timeout: float = 180) -> dict:
    """Waits until the voter services have stored positions and the meetings service is assigned."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        status = await gather_status(settings)
        stored = {g["group"]: sum(p["stored_position"] for p in g["partitions"]) for g in status["groups"]}
        if (stored[settings.group_id("registrations")] > 0 and stored[settings.group_id("movements")] > 0
                and all("assigned partitions" in p.output() for p in procs)):
            return stored
        await asyncio.sleep(0.3)
    raise AssertionError("the services did not start applying:\n" + "\n".join(p.output()[-2000:] for p in procs))


async def test_database_restart_mid_stream(stack, own_postgres, tmp_path):
    layout = own_postgres
    settings = unique_settings(stack, database_url=layout.url, tps_capacity=CAPACITY, batch_max_records=200)
    await ensure_topics(settings)
    events = event_set(31, voters=3000)
    stream = deliveries(events, 31)
    # Every service must meet the outage: each of the three topics gets records while the
    # database is down (meetings are few, so one is held back for that).
    held_back = next(e for e in stream if isinstance(e, MeetingHeld))
    stream.remove(held_back)
    chunks = [stream[i::6] for i in range(6)]
    chunks[3].append(held_back)

    procs = start_services(settings, tmp_path / "logs")
    try:
        await produce(settings, chunks[0])
        before = await applying(settings, procs)  # up, and batches applied already
        await produce(settings, chunks[1] + chunks[2])
        postgres.stop(layout)  # fast shutdown, while the services have records to apply
        assert not postgres.answers(layout)
        for chunk in chunks[3:5]:
            await produce(settings, chunk)  # the broker takes events meanwhile
            await asyncio.sleep(1.0)
        await asyncio.sleep(3.0)
        for p in procs:
            assert p.proc.poll() is None, f"{p.service} exited during the outage:\n{p.output()[-3000:]}"
        postgres.start(layout, log=lambda line: None)
        await produce(settings, chunks[5])
        after = await wait_converged(settings, timeout=300, processes=procs)
    finally:
        for p in procs:
            p.stop()

    total = {g["group"]: sum(p["end_offset"] for p in g["partitions"]) for g in after["groups"]}
    assert 0 < before[settings.group_id("registrations")] < total[settings.group_id("registrations")]
    assert_projection_equals(settings, fold_of(events))

    for p in procs:
        out = p.output()
        down, up = len(UNAVAILABLE.findall(out)), len(REACHABLE.findall(out))
        # One line per state change, not one per retry.
        assert (down, up) == (1, 1), f"{p.service}: {down} 'unavailable', {up} 'reachable again':\n{out[-4000:]}"
        assert out.index("PostgreSQL unavailable") > out.index("assigned partitions")  # mid-stream, not at start-up
        assert "Traceback" not in out, f"{p.service}:\n{out[-4000:]}"
    dead = await read_all(settings, settings.topic_dead_letter, expected=1, timeout_ms=3000)
    assert dead == []

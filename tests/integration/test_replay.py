"""`dphp replay` against the real broker and database, with the services running meanwhile."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from services.common.deadletter import read_dead_letters
from services.common.errors import OperatorError
from services.common.topics import ensure_topics
from services.projection.replay import replay
from tests.conftest import unique_settings
from tests.eventsets import deliveries, event_set
from tests.integration.test_services import CAPACITY, assert_projection_equals, fold_of
from tests.support.kafka import produce
from tests.support.services import dphp, start_services, wait_converged

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture
def settings(stack):
    return unique_settings(stack, tps_capacity=CAPACITY, batch_max_records=200)


async def test_replay_rebuilds_while_the_services_run_and_they_continue_on_the_rebuild(settings, tmp_path):
    await ensure_topics(settings)
    events = deliveries(event_set(41, voters=400), 41)
    n = len(events)
    before, during, after = events[:n // 2], events[n // 2:3 * n // 4], events[3 * n // 4:]
    await produce(settings, [*before, (settings.topic_registered, b"k", b"{not json")])
    procs = start_services(settings, tmp_path)
    try:
        await wait_converged(settings, processes=procs)

        async def trickle() -> None:  # events keep arriving while the rebuild runs
            for i in range(0, len(during), 20):
                await produce(settings, during[i:i + 20])
                await asyncio.sleep(0.02)

        arriving = asyncio.create_task(trickle())
        result = await replay(settings)
        await arriving
        await produce(settings, after)
        await wait_converged(settings, processes=procs)
        assert all(p.proc.poll() is None for p in procs)
        logs = "\n".join(p.output() for p in procs)
    finally:
        for p in procs:
            p.stop()

    assert result.schema == settings.db_schema and result.replaced
    assert result.invalid == 1  # the poison event: counted, not dead-lettered again
    assert len(await read_dead_letters(settings)) == 1
    assert "replaced by a rebuilt one" in logs  # the services noticed the switch-over
    assert_projection_equals(settings, fold_of(events))

    conn = await asyncpg.connect(settings.database_url)
    try:  # the previous projection is kept, under another name, as it was at the switch-over
        kept = await conn.fetchval(f"SELECT count(*) FROM {result.replaced}.voter")
        assert kept > 0
        await conn.execute(f"DROP SCHEMA {result.replaced} CASCADE")
    finally:
        await conn.close()


async def test_replay_command_line(settings):
    await ensure_topics(settings)
    await produce(settings, event_set(43, voters=30))
    done = dphp(settings, "replay", "--drop-old", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert '"replaced": null' in done.stdout
    assert dphp(settings, "replay", "--help").returncode == 0


async def test_replay_refuses_clearly_without_topics_or_beside_another_replay(settings):
    missing = dphp(settings, "replay")
    assert missing.returncode == 1
    assert "not found on the broker" in missing.stderr and missing.stderr.strip().count("\n") == 0, missing.stderr

    await ensure_topics(settings)
    conn = await asyncpg.connect(settings.database_url)
    try:  # as if another replay of this projection held its lock
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"dphp-replay:{settings.db_schema}")
        with pytest.raises(OperatorError, match="another dphp replay"):
            await replay(settings)
    finally:
        await conn.close()


async def test_services_behind_the_rebuild_dead_letter_what_they_pass_over_once(settings, tmp_path):
    # The rebuild sends no dead letters. Services that were behind it (here: stopped) continue from
    # its positions and send those of the invalid records they pass over; each is in the topic once.
    await ensure_topics(settings)
    applied_before = event_set(43, voters=40)
    rebuilt_only = event_set(44, voters=40)
    poison = {(settings.topic_registered, b"{not json"), (settings.topic_registered, b"{before"),
              (settings.topic_moved, b"[]"), (settings.topic_meetings, b'{"type": 1}')}
    await produce(settings, [*applied_before, (settings.topic_registered, b"k0", b"{before")])
    procs = start_services(settings, tmp_path / "first")
    try:
        await wait_converged(settings, processes=procs)
    finally:
        for p in procs:
            p.stop()
    assert len(await read_dead_letters(settings)) == 1

    await produce(settings, [*rebuilt_only, (settings.topic_registered, b"k1", b"{not json"),
                             (settings.topic_moved, b"k2", b"[]"), (settings.topic_meetings, b"k3", b'{"type": 1}')])
    for run in ("second", "third"):  # the second replay finds every dead letter sent already
        result = await replay(settings, keep_old=False)
        assert result.invalid == 4
        procs = start_services(settings, tmp_path / run)
        try:
            await wait_converged(settings, processes=procs)  # at once: the rebuild stored the positions
            letters = await _dead_letters_when(settings, lambda found: len(found) >= len(poison))
            await asyncio.sleep(2)  # and no more come
            letters = await read_dead_letters(settings)
        finally:
            for p in procs:
                p.stop()
        assert sorted((d.original_topic, d.value) for d in letters) == sorted(poison), run
    assert_projection_equals(settings, fold_of([*applied_before, *rebuilt_only]))


async def _dead_letters_when(settings, done, timeout: float = 60):
    """The dead letters once `done(them)`, or when `timeout` has passed."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await read_dead_letters(settings)
        if done(found) or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.5)

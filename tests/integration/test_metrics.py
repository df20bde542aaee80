"""Issue #13: every service's /metrics and /health/*, read as Prometheus and a probe read them.

The services run as processes with `DPHP_HTTP_PORT=0` and an address file each (as `dphp dev up`
runs them), looking every second (`DPHP_METRICS_INTERVAL_S=1`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest

from schemas.events import MeetingHeld, VoterMoved, VoterRegistered
from services.common.topics import ensure_topics
from services.devstack import postgres
from tests.conftest import unique_settings
from tests.eventsets import event_set
from tests.support.http import eventually, get, named, ready, samples, wait_address
from tests.support.kafka import produce
from tests.support.services import ServiceProcess, dphp, wait_converged

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SERVICES = ("registrations", "movements", "meetings", "report")


def start(settings, tmp_path, names=SERVICES) -> dict[str, tuple[ServiceProcess, str]]:
    """The services as processes; each one's HTTP address."""
    procs = {}
    for name in names:
        own = settings.model_copy(update={"http_address_file": tmp_path / f"{name}.http"})
        procs[name] = ServiceProcess(own, name, tmp_path).start()
    try:
        return {name: (p, wait_address(tmp_path / f"{name}.http", process=p)) for name, p in procs.items()}
    except BaseException:
        for p in procs.values():
            p.stop()
        raise


def stop(procs) -> None:
    for p, _ in procs.values():
        p.stop()


def lag_of(metrics: dict, group: str) -> dict[int, float]:
    return {int(dict(labels)["partition"]): v for labels, v in named(metrics, "dphp_consumer_lag_records").items()
            if dict(labels)["group"] == group}


async def test_metrics_show_lag_applied_and_dead_letters(stack, tmp_path):
    settings = unique_settings(stack, metrics_interval_s=1.0, batch_max_records=200)
    await ensure_topics(settings)
    procs = start(settings, tmp_path)
    try:
        address = {name: a for name, (_, a) in procs.items()}
        for name in SERVICES:
            await eventually(lambda name=name: ready(address[name])[0], 60, f"{name} ready")
        assert (await asyncio.to_thread(ready, address["registrations"]))[1] == {"status": "ready", "reasons": []}

        events = event_set(41, voters=300)  # every event once: applied counts each
        bad = [(settings.topic_registered, b"k1", b"{not json"), (settings.topic_registered, b"k2", b"[1, 2"),
               (settings.topic_moved, b"k3", json.dumps({"specversion": "1.0"}).encode())]
        await produce(settings, [*events, *bad])
        await wait_converged(settings, processes=[p for p, _ in procs.values()])

        kinds = {"registrations": VoterRegistered, "movements": VoterMoved, "meetings": MeetingHeld}
        newest = max(e.time for e in events if not isinstance(e, MeetingHeld)).timestamp()

        def looked_after_convergence(m) -> bool:
            # A look reads the positions, then the newest event: a look that shows the newest
            # event was made after every voter event was stored (lag 0 alone may be a look made
            # before the events were produced, as CI once caught).
            return named(m, "dphp_newest_event_timestamp_seconds") == {(): newest}

        for service, kind in kinds.items():
            group = settings.group_id(service)
            m = await eventually(
                lambda: (m := samples(address[service])) and looked_after_convergence(m)
                and set(lag_of(m, group).values()) == {0.0} and m,
                30, f"{service}: a look after convergence, lag 0 on every partition")
            expected = 6 if service != "meetings" else 1
            assert sorted(lag_of(m, group)) == list(range(expected))
            applied = named(m, "dphp_events_applied_total")
            assert applied == {(("service", service),): sum(isinstance(e, kind) for e in events)}
            assert named(m, "dphp_database_up") == {(): 1.0} and named(m, "dphp_kafka_up") == {(): 1.0}
            assert named(m, "dphp_batch_store_seconds_count")[(("service", service),)] >= 1
            assert any(n.startswith("faststream_received_messages_total") for n, _ in m)
        reg = samples(address["registrations"])
        assert named(reg, "dphp_dead_letters_total") == {
            (("error_class", "malformed"), ("service", "registrations")): 2.0}
        assert named(samples(address["movements"]), "dphp_dead_letters_total") == {
            (("error_class", "unknown_type"), ("service", "movements")): 1.0}
        assert named(reg, "dphp_newest_event_timestamp_seconds") == {(): newest}

        # The report service: the lag of all three groups, the recaps it published.
        report = await eventually(
            lambda: (m := samples(address["report"])) and named(m, "dphp_recaps_published_total").get((), 0) > 0 and m,
            30, "recaps published")
        for service in kinds:
            assert set(lag_of(report, settings.group_id(service)).values()) == {0.0}
        assert named(report, "dphp_recap_look_seconds_count")[()] >= 1
        # No NIK in any label or value of any service.
        niks = {e.data.nik for e in events if not isinstance(e, MeetingHeld)}
        for name in SERVICES:
            text = (await asyncio.to_thread(get, f"{address[name]}/metrics"))[1].decode()
            assert not any(nik in text for nik in niks)
        live = await asyncio.to_thread(get, f"{address['meetings']}/health/live")
        assert live[0] == 200
    finally:
        stop(procs)


async def test_not_ready_within_10_s_of_the_database_stopping_and_ready_again(stack, own_postgres, tmp_path):
    layout = own_postgres
    settings = unique_settings(stack, database_url=layout.url, metrics_interval_s=1.0)
    await ensure_topics(settings)
    procs = start(settings, tmp_path, names=("registrations", "report"))
    try:
        address = {name: a for name, (_, a) in procs.items()}
        for name in address:
            await eventually(lambda name=name: ready(address[name])[0], 60, f"{name} ready")
        await asyncio.to_thread(postgres.stop, layout)
        loop = asyncio.get_running_loop()
        stopped_at = loop.time()
        for name in address:
            body = await eventually(lambda name=name: (r := ready(address[name])) and not r[0] and r[1], 10,
                                    f"{name} not ready")
            assert body["status"] == "not ready" and any("database" in r for r in body["reasons"]), body
        assert loop.time() - stopped_at <= 10
        m = samples(address["registrations"])
        assert named(m, "dphp_database_up") == {(): 0.0}
        await asyncio.to_thread(postgres.start, layout, lambda line: None)
        for name in address:
            await eventually(lambda name=name: ready(address[name])[0], 60, f"{name} ready again")
        assert named(samples(address["registrations"]), "dphp_database_up") == {(): 1.0}
    finally:
        stop(procs)


async def test_a_frozen_service_shows_as_stalled_and_status_fails_on_lag(stack, tmp_path):
    settings = unique_settings(stack, metrics_interval_s=1.0, stall_after_s=3.0)
    await ensure_topics(settings)
    procs = start(settings, tmp_path)
    movements = procs["movements"][0]
    try:
        address = {name: a for name, (_, a) in procs.items()}
        for name in SERVICES:
            await eventually(lambda name=name: ready(address[name])[0], 60, f"{name} ready")
        assert dphp(settings, "status", "--fail-on-lag", "0").returncode == 0
        os.kill(movements.proc.pid, signal.SIGSTOP)
        events = event_set(42, voters=100)
        await produce(settings, events)
        moves = sum(isinstance(e, VoterMoved) for e in events)
        group = settings.group_id("movements")

        def stalled():
            m = samples(address["report"])
            lag = sum(lag_of(m, group).values())
            seconds = {dict(k)["partition"]: v for k, v in named(m, "dphp_consumer_stalled_seconds").items()
                       if dict(k)["group"] == group and lag_of(m, group)[int(dict(k)["partition"])] > 0}
            return lag == moves and seconds and min(seconds.values()) >= settings.stall_after_s and m

        m = await eventually(stalled, 60, "the movements group stalled, seen by the report service")
        # The other groups converged meanwhile: only the frozen one lags.
        assert set(lag_of(m, settings.group_id("registrations")).values()) == {0.0}
        result = dphp(settings, "status", "--fail-on-lag", "0")
        assert result.returncode == 3, result.stderr
        assert group in result.stderr and result.stderr.strip().count("\n") == 0
        assert dphp(settings, "status", "--fail-on-lag", str(moves)).returncode == 0
    finally:
        if movements.proc.poll() is None:
            os.kill(movements.proc.pid, signal.SIGCONT)
        stop(procs)

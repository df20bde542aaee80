"""The fault campaign's scenarios and one run of a scenario.

Sizes come from the environment:
  DPHP_FAULTS_SHORT=1       the CI version: one repetition, DPHP_FAULTS_EVENTS defaults to 30,000,
                            the scenarios marked short
  DPHP_FAULTS_EVENTS        records published a run (default 300,000)
  DPHP_FAULTS_REPS          repetitions of each scenario (default 2; short: 1)
  DPHP_FAULTS_SEED          seed of the event set and of the faults' moments (default 10)
  DPHP_FAULTS_BATCH         the services' batch size (default 2000: many transactions a run)
  DPHP_FAULTS_REPORT        where the table is written (default out/faults.md)

A run: fresh topics, consumer groups and schema on the campaign's own stack; half the records
published before the services start (catch-up), the other half published at a steady rate while
they run (live traffic); the scenario's faults at seeded random moments during the catch-up and
during the live traffic; then every group converged (`dphp status`), the projection compared with
the pure fold at every level and the meetings, and the dead-letter topic with the invalid records.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from services.common.db import migrate
from services.common.topics import delete_topics, ensure_topics
from tests.faults.eventset import CampaignEvents
from tests.faults.harness import (SERVICES, Chaos, Fleet, Outcome, OwnStack, Publisher, SmallDisk,
                                  compare_dead_letters, compare_projection, run_settings, wait_converged)

SHORT = os.environ.get("DPHP_FAULTS_SHORT", "") not in ("", "0")
EVENTS = int(os.environ.get("DPHP_FAULTS_EVENTS", 30_000 if SHORT else 300_000))
REPS = int(os.environ.get("DPHP_FAULTS_REPS", 1 if SHORT else 2))
SEED = int(os.environ.get("DPHP_FAULTS_SEED", 10))
BATCH = int(os.environ.get("DPHP_FAULTS_BATCH", 2000))
REPORT = os.environ.get("DPHP_FAULTS_REPORT", str(Path(__file__).resolve().parents[2] / "out" / "faults.md"))
TPS_CAPACITY = 500  # below the sample's largest TPS after moves: over-capacity TPS occur
CATCHUP_RATE = 20_000  # records/s the services catch up at, roughly: where catch-up faults fall
LIVE_RATE = 10_000 if not SHORT else 5_000  # records/s of the live traffic
CONVERGE_TIMEOUT_S = 300 if not SHORT else 150

DEFINITIONS = """\
Columns: *events* = records published in the run (valid, ~5% duplicates, ~0.1% invalid);
*lost* = sum over every TPS of max(fold - projection, 0) of its registered voters (`total` +
`under_age`); *double-counted* = sum over every TPS of max(projection - fold, 0) of the same;
*cells off* = (region, field) cells that differ from the fold at any level (tps ... nasional,
every recap field); *meetings off* = meetings whose view (declared, computed, discrepancy, ...)
differs from the fold's; *dead letters* = invalid records in the input topics (by topic,
partition, offset) / of them without a dead letter / dead letters that are not one of them or
repeat one; *s to recover* = from the end of the last fault and of publishing until every group
converged in `dphp status`. A run passes with 0 lost, 0 double-counted, 0 cells and meetings off
and exact dead letters. Services that exit on their own are restarted by the harness's supervisor
(as systemd or Kubernetes would) and counted in the notes."""


@dataclass(frozen=True)
class Scenario:
    name: str
    catchup: tuple[str, ...]
    live: tuple[str, ...]
    instances: int = 1
    short: bool = False
    back_to_back: bool = False  # live faults one right after the other (replay's window)
    disk_mb: int = 0
    cluster: bool = False  # on the three-broker KRaft cluster (replication 3, min.insync.replicas 2)


SCENARIOS = (
    Scenario("pg-sigquit", ("pg-sigquit",), ("pg-sigquit", "pg-sigquit"), short=True),
    Scenario("pg-backend-kill", ("pg-backend-kill",), ("pg-backend-kill", "pg-backend-kill"), short=True),
    Scenario("broker-kill", ("broker-kill",), ("broker-kill",), short=True),
    Scenario("service-kill", ("service-kill", "service-kill"), ("service-kill", "service-kill"), short=True),
    Scenario("service-freeze", ("service-freeze",), ("service-freeze",), instances=2, short=True),
    Scenario("instances-churn", ("instance-add", "instance-add"),
             ("instance-remove", "instance-add", "instance-remove", "instance-remove"), short=True),
    Scenario("replay-under-faults", (), ("replay-start", "service-kill", "broker-kill", "pg-backend-kill",
                                         "replay-wait"), back_to_back=True),
    Scenario("disk-full", ("disk-fill",), ("disk-fill",), disk_mb=2048, short=True),
    Scenario("leader-kill-3-brokers", ("leader-kill",), ("leader-kill", "leader-kill"), cluster=True, short=True),
)


def selected() -> list[tuple[Scenario, int]]:
    return [(s, rep) for s in SCENARIOS if s.short or not SHORT for rep in range(1, REPS + 1)]


async def run(stack: OwnStack, ce: CampaignEvents, sc: Scenario, rep: int, log_dir: Path,
              cluster=None) -> Outcome:
    started = time.monotonic()
    rnd = random.Random(zlib.crc32(f"{SEED}:{sc.name}:{rep}".encode()))
    extra = dict(kafka_bootstrap=cluster.bootstrap, kafka_brokers=len(cluster.node_ids)) if cluster else {}
    settings = run_settings(stack, ce.tps_capacity, batch_max_records=BATCH, **extra)
    await ensure_topics(settings)
    if cluster is not None:  # the input topics must be replicated three times, two in sync at least
        state = await cluster.partition_state(settings.topic_registered, 0)
        assert state is not None and len(state.replicas) == 3, state
    disk = None
    if sc.disk_mb:
        disk = await SmallDisk(stack, sc.disk_mb).__aenter__()
        await migrate(settings)  # the tables in the small tablespace
    records = ce.deliveries
    half = len(records) // 2
    publisher = Publisher(settings)
    fleet = Fleet(settings, log_dir)
    chaos = Chaos(stack, fleet, rnd, tablespace_dir=disk.location if disk else None, cluster=cluster)
    outcome = Outcome(sc.name, rep, len(records), chaos.injected, converged=False, recover_s=None)
    try:
        await publisher.send(records[:half])  # the backlog the services catch up on
        with fleet:
            t0 = time.monotonic()
            for service in SERVICES:
                for _ in range(sc.instances):
                    fleet.start(service)
            catchup_s = max(3.0, half / CATCHUP_RATE)
            live_s = (len(records) - half) / LIVE_RATE
            # The services need about 3 s to start: catch-up faults fall after that.
            catchup_s += 3.0
            moments = [t0 + m for m in sorted(rnd.uniform(3.0, catchup_s) for _ in sc.catchup)]
            if sc.back_to_back:
                first = t0 + catchup_s + rnd.uniform(0, live_s / 3)
                moments += [first + i * rnd.uniform(0.5, 2.0) for i in range(len(sc.live))]
            else:
                moments += [t0 + catchup_s + m for m in sorted(rnd.uniform(0, live_s) for _ in sc.live)]
            published_at = [0.0]

            async def faults() -> None:
                names = sc.catchup + sc.live
                for i, (name, at) in enumerate(zip(names, moments)):
                    await asyncio.sleep(max(0.0, at - time.monotonic()))
                    chaos.last = i == len(names) - 1
                    await chaos.run(name)

            async def live() -> None:
                await asyncio.sleep(catchup_s)
                await publisher.send(records[half:], rate=LIVE_RATE)
                published_at[0] = time.monotonic()
                chaos.published.set()

            await asyncio.gather(faults(), live())
            quiet_from = max(published_at[0], chaos.last_fault_end)
            outcome.converged, status = await wait_converged(settings, fleet, CONVERGE_TIMEOUT_S)
            outcome.recover_s = time.monotonic() - quiet_from if outcome.converged else None
            if not outcome.converged:
                outcome.notes.append(f"last status: {str(status)[:300]}")
            outcome.supervisor_restarts = fleet.supervisor_restarts
            outcome.service_errors = fleet.error_lines()
            outcome.publisher_resends = publisher.resends
            outcome.notes.extend(chaos.notes)
            try:
                await asyncio.to_thread(compare_projection, settings, ce, outcome)
            except AssertionError as exc:  # `dphp report` failed: the projection is unreadable
                outcome.notes.append(f"report failed: {str(exc)[:200]}")
                outcome.cells_off = -1
            await compare_dead_letters(settings, ce, outcome)
            if not outcome.ok:
                (log_dir / "services-tail.log").write_text(fleet.outputs(4000))
    finally:
        await publisher.close()
        if chaos.replay is not None and chaos.replay.poll() is None:
            chaos.replay.kill()
        await cleanup(stack, settings, disk)
        outcome.seconds = time.monotonic() - started
    return outcome


async def cleanup(stack: OwnStack, settings, disk: SmallDisk | None) -> None:
    """Drops the run's schema(s) and topics so that runs do not pile up on the campaign's stack."""
    try:
        if disk is not None:
            await disk.release(settings.db_schema)
        conn = await asyncpg.connect(stack.admin_url)
        try:
            schemas = await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1",
                                       settings.db_schema + "%")
            for row in schemas:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{row["nspname"]}" CASCADE')
        finally:
            await conn.close()
        await delete_topics(settings, [settings.topic_registered, settings.topic_moved, settings.topic_meetings,
                                       settings.topic_dead_letter, settings.topic_recap])
    except Exception as exc:  # pragma: no cover - best effort
        print(f"cleanup: {exc!r}", flush=True)

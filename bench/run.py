"""`python -m bench.run [--events N]` (`make bench [EVENTS=N]`): how fast DPHP projects a sample.

One run, on one data set, against the running Kafka broker and PostgreSQL (Settings from the
environment), with its own topics, consumer groups and schemas (removed afterwards):

1. generate a Blora sample (default full size: 700,000 voters, about 715,000 events) and publish it
   with `dphp publish`'s code path (publish rate);
2. e2e/sink, measured in `--pairs` pairs (default 3) of the two phases below, back to back, the
   order alternating (catch-up first in the odd pairs); before each phase the machine settles
   (`phases.settle`: the kernel's dirty pages written, the table an earlier phase filled
   vacuumed, CHECKPOINT). The shared machine's speed drifts by tens of percent within a minute,
   so a single pair's ratio is noisy: the figure is the median pair's.
   - catch-up: start the three projection services as processes on their own consumer groups
     and schema; time from the first fetched batch (the services' log line "resuming partitions",
     ms resolution) to convergence (stored positions at the end offsets, confirmed by
     `gather_status`): end-to-end events/s; start-up (launch to first fetch) apart; peak RSS and
     CPU seconds of each service (psutil). The last pair's services stay for the phases below;
   - sink: the same events parsed beforehand, untimed, applied through ProjectionStore as the
     services store them (batches of `batch_max_records`, each over `db_lanes` connections, the
     three event types concurrently);
3. publish-to-visible latency at a steady rate (default 2,000 events/s for 20 s) with the services
   running: each send stamped, the projection's history polled for each event's row; then
   `dphp replay`'s rebuild with the services running, and with the services stopped the naive
   baseline (a minimal FastStream subscriber, one message and one transaction at a time) over a
   subset of registrations;
4. a table, a record appended to docs/benchmarks.md, and as the last line of stdout
   `e2e=... sink=... naive=... e2e/sink=... e2e/naive=... rss_max_mb=...`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from bench import phases
from bench.procs import (SERVICES, Sampler, ServiceProcess, cpu_delta, listener_pid, machine_busy_pct, postgres_cpu,
                         process_cpu)
from schemas.events import TYPE_MEETING_HELD, TYPE_VOTER_MOVED, TYPE_VOTER_REGISTERED
from services.common.logs import setup_logging
from services.common.settings import Settings
from services.projection import store as st

log = logging.getLogger("bench")
ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
REGION = "33.16"  # Kabupaten Blora
FULL_VOTERS = 700_000
# A Blora sample has about 1.0216 events per voter (corrections, moves) plus 314 meeting events.
EVENTS_PER_VOTER = 1.0216
MEETING_EVENTS = 314
RECAP_KEYS = ("male", "female", "total", "tps_count", "tps_loksus_count", "new_voters", "disabled",
              "under_age", "over_capacity_tps")


def ratio(a: float, b: float) -> float:
    """a/b, NaN when b was not measured."""
    return a / b if b else float("nan")


def pair_settings(s: Settings, k: int) -> tuple[Settings, Settings]:
    """The catch-up's and the sink's settings of pair `k` before the last (own groups and schemas)."""
    return (s.model_copy(update={"group_prefix": f"{s.group_prefix}p{k}", "db_schema": f"{s.db_schema}_p{k}"}),
            s.model_copy(update={"db_schema": f"{s.db_schema}_sink{k}"}))


def voters_for(events: int | None) -> int:
    if events is None:
        return FULL_VOTERS
    return max(100, round((events - MEETING_EVENTS) / EVENTS_PER_VOTER))


def bench_settings(base: Settings, uid: str) -> Settings:
    """Like the tests' unique_settings: topics, groups and schema of this run alone."""
    values = base.model_dump()
    values.update(
        topic_registered=f"bench{uid}.voter-registered", topic_moved=f"bench{uid}.voter-moved",
        topic_meetings=f"bench{uid}.meeting-held", topic_dead_letter=f"bench{uid}.dead-letter",
        topic_recap=f"bench{uid}.recap", group_prefix=f"bench{uid}", db_schema=f"bench_{uid}",
    )
    return Settings(**values)


@dataclass
class ServiceFigures:
    service: str
    startup_s: float | None = None  # launch -> first fetched batch
    done_s: float | None = None  # first fetched (any service) -> this service's positions at the end
    rss_peak_mb: float = 0.0  # whole life (catch-up and latency phase)
    rss_peak_catchup_mb: float = 0.0
    cpu_s: float = 0.0  # user + system at convergence


@dataclass
class Pair:
    """One catch-up and one sink measured back to back, `catchup_first` or the other way round."""

    number: int
    catchup_first: bool
    e2e: float = 0.0
    sink: float = 0.0
    busy_pct: float = 0.0  # the machine during the catch-up
    sink_busy_pct: float = 0.0
    catchup_cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds: services, PostgreSQL, Kafka
    sink_cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds: PostgreSQL, the sink's process
    rss_max_mb: float = 0.0  # the services during the catch-up
    settle_s: dict[str, float | None] = field(default_factory=dict)  # before each phase; None: no CHECKPOINT

    @property
    def ratio(self) -> float:
        return ratio(self.e2e, self.sink)


@dataclass
class Figures:
    started: dt.datetime
    command: str
    voters: int = 0
    events: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    sample_mb: float = 0.0
    generate_s: float = 0.0
    publish_s: float = 0.0
    publish_rate: float = 0.0
    batch_max_records: int = 0
    batch_timeout_ms: int = 0
    db_lanes: int = 0
    latency_sent: int = 0
    replay_events: int = 0
    replay_s: float = 0.0
    registrations_instances: int = 1
    instances: int = 1  # processes of every projection service (bench.scale --instances)
    startup_s: float = 0.0
    catchup_s: float = 0.0
    e2e: float = 0.0
    services: list[ServiceFigures] = field(default_factory=list)
    pg_cpu_s: float = 0.0
    services_cpu_window_s: float = 0.0
    kafka_cpu_s: float | None = None
    machine_busy_pct: float = 0.0
    latency: phases.LatencyResult | None = None
    parse_us: float = 0.0
    sink: phases.SinkResult | None = None
    naive: phases.NaiveResult | None = None
    pairs: list[Pair] = field(default_factory=list)  # e2e/sink, measured pair by pair; the last is `e2e`, `sink`
    warm_up: phases.WarmUp | None = None  # before the pairs, untimed
    recap_check: str = ""
    profile_md: str = ""
    load_at_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    machine: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    note: str = ""

    @property
    def rss_max_mb(self) -> float:
        return max([s.rss_peak_mb for s in self.services] + [p.rss_max_mb for p in self.pairs], default=0.0)

    @property
    def median_pair(self) -> Pair | None:
        """The pair whose e2e/sink is the median of the pairs' (the lower middle one of an even number)."""
        if not self.pairs:
            return None
        ranked = sorted(self.pairs, key=lambda p: p.ratio)
        return ranked[(len(ranked) - 1) // 2]


# --- helpers ------------------------------------------------------------------------------------------

def mb(n: float) -> float:
    return n / (1024 * 1024)


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": psutil.cpu_count(logical=True), "physical_cores": psutil.cpu_count(logical=False),
            "memory_gb": round(psutil.virtual_memory().total / 1024 ** 3, 1), "cpu": model or platform.processor(),
            "os": f"{platform.system()} {platform.release()}"}


async def versions(settings: Settings) -> dict[str, str]:
    conn = await asyncpg.connect(settings.database_dsn, timeout=10)
    try:
        pg = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return {"python": platform.python_version(), "kafka": Settings().kafka_version, "postgres": pg,
            "faststream": version("faststream"), "aiokafka": version("aiokafka"), "asyncpg": version("asyncpg"),
            "pydantic": version("pydantic")}


async def end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    from aiokafka import TopicPartition

    from services.common.kafka import kafka_consumer

    consumer = kafka_consumer(settings)
    await consumer.start()
    try:
        tps = []
        for topic in (settings.topic_registered, settings.topic_moved, settings.topic_meetings):
            parts = None
            for _ in range(50):
                parts = consumer.partitions_for_topic(topic)
                if parts:
                    break
                consumer._client.add_topic(topic)
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.1)
            tps += [TopicPartition(topic, p) for p in sorted(parts or ())]
        ends = await consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): o for tp, o in ends.items()}
    finally:
        await consumer.stop()


async def stored_positions(conn: asyncpg.Connection, schema: str) -> dict[tuple[str, str, int], int]:
    try:
        rows = await conn.fetch(f"SELECT group_id, topic, partition, next_offset FROM {schema}.consumer_position")
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return {}
    return {(r["group_id"], r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def delete_groups(settings: Settings, groups: list[str]) -> None:
    """Best effort: aiokafka's admin client has no delete_consumer_groups, so send DeleteGroups."""
    from aiokafka.protocol.admin import DeleteGroupsRequest

    from services.common.kafka import kafka_admin

    admin = kafka_admin(settings)
    await admin.start()
    try:
        for g in groups:
            try:
                node = await admin.find_coordinator(g)
                await admin._send_request_to_node(node, DeleteGroupsRequest([g]))
            except Exception as exc:  # noqa: BLE001 - cleanup is best effort
                log.debug("could not delete group %s: %s", g, exc)
    finally:
        await admin.close()


async def drop_schema(s: Settings, schema: str) -> None:
    conn = await asyncpg.connect(s.database_dsn, timeout=10)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


async def drop_consumers(s: Settings) -> None:
    """Removes what the services of a run leave behind: their consumer groups and the schema."""
    await delete_groups(s, [s.group_id(svc) for svc in SERVICES])
    await drop_schema(s, s.db_schema)


# --- phases ---------------------------------------------------------------------------------------------

class _CatchUp:
    """What the wait for convergence observed."""

    def __init__(self) -> None:
        self.first_fetch: float | None = None
        self.cpu_at_first = None
        self.pg_at_first: dict[int, float] = {}
        self.kafka_pid: int | None = None
        self.kafka_at_first: float | None = None
        self.services_at_first = 0.0
        self.done_at: dict[str, float] = {}
        self.converged_at: float = 0.0
        self.spy = None


async def _wait_converged(s: Settings, procs: list[ServiceProcess], ends: dict[tuple[str, int], int],
                          timeout: float, profile_out: Path | None, obs: _CatchUp) -> None:
    from services.operations.status import gather_status
    from services.projection.consumer import KINDS

    topic_of = {svc: KINDS[svc].topic(s) for svc in SERVICES}
    launched = min(p.launched_at for p in procs)
    conn = await asyncpg.connect(s.database_dsn, timeout=10)
    try:
        while True:
            now = time.time()
            if now - launched > timeout:
                raise RuntimeError(f"not converged after {timeout:.0f} s:\n" +
                                   "\n".join(p.tail(1500) for p in procs))
            for p in procs:
                if not p.alive():
                    raise RuntimeError(f"{p.name} exited with {p.popen.returncode}:\n{p.tail()}")
            if obs.first_fetch is None:
                seen = [t for t in (p.first_batch_at() for p in procs) if t is not None]
                if seen:
                    obs.first_fetch = min(seen)
                    obs.cpu_at_first, obs.pg_at_first = psutil.cpu_times(), postgres_cpu()
                    obs.kafka_at_first = process_cpu(obs.kafka_pid)
                    obs.services_at_first = sum(process_cpu(p.pid) or 0.0 for p in procs)
                    if profile_out is not None:
                        from bench.profile import Spy

                        obs.spy = Spy(procs[0].pid, profile_out).start()
            positions = await stored_positions(conn, s.db_schema)
            for svc in SERVICES:
                if svc in obs.done_at:
                    continue
                group, topic = s.group_id(svc), topic_of[svc]
                if all(positions.get((group, topic, p), 0) >= end for (t, p), end in ends.items() if t == topic):
                    obs.done_at[svc] = now
            if len(obs.done_at) == len(SERVICES) and obs.first_fetch is not None:
                obs.converged_at = max(obs.done_at.values())
                if (await gather_status(s))["converged"]:
                    return
                obs.done_at.clear()  # not converged after all (should not happen): keep polling
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def catch_up(s: Settings, fig: Figures, ends: dict[tuple[str, int], int], log_dir: Path,
                   profile_out: Path | None) -> tuple[list[ServiceProcess], Sampler, Any]:
    """Starts the services and waits until they converge; fills the catch-up figures.

    Returns the running services (stopped by the caller), their sampler and the profiler."""
    procs = [ServiceProcess(svc, s, log_dir, instance=i + 1)
             for svc in SERVICES
             for i in range(max(fig.instances, fig.registrations_instances if svc == "registrations" else 1))]
    for p in procs:
        p.start()
    launched = min(p.launched_at for p in procs)
    sampler = Sampler(procs).start()
    obs = _CatchUp()
    obs.kafka_pid = listener_pid(s.kafka_port)
    try:
        await _wait_converged(s, procs, ends, 300 + fig.events / 1000, profile_out, obs)
        sampler.sample()
        cpu_end, pg_end, kafka_end = psutil.cpu_times(), postgres_cpu(), process_cpu(obs.kafka_pid)
        if obs.spy is not None:
            obs.spy.stop()
    except BaseException:
        sampler.stop()
        for p in procs:
            p.stop()
        if obs.spy is not None:
            obs.spy.stop()
        raise
    first_fetch, converged_at, done_at = obs.first_fetch, obs.converged_at, obs.done_at
    cpu_at_first, pg_at_first = obs.cpu_at_first, obs.pg_at_first
    window = converged_at - first_fetch
    fig.machine_busy_pct = machine_busy_pct(cpu_at_first, cpu_end)
    fig.pg_cpu_s = cpu_delta(pg_at_first, pg_end)
    fig.services_cpu_window_s = sum(p.usage.cpu_seconds for p in procs) - obs.services_at_first
    if kafka_end is not None and obs.kafka_at_first is not None:
        fig.kafka_cpu_s = kafka_end - obs.kafka_at_first
    fig.startup_s = first_fetch - launched
    fig.catchup_s = window
    fig.e2e = fig.events / window if window > 0 else 0.0
    for p in procs:
        first = p.first_batch_at()
        fig.services.append(ServiceFigures(
            p.name,
            startup_s=(first - p.launched_at) if first else None,
            done_s=done_at[p.service] - first_fetch,
            rss_peak_catchup_mb=mb(p.usage.rss_peak), cpu_s=p.usage.cpu_seconds))
    return procs, sampler, obs.spy


def latency_lines(n: int, seed: int) -> list[bytes]:
    from services.sample import generate

    marker = b'"type":"' + TYPE_VOTER_REGISTERED.encode() + b'"'
    lines = []
    for line in generate(REGION, n + 500, seed):
        if marker in line:
            lines.append(line.rstrip(b"\n"))
            if len(lines) >= n:
                break
    return lines


def registration_lines(path: Path, n: int) -> list[bytes]:
    marker = b'"type":"' + TYPE_VOTER_REGISTERED.encode() + b'"'
    out = []
    with open(path, "rb") as f:
        for line in f:
            if marker in line:
                out.append(line.rstrip(b"\r\n"))
                if len(out) >= n:
                    break
    return out


def compare_recaps(stats, services_recap, sink_recap) -> str:
    want = {k: getattr(stats, k) for k in RECAP_KEYS}
    got = {name: ({k: r[k] for k in RECAP_KEYS} if r else None)
           for name, r in (("services", services_recap), ("sink", sink_recap))}
    bad = [name for name, r in got.items() if r != want]
    if not bad:
        return f"services = sink = sample's own recap (kabupaten {REGION}: total {want['total']:,})"
    return "MISMATCH: " + "; ".join(f"{name} {got[name]} != sample {want}" for name in bad)


# --- the run ----------------------------------------------------------------------------------------------

async def run(args: argparse.Namespace, fig: Figures) -> None:
    from services.operations.publishing import publish
    from services.common.topics import delete_topics, ensure_topics
    from services.sample import write_sample

    base = Settings()
    uid = uuid.uuid4().hex[:10]
    s = bench_settings(base, uid)
    sink_s = s.model_copy(update={"db_schema": f"{s.db_schema}_sink"})
    naive_s = s.model_copy(update={"db_schema": f"{s.db_schema}_naive"})
    naive_topic, naive_group = f"bench{uid}.naive-registered", f"bench{uid}.naive"
    fig.batch_max_records, fig.batch_timeout_ms, fig.db_lanes = s.batch_max_records, s.batch_timeout_ms, s.db_lanes
    fig.registrations_instances = args.registrations_instances
    fig.versions = await versions(s)
    tmp = Path(tempfile.mkdtemp(prefix="dphp-bench-"))
    procs: list[ServiceProcess] = []
    sampler = None
    spy = None
    sample = tmp / "sample.jsonl"
    step = lambda msg: print(f"[bench] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        # 1. the sample and its publication
        fig.voters = voters_for(args.events)
        step(f"generating a {REGION} sample of {fig.voters:,} voters (seed {args.seed}) in {tmp}")
        stats = write_sample(REGION, fig.voters, args.seed, sample)
        fig.events, fig.sample_mb, fig.generate_s = stats.events, mb(stats.bytes), stats.seconds
        fig.by_type = dict(stats.by_type)
        step(f"{stats.events:,} events ({fig.sample_mb:.0f} MB) in {stats.seconds:.1f} s; publishing to bench{uid}.*")
        await ensure_topics(s)
        pub = await publish(s, [sample])
        if pub.rejected or pub.accepted != stats.events:
            raise RuntimeError(f"publish accepted {pub.accepted} of {stats.events}; rejected {pub.rejected[:3]}")
        fig.publish_s, fig.publish_rate = pub.seconds, pub.accepted / pub.seconds
        ends = await end_offsets(s)
        if sum(ends.values()) != stats.events:
            raise RuntimeError(f"end offsets sum to {sum(ends.values())}, published {stats.events}")
        step(f"published in {pub.seconds:.1f} s ({fig.publish_rate:,.0f} events/s); starting the services")

        # 2. e2e/sink in `--pairs` pairs: a catch-up and a sink measured back to back, the order
        #    alternating (catch-up first in the odd pairs), each phase after `phases.settle`. The
        #    machine is shared and its speed drifts by tens of percent within a minute (the same
        #    catch-up's CPU per event, docs/benchmarks.md): the median of the pairs' ratios is the
        #    figure. The last pair's services stay for the phases below. The sink's events are
        #    parsed once, beforehand (not timed).
        cutoff = st.eligibility_cutoff(s.voting_day)
        step("sink: parsing the sample (not timed)")
        parsed = phases.parse_sample(sample, cutoff)
        fig.parse_us = parsed.us_per_event
        step("warm-up (not timed): reading the topics once, one sink pass")
        await phases.settle(s)
        fig.warm_up = await phases.warm_up(s, ends, parsed, s.batch_max_records, drop_schema)
        services_recap = None
        for k in range(1, args.pairs + 1):
            last = k == args.pairs
            cs, ss = (s, sink_s) if last else pair_settings(s, k)
            pair = Pair(k, catchup_first=k % 2 == 1)
            for phase in (("catch-up", "sink") if pair.catchup_first else ("sink", "catch-up")):
                # The schema the other phase of this pair filled, if it is kept (the last pair's catch-up).
                kept = s.db_schema if last and phase == "sink" and pair.catchup_first else None
                pair.settle_s[phase] = await phases.settle(s, vacuum=kept)
                if phase == "catch-up":
                    cf = fig if last else Figures(started=fig.started, command="", events=fig.events,
                                                   registrations_instances=fig.registrations_instances)
                    step(f"pair {k}/{args.pairs}: starting the services (schema {cs.db_schema})")
                    cprocs, csampler, cspy = await catch_up(
                        cs, cf, ends, tmp / f"logs{'' if last else k}",
                        tmp / "registrations.pyspy" if args.profile and last else None)
                    pair.e2e, pair.busy_pct = cf.e2e, cf.machine_busy_pct
                    pair.catchup_cpu_s = {"services": cf.services_cpu_window_s, "PostgreSQL": cf.pg_cpu_s,
                                       "Kafka": cf.kafka_cpu_s or 0.0}
                    pair.rss_max_mb = max((mb(p.usage.rss_peak) for p in cprocs), default=0.0)
                    step(f"pair {k}: converged: {fig.events:,} events in {cf.catchup_s:.1f} s after the first fetch "
                         f"({cf.e2e:,.0f} events/s; start-up {cf.startup_s:.1f} s)")
                    if last:
                        procs, sampler, spy = cprocs, csampler, cspy
                        conn = await asyncpg.connect(s.database_dsn, timeout=10)
                        try:
                            services_recap = await phases.region_recap(conn, s.db_schema)
                        finally:
                            await conn.close()
                    else:
                        csampler.stop()
                        for p in cprocs:
                            p.stop()
                        await drop_consumers(cs)
                else:
                    step(f"pair {k}: sink: applying {parsed.events:,} events in batches of {s.batch_max_records:,}")
                    result = await phases.sink(ss, parsed, s.batch_max_records)
                    pair.sink, pair.sink_busy_pct = result.rate, result.busy_pct
                    pair.sink_cpu_s = {"PostgreSQL": result.pg_cpu_s, "the sink": result.own_cpu_s}
                    if last:
                        fig.sink = result
                    await drop_schema(s, ss.db_schema)
                    step(f"pair {k}: sink: {result.rate:,.0f} events/s")
            fig.pairs.append(pair)
            step(f"pair {k}: e2e/sink {pair.ratio:.2f}")
        del parsed
        fig.recap_check = compare_recaps(stats, services_recap, fig.sink.recap)
        step(f"e2e/sink, the median of {len(fig.pairs)} pairs: {fig.median_pair.ratio:.2f}; {fig.recap_check}")

        # 3. latency with the services running
        n = int(args.latency_rate * args.latency_seconds)
        if n > 0:
            step(f"latency: {n:,} new registrations at {args.latency_rate:,.0f} events/s")
            fig.latency = await phases.latency(s, latency_lines(n, args.seed + 1000), args.latency_rate)
            fig.latency_sent = n
        # 4. a full rebuild with `dphp replay`, the services running (they continue on the rebuild)
        from services.projection.replay import replay

        step(f"replay: rebuilding from the {fig.events + fig.latency_sent:,} records of the topics")
        rebuilt = await replay(s, keep_old=False)
        fig.replay_events, fig.replay_s = rebuilt.events + rebuilt.invalid, rebuilt.seconds
        step(f"replay: {fig.replay_events:,} records in {rebuilt.seconds:.1f} s, switched over")
        sampler.stop()
        for p in procs:
            p.stop()
        for p, f in zip(procs, fig.services):
            f.rss_peak_mb = mb(p.usage.rss_peak)
        if spy is not None and spy.out.exists():
            from bench.profile import markdown, summarize

            fig.profile_md = markdown(summarize(spy.out),
                                      f"the registrations service during the catch-up "
                                      f"({fig.events:,} events)")
            print(fig.profile_md, file=sys.stderr, flush=True)

        # 5. the naive baseline
        k = min(args.naive_events, stats.by_type[TYPE_VOTER_REGISTERED])
        step(f"naive: {k:,} registrations, one message and one transaction at a time")
        fig.naive = await phases.naive(naive_s, naive_topic, naive_group, registration_lines(sample, k),
                                       timeout=600)
        step(f"naive: {fig.naive.rate:,.0f} events/s")
    finally:
        if sampler is not None:
            sampler.stop()
        for p in procs:
            p.stop()
        if spy is not None:
            spy.stop()
        step("cleaning up: topics, consumer groups, schemas")
        try:
            await delete_topics(s, [s.topic_registered, s.topic_moved, s.topic_meetings, s.topic_dead_letter,
                                    s.topic_recap, naive_topic])
            extra = [pair_settings(s, k) for k in range(1, args.pairs)]
            await delete_groups(s, [*(s.group_id(svc) for svc in SERVICES), naive_group,
                                    *(cs.group_id(svc) for cs, _ in extra for svc in SERVICES)])
        except Exception as exc:  # noqa: BLE001
            print(f"[bench] could not remove the topics: {exc}", file=sys.stderr)
        try:
            conn = await asyncpg.connect(s.database_dsn, timeout=10)
            try:
                extra = [x.db_schema for k in range(1, args.pairs) for x in pair_settings(s, k)]
                for schema in (s.db_schema, sink_s.db_schema, naive_s.db_schema, phases.warm_schema(s), *extra):
                    await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            finally:
                await conn.close()
        except Exception as exc:  # noqa: BLE001
            print(f"[bench] could not drop the schemas: {exc}", file=sys.stderr)
        if args.keep_logs:
            step(f"logs kept in {tmp}")
            sample.unlink(missing_ok=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


# --- output ------------------------------------------------------------------------------------------------

def rows(fig: Figures) -> list[tuple[str, str, str]]:
    """(section, figure, value)."""
    r: list[tuple[str, str, str]] = []
    bt = fig.by_type
    r.append(("sample", "events", f"{fig.events:,} ({bt.get(TYPE_VOTER_REGISTERED, 0):,} registered, "
                                  f"{bt.get(TYPE_VOTER_MOVED, 0):,} moved, {bt.get(TYPE_MEETING_HELD, 0):,} meetings); "
                                  f"{fig.voters:,} voters, {fig.sample_mb:.0f} MB, generated in {fig.generate_s:.1f} s"))
    r.append(("publish", "dphp publish code path", f"{fig.publish_rate:,.0f} events/s ({fig.publish_s:.1f} s)"))
    if fig.warm_up is not None:
        w = fig.warm_up
        r.append(("warm-up", "before the pairs, not timed: the topics read once, one sink pass",
                  f"{w.records:,} records read in {w.read_s:.1f} s"
                  + (f" (the broker's CPU {1e6 * w.kafka_cpu_s / max(w.records, 1):.1f} µs a record)"
                     if w.kafka_cpu_s is not None else "")
                  + f"; sink {w.sink_rate:,.0f} events/s (PostgreSQL's CPU "
                    f"{1e6 * w.sink_pg_cpu_s / max(w.events, 1):.1f} µs an event)"))
    r.append(("services", "batch", f"max {fig.batch_max_records:,} records, timeout {fig.batch_timeout_ms} ms; "
                                   f"{fig.db_lanes} database lanes a service; registrations instances: "
                                   f"{fig.registrations_instances}"))
    r.append(("services", "start-up (launch to first fetch)", f"{fig.startup_s:.2f} s"))
    r.append(("services", "catch-up of the last pair (first fetch to converged)", f"{fig.catchup_s:.2f} s"))
    r.append(("services", "end-to-end (the last pair)", f"{fig.e2e:,.0f} events/s"))
    for f in fig.services:
        r.append(("services", f"  {f.service}",
                  f"done after {f.done_s:.2f} s; peak RSS {f.rss_peak_mb:.0f} MB "
                  f"(catch-up {f.rss_peak_catchup_mb:.0f} MB); CPU {f.cpu_s:.1f} s"))
    r.append(("services", "CPU of the others during catch-up",
              f"PostgreSQL {fig.pg_cpu_s:.1f} s (all server processes), Kafka broker "
              + (f"{fig.kafka_cpu_s:.1f} s" if fig.kafka_cpu_s is not None else "not visible")))
    per = lambda sec: f"{sec / fig.events * 1e6:.0f}" if fig.events else "-"  # noqa: E731
    r.append(("services", "CPU µs per event during catch-up",
              f"services {per(fig.services_cpu_window_s)}, PostgreSQL {per(fig.pg_cpu_s)}"
              + (f", Kafka {per(fig.kafka_cpu_s)}" if fig.kafka_cpu_s is not None else "")
              + f"; machine {fig.machine_busy_pct:.0f}% busy ({fig.machine.get('cores')} cores, shared)"))
    lat = fig.latency
    if lat:
        r.append(("latency", "steady load", f"{lat.sent:,} events at {lat.rate:,.0f}/s (target {lat.rate_target:,.0f}); "
                                            f"visible {lat.seen:,}"))
        r.append(("latency", "publish to visible", f"p50 {lat.p50:.0f} ms, p99 {lat.pct(99):.0f} ms, "
                                                   f"max {max(lat.latencies_ms, default=float('nan')):.0f} ms "
                                                   f"(poll every {lat.poll_ms:.0f} ms)"))
    if fig.replay_s:
        r.append(("replay", "dphp replay (rebuild + switch-over, services running)",
                  f"{fig.replay_events / fig.replay_s:,.0f} events/s ({fig.replay_events:,} records, "
                  f"{fig.replay_s:.1f} s)"))
    if fig.sink:
        sk = fig.sink
        r.append(("sink", "parse + build rows (not timed)", f"{fig.parse_us:.1f} µs/event"))
        r.append(("sink", "ProjectionStore, as the services store",
                  f"{sk.rate:,.0f} events/s ({sk.seconds:.2f} s, batches of {sk.batch:,}, "
                  f"{sk.lanes} lanes for voter events, the 3 event types concurrently: "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in sk.by_kind_seconds.items())
                  + f"; {sk.races} races lost for a new voter, each batch part applied again)"))
        total = sum(sk.breakdown.values())
        parts = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in sorted(sk.breakdown.items(), key=lambda kv: -kv[1]))
        r.append(("sink", "registrations (first lane): time per statement", parts))
    if fig.naive:
        nv = fig.naive
        r.append(("naive", "1 message, 1 transaction", f"{nv.rate:,.0f} events/s ({nv.events:,} events, {nv.seconds:.1f} s"
                                                       f"{', TIMED OUT' if nv.timed_out else ''})"))
    cpu = lambda us: ", ".join(f"{k} {v / fig.events * 1e6:.1f}" for k, v in us.items()) if fig.events else "-"  # noqa: E731
    for p in fig.pairs:
        settle = ", ".join(f"{k} {'(no CHECKPOINT)' if v is None else f'{v:.1f} s'}" for k, v in p.settle_s.items())
        r.append(("e2e/sink", f"pair {p.number} ({'catch-up' if p.catchup_first else 'sink'} first)",
                  f"e2e {p.e2e:,.0f}, sink {p.sink:,.0f} events/s: **{p.ratio:.2f}**. CPU µs per event, catch-up: "
                  f"{cpu(p.catchup_cpu_s)}, machine {p.busy_pct:.0f}% busy; sink: {cpu(p.sink_cpu_s)}, machine "
                  f"{p.sink_busy_pct:.0f}% busy. Settling before {settle}"))
    e2e, sink = headline(fig)
    naive = fig.naive.rate if fig.naive else 0.0
    r.append(("ratios", "e2e/sink (the median pair), e2e/naive (its e2e)",
              f"{ratio(e2e, sink):.2f}, {ratio(e2e, naive):.1f}"))
    r.append(("check", "recap", fig.recap_check))
    return r


def headline(fig: Figures) -> tuple[float, float]:
    """e2e and sink of the median pair (so that e2e/sink is their ratio)."""
    median = fig.median_pair
    if median is not None:
        return median.e2e, median.sink
    return fig.e2e, fig.sink.rate if fig.sink else 0.0


def last_line(fig: Figures) -> str:
    e2e, sink = headline(fig)
    naive = fig.naive.rate if fig.naive else 0.0
    return (f"e2e={e2e:.0f} sink={sink:.0f} naive={naive:.0f} e2e/sink={ratio(e2e, sink):.2f} "
            f"e2e/naive={ratio(e2e, naive):.1f} rss_max_mb={fig.rss_max_mb:.0f}")


def print_table(fig: Figures) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("part", "figure", "value", title=f"DPHP benchmark, {fig.started:%Y-%m-%d %H:%M %Z}")
    for section, name, value in rows(fig):
        table.add_row(section, name, value)
    Console(file=sys.stdout, width=160).print(table)


DOC_HEADER = """# Benchmarks

`make bench` (a full-size Blora sample, about 715,000 events) or `python -m bench.run --events N`;
the method is described in `bench/run.py`. Each run appends its record under "Runs" (oldest first,
newest last).

## Runs
"""


def record(fig: Figures) -> None:
    m, v = fig.machine, fig.versions
    lines = [
        f"### Run of {fig.started:%Y-%m-%d %H:%M %Z}: {fig.events:,} events",
        "",
        f"- command: `{fig.command}`" + (f"; note: {fig.note}" if fig.note else ""),
        f"- machine: {m['cores']} cores ({m['physical_cores']} physical, {m['cpu']}), {m['memory_gb']} GB, "
        f"{m['os']}; load average at start {fig.load_at_start[0]:.2f} / {fig.load_at_start[1]:.2f} / "
        f"{fig.load_at_start[2]:.2f} (shared with other test runs)",
        f"- versions: Python {v['python']}, Kafka {v['kafka']}, PostgreSQL {v['postgres']}, FastStream "
        f"{v['faststream']}, aiokafka {v['aiokafka']}, asyncpg {v['asyncpg']}, pydantic {v['pydantic']}",
        "",
        "| part | figure | value |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b.strip()} | {c.replace('|', '/')} |" for a, b, c in rows(fig)]
    lines += ["", f"`{last_line(fig)}`", ""]
    if fig.profile_md:
        lines += [fig.profile_md]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else DOC_HEADER
    DOC.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines).rstrip("\n") + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=None,
                   help="about this many events (default: a full-size Blora sample, 700,000 voters)")
    p.add_argument("--seed", type=int, default=1, help="sample seed (default 1)")
    p.add_argument("--naive-events", type=int, default=20_000, help="registrations for the naive baseline")
    p.add_argument("--pairs", type=int, default=3,
                   help="catch-up and sink measured this many times, alternately; e2e/sink is the median pair's "
                        "(default 3)")
    p.add_argument("--latency-rate", type=float, default=2000.0, help="events/s of the latency phase")
    p.add_argument("--latency-seconds", type=float, default=20.0, help="length of the latency phase (0: skip)")
    p.add_argument("--registrations-instances", type=int, default=1, metavar="N",
                   help="registrations service processes sharing its partitions (default 1)")
    p.add_argument("--profile", action="store_true",
                   help="sample the registrations service with py-spy during the catch-up (into the record)")
    p.add_argument("--no-record", action="store_true", help=f"do not append the figures to {DOC.relative_to(ROOT)}")
    p.add_argument("--note", default="", help="a remark for the record")
    p.add_argument("--keep-logs", action="store_true", help="keep the services' logs (the temp folder)")
    args = p.parse_args(argv)
    if args.events is not None and args.events < 500:
        p.error("--events: at least 500")
    if args.pairs < 1:
        p.error("--pairs: at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(logging.WARNING, stream=sys.stderr)
    fig = Figures(started=dt.datetime.now().astimezone(),
                  command=shlex.join(["python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)]),
                  note=args.note, load_at_start=os.getloadavg(), machine=machine_info())
    try:
        asyncio.run(run(args, fig))
    except KeyboardInterrupt:
        print("[bench] interrupted", file=sys.stderr)
        return 130
    except (OSError, asyncpg.PostgresError, RuntimeError) as exc:
        print(f"[bench] failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print_table(fig)
    if not args.no_record:
        record(fig)
        print(f"[bench] appended to {DOC.relative_to(ROOT)}", file=sys.stderr)
    print(last_line(fig), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

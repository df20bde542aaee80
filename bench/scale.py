"""`python -m bench.scale [--sizes 100000,1000000,5000000[,full]]` (`make bench-scale`): cost against size.

For each size (events; a Jawa Tengah sample, `dphp sample --region 33`, of about that many), against
the running broker and PostgreSQL, with its own topics, consumer groups and schema (removed after):

1. sample: generate the province sample (seconds, MB);
2. publish: `dphp publish`'s batched path (events/s, validation included);
3. e2e: the three projection services started after publishing, from their first fetch to
   convergence (`bench.run.catch_up`: events/s, peak RSS of each service);
4. replay: `dphp replay` rebuilds the whole projection with the services running (records/s);
5. sizes: the projection's schema in PostgreSQL, the topics' logs on the broker's disk;
6. reads, with the services stopped: `dphp report` (`operations.reading.report`, a connection each
   time, as the command) at each level: the provinsi's own row, its kabupaten, a kabupaten's
   kecamatan, a kecamatan's desa, a desa's TPS (p50/p99 of `--reads` runs); a kabupaten's
   `dphp meetings` (p50/p99); the report service's look at the projection (`RecapPublisher`: the
   first look, which publishes every region, and a later one with nothing changed).

Prints one line per size, `size=N publish=R e2e=R replay=R db_mb=M kafka_mb=M rss_max_mb=M
report_p99_ms=T look_ms=T`, then appends the run (command, machine, table, an estimate of the full
province from the largest size) to docs/scale.md and plots rate and latency against size to
docs/scale-<time>.png.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import math
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench.procs import listener_pid
from bench.publish import province_voters
from bench.run import Figures, bench_settings, catch_up, drop_consumers, end_offsets, machine_info, mb, versions
from services.common.logs import setup_logging
from services.common.settings import Settings
from services.sample.province import JAWA_TENGAH

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scale.md"
DEFAULT_SIZES = (100_000, 1_000_000, 5_000_000)
FULL_PROVINCE_EVENTS = 29_050_000  # 28,427,616 voters: their registrations, corrections, moves, meetings
FULL = 0  # `--sizes ...,full`: the whole province, every voter of its DPT
#: (label, region, level) of the `dphp report` reads: each level inside its parent.
REPORT_READS = (("provinsi", "33", "provinsi"), ("kabupaten", "33", "kabupaten"),
                ("kecamatan", "33.16", "kecamatan"), ("desa", "33.16.09", "desa"),
                ("tps", "33.16.09.1011", "tps"))
MEETINGS_REGION = "33.16"


@dataclass
class SizeFigures:
    size: int
    events: int = 0
    sample_mb: float = 0.0
    generate_s: float = 0.0
    publish: float = 0.0
    e2e: float = 0.0
    catchup_s: float = 0.0
    replay: float = 0.0
    replay_s: float = 0.0
    db_mb: float = 0.0
    kafka_mb: float | None = None
    rss_mb: dict[str, float] = field(default_factory=dict)
    report_ms: dict[str, tuple[float, float]] = field(default_factory=dict)  # level -> (p50, p99)
    meetings_ms: tuple[float, float] = (0.0, 0.0)
    first_look_ms: float = 0.0
    look_ms: float = 0.0

    @property
    def rss_max_mb(self) -> float:
        return max(self.rss_mb.values(), default=0.0)

    @property
    def report_p99_ms(self) -> float:
        return max((p99 for _, p99 in self.report_ms.values()), default=0.0)

    def line(self) -> str:
        kafka = "?" if self.kafka_mb is None else f"{self.kafka_mb:.0f}"
        return (f"size={self.events} publish={self.publish:.0f} e2e={self.e2e:.0f} replay={self.replay:.0f} "
                f"db_mb={self.db_mb:.0f} kafka_mb={kafka} rss_max_mb={self.rss_max_mb:.0f} "
                f"report_p99_ms={self.report_p99_ms:.1f} look_ms={self.look_ms:.0f}")


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p99) in ms of samples in seconds (p99 by the nearest rank: the maximum below 100 samples)."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1))
    return 1000 * statistics.median(ordered), 1000 * ordered[rank]


# --- measurements --------------------------------------------------------------------------------

async def schema_bytes(s: Settings) -> int:
    conn = await asyncpg.connect(s.database_dsn, timeout=10)
    try:
        return int(await conn.fetchval(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')",
            s.db_schema))
    finally:
        await conn.close()


def kafka_log_bytes(s: Settings) -> int | None:
    """Bytes of the bench topics' log segments (`*.log`; the index files are preallocated) in the
    local broker's log.dirs; one broker's share in a cluster. None when the broker is not a local
    process whose configuration can be read."""
    import psutil

    pid = listener_pid(s.kafka_port)
    if pid is None:
        return None
    try:
        props = [a for a in psutil.Process(pid).cmdline() if a.endswith(".properties")][-1]  # the last argument
        conf = dict(line.split("=", 1) for line in Path(props).read_text().splitlines()
                    if "=" in line and not line.lstrip().startswith("#"))
    except (IndexError, OSError, psutil.Error):
        return None
    topics = (s.topic_registered, s.topic_moved, s.topic_meetings, s.topic_dead_letter, s.topic_recap)
    total = 0
    for folder in conf.get("log.dirs", conf.get("log.dir", "")).split(","):
        base = Path(folder.strip())
        if not base.is_dir():
            continue
        for part in base.iterdir():
            if part.is_dir() and part.name.rsplit("-", 1)[0] in topics:
                total += sum(f.stat().st_size for f in part.iterdir() if f.suffix == ".log")
    return total


async def timed(fn, reads: int) -> tuple[float, float]:
    samples = []
    for _ in range(reads):
        t = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - t)
    return percentiles(samples)


async def reads(s: Settings, fig: SizeFigures, n: int) -> None:
    from services.operations.reading import meetings, report
    from services.report.publisher import RecapPublisher

    for label, region, level in REPORT_READS:
        fig.report_ms[label] = await timed(lambda r=region, lv=level: report(s, r, lv), n)
    fig.meetings_ms = await timed(lambda: meetings(s, MEETINGS_REGION), max(3, n // 5))

    async def nothing(_messages) -> None:
        return None

    conn = await asyncpg.connect(s.database_dsn, timeout=10)
    try:
        look = RecapPublisher(s.db_schema, nothing)
        t = time.perf_counter()
        await look.publish_changes(conn)
        fig.first_look_ms = 1000 * (time.perf_counter() - t)
        look._seen = None  # as after a stored batch: read everything again, nothing changed
        t = time.perf_counter()
        await look.publish_changes(conn)
        fig.look_ms = 1000 * (time.perf_counter() - t)
    finally:
        await conn.close()


# --- one size ------------------------------------------------------------------------------------

async def one_size(size: int, args: argparse.Namespace, tmp: Path) -> SizeFigures:
    from services.common.topics import delete_topics, ensure_topics
    from services.operations.batch_publishing import publish_batched
    from services.projection.replay import replay
    from services.sample.province import write_province_sample

    fig = SizeFigures(size)
    s = bench_settings(Settings(), uuid.uuid4().hex[:10])
    step = lambda msg: print(f"[scale {size or 'full'}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    sample = tmp / f"jateng-{size}.jsonl"
    procs = []
    sampler = None
    try:
        voters = JAWA_TENGAH.voters if size == FULL else province_voters(size)
        step(f"sample: Jawa Tengah, {voters:,} voters")
        stats = write_province_sample("33", voters, args.seed, sample)
        fig.events, fig.sample_mb, fig.generate_s = stats.events, mb(stats.bytes), stats.seconds
        step(f"{fig.events:,} events, {fig.sample_mb:,.0f} MB in {fig.generate_s:.1f} s; publishing")
        await ensure_topics(s)
        pub = await publish_batched(s, [sample])
        if pub.rejected or pub.accepted != fig.events:
            raise RuntimeError(f"publish accepted {pub.accepted} of {fig.events}")
        fig.publish = pub.accepted / pub.seconds
        sample.unlink()
        ends = await end_offsets(s)
        step(f"published at {fig.publish:,.0f} events/s; the services catch up")
        run = Figures(started=dt.datetime.now().astimezone(), command="", events=fig.events,
                      instances=args.instances)
        procs, sampler, _ = await catch_up(s, run, ends, tmp / f"logs-{size}", None)
        fig.e2e, fig.catchup_s = run.e2e, run.catchup_s
        step(f"e2e {fig.e2e:,.0f} events/s ({fig.catchup_s:.1f} s); replay with the services running")
        rebuilt = await replay(s, keep_old=False)
        fig.replay_s = rebuilt.seconds
        fig.replay = (rebuilt.events + rebuilt.invalid) / rebuilt.seconds if rebuilt.seconds > 0 else 0.0
        sampler.stop()
        for p in procs:
            p.stop()
            fig.rss_mb[p.name] = mb(p.usage.rss_peak)
        step(f"replay {fig.replay:,.0f} records/s ({fig.replay_s:.1f} s); sizes and reads")
        fig.db_mb = mb(await schema_bytes(s))
        kb = kafka_log_bytes(s)
        fig.kafka_mb = None if kb is None else mb(kb)
        await reads(s, fig, args.reads)
        step(fig.line())
        return fig
    finally:
        if sampler is not None:
            sampler.stop()
        for p in procs:
            p.stop()
        sample.unlink(missing_ok=True)
        try:
            await delete_topics(s, [s.topic_registered, s.topic_moved, s.topic_meetings, s.topic_dead_letter,
                                    s.topic_recap])
            await drop_consumers(s)
        except Exception as exc:  # noqa: BLE001 - cleanup is best effort
            print(f"[scale] cleanup: {exc}", file=sys.stderr)


# --- the record ------------------------------------------------------------------------------------

def estimate(figs: list[SizeFigures]) -> str:
    """The full province from the largest size measured (what the run does not show): times at the
    largest size's rates; sizes from the growth per event between the two largest sizes."""
    f = max(figs, key=lambda x: x.events)
    n = FULL_PROVINCE_EVENTS
    prev = sorted(figs, key=lambda x: x.events)[-2] if len(figs) > 1 else None

    def grow(key: str) -> float:
        value = getattr(f, key) or 0.0
        if prev is None or f.events == prev.events:
            return value * n / f.events
        per_event = (value - (getattr(prev, key) or 0.0)) / (f.events - prev.events)
        return value + per_event * (n - f.events)

    phases = {"sample": f.generate_s * n / f.events, "publish": n / f.publish, "e2e": n / f.e2e,
              "replay": n / f.replay}
    sample_gb, db_gb, kafka_gb = grow("sample_mb") / 1024, grow("db_mb") / 1024, grow("kafka_mb") / 1024
    # the sample file is removed once published; the replay holds the projection twice
    peak_gb = max(sample_gb + kafka_gb, kafka_gb + 2 * db_gb)
    return (f"Estimate for {n:,} events from {f.events:,}: sample {phases['sample'] / 60:.0f} min, publish "
            f"{phases['publish'] / 60:.0f} min, catch-up {phases['e2e'] / 60:.0f} min, replay "
            f"{phases['replay'] / 60:.0f} min (about {sum(phases.values()) / 60:.0f} min before the reads); "
            f"sample file {sample_gb:.0f} GB, topics' logs {kafka_gb:.0f} GB, projection {db_gb:.0f} GB; disk "
            f"at the peak about {peak_gb:.0f} GB plus PostgreSQL's WAL (the replay holds two projections). "
            f"Linear from small sizes: the full run is the measure.")


def plot(figs: list[SizeFigures], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [f.events for f in figs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, key in (("publish", "publish"), ("e2e (catch-up)", "e2e"), ("replay", "replay")):
        left.plot(xs, [getattr(f, key) for f in figs], marker="o", label=label)
    left.set(xscale="log", xlabel="events", ylabel="events/s", title="Rate against size")
    left.set_ylim(bottom=0)
    left.legend()
    for label in figs[0].report_ms:
        right.plot(xs, [f.report_ms[label][1] for f in figs], marker=".", label=f"report {label} p99")
    right.plot(xs, [f.meetings_ms[1] for f in figs], marker="s", label=f"meetings {MEETINGS_REGION} p99")
    right.plot(xs, [f.look_ms for f in figs], marker="^", label="report service look")
    right.set(xscale="log", yscale="log", xlabel="events", ylabel="ms", title="Read latency against size")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def record(figs: list[SizeFigures], command: str, started: dt.datetime, env: dict, png: Path) -> str:
    m = env["machine"]
    lines = [f"## Run of {started:%Y-%m-%d %H:%M %Z}", "",
             f"`{command}`; {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB; load average at the start "
             f"{env['load'][0]:.1f}; {env['layout']}; "
             f"versions {', '.join(f'{k} {v}' for k, v in env['versions'].items())}.",
             "", "| events | sample MB | publish ev/s | e2e ev/s | replay rec/s | db MB | kafka MB | RSS max MB "
             "| report ms p50/p99: prov, kab, kec, desa, tps | meetings ms p50/p99 | look ms (first) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for f in figs:
        rep = ", ".join(f"{p50:.0f}/{p99:.0f}" for p50, p99 in f.report_ms.values())
        kafka = "?" if f.kafka_mb is None else f"{f.kafka_mb:,.0f}"
        lines.append(f"| {f.events:,} | {f.sample_mb:,.0f} | {f.publish:,.0f} | {f.e2e:,.0f} | {f.replay:,.0f} | "
                     f"{f.db_mb:,.0f} | {kafka} | {f.rss_max_mb:.0f} | {rep} | {f.meetings_ms[0]:.0f}/{f.meetings_ms[1]:.0f} | "
                     f"{f.look_ms:.0f} ({f.first_look_ms:.0f}) |")
    lines += ["", "```", *(f.line() for f in figs), "```", "", estimate(figs), "",
              f"![rate and latency against size]({png.name})", ""]
    text = "\n".join(lines)
    head = DOC.read_text() if DOC.exists() else "# Scale: cost against size\n\nRecords of `make bench-scale`.\n"
    DOC.write_text(head.rstrip("\n") + "\n\n" + text)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                   help="comma-separated event counts (default 100000,1000000,5000000); `full`: the whole "
                        "province (28,427,616 voters, about 29 M events)")
    p.add_argument("--reads", type=int, default=20, help="runs of each `dphp report` read (default 20)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--instances", type=int, default=1, metavar="N",
                   help="processes of each projection service sharing its partitions (default 1); the "
                        "partitions are the settings' (DPHP_PARTITIONS_REGISTERED, DPHP_PARTITIONS_MOVED)")
    p.add_argument("--no-record", action="store_true", help="print only; no docs/scale.md, no plot")
    args = p.parse_args(argv)
    try:
        sizes = sorted({FULL if x.strip() == "full" else int(x.replace("_", "")) for x in args.sizes.split(",")
                        if x.strip()}, key=lambda n: FULL_PROVINCE_EVENTS if n == FULL else n)
    except ValueError:
        p.error(f"--sizes: whole numbers or `full` separated by commas, not {args.sizes!r}")
    if not sizes or 0 < min(sizes) < 12_000 or min(sizes) < 0:
        p.error("--sizes: at least 12000 events each (a province sample has 9,215 meetings)")
    setup_logging(logging.WARNING, stream=sys.stderr)
    started = dt.datetime.now().astimezone()
    command = shlex.join(["python", "-m", "bench.scale", *(sys.argv[1:] if argv is None else argv)])
    base = Settings()
    env = {"machine": machine_info(), "load": os.getloadavg(),
           "layout": f"partitions: {base.partitions_registered} registered, {base.partitions_moved} moved; "
                     f"{args.instances} instance(s) of each projection service"}
    tmp = Path(tempfile.mkdtemp(prefix="dphp-scale-"))
    figs: list[SizeFigures] = []
    try:
        env["versions"] = asyncio.run(versions(Settings()))
        for size in sizes:
            figs.append(asyncio.run(one_size(size, args, tmp)))
            print(figs[-1].line(), flush=True)
    except KeyboardInterrupt:
        print("[scale] interrupted", file=sys.stderr)
        return 130
    except (OSError, asyncpg.PostgresError, RuntimeError) as exc:
        print(f"[scale] failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(estimate(figs), file=sys.stderr)
    if not args.no_record:
        png = DOC.parent / f"scale-{started:%Y%m%d-%H%M}.png"
        plot(figs, png)
        record(figs, command, started, env, png)
        print(f"[scale] appended to {DOC.relative_to(ROOT)}, plot {png.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`dphp demo`: the main job on this machine, from nothing to the recap of Kabupaten Blora."""

from __future__ import annotations

import asyncio
import time

import typer

from services.cli.common import expected_errors, load_settings, log_stderr, visible
from services.cli.main import app

DEMO_REGION = "33.16"


def say(line: str = "") -> None:
    print(line, flush=True)


class _Progress:
    """A rich bar on a terminal, a line every few seconds otherwise (logs, CI)."""

    def __init__(self, what: str, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from services.cli.common import err

        self.what, self.total, self.last = what, total, 0.0
        self.bar = None
        if err.is_terminal:
            self.bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                console=err, transient=True)
            self.task = self.bar.add_task(what, total=total)
            self.bar.start()

    def update(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done)
        elif time.monotonic() - self.last > 5:
            self.last = time.monotonic()
            log_stderr(f"{self.what}: {done:,} of {self.total:,}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def print_recap(rows: list[dict], meetings: list[dict]) -> None:
    """Plain fixed-width tables (also read back by the end-to-end test)."""
    say(f"{'kecamatan':<10} {'name':<16} {'L':>8} {'P':>8} {'total':>8} {'TPS':>5} {'loksus':>6}")
    for r in rows:
        say(f"{visible(r['region_code']):<10} {visible(r['name'])[:16]:<16} {r['male']:>8} {r['female']:>8} "
            f"{r['total']:>8} "
            f"{r['tps_count']:>5} {r['tps_loksus_count']:>6}")
    say("")
    say(f"{'meeting':<32} {'L decl/comp':>17} {'P decl/comp':>17} {'total decl/comp':>19} {'TPS decl/comp':>13}")
    for m in meetings:
        d, c = m["declared"] or {}, m["computed"]

        def pair(f: str) -> str:
            return f"{d.get(f, '-')}/{c[f]}"

        flag = "  <- differs" if m["discrepancy"] and any(m["discrepancy"].values()) else ""
        say(f"{visible(m['meeting_id']):<32} {pair('male'):>17} {pair('female'):>17} {pair('total'):>19} "
            f"{pair('tps_count'):>13}{flag}")


@app.command("demo")
@expected_errors
def demo(
    voters: int = typer.Option(700_000, "--voters", help="voters in the Blora sample (full size: 700,000)"),
    seed: int = typer.Option(1, "--seed", help="sample seed; the same seed republishes the same events"),
    timeout: float = typer.Option(900, "--timeout", help="seconds to wait for the projection to converge"),
) -> None:
    """Start everything, publish a realistic Kabupaten Blora sample, wait for the projection, print the recap."""
    from services.devstack.stack import up
    from services.operations import reading
    from services.operations.publishing import count_lines, publish
    from services.operations.status import wait_for_convergence
    from services.sample.generator import write_sample

    settings = load_settings()
    t0 = time.monotonic()
    say("== 1. the stack: Kafka broker, PostgreSQL, the three projection services")
    up(settings, log=lambda line: say(f"   {line}"))

    say(f"== 2. a sample of Kabupaten Blora ({DEMO_REGION}): {voters:,} voters, seed {seed}")
    sample = settings.state_dir.resolve() / "demo" / f"blora-{voters}-{seed}.jsonl"
    sample.parent.mkdir(parents=True, exist_ok=True)
    if sample.exists():
        say(f"   reusing {sample} (deterministic for the seed)")
    else:
        started = time.monotonic()
        progress = _Progress("writing the sample", voters)
        try:
            stats = write_sample(DEMO_REGION, voters, seed, sample, progress=progress.update)
        finally:
            progress.close()
        say(f"   {stats.events:,} events written in {time.monotonic() - started:.1f} s to {sample}")

    say("== 3. publishing (validated, idempotent producer; a second run republishes the same events)")
    total_lines = count_lines(sample)
    progress = _Progress("publishing", total_lines)
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        progress.update(done[0])

    try:
        result = asyncio.run(publish(settings, [sample], progress=advance))
    finally:
        progress.close()
    rate = result.accepted / result.seconds if result.seconds else 0
    say(f"   published {result.accepted:,} events in {result.seconds:.1f} s ({rate:,.0f} events/s), "
        f"rejected {len(result.rejected)}")

    say("== 4. waiting for the projection to converge")
    projecting: list[_Progress] = []

    def show(done: int, total: int) -> None:
        if not projecting:
            projecting.append(_Progress("projecting", total))
        projecting[0].update(done)

    try:
        took = asyncio.run(wait_for_convergence(settings, timeout, progress=show))
    finally:
        for bar in projecting:
            bar.close()
    say(f"   converged in {took:.1f} s after publishing")

    async def read() -> tuple[list[dict], list[dict], list[dict]]:
        async with reading.reader(settings) as conn:
            kec = await reading.recap_rows(conn, settings.db_schema, DEMO_REGION, "kecamatan")
            kab = await reading.recap_rows(conn, settings.db_schema, DEMO_REGION, "kabupaten")
        meetings = await reading.meetings(settings, DEMO_REGION, levels=("kabupaten", "kecamatan"))
        return kec, kab, meetings

    kec, kab, meetings = asyncio.run(read())
    say("")
    say(f"== DPHP recap of {DEMO_REGION} Kabupaten Blora by kecamatan (L = laki-laki, P = perempuan)")
    print_recap(kec + kab, meetings)
    say("")
    say(f"done in {time.monotonic() - t0:.0f} s. Try next:")
    say("   dphp report --region 33.16.09 --level desa      # desa of Kecamatan Blora")
    say("   dphp report --region 33.16.09.1011 --level tps  # the TPS of Kelurahan Jetis, TPS 901 is the rutan")
    say("   dphp meetings --region 33.16.01 --format json   # minutes of Kecamatan Jati and its desa")
    say("   dphp report --region 33.16 --as-of 2024-07-10T00:00:00+07:00")
    say("   dphp status                                     # positions, lag, freshness")
    say("   dphp dev status                                 # processes and addresses")
    say("stop everything with: dphp dev down   (or: make down)")
    say(f"the recap of Kabupaten Blora on the web: {web_address(settings)}/region/{DEMO_REGION}")


def web_address(settings) -> str:
    """The web service's address as a browser on this machine reaches it."""
    host = "127.0.0.1" if settings.web_host in ("0.0.0.0", "::") else settings.web_host
    return f"http://{host}:{settings.web_port}"

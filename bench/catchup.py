"""Repeated catch-ups of the three services on one published sample: for comparing service changes.

    python -m bench.catchup [--events N] [--runs R] [--topics UID] [--keep-topics] [--profile]

Publishes a sample once (or reuses the topics of an earlier `--keep-topics` run, `--topics UID`),
then R times: starts the three services on a fresh schema and fresh consumer groups, waits for
convergence and prints end-to-end events/s, CPU per event of the services, of PostgreSQL and of
the broker, and how busy the machine was. Nothing is recorded; `make bench` is the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import sys
import tempfile
import uuid
from pathlib import Path


from bench.run import REGION, Figures, bench_settings, catch_up, drop_consumers, end_offsets, voters_for
from services.common.settings import Settings


async def main_async(args: argparse.Namespace) -> None:
    from services.operations.publishing import publish
    from services.common.topics import delete_topics, ensure_topics
    from services.sample import write_sample

    base = Settings()
    topics_uid = args.topics or uuid.uuid4().hex[:10]
    topics = bench_settings(base, topics_uid)
    tmp = Path(tempfile.mkdtemp(prefix="dphp-catchup-"))
    try:
        if args.topics is None:
            stats = write_sample(REGION, voters_for(args.events), 1, tmp / "sample.jsonl")
            await ensure_topics(topics)
            pub = await publish(topics, [tmp / "sample.jsonl"])
            print(f"published {pub.accepted:,} events to bench{topics_uid}.* in {pub.seconds:.1f} s", file=sys.stderr)
        ends = await end_offsets(topics)
        events = sum(ends.values())
        for i in range(args.runs):
            run_uid = uuid.uuid4().hex[:10]
            s = topics.model_copy(update={"group_prefix": f"bench{run_uid}", "db_schema": f"bench_{run_uid}"})
            fig = Figures(started=dt.datetime.now(dt.timezone.utc), command="", events=events)
            profile = tmp / f"run{i}.pyspy" if args.profile else None
            procs, sampler, spy = await catch_up(s, fig, ends, tmp / f"logs{i}", profile)
            sampler.stop()
            for p in procs:
                p.stop()
            per = lambda cpu: 1e6 * cpu / events  # noqa: E731
            print(f"run {i + 1}: e2e {fig.e2e:,.0f} events/s ({fig.catchup_s:.1f} s), CPU/event: services "
                  f"{per(fig.services_cpu_window_s):.1f} us, PostgreSQL {per(fig.pg_cpu_s):.1f} us, Kafka "
                  f"{per(fig.kafka_cpu_s or 0):.1f} us; machine {fig.machine_busy_pct:.0f}% busy; "
                  + ", ".join(f"{f.service} {f.cpu_s:.1f} s {f.rss_peak_catchup_mb:.0f} MB" for f in fig.services),
                  flush=True)
            if spy is not None and spy.out.exists():
                from bench.profile import markdown, summarize

                print(markdown(summarize(spy.out, top=25), "registrations"), flush=True)
            await drop_consumers(s)
    finally:
        if args.keep_topics:
            print(f"topics kept: --topics {topics_uid}", file=sys.stderr)
        else:
            await delete_topics(topics, [topics.topic_registered, topics.topic_moved, topics.topic_meetings,
                                         topics.topic_dead_letter, topics.topic_recap])
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--topics", help="reuse the topics bench<UID>.* of an earlier --keep-topics run")
    ap.add_argument("--keep-topics", action="store_true")
    ap.add_argument("--profile", action="store_true", help="py-spy the registrations service")
    asyncio.run(main_async(ap.parse_args(argv)))


if __name__ == "__main__":
    main()

"""`python -m bench.publish [--events N]` (`make bench-publish`): `dphp publish`'s paths side by side.

In one run, on one sample (a Jawa Tengah sample of about N events), each into its own fresh topics
of the running broker (removed afterwards), in this order:

1. `old`: the per-event path (`services.operations.publishing.publish`: validation and one
   `send()` per event in one process);
2. `new`: the batched path that `dphp publish` uses (`services.operations.batch_publishing`:
   validation in DPHP_PUBLISH_WORKERS processes, records appended to per-partition batches);
3. `bare_send`: a bare aiokafka producer sending the same bytes with the same keys, unvalidated,
   one `send()` per event (keys read beforehand, untimed);
4. `bare_batch`: the same bytes unvalidated through `send_batch`, partitioned beforehand (untimed):
   the limit of one aiokafka producer on this machine.

Every producer is idempotent with acks=all. Prints a table and, last, one line
`events=N old=R new=R bare_send=R bare_batch=R new/old=X new/limit=Y` (rates in events/s).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from bench.run import bench_settings
from services.common.settings import Settings

#: A province sample: about 1.03 events per voter plus one meeting per desa and kecamatan (9,215 in 33).
EVENTS_PER_VOTER = 1.0216
PROVINCE_MEETINGS = 9_215


def province_voters(events: int) -> int:
    return max(3_500, round((events - PROVINCE_MEETINGS) / EVENTS_PER_VOTER))


async def _topics(base: Settings) -> Settings:
    from services.common.topics import ensure_topics

    s = bench_settings(base, uuid.uuid4().hex[:10])
    await ensure_topics(s)
    return s


async def _drop(settings: list[Settings]) -> None:
    from services.common.kafka import kafka_admin

    admin = kafka_admin(settings[0])
    await admin.start()
    try:
        names = [t for s in settings for t in (s.topic_registered, s.topic_moved, s.topic_meetings,
                                               s.topic_dead_letter, s.topic_recap)]
        await admin.delete_topics(names)
    except Exception as exc:  # best effort: the topics are uniquely named
        print(f"[bench] could not delete the bench topics: {exc}", file=sys.stderr)
    finally:
        await admin.close()


def _records(path: Path) -> list[tuple[str, bytes, bytes]]:
    """(kind, key, value) of every line, read untimed for the bare producers."""
    from schemas.parsing import KIND_BY_TYPE

    out = []
    with open(path, "rb") as f:
        for line in f:
            value = line.rstrip(b"\n")
            doc = orjson.loads(value)
            out.append((KIND_BY_TYPE[doc["type"]], doc["subject"].encode(), value))
    return out


async def bare_send(settings: Settings, records: list[tuple[str, bytes, bytes]]) -> float:
    from schemas.events import CONTENT_TYPE
    from services.common.kafka import kafka_producer

    topics = {"registered": settings.topic_registered, "moved": settings.topic_moved,
              "meetings": settings.topic_meetings}
    headers = [("content-type", CONTENT_TYPE.encode())]
    producer = kafka_producer(settings, linger_ms=10, max_batch_size=512 * 1024)
    await producer.start()
    try:
        started = time.monotonic()
        pending = []
        for kind, key, value in records:
            pending.append(await producer.send(topics[kind], value=value, key=key, headers=headers))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        await producer.flush()
        return time.monotonic() - started
    finally:
        await producer.stop()


async def bare_batch(settings: Settings, records: list[tuple[str, bytes, bytes]]) -> float:
    from schemas.events import CONTENT_TYPE
    from services.common.kafka import kafka_producer
    from services.operations.publish_chunks import partition_of

    topics = {"registered": settings.topic_registered, "moved": settings.topic_moved,
              "meetings": settings.topic_meetings}
    headers = [("content-type", CONTENT_TYPE.encode())]
    producer = kafka_producer(settings, linger_ms=settings.publish_linger_ms,
                              max_batch_size=settings.publish_batch_bytes,
                              compression_type=settings.publish_compression)
    await producer.start()
    try:
        counts = {kind: len(await producer.partitions_for(t)) for kind, t in topics.items()}
        groups: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
        for kind, key, value in records:  # untimed: what the workers do for the batched path
            groups.setdefault((kind, partition_of(key, counts[kind])), []).append((key, value))
        started = time.monotonic()
        futures = []
        for (kind, part), recs in groups.items():
            batch = producer.create_batch()
            for key, value in recs:
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    futures.append(await producer.send_batch(batch, topics[kind], partition=part))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None, headers=headers)
            futures.append(await producer.send_batch(batch, topics[kind], partition=part))
        await asyncio.gather(*futures)
        return time.monotonic() - started
    finally:
        await producer.stop()


async def run(args: argparse.Namespace) -> dict[str, float]:
    from services.operations.batch_publishing import publish_batched, worker_count
    from services.operations.publishing import publish
    from services.sample.province import write_province_sample

    base = Settings()
    with tempfile.TemporaryDirectory(prefix="dphp-bench-publish-") as tmp:
        path = Path(tmp) / "sample.jsonl"
        stats = write_province_sample("33", province_voters(args.events), args.seed, path)
        n = stats.events
        print(f"[bench] sample: {n:,} events, {stats.bytes / 1e6:,.0f} MB; workers "
              f"{args.workers or worker_count(base)}", file=sys.stderr)
        used: list[Settings] = []
        rates: dict[str, float] = {"events": n}
        try:
            s = await _topics(base)
            used.append(s)
            old = await publish(s, [path])
            assert old.accepted == n and not old.rejected, "old path: not every event accepted"
            rates["old"] = n / old.seconds
            s = await _topics(base)
            used.append(s)
            new = await publish_batched(s, [path], workers=args.workers or None)
            assert new.accepted == n and not new.rejected, "new path: not every event accepted"
            rates["new"] = n / new.seconds
            records = _records(path)
            s = await _topics(base)
            used.append(s)
            rates["bare_send"] = n / await bare_send(s, records)
            s = await _topics(base)
            used.append(s)
            rates["bare_batch"] = n / await bare_batch(s, records)
        finally:
            if used:
                await _drop(used)
    return rates


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.publish", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=500_000, help="about this many events (default 500,000)")
    p.add_argument("--workers", type=int, default=0, help="validating processes (default: DPHP_PUBLISH_WORKERS)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    try:
        r = asyncio.run(run(args))
    except (OSError, AssertionError, RuntimeError) as exc:
        print(f"[bench] failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for name in ("old", "new", "bare_send", "bare_batch"):
        print(f"{name:>11}  {r[name]:>10,.0f} events/s  {r[name] / r['bare_batch']:>5.2f} of the limit")
    print(f"events={r['events']:.0f} old={r['old']:.0f} new={r['new']:.0f} bare_send={r['bare_send']:.0f} "
          f"bare_batch={r['bare_batch']:.0f} new/old={r['new'] / r['old']:.2f} "
          f"new/limit={r['new'] / r['bare_batch']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Status of the projection (positions, end offsets, lag, freshness) and waiting for convergence."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from services.common.settings import Settings
from services.operations.reading import connect_reader

PROJECTION_SERVICES = ("registrations", "movements", "meetings")


async def gather_status(settings: Settings) -> dict[str, Any]:
    """Per consumer group and partition: stored position, end offset and lag; the newest event
    applied, when recaps were last published, and whether every group has caught up (`converged`)."""
    from services.common.kafka import kafka_consumer

    consumer = kafka_consumer(settings, request_timeout_ms=10000)
    try:
        await asyncio.wait_for(consumer.start(), 15)
    except BaseException:
        await consumer.stop()  # else aiokafka warns about an unclosed consumer at exit
        raise
    try:
        conn = await connect_reader(settings)
        try:
            groups = await group_lags(consumer, conn, settings)
            converged = all(g["partitions"] and all(p["lag"] == 0 for p in g["partitions"]) for g in groups)
            fresh = await freshness(conn, settings.db_schema)
            newest, recaps_at = fresh["newest_event_time"], fresh["recaps_published_at"]
            return {"groups": groups, "converged": converged,
                    "newest_event_time": newest.isoformat() if newest else None,
                    "recaps_published_at": recaps_at.isoformat() if recaps_at else None}
        finally:
            await conn.close()
    finally:
        await consumer.stop()


async def group_lags(consumer, conn, settings: Settings, services=PROJECTION_SERVICES) -> list[dict[str, Any]]:
    """Per group of `services`: its topic, and per partition the stored position, the end offset
    and the lag (end offset minus stored position), with the group's total lag and the time a
    position was last stored. `consumer` is a started aiokafka consumer (no group needed), `conn`
    a database connection; the metrics' lag monitor calls this every few seconds."""
    from aiokafka import TopicPartition

    from services.projection.consumer import KINDS

    groups = []
    for service in services:
        topic = KINDS[service].topic(settings)
        group_id = settings.group_id(service)
        parts = await _partitions(consumer, topic)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = await consumer.end_offsets(tps) if tps else {}
        stored, updated = await _positions(conn, settings.db_schema, group_id, topic)
        partitions = [{"partition": tp.partition, "stored_position": stored.get(tp.partition, 0),
                       "end_offset": ends[tp], "lag": ends[tp] - stored.get(tp.partition, 0)} for tp in tps]
        groups.append({"group": group_id, "topic": topic, "partitions": partitions,
                       "lag": sum(p["lag"] for p in partitions),
                       "last_applied_at": updated.isoformat() if updated else None})
    return groups


async def _partitions(consumer, topic: str) -> set[int]:
    # Metadata of a topic the client has not asked about yet may lag: ask until it is there.
    for _ in range(20):
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return parts
        consumer._client.add_topic(topic)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.05)
    return set()


async def _positions(conn, schema: str, group_id: str, topic: str):
    import asyncpg

    try:
        rows = await conn.fetch(
            f"SELECT partition, next_offset, updated_at FROM {schema}.consumer_position "
            "WHERE group_id = $1 AND topic = $2", group_id, topic)
    except asyncpg.UndefinedTableError:
        return {}, None
    return ({r["partition"]: r["next_offset"] for r in rows},
            max((r["updated_at"] for r in rows), default=None))


async def freshness(conn, schema: str) -> dict[str, Any]:
    """The newest event applied and when recaps were last published (None when unknown), from the
    view `freshness`, which the reader role may read too (infra/migrations/008)."""
    import asyncpg

    try:
        row = await conn.fetchrow(f"SELECT newest_event_time, recaps_published_at FROM {schema}.freshness")
    except asyncpg.UndefinedTableError:
        row = None
    return {"newest_event_time": row["newest_event_time"] if row else None,
            "recaps_published_at": row["recaps_published_at"] if row else None}


async def newest_event(conn, schema: str):
    return (await freshness(conn, schema))["newest_event_time"]


async def wait_for_convergence(settings: Settings, timeout: float,
                               progress: Callable[[int, int], None] | None = None) -> float:
    """Waits until every group has caught up with its topic; returns the seconds it took.

    `progress(done, total)` with the records applied of those at the first look, while waiting and
    once at the end; `TimeoutError` after `timeout` seconds."""
    started = time.monotonic()
    status = await gather_status(settings)
    total = sum(p["end_offset"] for g in status["groups"] for p in g["partitions"])
    while not status["converged"]:
        if time.monotonic() - started > timeout:
            raise TimeoutError(
                f"the projection did not converge within {timeout:.0f} s; see `dphp status` and the "
                f"service logs in {settings.state_dir}/logs")
        if progress:
            progress(total - sum(g["lag"] for g in status["groups"]), total)
        await asyncio.sleep(1.0)
        status = await gather_status(settings)
    if progress:
        progress(total, total)
    return time.monotonic() - started


def breaches(status: dict[str, Any], fail_on_lag: int | None = None, max_staleness_s: float | None = None,
             now: dt.datetime | None = None) -> list[str]:
    """What `dphp status --fail-on-lag N --max-staleness S` fails on (exit 3), one line each: a group
    whose total lag exceeds N; a group with lag whose last batch was applied more than S seconds
    ago (or never). A group without lag is fresh however long ago it last applied a batch."""
    now = now or dt.datetime.now(dt.timezone.utc)
    out = []
    for g in status["groups"]:
        if fail_on_lag is not None and g["lag"] > fail_on_lag:
            out.append(f"{g['group']} lags {g['lag']} records (more than {fail_on_lag})")
        if max_staleness_s is not None and g["lag"] > 0:
            applied = dt.datetime.fromisoformat(g["last_applied_at"]) if g["last_applied_at"] else None
            if applied is None or (now - applied).total_seconds() > max_staleness_s:
                since = f"{(now - applied).total_seconds():.0f} s ago" if applied else "never"
                out.append(f"{g['group']} has lag {g['lag']} and last applied a batch {since} "
                           f"(more than {max_staleness_s:g} s)")
    return out

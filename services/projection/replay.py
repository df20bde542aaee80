"""`dphp replay`: rebuild the projection from the topics into a new schema, then switch over.

1. Migrate a fresh schema `<schema>_rebuild` and apply every record of the three topics, from
   the beginning to their end offsets at the start, with the services' own code
   (`ProjectionConsumer`, no consumer group), storing positions under the services' groups. It
   sends no dead letters of invalid records: a service sent those of the records it applied, and
   a service that lags behind the rebuild sends those of the records it passes over after the
   switch-over (one sender for each). It sends those of events the database refuses: they pass
   validation, so a service passing over them could not tell.
2. Catch up close, without any lock: read the live projection's positions, and apply up to them
   (a few rounds, each to the positions read at its start, while the services keep going).
3. Switch over in one transaction, bounded by DPHP_REPLAY_SWITCH_TIMEOUT_S: lock the live
   projection's generation row (waiting at most that long: `lock_timeout`; the services' batch
   transactions read the row first, so new batches wait and those in flight finish), read the
   live positions once - a fixed target, since they cannot move while the lock is held - and
   apply exactly up to it within that time; then rename the live schema to
   `<schema>_replaced_<UTC time>` and the rebuild to `<schema>`, and give both a new generation.
   Readers see the old projection until the commit and the new one after it. The services,
   on their next batch, see the new generation, reconnect and continue on the rebuilt
   projection from its positions.

Before each catch-up the topics' partitions are read again: a partition added since the start
is assigned and read from its beginning. A live position that the topics cannot satisfy (a
partition that does not exist, an offset beyond the partition's end, a topic its group does
not read) is refused instead of waited for. A refusal, a lock not obtained in time or a
catch-up not finished in time stops the replay with one clear line: the transaction is rolled
back, the live projection is untouched (the services continue on it), and the rebuild schema
is dropped.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from aiokafka import TopicPartition

from services.common.db import connect, migrate
from services.common.errors import OperatorError
from services.common.kafka import kafka_consumer
from services.common.settings import Settings
from services.common.topics import partitions_of
from services.operations.grants import grant
from services.projection.consumer import KINDS, ProjectionConsumer

log = logging.getLogger("dphp.replay")

_Key = tuple[str, str, int]  # group_id, topic, partition


async def _positions(conn, schema: str, groups: dict[str, str]) -> dict[_Key, int]:
    """The stored positions of the services' groups in a schema (those past offset 0)."""
    rows = await conn.fetch(
        f"SELECT group_id, topic, partition, next_offset FROM {schema}.consumer_position "
        "WHERE group_id = ANY($1::text[]) AND next_offset > 0", list(groups))
    return {(r["group_id"], r["topic"], r["partition"]): r["next_offset"] for r in rows}


@dataclass
class ReplayResult:
    events: int  # records applied to the rebuild (invalid ones counted apart)
    invalid: int
    seconds: float
    schema: str  # the rebuilt projection's schema (the live name)
    replaced: str | None  # where the previous projection is kept (None: dropped)


async def replay(settings: Settings, keep_old: bool = True,
                 progress: Callable[[int, int], None] | None = None) -> ReplayResult:
    """Rebuilds the projection of `settings.db_schema` from the topics and switches over."""
    started = time.perf_counter()
    live = settings.db_schema
    target = f"{live}_rebuild"
    # One replay of a projection at a time: held on its own connection until the end.
    guard = await connect(settings)
    try:
        if not await guard.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", f"dphp-replay:{live}"):
            raise OperatorError(f"another dphp replay of the projection {live} is running")
        await guard.execute(f"DROP SCHEMA IF EXISTS {target} CASCADE")  # a replay cut short before
        try:
            return await _replay(settings, live, target, keep_old, progress, started)
        except BaseException:
            # Stopped (refused, timed out, failed): the live projection is untouched; the rebuild goes.
            try:
                await guard.execute(f"SET lock_timeout = '{_ms(settings.replay_switch_timeout_s)}ms'")
                await guard.execute(f"DROP SCHEMA IF EXISTS {target} CASCADE")
            except Exception as exc:  # the next replay drops it
                log.warning("could not drop %s after the replay stopped: %s", target, exc)
            raise
    finally:
        await guard.close()  # releases the lock


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


async def _replay(settings: Settings, live: str, target: str, keep_old: bool,
                  progress: Callable[[int, int], None] | None, started: float) -> ReplayResult:
    topics = [kind.topic(settings) for kind in KINDS.values()]
    partitions = await partitions_of(settings, topics)
    missing = [t for t, ids in partitions.items() if not ids]
    if missing:
        raise OperatorError(f"topic(s) not found on the broker: {', '.join(missing)} (`dphp dev up` creates them)")
    rebuild = settings.model_copy(update={"db_schema": target})
    await migrate(rebuild)
    await migrate(settings)  # the live schema exists and is current (it gets a new generation)
    # A secured database: each service's privileges on the rebuild, as on the live schema.
    conn = await connect(settings)
    try:
        await grant(conn, target)
    finally:
        await conn.close()

    projections = {kind.topic(settings): ProjectionConsumer(rebuild, name, dead_letter=False)
                   for name, kind in KINDS.items()}
    consumer = kafka_consumer(settings, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                              max_partition_fetch_bytes=2 * 1024 * 1024)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t, ids in partitions.items() for p in ids]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        for p in projections.values():
            p.consumer_ref = lambda: consumer
            await p.start()
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        total = sum(ends[tp] - starts[tp] for tp in tps)
        done = 0

        async def step(timeout_ms: int) -> int:
            batch = await consumer.getmany(timeout_ms=timeout_ms, max_records=settings.batch_max_records)
            by_topic: dict[str, list] = {}
            for tp, records in batch.items():
                by_topic.setdefault(tp.topic, []).extend(records)
            for topic, records in by_topic.items():
                # Under way when it returns: the next batch is validated while this one is stored.
                await projections[topic].submit(records)
            return sum(len(r) for r in by_topic.values())

        async def flush() -> None:
            for p in projections.values():
                await p.flush()

        async def behind_start() -> bool:
            for tp in tps:
                if await consumer.position(tp) < ends[tp]:
                    return True
            return False

        assigned = set(tps)

        async def follow_partitions() -> None:
            """Assigns the partitions added to the topics since the rebuild started (from their beginning)."""
            now = await partitions_of(settings, topics)
            new = [TopicPartition(t, p) for t, ids in now.items() for p in ids if TopicPartition(t, p) not in assigned]
            if not new:
                return
            at = {tp: await consumer.position(tp) for tp in assigned}
            assigned.update(new)
            consumer.assign(sorted(assigned))
            for tp, offset in at.items():
                consumer.seek(tp, offset)
            await consumer.seek_to_beginning(*new)
            log.info("partitions added since the rebuild started, now read too: %s",
                     ", ".join(f"{tp.topic}[{tp.partition}]" for tp in new))

        async def catch_up(conn, wanted: dict[_Key, int], deadline: float, when: str) -> None:
            """Applies records until the rebuild's stored positions reach `wanted`; refuses a
            position the topics cannot satisfy; stops at `deadline`."""
            await follow_partitions()
            ends = await consumer.end_offsets(sorted(assigned))
            firsts = await consumer.beginning_offsets(sorted(assigned))
            problems = []
            for (group, topic, partition), offset in sorted(wanted.items()):
                tp = TopicPartition(topic, partition)
                if groups[group] != topic:
                    problems.append(f"{group} {topic}[{partition}] at {offset}: the group reads {groups[group]}")
                elif tp not in ends:
                    problems.append(f"{group} {topic}[{partition}] at {offset}: no such partition")
                elif offset > ends[tp]:
                    problems.append(f"{group} {topic}[{partition}] at {offset}: beyond its end offset {ends[tp]}")
            if problems:
                more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
                raise OperatorError(
                    f"replay stopped {when}: the live projection {live} has stored positions that the topics "
                    f"cannot satisfy ({'; '.join(problems[:5])}{more}); were topics deleted or recreated? "
                    "nothing was switched, the live projection is untouched, the rebuild is dropped")
            while True:
                have = await _positions(conn, target, groups)
                # A position below a partition's first offset (records deleted) has nothing left to apply.
                short = {k: o for k, o in wanted.items()
                         if have.get(k, 0) < o and firsts[TopicPartition(k[1], k[2])] < o}
                if not short:
                    return
                if time.monotonic() > deadline:
                    shown = ", ".join(f"{t}[{p}] {have.get((g, t, p), 0)} of {o}"
                                      for (g, t, p), o in sorted(short.items())[:5])
                    raise OperatorError(
                        f"replay stopped {when}: the rebuild did not catch up with the live projection {live} "
                        f"within {settings.replay_switch_timeout_s:g} s (DPHP_REPLAY_SWITCH_TIMEOUT_S; "
                        f"behind: {shown}); nothing was switched, the live projection is untouched, "
                        "the rebuild is dropped")
                await step(200)
                await flush()

        # 1. Catch up with the topics as they were at the start.
        while await behind_start():
            done += await step(1000)
            if progress is not None:
                progress(min(done, total), total)
        await flush()

        # 2. Catch up close with the live projection, without a lock; it keeps moving meanwhile.
        timeout = settings.replay_switch_timeout_s
        groups = {settings.group_id(name): kind.topic(settings) for name, kind in KINDS.items()}
        conn = await connect(settings)
        try:
            for _ in range(3):
                wanted = await _positions(conn, live, groups)
                await catch_up(conn, wanted, time.monotonic() + timeout, "before the switch-over")
                if wanted == await _positions(conn, live, groups):
                    break  # the services stood still meanwhile: nothing more to catch up with

            # 3. Switch over, to a fixed target, bounded.
            replaced = f"{live}_replaced_{dt.datetime.now(dt.timezone.utc):%Y%m%d%H%M%S}"
            try:
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL lock_timeout = '{_ms(timeout)}ms'")
                    generation = await conn.fetchval(f"SELECT generation FROM {live}.projection_config FOR UPDATE")
                    # While the lock is held no batch of the services stores anything: the
                    # positions read now are the target, read once.
                    wanted = await _positions(conn, live, groups)
                    await catch_up(conn, wanted, time.monotonic() + timeout, "during the switch-over")
                    new_generation = (generation or 0) + 1
                    await conn.execute(f"UPDATE {live}.projection_config SET generation = $1", new_generation)
                    await conn.execute(f"UPDATE {target}.projection_config SET generation = $1", new_generation)
                    # What the report service published goes with the projection: it then publishes
                    # only the recaps that the rebuild changed, and zeros for the regions it emptied.
                    if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{live}.recap_published"):
                        await conn.execute(f"INSERT INTO {target}.recap_published SELECT * FROM {live}.recap_published")
                    await conn.execute(f"ALTER SCHEMA {live} RENAME TO {replaced}")
                    await conn.execute(f"ALTER SCHEMA {target} RENAME TO {live}")
            except asyncpg.LockNotAvailableError as exc:
                raise OperatorError(
                    f"replay stopped: could not lock the live projection {live} within {timeout:g} s "
                    f"(DPHP_REPLAY_SWITCH_TIMEOUT_S): a transaction holds it (a service's batch, a frozen "
                    f"instance, a reader's lock); nothing was switched, the live projection is untouched; "
                    f"run dphp replay again ({exc})") from None
            if not keep_old:
                await conn.execute(f"DROP SCHEMA {replaced} CASCADE")
        finally:
            await conn.close()
        invalid = sum(p.dead_lettered for p in projections.values())
        return ReplayResult(sum(p.applied for p in projections.values()), invalid,
                            time.perf_counter() - started, live, replaced if keep_old else None)
    finally:
        for p in projections.values():
            await p.stop()
        await consumer.stop()


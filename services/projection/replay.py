"""`dphp replay`: rebuild the projection from the topics into a new schema, then switch over.

1. Migrate a fresh schema `<schema>_rebuild` and apply every record of the three topics, from
   the beginning, with the services' own code (`ProjectionConsumer`, no consumer group, no dead
   letters: the services sent those already), storing positions under the services' groups.
2. Switch over in one transaction: lock the live projection's generation row (the services'
   batch transactions read it first, so new batches wait and those in flight finish), apply
   what the live projection has and the rebuild has not yet (until the rebuild's positions are
   at or past the live ones on every partition), rename the live schema to
   `<schema>_replaced_<UTC time>` and the rebuild to `<schema>`, and give both a new generation.
   Readers see the old projection until the commit and the new one after it. The services,
   on their next batch, see the new generation, reconnect and continue on the rebuilt
   projection from its positions.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.db import connect, migrate
from services.common.errors import OperatorError
from services.common.settings import Settings
from services.common.topics import partitions_of
from services.projection.consumer import KINDS, ProjectionConsumer

log = logging.getLogger("dphp.replay")


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
        return await _replay(settings, live, target, keep_old, progress, started)
    finally:
        await guard.close()  # releases the lock


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

    projections = {kind.topic(settings): ProjectionConsumer(rebuild, name, dead_letter=False)
                   for name, kind in KINDS.items()}
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=2 * 1024 * 1024, **settings.kafka_security_kwargs())
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

        # 1. Catch up with the topics as they were at the start.
        while await behind_start():
            done += await step(1000)
            if progress is not None:
                progress(min(done, total), total)
        await flush()

        # 2. Switch over.
        replaced = f"{live}_replaced_{dt.datetime.now(dt.timezone.utc):%Y%m%d%H%M%S}"
        groups = [settings.group_id(name) for name in KINDS]
        conn = await connect(settings)
        try:
            async with conn.transaction():
                generation = await conn.fetchval(f"SELECT generation FROM {live}.projection_config FOR UPDATE")
                while True:
                    behind = await conn.fetchval(
                        f"""SELECT count(*) FROM {live}.consumer_position l
                            LEFT JOIN {target}.consumer_position r USING (group_id, topic, partition)
                            WHERE l.group_id = ANY($1::text[]) AND coalesce(r.next_offset, 0) < l.next_offset""",
                        groups)
                    if behind == 0:
                        break
                    done += await step(200)  # the live services were ahead: catch up with them
                    await flush()
                new_generation = (generation or 0) + 1
                await conn.execute(f"UPDATE {live}.projection_config SET generation = $1", new_generation)
                await conn.execute(f"UPDATE {target}.projection_config SET generation = $1", new_generation)
                # What the report service published goes with the projection: it then publishes
                # only the recaps that the rebuild changed, and zeros for the regions it emptied.
                if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{live}.recap_published"):
                    await conn.execute(f"INSERT INTO {target}.recap_published SELECT * FROM {live}.recap_published")
                await conn.execute(f"ALTER SCHEMA {live} RENAME TO {replaced}")
                await conn.execute(f"ALTER SCHEMA {target} RENAME TO {live}")
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


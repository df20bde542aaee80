"""Following the recap topic (`dphp subscribe`): the recaps of a region as they are published."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from schemas.recap import Recap
from services.common.errors import InvalidArgument
from services.common.settings import Settings
from services.projection.recap import region_contains


def recap_filter(region: str | None, level: str | None) -> Callable[[Recap], bool]:
    """Which recaps to show: those of `region` or inside it (all without one), of `level`
    (every level for `all`; default: the level below the region's, every level without a region)."""
    from services.operations.reading import resolve_level

    if region is None:
        region = "ID"
        level = level or "all"
    if level != "all":
        level = resolve_level(region, level)
    else:
        resolve_level(region, None if region != "ID" else "nasional")  # checks the region

    def wanted(recap: Recap) -> bool:
        return (level == "all" or recap.level == level) and region_contains(region, recap.region_code)

    return wanted


async def follow(settings: Settings, wanted: Callable[[Recap], bool], on_recap: Callable[[Recap], None], *,
                 from_beginning: bool = False, exit_at_end: bool = False,
                 on_skipped: Callable[[object, Exception], None] | None = None) -> int:
    """Calls `on_recap` for every wanted recap on the recap topic: from its beginning (the latest
    recap of every region, then the changes) or only new ones. With `exit_at_end`, returns once
    the topic's end at the start is reached; otherwise follows until cancelled. Returns the count.
    A record that is not a recap message (a tombstone, another producer's bytes) goes to
    `on_skipped` (by default a warning naming its partition and offset) and following goes on."""
    on_skipped = on_skipped or _warn_skipped
    from aiokafka import TopicPartition

    from services.common.kafka import kafka_consumer

    topic = settings.topic_recap
    consumer = kafka_consumer(settings, enable_auto_commit=False, group_id=None,
                              auto_offset_reset="earliest" if from_beginning else "latest")
    await asyncio.wait_for(consumer.start(), 15)
    shown = 0
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            raise InvalidArgument(f"the recap topic {topic!r} does not exist (is the stack up? `dphp dev up`)")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        ends = await consumer.end_offsets(tps)
        while True:
            if exit_at_end and all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                return shown
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batches.values():
                for record in records:
                    try:
                        recap = Recap.from_json(record.value if record.value is not None else b"")
                    except ValueError as exc:  # pydantic's ValidationError too: not a recap message
                        on_skipped(record, exc)
                        continue
                    if wanted(recap):
                        on_recap(recap)
                        shown += 1
    finally:
        await consumer.stop()


def _warn_skipped(record, exc: Exception) -> None:
    import logging

    reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
    logging.getLogger("dphp.subscribe").warning(
        "skipped a record that is not a recap message (partition %s, offset %s): %s",
        record.partition, record.offset, reason)


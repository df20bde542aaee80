"""The report service's work: publish the recap of every region whose figures changed.

Every `report_interval_s` seconds it looks at the projection; when a batch was stored since the
last look (the consumers' stored positions moved), it reads every region's recap in one snapshot,
applies the privacy threshold (a small TPS's disability figures withheld, CONTRACT 5), compares
each with what it last published (table `recap_published`), publishes the changed ones
to the compacted recap topic (key: the region code), waits for the broker's acknowledgements,
then records them. A region that no longer has any voter gets a zero recap. A crash between
publishing and recording publishes those recaps again: the topic keeps the latest per region.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import asyncpg

from schemas.recap import RECAP_COUNT_FIELDS, Recap
from schemas.recap import DISABILITY_TYPES
from services.projection.privacy import public_row
from services.common.metrics import ReportMetrics
from services.projection.recap import region_display_name

log = logging.getLogger("dphp.report")

#: The figures compared and published: the counting fields and the disability codes.
FIGURE_COLUMNS: tuple[str, ...] = (*RECAP_COUNT_FIELDS, *(f"d{k}" for k in DISABILITY_TYPES))
Figures = dict[str, int | None]  # None: withheld (the privacy threshold)


def changed_regions(
    current: Mapping[str, tuple[str, Figures]], published: Mapping[str, tuple[str, Figures]], *, min_voters: int
) -> list[tuple[str, str, Figures]]:
    """(level, region_code, figures) to publish: regions whose figures differ from the last
    published (or were never published), and zeros for published regions that have none now.

    Figures as published: with the privacy threshold applied (`services/projection/privacy.py`),
    and compared so, so that a change of a withheld figure alone publishes nothing (the timing of
    a message would otherwise tell that a small TPS's disability figures changed)."""
    def shown(level: str, figures: Figures) -> Figures:
        return public_row(figures, min_voters, level=level)

    out = [(level, code, shown(level, figures)) for code, (level, figures) in current.items()
           if published.get(code, (None, None))[1] != shown(level, figures)]
    zero = dict.fromkeys(FIGURE_COLUMNS, 0)
    out += [(level, code, shown(level, zero)) for code, (level, figures) in published.items()
            if code not in current and figures != shown(level, zero)]
    return sorted(out, key=lambda r: r[1])


def recap_message(level: str, code: str, figures: Figures, as_of: dt.datetime | None,
                  published_at: dt.datetime) -> Recap:
    fields: dict[str, Any] = {f: figures[f] for f in RECAP_COUNT_FIELDS}
    withheld = figures["d1"] is None  # the privacy threshold (see changed_regions)
    fields["disability_by_type"] = None if withheld else {k: figures[f"d{k}"] for k in DISABILITY_TYPES}
    return Recap.model_validate({"level": level, "region_code": code, "name": region_display_name(code),
                                 **fields, "as_of": as_of, "published_at": published_at})


Send = Callable[[Sequence[Recap]], Awaitable[None]]


class RecapPublisher:
    """One look at the projection in `schema` and the recaps it publishes through `send`."""

    def __init__(self, schema: str, send: Send, metrics: ReportMetrics | None = None) -> None:
        self.s = schema
        self.send = send
        self.metrics = metrics
        self._seen: tuple | None = None  # the stored positions at the last look
        self._as_of: dt.datetime | None = None  # the newest event included in the recaps published
        self.published = 0

    async def publish_changes(self, conn: asyncpg.Connection) -> int:
        """Publishes the recaps that changed since the last look; returns how many."""
        started = time.perf_counter()
        published = await self._publish_changes(conn)
        if self.metrics is not None:
            self.metrics.look.observe(time.perf_counter() - started)
            self.metrics.last_look.set_to_current_time()
            self.metrics.published.inc(published)
            if self._as_of is not None:
                self.metrics.as_of.set(self._as_of.timestamp())
        return published

    async def _publish_changes(self, conn: asyncpg.Connection) -> int:
        s = self.s
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            # The privacy threshold as the projection records it (the one the reader's views
            # apply), not this process's setting: the topic and the views never disagree.
            seen = tuple(await conn.fetchrow(
                f"SELECT (SELECT generation FROM {s}.projection_config), sum(next_offset), count(*), "
                f"(SELECT min_voters FROM {s}.privacy_config) FROM {s}.consumer_position"))
            if seen == self._seen:
                return 0
            rows = await conn.fetch(f"SELECT level, region_code, {', '.join(FIGURE_COLUMNS)} FROM {s}.recap_full")
            as_of = await conn.fetchval(f"SELECT max(event_time) FROM {s}.voter_event")
            published = await conn.fetch(f"SELECT region_code, level, figures FROM {s}.recap_published")
        current = {r["region_code"]: (r["level"], {f: int(r[f]) for f in FIGURE_COLUMNS}) for r in rows}
        before = {r["region_code"]: (r["level"], json.loads(r["figures"])) for r in published}
        changes = changed_regions(current, before, min_voters=seen[3])
        if changes:
            now = dt.datetime.now(dt.timezone.utc)
            await self.send([recap_message(level, code, figures, as_of, now) for level, code, figures in changes])
            await conn.executemany(
                f"""INSERT INTO {s}.recap_published (region_code, level, figures, as_of, published_at)
                    VALUES ($1, $2, $3::jsonb, $4, $5)
                    ON CONFLICT (region_code) DO UPDATE SET level = excluded.level, figures = excluded.figures,
                        as_of = excluded.as_of, published_at = excluded.published_at""",
                [(code, level, json.dumps(figures), as_of, now) for level, code, figures in changes],
            )
            self.published += len(changes)
            self._as_of = as_of
            log.info("published %d recaps (newest event included: %s)", len(changes), as_of)
        self._seen = seen
        return len(changes)

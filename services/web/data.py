"""What the web pages and the JSON API read, in one place: every read goes through
`services/operations/reading.py`, the layer of `dphp report` and `dphp meetings`, so that the API
equals their JSON output. Every read is the reader's (`public=True`): a small TPS's disability figures withheld
(CONTRACT 5, privacy threshold).

Speed: a region page reads the view `recap_full` once or twice (the region's own row and its
children's rows); the results are cached per (region, level, as-of) and keyed by the projection's
stored positions, so a page is computed again only after the services stored a batch.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from typing import Any

import asyncpg

from services.common.settings import Settings
from services.operations import reading

CACHE_ENTRIES = 2048


class WebData:
    """Reads of the web service over a small connection pool (reader session settings)."""

    def __init__(self, settings: Settings, pool_size: int = 4, cache: bool = True) -> None:
        self.settings = settings
        self.cache = cache
        self.schema = settings.db_schema
        self.pool_size = pool_size
        self.pool: asyncpg.Pool | None = None
        self._cache: OrderedDict[tuple, Any] = OrderedDict()

    async def start(self) -> None:
        from services.common.db import DatabaseUnreachable
        from services.projection.queries import READER_SERVER_SETTINGS

        try:
            self.pool = await asyncpg.create_pool(
                self.settings.database_dsn, min_size=1, max_size=self.pool_size, timeout=10,
                server_settings=READER_SERVER_SETTINGS)
        except (OSError, TimeoutError, asyncpg.CannotConnectNowError) as exc:
            raise DatabaseUnreachable(f"cannot reach PostgreSQL for the web service: {exc}") from exc

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def _positions(self, conn) -> tuple | None:
        """The stored positions of every consumer group: they move with every stored batch."""
        try:
            rows = await conn.fetch(
                f"SELECT group_id, topic, partition, next_offset FROM {self.schema}.consumer_position "
                "ORDER BY 1, 2, 3")
        except (asyncpg.UndefinedTableError, asyncpg.InsufficientPrivilegeError):
            return None  # no cache without positions
        return tuple(tuple(r) for r in rows)

    async def _cached(self, key: tuple, compute) -> Any:
        async with self.pool.acquire() as conn:
            positions = await self._positions(conn) if self.cache else None
            full_key = (positions, *key)
            if positions is not None and full_key in self._cache:
                self._cache.move_to_end(full_key)
                return self._cache[full_key]
            value = await compute(conn)
        if positions is not None:
            self._cache[full_key] = value
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return value

    async def recap(self, region: str, level: str, as_of: dt.datetime | None = None) -> list[dict]:
        """Rows as `dphp report --region REGION --level LEVEL [--as-of T] --format json` prints them."""

        async def compute(conn) -> list[dict]:
            rows = await reading.recap_rows(conn, self.schema, region, level, as_of, public=True)
            return [{"level": r["level"], "region_code": r["region_code"], "name": r["name"],
                     **{k: v for k, v in r.items() if k not in ("level", "region_code", "name")}}
                    for r in rows]

        return await self._cached(("recap", region, level, as_of), compute)

    async def meetings(self, region: str) -> list[dict]:
        """Meetings of the region and inside it, as `dphp meetings --region REGION` reads them."""

        async def compute(conn) -> list[dict]:
            return await reading.meeting_rows(conn, self.schema, region, public=True)

        return await self._cached(("meetings", region), compute)

    async def meeting(self, meeting_id: str) -> dict | None:
        """One meeting with its computed figures (None when there is no such meeting)."""
        async with self.pool.acquire() as conn:  # one pooled connection: no new one per request
            found = await conn.fetchrow(
                f"SELECT level, region_code FROM {self.schema}.meetings WHERE meeting_id = $1", meeting_id)
            if found is None:
                return None
            rows = await reading.meeting_rows(conn, self.schema, found["region_code"], (found["level"],), public=True)
        return next((m for m in rows if m["meeting_id"] == meeting_id), None)

    async def freshness(self) -> dict[str, dt.datetime | None]:
        async with self.pool.acquire() as conn:  # not cached: recaps are published between batches
            return await read_freshness(conn, self.schema)


async def read_freshness(conn, schema: str) -> dict[str, dt.datetime | None]:
    """The newest event applied and when the recaps were last published (None when unknown)."""
    from services.operations.status import freshness

    return await freshness(conn, schema)

"""Reading the projection: recaps and meetings, exact for operators or, with `public=True`, as the
reader role dphp_reader sees them (views and as-of function of migration 007, privacy threshold)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from services.common.errors import InvalidArgument
from services.common.settings import Settings
from services.operations.regions import check_region, region_name
from services.projection.recap import LEVELS, level_below, level_of


def parse_as_of(value: str | None, name: str = "--as-of") -> dt.datetime | None:
    """An as-of time given by a user: RFC 3339 with offset, within the bounds of event times
    (CONTRACT 2, version 1.1); refuses anything else (`InvalidArgument`, one line)."""
    from schemas.events import TIME_BOUNDS_TEXT, TIME_MAX, TIME_MIN

    if value is None or value.strip() == "":
        return None
    shown = value if len(value) <= 40 else value[:40] + "..."
    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"{name} {shown!r} is not an RFC 3339 time (e.g. 2024-08-11T09:00:00+07:00)") from None
    if t.tzinfo is None:
        raise InvalidArgument(f"{name} {shown!r} has no offset; give one, e.g. +07:00")
    try:
        inside = TIME_MIN <= t <= TIME_MAX
    except OverflowError:  # an offset that moves the instant past the calendar's edge
        inside = False
    if not inside:
        raise InvalidArgument(f"{name} {shown!r} is out of range: give a time {TIME_BOUNDS_TEXT.split(' (')[0]}")
    return t


async def connect_reader(settings: Settings):
    """A connection with the reader sessions' settings (the views of `dphp_reader`)."""
    from services.common.db import connect
    from services.projection.queries import READER_SERVER_SETTINGS

    return await connect(settings, server_settings=READER_SERVER_SETTINGS)


@asynccontextmanager
async def reader(settings: Settings) -> AsyncIterator[Any]:
    conn = await connect_reader(settings)
    try:
        yield conn
    finally:
        await conn.close()


def resolve_level(region: str, level: str | None) -> str:
    """The level to report inside `region`: the one given, or the level below the region's own;
    refuses (`InvalidArgument`) an unknown region, an unknown level or one above the region's."""
    check_region(region)
    own = level_of(region)
    if level is None:
        level = level_below(own)
    if level not in LEVELS:
        raise InvalidArgument(f"--level {level!r}: choose one of {', '.join(LEVELS)}")
    if LEVELS.index(level) > LEVELS.index(own):  # LEVELS runs from the finest to the coarsest
        raise InvalidArgument(f"--level {level} is above the region's own level ({own})")
    return level


async def recap_rows(conn, schema: str, region: str, level: str, as_of: dt.datetime | None = None,
                     *, public: bool = False) -> list[dict]:
    """One recap row (with the region's `name`) for every region of `level` inside `region`.

    `public=True`: the figures a reader sees (role dphp_reader: the privacy threshold applied,
    CONTRACT 5); otherwise the exact figures of an operator (a role that reads the tables)."""
    from services.projection import queries

    rows = await queries.report(conn, schema, region, level, as_of, public=public)
    for r in rows:
        r["name"] = region_name(r["region_code"])
    return rows


async def reads_exact_figures(conn, schema: str) -> bool:
    """Whether the connection's role may read the exact recap (an operator's), not only the
    reader's views (dphp_reader: the privacy threshold applied)."""
    return await conn.fetchval("SELECT has_table_privilege($1, 'SELECT')", f"{schema}.recap_full")


async def report(settings: Settings, region: str, level: str, as_of: dt.datetime | None = None,
                 *, public: bool | None = None) -> list[dict]:
    """`recap_rows` of a level (see `resolve_level`), each row starting with level, code and name;
    `public=None`: the figures the settings' database role may see (exact for an operator)."""
    async with reader(settings) as conn:
        if public is None:
            public = not await reads_exact_figures(conn, settings.db_schema)
        rows = await recap_rows(conn, settings.db_schema, region, level, as_of, public=public)
    return [{"level": r["level"], "region_code": r["region_code"], "name": r["name"],
             **{k: r[k] for k in r if k not in ("level", "region_code", "name")}} for r in rows]


async def meetings(settings: Settings, region: str | None = None, levels: tuple[str, ...] | None = None,
                   *, public: bool | None = None) -> list[dict]:
    """Meetings (of `region` or inside it) with attendees, declared, computed and discrepancy;
    `public=True` works for the reader role (no access to the voters' tables); `None`: chosen by
    the settings' database role."""
    if region:
        check_region(region)  # before connecting: an unknown region is a usage error, whatever the database
    async with reader(settings) as conn:
        if public is None:
            public = not await reads_exact_figures(conn, settings.db_schema)
        return await meeting_rows(conn, settings.db_schema, region, levels, public=public)


async def meeting_rows(conn, schema: str, region: str | None = None, levels: tuple[str, ...] | None = None,
                       *, public: bool) -> list[dict]:
    """`meetings` on a connection the caller holds (the web service's pool)."""
    from services.projection import queries

    if region:
        check_region(region)
    return await queries.meetings(conn, schema, region, levels=levels, public=public)

"""Read side of the projection: recap rows (current or as of a time) and meetings."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from schemas.recap import DECLARED_FIELDS, RECAP_COUNT_FIELDS
from schemas.regions import level_of

#: Session settings of a connection that runs these queries (asyncpg `server_settings`). The
#: same statement serves a desa at one cutoff and a kabupaten at another, whose best plans
#: differ; a generic plan (chosen after five executions of a prepared statement) made the
#: desa meetings of a full kabupaten ten times slower.
READER_SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


def _region_filter(region_code: str, column: str, first_param: int) -> tuple[str, list[Any]]:
    """SQL condition for `column` (a desa code or TPS code) lying in the region."""
    if region_code == "ID":
        return "true", []
    if "/" in region_code:
        return f"{column} = ${first_param}", [region_code]
    # Inside a desa are its TPS (`33.16.01.2001/001`); inside larger regions, codes with more parts.
    below = "/%" if region_code.count(".") == 3 else ".%"
    return f"({column} = ${first_param} OR {column} LIKE ${first_param + 1})", [region_code, region_code + below]


def _row(record: asyncpg.Record) -> dict[str, Any]:
    row = {"level": record["level"], "region_code": record["region_code"]}
    for f in RECAP_COUNT_FIELDS:
        row[f] = record[f]
        if f == "disabled":  # null when withheld (the privacy threshold: readers' rows only)
            row["disability_by_type"] = (None if record["d1"] is None
                                         else {str(k): record[f"d{k}"] for k in range(1, 7)})
    return row


#: `report` reads a kabupaten or a smaller region through `recap_as_of` at the end of time (no
#: event is later, so nothing is corrected): that function groups only the region's TPS rows,
#: where the views group every TPS row before the region is filtered. Measured on the full
#: Jawa Tengah run (102,167 TPS rows, 27.5 M voter events; p50 of 5): a kabupaten's kecamatan
#: 792 -> 32 ms, a kecamatan's desa 831 -> 3.9 ms, a desa's TPS 929 -> 2.6 ms. For a whole
#: province the function took 2.7 s against the views' 0.9 s, so provinces and the nation
#: keep the views.
END_OF_TIME = dt.datetime.max.replace(tzinfo=dt.timezone.utc)  # asyncpg sends it as 'infinity'
_READ_THROUGH_VIEWS = ("nasional", "provinsi")


async def report(
    conn: asyncpg.Connection, schema: str, region_code: str, level: str, as_of: dt.datetime | None = None,
    *, public: bool = False,
) -> list[dict[str, Any]]:
    """Recap rows of every region of `level` inside `region_code` (itself when the levels match);
    `public`: as readers see them (the privacy threshold applied, from the reader's views)."""
    if as_of is None and level_of(region_code) not in _READ_THROUGH_VIEWS:
        as_of = END_OF_TIME
    if as_of is not None:
        rows = await recap_as_of(conn, schema, region_code, as_of, public=public)
        return [r for r in rows if r["level"] == level]
    cond, params = _region_filter(region_code, "region_code", 2)
    view = "recap_public" if public else "recap_full"
    records = await conn.fetch(
        f"SELECT * FROM {schema}.{view} WHERE level = $1 AND {cond} ORDER BY region_code",
        level, *params,
    )
    return [_row(r) for r in records]


async def recap_as_of(
    conn: asyncpg.Connection, schema: str, region_code: str, t: dt.datetime, *, public: bool = False
) -> list[dict[str, Any]]:
    """Every level's rows inside `region_code` over the events with time <= t only.

    The SQL is defined once, as the function `recap_as_of` (migration 007); readers call
    `recap_as_of_public`, the same with the privacy threshold applied, which runs as the schema's
    owner so that a reader needs no access to the voters' tables."""
    function = "recap_as_of_public" if public else "recap_as_of"
    records = await conn.fetch(f"SELECT * FROM {schema}.{function}($1, $2, $3)", schema, region_code, t)
    return [_row(r) for r in records]


async def meetings(
    conn: asyncpg.Connection, schema: str, region_code: str | None = None, levels: tuple[str, ...] | None = None,
    *, public: bool = False,
) -> list[dict[str, Any]]:
    """Meetings in the region with declared, computed (as-of recap at cutoff) and discrepancy;
    `public`: through the reader's view and as-of function (the computed figures are the same)."""
    if region_code and region_code != "ID":
        cond, params = _region_filter(region_code, "region_code", 1)
    else:
        cond, params = "true", []
    if levels:
        cond += f" AND level = ANY(${len(params) + 1}::text[])"
        params.append(list(levels))
    records = await conn.fetch(f"SELECT * FROM {schema}.meetings WHERE {cond} ORDER BY meeting_id", *params)
    result = []
    for m in records:
        cutoff = m["data_cutoff"] or m["held_at"]
        rows = await recap_as_of(conn, schema, m["region_code"], cutoff, public=public)
        own = next((r for r in rows if r["region_code"] == m["region_code"]), None)
        computed = {f: (own[f] if own else 0) for f in DECLARED_FIELDS}
        declared = _json(m["declared"])
        discrepancy = {f: declared[f] - computed[f] for f in DECLARED_FIELDS} if declared is not None else None
        result.append({
            "meeting_id": m["meeting_id"], "level": m["level"], "region_code": m["region_code"],
            "stage": m["stage"], "held_at": m["held_at"].isoformat(),
            "data_cutoff": m["data_cutoff"].isoformat() if m["data_cutoff"] else None,
            "venue": m["venue"], "attendees": _json(m["attendees"]), "declared": declared,
            "computed": computed, "discrepancy": discrepancy, "notes": m["notes"],
        })
    return result


def _json(value: Any) -> Any:
    import orjson

    if value is None or not isinstance(value, (str, bytes)):
        return value
    return orjson.loads(value)

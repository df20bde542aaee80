"""Read side of the projection: recap rows (current or as of a time) and meetings."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from schemas.recap import DECLARED_FIELDS, RECAP_COUNT_FIELDS
from services.projection.recap import region_contains

#: Session settings of a connection that runs these queries (asyncpg `server_settings`). The
#: same statement serves a desa at one cutoff and a kabupaten at another, whose best plans
#: differ; a generic plan (chosen after five executions of a prepared statement) made the
#: desa meetings of a full kabupaten ten times slower.
READER_SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}
# Counting the events after a cutoff stops here (the choice of plan needs no more).
LATE_EVENTS_SCAN_LIMIT = 1_000_000


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
        if f == "disabled":
            row["disability_by_type"] = {str(k): record[f"d{k}"] for k in range(1, 7)}
    return row


async def report(
    conn: asyncpg.Connection, schema: str, region_code: str, level: str, as_of: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Recap rows of every region of `level` inside `region_code` (itself when the levels match)."""
    if as_of is not None:
        rows = await recap_as_of(conn, schema, region_code, as_of)
        return [r for r in rows if r["level"] == level]
    cond, params = _region_filter(region_code, "region_code", 2)
    records = await conn.fetch(
        f"SELECT * FROM {schema}.recap_full WHERE level = $1 AND {cond} ORDER BY region_code",
        level, *params,
    )
    return [_row(r) for r in records]


async def recap_as_of(
    conn: asyncpg.Connection, schema: str, region_code: str, t: dt.datetime
) -> list[dict[str, Any]]:
    """Every level's rows inside `region_code` over the events with time <= t only.

    The current per-TPS counters are corrected for the voters that have events after t:
    their contribution now is taken away and their contribution at t (latest registration
    and latest placement up to t) added back. Cheap when few events follow the cutoff.
    """
    s = schema
    desa_region = region_code.split("/")[0]
    # Conditions on a desa code that an index serves in a generic plan too (no LIKE parameter):
    # a desa (or a TPS's desa) by equality, a larger region as the range of codes under it
    # ('/' follows '.' in code-point order).
    if region_code == "ID":
        cond = lambda col: "true"  # noqa: E731
        params: list[Any] = []
    elif desa_region.count(".") == 3:
        cond = lambda col: f"{col} = $2"  # noqa: E731
        params = [desa_region]
    else:
        cond = lambda col: f"({col} >= $2 AND {col} < $3)"  # noqa: E731
        params = [desa_region + ".", desa_region + "/"]
    counters = ("male", "female", "new_voters", "disabled", "d1", "d2", "d3", "d4", "d5", "d6", "under_age")

    def contribution(sign: str, src: str) -> str:
        return f"""SELECT desa_code, tps_number,
                   {sign} * (eligible AND sex = 'L')::int AS male, {sign} * (eligible AND sex = 'P')::int AS female,
                   {sign} * (eligible AND new_voter)::int AS new_voters,
                   {sign} * (eligible AND disability IS NOT NULL)::int AS disabled,
                   {", ".join(f"{sign} * (eligible AND disability IS NOT DISTINCT FROM {k})::int AS d{k}" for k in range(1, 7))},
                   {sign} * (NOT eligible)::int AS under_age
            FROM {src} WHERE {cond("desa_code")}"""

    late_count = await conn.fetchval(
        f"SELECT count(*) FROM (SELECT 1 FROM {s}.voter_event WHERE event_time > $1 LIMIT $2) a",
        t, LATE_EVENTS_SCAN_LIMIT,
    )
    region_voters = await conn.fetchval(
        f"SELECT coalesce(sum(male + female + under_age), 0) FROM {s}.tps_tally "
        f"WHERE {cond('desa_code').replace('$2', '$1').replace('$3', '$2')}", *params)
    if region_voters < late_count:
        # Small region: the voters ever placed in it, those of them with an event after t.
        late_sql = f"""late AS (
            SELECT t.nik FROM (SELECT DISTINCT nik FROM {s}.voter_event WHERE {cond("desa_code")}) t
            WHERE EXISTS (SELECT 1 FROM {s}.voter_event e WHERE e.nik = t.nik AND e.event_time > $1)"""
    else:
        # Large region: the voters with events after t, those of them ever placed in the region.
        late_sql = f"""late AS (
            SELECT l.nik FROM (SELECT DISTINCT nik FROM {s}.voter_event WHERE event_time > $1) l
            WHERE EXISTS (SELECT 1 FROM {s}.voter_event e WHERE e.nik = l.nik AND {cond("e.desa_code")})"""
    records = await conn.fetch(
        f"""
        WITH {late_sql}        ), reg AS (
            SELECT DISTINCT ON (e.nik) e.nik, e.sex, e.eligible, e.new_voter, e.disability
            FROM {s}.voter_event e JOIN late USING (nik) WHERE e.registered AND e.event_time <= $1
            ORDER BY e.nik, e.event_time DESC, e.event_id DESC
        ), plc AS (
            SELECT DISTINCT ON (e.nik) e.nik, e.desa_code, e.tps_number
            FROM {s}.voter_event e JOIN reg USING (nik) WHERE e.event_time <= $1
            ORDER BY e.nik, e.event_time DESC, e.event_id DESC
        ), then_placed AS (
            SELECT reg.sex, reg.eligible, reg.new_voter, reg.disability, plc.desa_code, plc.tps_number
            FROM reg JOIN plc USING (nik)
        ), now_placed AS (
            SELECT v.sex, v.eligible, v.new_voter, v.disability, v.desa_code, v.tps_number
            FROM {s}.voter v JOIN late USING (nik) WHERE v.reg_time IS NOT NULL AND v.desa_code IS NOT NULL
        ), tps AS (
            SELECT desa_code, tps_number, {", ".join(f"sum({c})::int AS {c}" for c in counters)}
            FROM (
                SELECT desa_code, tps_number, {", ".join(counters)} FROM {s}.tps_tally WHERE {cond("desa_code")}
                UNION ALL {contribution("1", "then_placed")}
                UNION ALL {contribution("-1", "now_placed")}
            ) u GROUP BY desa_code, tps_number
        ), x AS (
            SELECT tps.*, tps.male + tps.female AS total,
                   tps.desa_code || '/' || lpad(tps.tps_number::text, 3, '0') AS tps_code,
                   (tps.male + tps.female > 0)::int AS tps_count,
                   (tps.male + tps.female > 0 AND COALESCE(l.loksus_since <= $1, false))::int AS tps_loksus_count,
                   (tps.male + tps.female > c.tps_capacity)::int AS over_capacity_tps,
                   left(tps.desa_code, 8) AS kecamatan, left(tps.desa_code, 5) AS kabupaten,
                   left(tps.desa_code, 2) AS provinsi
            FROM tps LEFT JOIN {s}.tps_loksus l USING (desa_code, tps_number)
            CROSS JOIN {s}.projection_config c
            WHERE tps.male + tps.female > 0 OR tps.under_age > 0
        )
        SELECT CASE
                 WHEN GROUPING(tps_code) = 0 THEN 'tps'
                 WHEN GROUPING(desa_code) = 0 THEN 'desa'
                 WHEN GROUPING(kecamatan) = 0 THEN 'kecamatan'
                 WHEN GROUPING(kabupaten) = 0 THEN 'kabupaten'
                 WHEN GROUPING(provinsi) = 0 THEN 'provinsi'
                 ELSE 'nasional' END AS level,
               COALESCE(tps_code, desa_code, kecamatan, kabupaten, provinsi, 'ID') AS region_code,
               {", ".join(f"sum({f})::int AS {f}" for f in RECAP_COUNT_FIELDS)},
               {", ".join(f"sum(d{k})::int AS d{k}" for k in range(1, 7))}
        FROM x
        GROUP BY GROUPING SETS ((tps_code), (desa_code), (kecamatan), (kabupaten), (provinsi), ())
        HAVING count(*) > 0  -- the empty grouping set yields a row of nulls over no rows
        """,
        t, *params,
    )
    rows = [_row(r) for r in records]
    # Keep the rows inside the region (the grouping sets also yield its ancestors).
    return [r for r in rows if region_contains(region_code, r["region_code"])]


async def meetings(
    conn: asyncpg.Connection, schema: str, region_code: str | None = None, levels: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """Meetings in the region with declared, computed (as-of recap at cutoff) and discrepancy."""
    if region_code and region_code != "ID":
        cond, params = _region_filter(region_code, "region_code", 1)
    else:
        cond, params = "true", []
    if levels:
        cond += f" AND level = ANY(${len(params) + 1}::text[])"
        params.append(list(levels))
    records = await conn.fetch(f"SELECT * FROM {schema}.meeting WHERE {cond} ORDER BY meeting_id", *params)
    result = []
    for m in records:
        cutoff = m["data_cutoff"] or m["held_at"]
        rows = await recap_as_of(conn, schema, m["region_code"], cutoff)
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

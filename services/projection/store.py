"""The thin SQL layer: applies batches of events to PostgreSQL, set-based, in one transaction.

Each batch: stage rows by binary COPY, insert the events not seen before (deduplicated by
event id), lock the touched voters in NIK order, move each voter's identity and placement
forward where a newer event arrived, and add the difference between each changed voter's
old and new contribution to the per-TPS counters. The consumed positions are written in
the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import asyncpg
import orjson

from schemas.events import MeetingHeld, VoterMoved, VoterRegistered

REG_COLUMNS = (
    "event_id", "nik", "event_time", "nkk", "name", "birth_place", "birth_date", "sex",
    "marital_status", "disability", "ktp_el", "street", "rt", "rw", "new_voter", "eligible",
    "desa_code", "tps_number", "loksus",
)
MOVE_COLUMNS = (
    "event_id", "nik", "event_time", "desa_code", "tps_number", "loksus", "from_desa_code",
    "from_tps_number", "reason",
)
MEETING_COLUMNS = (
    "meeting_id", "event_time", "event_id", "level", "region_code", "stage", "held_at",
    "data_cutoff", "venue", "attendees", "declared", "notes",
)
Position = tuple[str, int, int]  # topic, partition, next offset


def eligible_cutoff(voting_day: dt.date) -> dt.date:
    """Latest birth date that is 17 years old on voting day (29 Feb falls back to 28 Feb)."""
    try:
        return voting_day.replace(year=voting_day.year - 17)
    except ValueError:
        return voting_day.replace(year=voting_day.year - 17, day=28)


def registration_row(e: VoterRegistered, cutoff: dt.date) -> tuple:
    d = e.data
    return (
        e.id, d.nik, e.time, d.nkk, d.name, d.birth_place, d.birth_date, d.sex, d.marital_status,
        d.disability, d.ktp_el, d.address.street, d.address.rt, d.address.rw, d.new_voter,
        d.birth_date <= cutoff or d.marital_status != "B",
        d.tps.desa_code, d.tps.number, d.tps.kind == "lokasi_khusus",
    )


def movement_row(e: VoterMoved) -> tuple:
    d = e.data
    f = d.from_tps
    return (
        e.id, d.nik, e.time, d.to_tps.desa_code, d.to_tps.number, d.to_tps.kind == "lokasi_khusus",
        f.desa_code if f else None, f.number if f else None, d.reason,
    )


def meeting_row(e: MeetingHeld) -> tuple:
    d = e.data
    return (
        d.meeting_id, e.time, e.id, d.level, d.region_code, d.stage, d.held_at, d.data_cutoff, d.venue,
        orjson.dumps([a.model_dump() for a in d.attendees]).decode(),
        orjson.dumps(d.declared.model_dump()).decode() if d.declared else None,
        d.notes,
    )


TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS stage_registration (
    event_id text COLLATE "C", nik text COLLATE "C", event_time timestamptz, nkk text, name text,
    birth_place text, birth_date date, sex text, marital_status text, disability smallint,
    ktp_el boolean, street text, rt text, rw text, new_voter boolean, eligible boolean,
    desa_code text COLLATE "C", tps_number smallint, loksus boolean
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_movement (
    event_id text COLLATE "C", nik text COLLATE "C", event_time timestamptz,
    desa_code text COLLATE "C", tps_number smallint, loksus boolean,
    from_desa_code text COLLATE "C", from_tps_number smallint, reason text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_meeting (
    meeting_id text COLLATE "C", event_time timestamptz, event_id text COLLATE "C", level text,
    region_code text COLLATE "C", stage text, held_at timestamptz, data_cutoff timestamptz,
    venue text, attendees text, declared text, notes text
) ON COMMIT DELETE ROWS;
-- Events of this batch not seen before, both voter topics in one shape.
CREATE TEMP TABLE IF NOT EXISTS fresh (
    nik text COLLATE "C", event_time timestamptz, event_id text COLLATE "C", is_reg boolean,
    sex text, eligible boolean, new_voter boolean, disability smallint,
    desa_code text COLLATE "C", tps_number smallint, loksus boolean
) ON COMMIT DELETE ROWS;
-- Voters whose contribution changed: old and new counting fields.
CREATE TEMP TABLE IF NOT EXISTS changed (
    o_reg boolean, o_sex text, o_eligible boolean, o_new_voter boolean, o_disability smallint,
    o_desa text COLLATE "C", o_tps smallint,
    n_reg boolean, n_sex text, n_eligible boolean, n_new_voter boolean, n_disability smallint,
    n_desa text COLLATE "C", n_tps smallint
) ON COMMIT DELETE ROWS;
"""


class ProjectionStore:
    """Applies batches to the projection in schema `schema`. One connection, one batch at a time."""

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self.conn = conn
        self.s = schema
        self._sql = _statements(schema)

    async def prepare(self) -> None:
        await self.conn.execute(TEMP_TABLES)

    async def ensure_config(self, voting_day: dt.date, tps_capacity: int) -> None:
        """Records the voting day and capacity; a changed voting day needs a rebuild."""
        row = await self.conn.fetchrow(f"SELECT voting_day FROM {self.s}.projection_config")
        if row is not None and row["voting_day"] != voting_day:
            has_data = await self.conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {self.s}.registration)")
            if has_data:
                raise ValueError(
                    f"the projection was built for voting day {row['voting_day']}, the settings say "
                    f"{voting_day}: rebuild it with `dphp replay`"
                )
        await self.conn.execute(
            f"""INSERT INTO {self.s}.projection_config (voting_day, tps_capacity) VALUES ($1, $2)
                ON CONFLICT (singleton) DO UPDATE SET voting_day = $1, tps_capacity = $2""",
            voting_day, tps_capacity,
        )

    async def positions(self, group_id: str, topic: str) -> dict[int, int]:
        rows = await self.conn.fetch(
            f"SELECT partition, next_offset FROM {self.s}.consumer_position WHERE group_id = $1 AND topic = $2",
            group_id, topic,
        )
        return {r["partition"]: r["next_offset"] for r in rows}

    async def apply_registrations(self, rows: Sequence[tuple], group_id: str, positions: Iterable[Position]) -> None:
        async with self.conn.transaction():
            if rows:
                await self.conn.copy_records_to_table("stage_registration", records=rows, columns=REG_COLUMNS)
                await self.conn.execute(self._sql["fresh_registrations"])
                await self._fold_fresh()
            await self._store_positions(group_id, positions)

    async def apply_movements(self, rows: Sequence[tuple], group_id: str, positions: Iterable[Position]) -> None:
        async with self.conn.transaction():
            if rows:
                await self.conn.copy_records_to_table("stage_movement", records=rows, columns=MOVE_COLUMNS)
                await self.conn.execute(self._sql["fresh_movements"])
                await self._fold_fresh()
            await self._store_positions(group_id, positions)

    async def apply_meetings(self, rows: Sequence[tuple], group_id: str, positions: Iterable[Position]) -> None:
        async with self.conn.transaction():
            if rows:
                await self.conn.copy_records_to_table("stage_meeting", records=rows, columns=MEETING_COLUMNS)
                await self.conn.execute(self._sql["meetings"])
            await self._store_positions(group_id, positions)

    async def _fold_fresh(self) -> None:
        sql = self._sql
        await self.conn.execute(sql["loksus"])
        await self.conn.execute(sql["lock_voters"])
        await self.conn.execute(sql["update_voters"])
        await self.conn.execute(sql["tally"])

    async def _store_positions(self, group_id: str, positions: Iterable[Position]) -> None:
        positions = sorted(positions)
        if not positions:
            return
        await self.conn.execute(
            self._sql["positions"],
            group_id, [p[0] for p in positions], [p[1] for p in positions], [p[2] for p in positions],
        )


def _contribution(prefix: str, sign: str) -> str:
    p = prefix
    return f"""SELECT {p}_desa AS desa_code, {p}_tps AS tps_number,
           {sign} * ({p}_eligible AND {p}_sex = 'L')::int AS male,
           {sign} * ({p}_eligible AND {p}_sex = 'P')::int AS female,
           {sign} * ({p}_eligible AND {p}_new_voter)::int AS new_voters,
           {sign} * ({p}_eligible AND {p}_disability IS NOT NULL)::int AS disabled,
           {sign} * ({p}_eligible AND {p}_disability IS NOT DISTINCT FROM 1)::int AS d1,
           {sign} * ({p}_eligible AND {p}_disability IS NOT DISTINCT FROM 2)::int AS d2,
           {sign} * ({p}_eligible AND {p}_disability IS NOT DISTINCT FROM 3)::int AS d3,
           {sign} * ({p}_eligible AND {p}_disability IS NOT DISTINCT FROM 4)::int AS d4,
           {sign} * ({p}_eligible AND {p}_disability IS NOT DISTINCT FROM 5)::int AS d5,
           {sign} * ({p}_eligible AND {p}_disability IS NOT DISTINCT FROM 6)::int AS d6,
           {sign} * (NOT {p}_eligible)::int AS under_age
    FROM changed WHERE {p}_reg AND {p}_desa IS NOT NULL"""


def _statements(s: str) -> dict[str, str]:
    reg_cols = ", ".join(REG_COLUMNS)
    move_cols = ", ".join(MOVE_COLUMNS)
    meeting_cols = ", ".join(MEETING_COLUMNS)
    counters = ("male", "female", "new_voters", "disabled", "d1", "d2", "d3", "d4", "d5", "d6", "under_age")
    return {
        "fresh_registrations": f"""
            WITH ins AS (
                INSERT INTO {s}.registration ({reg_cols})
                SELECT DISTINCT ON (event_id) {reg_cols} FROM stage_registration ORDER BY event_id
                ON CONFLICT (event_id) DO NOTHING
                RETURNING nik, event_time, event_id, sex, eligible, new_voter, disability,
                          desa_code, tps_number, loksus
            )
            INSERT INTO fresh SELECT nik, event_time, event_id, true, sex, eligible, new_voter, disability,
                                     desa_code, tps_number, loksus FROM ins""",
        "fresh_movements": f"""
            WITH ins AS (
                INSERT INTO {s}.movement ({move_cols})
                SELECT DISTINCT ON (event_id) {move_cols} FROM stage_movement ORDER BY event_id
                ON CONFLICT (event_id) DO NOTHING
                RETURNING nik, event_time, event_id, desa_code, tps_number, loksus
            )
            INSERT INTO fresh SELECT nik, event_time, event_id, false, NULL, NULL, NULL, NULL,
                                     desa_code, tps_number, loksus FROM ins""",
        "loksus": f"""
            INSERT INTO {s}.tps_loksus (desa_code, tps_number, loksus_since)
            SELECT desa_code, tps_number, min(event_time) FROM fresh WHERE loksus
            GROUP BY desa_code, tps_number ORDER BY desa_code, tps_number
            ON CONFLICT (desa_code, tps_number) DO UPDATE SET loksus_since = excluded.loksus_since
            WHERE excluded.loksus_since < {s}.tps_loksus.loksus_since""",
        # Create missing voters, then lock all touched voters in NIK order (no deadlock cycles
        # between the services: every transaction locks voters, then TPS counters, each sorted).
        "lock_voters": f"""
            WITH new AS (
                INSERT INTO {s}.voter (nik) SELECT DISTINCT nik FROM fresh ORDER BY nik
                ON CONFLICT (nik) DO NOTHING
            )
            SELECT count(*) FROM (
                SELECT 1 FROM {s}.voter WHERE nik IN (SELECT nik FROM fresh) ORDER BY nik FOR UPDATE
            ) locked""",
        "update_voters": f"""
            WITH reg AS (
                SELECT DISTINCT ON (nik) * FROM fresh WHERE is_reg ORDER BY nik, event_time DESC, event_id DESC
            ), plc AS (
                SELECT DISTINCT ON (nik) nik, event_time, event_id, desa_code, tps_number
                FROM fresh ORDER BY nik, event_time DESC, event_id DESC
            ), cand AS (
                SELECT v.nik,
                       v.reg_time IS NOT NULL AS o_reg, v.sex AS o_sex, v.eligible AS o_eligible,
                       v.new_voter AS o_new_voter, v.disability AS o_disability,
                       v.desa_code AS o_desa, v.tps_number AS o_tps,
                       (r.nik IS NOT NULL AND (v.reg_time IS NULL
                            OR (r.event_time, r.event_id) > (v.reg_time, v.reg_id))) AS take_reg,
                       (v.place_time IS NULL
                            OR (p.event_time, p.event_id) > (v.place_time, v.place_id)) AS take_plc,
                       r.event_time AS r_time, r.event_id AS r_id, r.sex AS r_sex, r.eligible AS r_eligible,
                       r.new_voter AS r_new_voter, r.disability AS r_disability,
                       p.event_time AS p_time, p.event_id AS p_id, p.desa_code AS p_desa, p.tps_number AS p_tps
                FROM {s}.voter v JOIN plc p USING (nik) LEFT JOIN reg r USING (nik)
            ), upd AS (
                UPDATE {s}.voter v SET
                    reg_time   = CASE WHEN c.take_reg THEN c.r_time ELSE v.reg_time END,
                    reg_id     = CASE WHEN c.take_reg THEN c.r_id ELSE v.reg_id END,
                    sex        = CASE WHEN c.take_reg THEN c.r_sex ELSE v.sex END,
                    eligible   = CASE WHEN c.take_reg THEN c.r_eligible ELSE v.eligible END,
                    new_voter  = CASE WHEN c.take_reg THEN c.r_new_voter ELSE v.new_voter END,
                    disability = CASE WHEN c.take_reg THEN c.r_disability ELSE v.disability END,
                    place_time = CASE WHEN c.take_plc THEN c.p_time ELSE v.place_time END,
                    place_id   = CASE WHEN c.take_plc THEN c.p_id ELSE v.place_id END,
                    desa_code  = CASE WHEN c.take_plc THEN c.p_desa ELSE v.desa_code END,
                    tps_number = CASE WHEN c.take_plc THEN c.p_tps ELSE v.tps_number END
                FROM cand c
                WHERE v.nik = c.nik AND (c.take_reg OR c.take_plc)
                RETURNING c.o_reg, c.o_sex, c.o_eligible, c.o_new_voter, c.o_disability, c.o_desa, c.o_tps,
                          v.reg_time IS NOT NULL, v.sex, v.eligible, v.new_voter, v.disability,
                          v.desa_code, v.tps_number
            )
            INSERT INTO changed SELECT * FROM upd""",
        "tally": f"""
            INSERT INTO {s}.tps_tally (desa_code, tps_number, {", ".join(counters)})
            SELECT desa_code, tps_number, {", ".join(f"sum({c})" for c in counters)}
            FROM ({_contribution("o", "-1")} UNION ALL {_contribution("n", "1")}) d
            GROUP BY desa_code, tps_number
            ORDER BY desa_code, tps_number
            ON CONFLICT (desa_code, tps_number) DO UPDATE SET
                {", ".join(f"{c} = {s}.tps_tally.{c} + excluded.{c}" for c in counters)}""",
        "meetings": f"""
            INSERT INTO {s}.meeting ({meeting_cols})
            SELECT DISTINCT ON (meeting_id) meeting_id, event_time, event_id, level, region_code, stage,
                   held_at, data_cutoff, venue, attendees::jsonb, declared::jsonb, notes
            FROM stage_meeting ORDER BY meeting_id, event_time DESC, event_id DESC
            ON CONFLICT (meeting_id) DO UPDATE SET
                {", ".join(f"{c} = excluded.{c}" for c in MEETING_COLUMNS[1:])}
            WHERE (excluded.event_time, excluded.event_id) > ({s}.meeting.event_time, {s}.meeting.event_id)""",
        "positions": f"""
            INSERT INTO {s}.consumer_position (group_id, topic, partition, next_offset)
            SELECT $1, t, p, o FROM unnest($2::text[], $3::int[], $4::bigint[]) AS x(t, p, o)
            ON CONFLICT (group_id, topic, partition) DO UPDATE
            SET next_offset = GREATEST({s}.consumer_position.next_offset, excluded.next_offset),
                updated_at = now()""",
    }

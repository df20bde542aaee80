"""The thin SQL layer: applies batches of events to PostgreSQL, set-based, in one transaction.

Each batch of voter events: stage the rows by binary COPY; add them to the history
(`voter_event`, deduplicated by its key); take each voter's latest event of the batch, lock
the voters that exist in NIK order and merge: a newer registration replaces the identity, a
newer event the placement; write each changed voter once (an update, or an insert for a new
one); add the difference between each changed voter's old and new contribution to the per-TPS
counters. The consumed positions are written in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
import orjson


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
Position = tuple[str, int, int, int]  # topic, partition, offset the batch starts from, next offset

#: SQLSTATE of `advance_positions` (migration 006) when a stored position is not where a batch starts.
POSITIONS_MOVED_SQLSTATE = "DP001"


def writer_server_settings(settings) -> dict[str, str]:
    """Session settings of a connection that applies batches (asyncpg `server_settings`).

    synchronous_commit (`DPHP_DB_SYNCHRONOUS_COMMIT`, off by default): with off, a commit returns
    before its WAL is on disk, and a crash of the server (not of the service) may lose the last
    commits. No event is lost by it: positions move only by compare-and-set from where the batch
    starts (`advance_positions`), and a service reads them again after any reconnect, so the lost
    batches are read and applied again. The cost of on is in docs/benchmarks.md.
    Timeouts: a frozen or cut-off instance must not hold the locks that other instances,
    services and `dphp replay` need. PostgreSQL ends a session idle in a transaction after
    `db_idle_in_transaction_timeout_s` (its transaction is rolled back, so its batch is redone
    from the stored positions by whoever owns the partitions then, and the compare-and-set
    refuses the frozen one's later writes); a lock waited for longer than `db_lock_timeout_s`
    or a statement longer than `db_statement_timeout_s` fails and the batch is retried with
    backoff. TCP keepalives find a client that vanished without closing its connection.
    work_mem and temp_buffers: a batch's sorts and stage tables stay in memory.
    standard_conforming_strings (the default) for the literals of the positions (`_literal`).
    """
    return {
        "synchronous_commit": "on" if settings.db_synchronous_commit else "off",
        "work_mem": "64MB", "temp_buffers": "128MB", "standard_conforming_strings": "on",
        "idle_in_transaction_session_timeout": f"{int(settings.db_idle_in_transaction_timeout_s * 1000)}",
        "lock_timeout": f"{int(settings.db_lock_timeout_s * 1000)}",
        "statement_timeout": f"{int(settings.db_statement_timeout_s * 1000)}",
        "tcp_keepalives_idle": "15", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3",
    }


async def connect_writer(settings, schema: str | None = None) -> asyncpg.Connection:
    """A connection that applies batches, with `writer_server_settings` and a client-side timeout
    (a little longer than the server's statement timeout: for a server that went silent)."""
    return await asyncpg.connect(settings.database_url, timeout=10, server_settings=writer_server_settings(settings),
                                 command_timeout=settings.db_statement_timeout_s + 30)


class PositionsMoved(Exception):
    """A batch was not stored: the stored position of one of its partitions is not where it starts.

    Another instance stored the partition (this one lost it in a rebalance), or PostgreSQL lost
    its last commits in a crash. The consumer reads the positions again and continues from them.
    """


def eligible_cutoff(voting_day: dt.date) -> dt.date:
    """Latest birth date that is 17 years old on voting day (29 Feb falls back to 28 Feb)."""
    try:
        return voting_day.replace(year=voting_day.year - 17)
    except ValueError:
        return voting_day.replace(year=voting_day.year - 17, day=28)


# Rows from events as ``schemas.parsing.parse_event_fields`` gives them (plain dicts; a model's
# ``model_dump()`` is the same).

def registration_row(e: dict[str, Any], cutoff: dt.date) -> tuple:
    d = e["data"]
    a = d["address"]
    tps = d["tps"]
    birth_date, marital_status = d["birth_date"], d["marital_status"]
    return (
        e["id"], d["nik"], e["time"], d["nkk"], d["name"], d["birth_place"], birth_date, d["sex"], marital_status,
        d["disability"], d["ktp_el"], a["street"], a["rt"], a["rw"], d["new_voter"],
        birth_date <= cutoff or marital_status != "B",
        tps["desa_code"], tps["number"], tps["kind"] == "lokasi_khusus",
    )


def movement_row(e: dict[str, Any]) -> tuple:
    d = e["data"]
    to, f = d["to_tps"], d["from_tps"]
    return (
        e["id"], d["nik"], e["time"], to["desa_code"], to["number"], to["kind"] == "lokasi_khusus",
        f["desa_code"] if f else None, f["number"] if f else None, d["reason"],
    )


def meeting_row(e: dict[str, Any]) -> tuple:
    d = e["data"]
    return (
        d["meeting_id"], e["time"], e["id"], d["level"], d["region_code"], d["stage"], d["held_at"],
        d["data_cutoff"], d["venue"], orjson.dumps(d["attendees"]).decode(),
        orjson.dumps(d["declared"]).decode() if d["declared"] is not None else None,
        d["notes"],
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
-- The voters of this batch whose state moves forward: old (o_*) and new (n_*) counting
-- fields, and the new values to write (identity only where take_reg, placement where take_plc).
CREATE TEMP TABLE IF NOT EXISTS merged (
    nik text COLLATE "C", existed boolean, take_reg boolean, take_plc boolean,
    o_reg boolean, o_sex text, o_eligible boolean, o_new_voter boolean, o_disability smallint,
    o_desa text COLLATE "C", o_tps smallint,
    n_reg boolean, n_sex text, n_eligible boolean, n_new_voter boolean, n_disability smallint,
    n_desa text COLLATE "C", n_tps smallint,
    reg_time timestamptz, reg_id text COLLATE "C", nkk text, name text, birth_place text,
    birth_date date, marital_status text, ktp_el boolean, street text, rt text, rw text,
    place_time timestamptz, place_id text COLLATE "C"
) ON COMMIT DELETE ROWS;
"""


class ProjectionSwitched(Exception):
    """The projection this connection writes to was replaced by `dphp replay`: reconnect."""


class ProjectionStore:
    """Applies batches to the projection in schema `schema`. One connection, one batch at a time."""

    #: A batch that lost a race for a new voter (another transaction inserted it first) is
    #: applied again, this many times at most.
    RACE_ATTEMPTS = 5

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self.conn = conn
        self.s = schema
        self._sql = _statements(schema)
        self.races = 0  # batches applied again after losing a race for a new voter
        self.generation: int | None = None  # of the projection, read by ensure_config

    async def prepare(self) -> None:
        await self.conn.execute(TEMP_TABLES)

    async def ensure_config(self, voting_day: dt.date, tps_capacity: int) -> None:
        """Records the voting day and capacity; a changed voting day needs a rebuild."""
        row = await self.conn.fetchrow(f"SELECT voting_day FROM {self.s}.projection_config")
        if row is not None and row["voting_day"] != voting_day:
            has_data = await self.conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {self.s}.voter_event)")
            if has_data:
                raise ValueError(
                    f"the projection was built for voting day {row['voting_day']}, the settings say "
                    f"{voting_day}: rebuild it with `dphp replay`"
                )
        await self.conn.execute(
            f"""INSERT INTO {self.s}.projection_config (voting_day, tps_capacity) VALUES ($1, $2)
                ON CONFLICT (singleton) DO UPDATE SET voting_day = $1, tps_capacity = $2
                WHERE ({self.s}.projection_config.voting_day, {self.s}.projection_config.tps_capacity)
                      IS DISTINCT FROM ($1, $2)""",
            voting_day, tps_capacity,
        )
        self.generation = await self.conn.fetchval(f"SELECT generation FROM {self.s}.projection_config")

    async def _begin(self, durable: bool) -> None:
        await self._check_generation()
        if durable:
            await self.conn.execute("SET LOCAL synchronous_commit = on")

    async def _check_generation(self) -> None:
        # The first statement of every batch: waits while `dphp replay` switches over, and
        # notices when it has (the projection under this name is another one then).
        if self.generation is None:
            return
        if await self.conn.fetchval(self._sql["generation"]) != self.generation:
            raise ProjectionSwitched(self.s)

    async def positions(self, group_id: str, topic: str) -> dict[int, int]:
        rows = await self.conn.fetch(
            f"SELECT partition, next_offset FROM {self.s}.consumer_position WHERE group_id = $1 AND topic = $2",
            group_id, topic,
        )
        return {r["partition"]: r["next_offset"] for r in rows}

    # `durable`: the commit waits for its WAL on disk whatever `synchronous_commit` says; for a
    # batch whose invalid events were dead-lettered, so that a database crash cannot make the
    # service read and dead-letter them a second time.

    async def apply_registrations(self, rows: Sequence[tuple], group_id: str, positions: Iterable[Position],
                                  durable: bool = False) -> None:
        await self._apply_voter_events("registration", rows, REG_COLUMNS, group_id, positions, durable)

    async def apply_movements(self, rows: Sequence[tuple], group_id: str, positions: Iterable[Position],
                              durable: bool = False) -> None:
        await self._apply_voter_events("movement", rows, MOVE_COLUMNS, group_id, positions, durable)

    async def apply_meetings(self, rows: Sequence[tuple], group_id: str, positions: Iterable[Position],
                             durable: bool = False) -> None:
        try:
            async with self.conn.transaction():
                await self._begin(durable)
                if rows:
                    await self.conn.copy_records_to_table("stage_meeting", records=rows, columns=MEETING_COLUMNS)
                    await self.conn.execute(self._sql["meetings"] + self._positions_statement(group_id, sorted(positions)))
                else:
                    await self._store_positions(group_id, positions)
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == POSITIONS_MOVED_SQLSTATE:
                raise PositionsMoved(str(exc)) from None
            raise

    async def _apply_voter_events(
        self, kind: str, rows: Sequence[tuple], columns: tuple[str, ...], group_id: str,
        positions: Iterable[Position], durable: bool = False,
    ) -> None:
        sql = self._sql
        positions = sorted(positions)
        for attempt in range(1, self.RACE_ATTEMPTS + 1):
            try:
                async with self.conn.transaction():
                    await self._begin(durable)
                    if not rows:
                        await self._store_positions(group_id, positions)
                        return
                    await self.conn.copy_records_to_table(f"stage_{kind}", records=rows, columns=columns)
                    # The rest of the batch in one round trip (the simple query protocol runs the
                    # statements in order and stops at the first error): while the service's event
                    # loop validates the next batch, each round trip can wait for it.
                    await self.conn.execute(sql[f"apply_{kind}"] + self._positions_statement(group_id, positions))
                return
            except asyncpg.SerializationError:
                # Lost a race for a new voter (`insert_voters`): apply the batch again.
                if attempt == self.RACE_ATTEMPTS:
                    raise
                self.races += 1
            except asyncpg.PostgresError as exc:
                if exc.sqlstate == POSITIONS_MOVED_SQLSTATE:
                    raise PositionsMoved(str(exc)) from None
                raise

    def _positions_statement(self, group_id: str, positions: Sequence[Position]) -> str:
        """The positions' compare-and-set with its values as literals, to run with other statements."""
        if not positions:
            return ""
        topics = ", ".join(_literal(t) for t, _, _, _ in positions)
        # format() parses only the template: braces or quotes in the names stay inside their literals.
        return ";" + self._sql["positions_values"].format(
            group=_literal(group_id), topics=topics,
            partitions=", ".join(str(int(p)) for _, p, _, _ in positions),
            froms=", ".join(str(int(f)) for _, _, f, _ in positions),
            tos=", ".join(str(int(o)) for _, _, _, o in positions))

    async def _store_positions(self, group_id: str, positions: Iterable[Position]) -> None:
        positions = sorted(positions)
        if not positions:
            return
        await self.conn.execute(
            self._sql["positions"], self.s, group_id,
            [p[0] for p in positions], [p[1] for p in positions], [p[2] for p in positions], [p[3] for p in positions],
        )


def _literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings is on: only quotes are doubled)."""
    if "\x00" in text:
        raise ValueError("a NUL character cannot be in a SQL literal")
    return "'" + text.replace("'", "''") + "'"


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
    FROM merged WHERE {p}_reg AND {p}_desa IS NOT NULL"""


IDENTITY = ("nkk", "name", "birth_place", "birth_date", "marital_status", "ktp_el", "street", "rt", "rw")
COUNTED = ("sex", "eligible", "new_voter", "disability")


def _statements(s: str) -> dict[str, str]:
    sql = _single_statements(s)
    for kind in ("registration", "movement"):
        sql[f"apply_{kind}"] = ";".join(
            sql[k] for k in (f"history_{kind}", f"loksus_{kind}", f"merge_{kind}", "update_voters", "insert_voters",
                             "tally"))
    return sql


def _single_statements(s: str) -> dict[str, str]:
    meeting_cols = ", ".join(MEETING_COLUMNS)
    counters = ("male", "female", "new_voters", "disabled", "d1", "d2", "d3", "d4", "d5", "d6", "under_age")
    history_cols = ("nik, event_time, event_id, registered, sex, eligible, new_voter, disability, desa_code, "
                    "tps_number, loksus, reason, from_desa_code, from_tps_number")
    # The voters of the batch, locked in NIK order: every transaction of every service locks
    # voters, then TPS rows, each in key order, so they cannot wait for each other in a cycle.
    current = f"""cur AS (
                SELECT v.nik, v.reg_time, v.reg_id, v.place_time, v.place_id, {", ".join(f"v.{c}" for c in COUNTED)},
                       v.desa_code, v.tps_number
                FROM {s}.voter v WHERE v.nik IN (SELECT nik FROM b) ORDER BY v.nik FOR UPDATE
            )"""
    old = ", ".join(f"c.{c} AS o_{c}" for c in COUNTED)
    loksus = lambda stage: f"""
            INSERT INTO {s}.tps_loksus (desa_code, tps_number, loksus_since)
            SELECT desa_code, tps_number, min(event_time) FROM {stage} WHERE loksus
            GROUP BY desa_code, tps_number ORDER BY desa_code, tps_number
            ON CONFLICT (desa_code, tps_number) DO UPDATE SET loksus_since = excluded.loksus_since
            WHERE excluded.loksus_since < {s}.tps_loksus.loksus_since"""  # noqa: E731
    return {
        # The weakest row lock: compatible with other batches and with ensure_config's
        # update; `dphp replay` takes FOR UPDATE, which waits for it and blocks it.
        "generation": f"SELECT generation FROM {s}.projection_config FOR KEY SHARE",
        # History: every distinct event, for as-of recaps (see _apply_voter_events).
        "history_registration": f"""
            INSERT INTO {s}.voter_event ({history_cols})
            SELECT DISTINCT ON (nik, event_time, event_id)
                   nik, event_time, event_id, true, sex, eligible, new_voter, disability, desa_code, tps_number,
                   loksus, NULL, NULL, NULL
            FROM stage_registration ORDER BY nik, event_time, event_id
            ON CONFLICT DO NOTHING""",
        "history_movement": f"""
            INSERT INTO {s}.voter_event ({history_cols})
            SELECT DISTINCT ON (nik, event_time, event_id)
                   nik, event_time, event_id, false, NULL, NULL, NULL, NULL, desa_code, tps_number,
                   loksus, reason, from_desa_code, from_tps_number
            FROM stage_movement ORDER BY nik, event_time, event_id
            ON CONFLICT DO NOTHING""",
        # A TPS is lokasi_khusus from the earliest event that names it so.
        "loksus_registration": loksus("stage_registration"),
        "loksus_movement": loksus("stage_movement"),
        # The state only moves forward (latest by time, then id), so events seen before, in this
        # batch or earlier, change nothing: no need to know which events are new.
        "merge_registration": f"""
            WITH b AS (
                SELECT DISTINCT ON (nik) * FROM stage_registration ORDER BY nik, event_time DESC, event_id DESC
            ), {current}, m AS (
                SELECT b.*, c.nik IS NOT NULL AS existed, c.reg_time IS NOT NULL AS o_reg, {old},
                       c.desa_code AS o_desa, c.tps_number AS o_tps,
                       (c.reg_time IS NULL OR (b.event_time, b.event_id) > (c.reg_time, c.reg_id)) AS take_reg,
                       (c.place_time IS NULL OR (b.event_time, b.event_id) > (c.place_time, c.place_id)) AS take_plc
                FROM b LEFT JOIN cur c USING (nik)
            )
            INSERT INTO merged
            SELECT nik, existed, take_reg, take_plc,
                   o_reg, o_sex, o_eligible, o_new_voter, o_disability, o_desa, o_tps,
                   o_reg OR take_reg,
                   {", ".join(f"CASE WHEN take_reg THEN {c} ELSE o_{c} END" for c in COUNTED)},
                   CASE WHEN take_plc THEN desa_code ELSE o_desa END,
                   CASE WHEN take_plc THEN tps_number ELSE o_tps END,
                   event_time, event_id, {", ".join(IDENTITY)}, event_time, event_id
            FROM m WHERE take_reg OR take_plc""",
        "merge_movement": f"""
            WITH b AS (
                SELECT DISTINCT ON (nik) nik, event_time, event_id, desa_code, tps_number
                FROM stage_movement ORDER BY nik, event_time DESC, event_id DESC
            ), {current}, m AS (
                SELECT b.*, c.nik IS NOT NULL AS existed, c.reg_time IS NOT NULL AS o_reg, {old},
                       c.desa_code AS o_desa, c.tps_number AS o_tps,
                       (c.place_time IS NULL OR (b.event_time, b.event_id) > (c.place_time, c.place_id)) AS take_plc
                FROM b LEFT JOIN cur c USING (nik)
            )
            INSERT INTO merged (nik, existed, take_reg, take_plc,
                                o_reg, o_sex, o_eligible, o_new_voter, o_disability, o_desa, o_tps,
                                n_reg, n_sex, n_eligible, n_new_voter, n_disability, n_desa, n_tps,
                                place_time, place_id)
            SELECT nik, existed, false, true,
                   o_reg, o_sex, o_eligible, o_new_voter, o_disability, o_desa, o_tps,
                   o_reg, o_sex, o_eligible, o_new_voter, o_disability, desa_code, tps_number,
                   event_time, event_id
            FROM m WHERE take_plc""",
        # A batch's voters are found by their key, whatever the statistics say: with stale
        # statistics of a growing table (or none: `merged` is a temp table), the planner may
        # otherwise hash the batch and scan the whole voter table, a cost that grows with it.
        "update_voters": f"""
            SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off;
            UPDATE {s}.voter v SET
                reg_time = CASE WHEN m.take_reg THEN m.reg_time ELSE v.reg_time END,
                reg_id = CASE WHEN m.take_reg THEN m.reg_id ELSE v.reg_id END,
                {", ".join(f"{c} = CASE WHEN m.take_reg THEN m.{c} ELSE v.{c} END" for c in IDENTITY)},
                {", ".join(f"{c} = m.n_{c}" for c in COUNTED)},
                place_time = CASE WHEN m.take_plc THEN m.place_time ELSE v.place_time END,
                place_id = CASE WHEN m.take_plc THEN m.place_id ELSE v.place_id END,
                desa_code = m.n_desa, tps_number = m.n_tps
            FROM merged m WHERE m.existed AND v.nik = m.nik;
            SET LOCAL enable_hashjoin TO DEFAULT; SET LOCAL enable_mergejoin TO DEFAULT""",
        # New voters, in NIK order. One that another transaction inserted since the merge was not
        # locked and its old state is unknown: the batch is rolled back with a serialization
        # failure and applied again (it finds that voter then). Not by the key's unique
        # violation: PostgreSQL would log the key, a NIK, with it.
        "insert_voters": f"""
            WITH inserted AS (
                INSERT INTO {s}.voter (nik, reg_time, reg_id, {", ".join(IDENTITY)}, {", ".join(COUNTED)},
                                       place_time, place_id, desa_code, tps_number)
                SELECT nik, reg_time, reg_id, {", ".join(IDENTITY)}, {", ".join(f"n_{c}" for c in COUNTED)},
                       place_time, place_id, n_desa, n_tps
                FROM merged WHERE NOT existed ORDER BY nik
                ON CONFLICT (nik) DO NOTHING
                RETURNING 1
            )
            SELECT {s}.raise_if((SELECT count(*) FROM inserted) <> (SELECT count(*) FROM merged WHERE NOT existed),
                                '40001', 'a new voter of this batch was inserted by another transaction meanwhile; '
                                         'the batch is applied again')""",
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
        # Compare-and-set (migration 006): each partition moves from where the batch starts, or
        # the transaction fails with SQLSTATE DP001.
        "positions_values": f"""
            SELECT {s}.advance_positions('{s}', {{group}}, ARRAY[{{topics}}]::text[], ARRAY[{{partitions}}]::int[],
                                         ARRAY[{{froms}}]::bigint[], ARRAY[{{tos}}]::bigint[])""",
        "positions": f"SELECT {s}.advance_positions($1, $2, $3::text[], $4::int[], $5::bigint[], $6::bigint[])",
    }

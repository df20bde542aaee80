"""The statements of the SQL layer (`store.ProjectionStore`), built once per schema.

Each batch of voter events: stage the rows by binary COPY; add them to the history
(`voter_event`, deduplicated by its key); take each voter's latest event of the batch, lock the
voters that exist in NIK order and merge: a newer registration replaces the identity, a newer
event the placement; write each changed voter once (an update, or an insert for a new one); add
the difference between each changed voter's old and new contribution to the per-TPS counters.
"""

from __future__ import annotations

from services.projection.rows import MEETING_COLUMNS

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


def literal(text: str) -> str:
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


def statements(s: str) -> dict[str, str]:
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

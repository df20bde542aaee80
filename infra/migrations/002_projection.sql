-- The DPHP projection (CONTRACT section 3 and 5).
-- History tables keep every distinct event (deduplicated by event id), so that the as-of
-- recap at any time is a query and late events correct it. The voter table holds each
-- NIK's latest identity and placement keys; tps_tally holds per-TPS counters maintained by
-- deltas; higher levels are sums of TPS rows in the recap view.

CREATE TABLE dphp.projection_config (
    singleton            boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    voting_day           date    NOT NULL,
    tps_capacity         integer NOT NULL
);

-- Personal data: never granted to readers.
CREATE TABLE dphp.registration (
    event_id        text COLLATE "C" PRIMARY KEY,
    nik             text COLLATE "C" NOT NULL,
    event_time      timestamptz NOT NULL,
    nkk             text NOT NULL,
    name            text NOT NULL,
    birth_place     text NOT NULL,
    birth_date      date NOT NULL,
    sex             text NOT NULL,
    marital_status  text NOT NULL,
    disability      smallint,
    ktp_el          boolean NOT NULL,
    street          text NOT NULL,
    rt              text NOT NULL,
    rw              text NOT NULL,
    new_voter       boolean NOT NULL,
    eligible        boolean NOT NULL,   -- with projection_config.voting_day
    desa_code       text COLLATE "C" NOT NULL,
    tps_number      smallint NOT NULL,
    loksus          boolean NOT NULL
);
CREATE INDEX registration_nik ON dphp.registration (nik, event_time, event_id);
CREATE INDEX registration_desa ON dphp.registration (desa_code, event_time);
-- As-of recaps correct the current counters for the voters with events after the cutoff.
CREATE INDEX registration_time ON dphp.registration (event_time);

CREATE TABLE dphp.movement (
    event_id        text COLLATE "C" PRIMARY KEY,
    nik             text COLLATE "C" NOT NULL,
    event_time      timestamptz NOT NULL,
    desa_code       text COLLATE "C" NOT NULL,
    tps_number      smallint NOT NULL,
    loksus          boolean NOT NULL,
    from_desa_code  text COLLATE "C",
    from_tps_number smallint,
    reason          text NOT NULL
);
CREATE INDEX movement_nik ON dphp.movement (nik, event_time, event_id);
CREATE INDEX movement_desa ON dphp.movement (desa_code, event_time);
CREATE INDEX movement_time ON dphp.movement (event_time);

-- Latest state per NIK. reg_* null: never registered (not counted).
CREATE TABLE dphp.voter (
    nik         text COLLATE "C" PRIMARY KEY,
    reg_time    timestamptz,
    reg_id      text COLLATE "C",
    sex         text,
    eligible    boolean,
    new_voter   boolean,
    disability  smallint,
    place_time  timestamptz,
    place_id    text COLLATE "C",
    desa_code   text COLLATE "C",
    tps_number  smallint
);

CREATE TABLE dphp.tps_tally (
    desa_code   text COLLATE "C" NOT NULL,
    tps_number  smallint NOT NULL,
    male        integer NOT NULL DEFAULT 0,
    female      integer NOT NULL DEFAULT 0,
    new_voters  integer NOT NULL DEFAULT 0,
    disabled    integer NOT NULL DEFAULT 0,
    d1 integer NOT NULL DEFAULT 0, d2 integer NOT NULL DEFAULT 0, d3 integer NOT NULL DEFAULT 0,
    d4 integer NOT NULL DEFAULT 0, d5 integer NOT NULL DEFAULT 0, d6 integer NOT NULL DEFAULT 0,
    under_age   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (desa_code, tps_number)
);

-- A TPS is lokasi_khusus from the earliest event that names it so.
CREATE TABLE dphp.tps_loksus (
    desa_code    text COLLATE "C" NOT NULL,
    tps_number   smallint NOT NULL,
    loksus_since timestamptz NOT NULL,
    PRIMARY KEY (desa_code, tps_number)
);

CREATE TABLE dphp.meeting (
    meeting_id   text COLLATE "C" PRIMARY KEY,
    event_time   timestamptz NOT NULL,
    event_id     text COLLATE "C" NOT NULL,
    level        text NOT NULL,
    region_code  text COLLATE "C" NOT NULL,
    stage        text NOT NULL,
    held_at      timestamptz NOT NULL,
    data_cutoff  timestamptz,
    venue        text NOT NULL,
    attendees    jsonb NOT NULL,
    declared     jsonb,
    notes        text NOT NULL
);

CREATE VIEW dphp.recap_tps AS
SELECT t.desa_code, t.tps_number,
       t.male, t.female, t.male + t.female AS total, t.new_voters, t.disabled,
       t.d1, t.d2, t.d3, t.d4, t.d5, t.d6, t.under_age,
       (t.male + t.female > 0)::int AS tps_count,
       (t.male + t.female > 0 AND l.desa_code IS NOT NULL)::int AS tps_loksus_count,
       (t.male + t.female > c.tps_capacity)::int AS over_capacity_tps
FROM dphp.tps_tally t
LEFT JOIN dphp.tps_loksus l USING (desa_code, tps_number)
CROSS JOIN dphp.projection_config c;

-- Every region of every level, from TPS to the nation, in one scan of the TPS rows.
CREATE VIEW dphp.recap_full AS
SELECT CASE
         WHEN GROUPING(tps_code) = 0 THEN 'tps'
         WHEN GROUPING(desa_code) = 0 THEN 'desa'
         WHEN GROUPING(kecamatan) = 0 THEN 'kecamatan'
         WHEN GROUPING(kabupaten) = 0 THEN 'kabupaten'
         WHEN GROUPING(provinsi) = 0 THEN 'provinsi'
         ELSE 'nasional'
       END AS level,
       COALESCE(tps_code, desa_code, kecamatan, kabupaten, provinsi, 'ID') COLLATE "C" AS region_code,
       sum(male)::int AS male, sum(female)::int AS female, sum(total)::int AS total,
       sum(tps_count)::int AS tps_count, sum(tps_loksus_count)::int AS tps_loksus_count,
       sum(new_voters)::int AS new_voters, sum(disabled)::int AS disabled,
       sum(under_age)::int AS under_age, sum(over_capacity_tps)::int AS over_capacity_tps,
       sum(d1)::int AS d1, sum(d2)::int AS d2, sum(d3)::int AS d3,
       sum(d4)::int AS d4, sum(d5)::int AS d5, sum(d6)::int AS d6
FROM (
    SELECT r.*, r.desa_code || '/' || lpad(r.tps_number::text, 3, '0') AS tps_code,
           left(r.desa_code, 8) AS kecamatan, left(r.desa_code, 5) AS kabupaten, left(r.desa_code, 2) AS provinsi
    FROM dphp.recap_tps r
    WHERE r.total > 0 OR r.under_age > 0
) x
GROUP BY GROUPING SETS ((tps_code), (desa_code), (kecamatan), (kabupaten), (provinsi), ())
HAVING count(*) > 0;  -- over no TPS rows, the empty grouping set would give a row of nulls

-- The read interface of CONTRACT section 5.
CREATE VIEW dphp.recap AS
SELECT level, region_code, male, female, total, tps_count, tps_loksus_count, new_voters,
       disabled, under_age, over_capacity_tps
FROM dphp.recap_full;

-- Meetings without personal data (attendees are officials acting in office).
CREATE VIEW dphp.meetings AS
SELECT meeting_id, level, region_code, stage, held_at, data_cutoff, venue, attendees, declared, notes
FROM dphp.meeting;

DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dphp_reader') THEN
    CREATE ROLE dphp_reader LOGIN;
  END IF;
END $$;
GRANT USAGE ON SCHEMA dphp TO dphp_reader;
GRANT SELECT ON dphp.recap, dphp.recap_full, dphp.meetings TO dphp_reader;

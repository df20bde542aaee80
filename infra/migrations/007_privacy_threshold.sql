-- The privacy threshold and the reader's surface (CONTRACT 5, version 1.1; issue #12).
--
-- What the reader role (dphp_reader) can read withholds the disability figures of a small TPS: a
-- TPS with fewer eligible voters (male + female) than privacy_config.min_voters shows `disabled`
-- and d1..d6 as null; every other figure, and every region of desa level and above, is exact.
-- The rule is services/projection/privacy.py's, here as dphp.privacy_withheld. The threshold is
-- the setting DPHP_PRIVACY_MIN_VOTERS, recorded by every `migrate` (services/common/db.py).
--
-- The reader reads the views recap (CONTRACT 5), recap_public (the same with d1..d6, for the web)
-- and meetings, and calls recap_as_of_public for as-of recaps and meetings' computed figures;
-- it no longer reads recap_full (exact per-TPS disability figures) and never a table.
--
-- The as-of recap is defined once, by the function recap_as_of (services/projection/queries.py
-- calls it for operators, recap_as_of_public for readers). Like advance_positions (006) the
-- functions take their schema as an argument and name every table through it: `dphp replay`
-- renames schemas, and a function's body is kept as text.

CREATE TABLE dphp.privacy_config (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    min_voters integer NOT NULL CHECK (min_voters >= 0)
);
INSERT INTO dphp.privacy_config (min_voters) VALUES (10);

CREATE FUNCTION dphp.privacy_withheld(level text, eligible_voters integer, min_voters integer)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT level = 'tps' AND eligible_voters < min_voters $$;

-- Every level's rows inside `region` over the events with time <= t only. The current per-TPS
-- counters are corrected for the voters that have events after t: their contribution now is
-- taken away and their contribution at t (latest registration and latest placement up to t)
-- added back. Cheap when few events follow the cutoff. Exact figures: operators only.
CREATE FUNCTION dphp.recap_as_of(s text, region text, t timestamptz)
RETURNS TABLE (level text, region_code text, male integer, female integer, total integer, tps_count integer,
    tps_loksus_count integer, new_voters integer, disabled integer, under_age integer,
    over_capacity_tps integer, d1 integer, d2 integer, d3 integer, d4 integer, d5 integer, d6 integer)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    desa text := split_part(region, '/', 1);
    lo text;
    hi text;
    cond text;  -- the region as a condition on the desa code '@' ($2, $3)
    late_count bigint;
    region_voters bigint;
    late text;
    counters text := 'male, female, new_voters, disabled, d1, d2, d3, d4, d5, d6, under_age';
    contribution text := 'SELECT desa_code, tps_number,
                   %1$s * (eligible AND sex = ''L'')::int AS male, %1$s * (eligible AND sex = ''P'')::int AS female,
                   %1$s * (eligible AND new_voter)::int AS new_voters,
                   %1$s * (eligible AND disability IS NOT NULL)::int AS disabled,
                   %1$s * (eligible AND disability IS NOT DISTINCT FROM 1)::int AS d1,
                   %1$s * (eligible AND disability IS NOT DISTINCT FROM 2)::int AS d2,
                   %1$s * (eligible AND disability IS NOT DISTINCT FROM 3)::int AS d3,
                   %1$s * (eligible AND disability IS NOT DISTINCT FROM 4)::int AS d4,
                   %1$s * (eligible AND disability IS NOT DISTINCT FROM 5)::int AS d5,
                   %1$s * (eligible AND disability IS NOT DISTINCT FROM 6)::int AS d6,
                   %1$s * (NOT eligible)::int AS under_age
            FROM %2$s WHERE %3$s';
BEGIN
    -- Conditions an index serves: a desa (or a TPS's desa) by equality, a larger region as the
    -- range of codes under it ('/' follows '.' in code-point order).
    IF region = 'ID' THEN
        cond := 'true';
    ELSIF length(desa) - length(replace(desa, '.', '')) = 3 THEN
        cond := '@ = $2';
        lo := desa;
    ELSE
        cond := '(@ >= $2 AND @ < $3)';
        lo := desa || '.';
        hi := desa || '/';
    END IF;
    -- Counting the events after the cutoff stops at a million (the choice of plan needs no more).
    EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %I.voter_event WHERE event_time > $1 LIMIT 1000000) a', s)
        INTO late_count USING t;
    EXECUTE format('SELECT coalesce(sum(male + female + under_age), 0) FROM %I.tps_tally WHERE %s',
                   s, replace(cond, '@', 'desa_code'))
        INTO region_voters USING t, lo, hi;
    IF region_voters < late_count THEN
        -- Small region: the voters ever placed in it, those of them with an event after t.
        late := format('SELECT t.nik FROM (SELECT DISTINCT nik FROM %1$I.voter_event WHERE %2$s) t
            WHERE EXISTS (SELECT 1 FROM %1$I.voter_event e WHERE e.nik = t.nik AND e.event_time > $1)',
            s, replace(cond, '@', 'desa_code'));
    ELSE
        -- Large region: the voters with events after t, those of them ever placed in the region.
        late := format('SELECT l.nik FROM (SELECT DISTINCT nik FROM %1$I.voter_event WHERE event_time > $1) l
            WHERE EXISTS (SELECT 1 FROM %1$I.voter_event e WHERE e.nik = l.nik AND %2$s)',
            s, replace(cond, '@', 'e.desa_code'));
    END IF;
    RETURN QUERY EXECUTE format($q$
        WITH late AS (%2$s), reg AS (
            SELECT DISTINCT ON (e.nik) e.nik, e.sex, e.eligible, e.new_voter, e.disability
            FROM %1$I.voter_event e JOIN late USING (nik) WHERE e.registered AND e.event_time <= $1
            ORDER BY e.nik, e.event_time DESC, e.event_id DESC
        ), plc AS (
            SELECT DISTINCT ON (e.nik) e.nik, e.desa_code, e.tps_number
            FROM %1$I.voter_event e JOIN reg USING (nik) WHERE e.event_time <= $1
            ORDER BY e.nik, e.event_time DESC, e.event_id DESC
        ), then_placed AS (
            SELECT reg.sex, reg.eligible, reg.new_voter, reg.disability, plc.desa_code, plc.tps_number
            FROM reg JOIN plc USING (nik)
        ), now_placed AS (
            SELECT v.sex, v.eligible, v.new_voter, v.disability, v.desa_code, v.tps_number
            FROM %1$I.voter v JOIN late USING (nik) WHERE v.reg_time IS NOT NULL AND v.desa_code IS NOT NULL
        ), tps AS (
            SELECT desa_code, tps_number,
                   sum(male)::int AS male, sum(female)::int AS female, sum(new_voters)::int AS new_voters,
                   sum(disabled)::int AS disabled, sum(d1)::int AS d1, sum(d2)::int AS d2, sum(d3)::int AS d3,
                   sum(d4)::int AS d4, sum(d5)::int AS d5, sum(d6)::int AS d6, sum(under_age)::int AS under_age
            FROM (
                SELECT desa_code, tps_number, %3$s FROM %1$I.tps_tally WHERE %4$s
                UNION ALL %5$s
                UNION ALL %6$s
            ) u GROUP BY desa_code, tps_number
        ), x AS (
            SELECT tps.*, tps.male + tps.female AS total,
                   tps.desa_code || '/' || lpad(tps.tps_number::text, 3, '0') AS tps_code,
                   (tps.male + tps.female > 0)::int AS tps_count,
                   (tps.male + tps.female > 0 AND COALESCE(l.loksus_since <= $1, false))::int AS tps_loksus_count,
                   (tps.male + tps.female > c.tps_capacity)::int AS over_capacity_tps,
                   left(tps.desa_code, 8) AS kecamatan, left(tps.desa_code, 5) AS kabupaten,
                   left(tps.desa_code, 2) AS provinsi
            FROM tps LEFT JOIN %1$I.tps_loksus l USING (desa_code, tps_number)
            CROSS JOIN %1$I.projection_config c
            WHERE tps.male + tps.female > 0 OR tps.under_age > 0
        ), g AS (
            SELECT CASE
                     WHEN GROUPING(tps_code) = 0 THEN 'tps'
                     WHEN GROUPING(desa_code) = 0 THEN 'desa'
                     WHEN GROUPING(kecamatan) = 0 THEN 'kecamatan'
                     WHEN GROUPING(kabupaten) = 0 THEN 'kabupaten'
                     WHEN GROUPING(provinsi) = 0 THEN 'provinsi'
                     ELSE 'nasional' END AS level,
                   COALESCE(tps_code, desa_code, kecamatan, kabupaten, provinsi, 'ID') AS region_code,
                   sum(male)::int AS male, sum(female)::int AS female, sum(total)::int AS total,
                   sum(tps_count)::int AS tps_count, sum(tps_loksus_count)::int AS tps_loksus_count,
                   sum(new_voters)::int AS new_voters, sum(disabled)::int AS disabled,
                   sum(under_age)::int AS under_age, sum(over_capacity_tps)::int AS over_capacity_tps,
                   sum(d1)::int AS d1, sum(d2)::int AS d2, sum(d3)::int AS d3,
                   sum(d4)::int AS d4, sum(d5)::int AS d5, sum(d6)::int AS d6
            FROM x
            GROUP BY GROUPING SETS ((tps_code), (desa_code), (kecamatan), (kabupaten), (provinsi), ())
            HAVING count(*) > 0  -- the empty grouping set yields a row of nulls over no rows
        )
        -- The rows inside the region (the grouping sets also yield its ancestors).
        SELECT * FROM g
        WHERE $4 = 'ID' OR g.region_code = $4 OR starts_with(g.region_code, $4 || '.')
              OR starts_with(g.region_code, $4 || '/')
        ORDER BY g.region_code
        $q$,
        s, late, counters, replace(cond, '@', 'desa_code'),
        format(contribution, '1', 'then_placed', replace(cond, '@', 'desa_code')),
        format(contribution, '-1', 'now_placed', replace(cond, '@', 'desa_code')))
        USING t, lo, hi, region;
END $fn$;

-- The reader's as-of recap: recap_as_of with the threshold applied, run as the schema's owner
-- (SECURITY DEFINER: the reader may not read voter_event), returning aggregate rows only. A
-- caller reads only a projection whose schema and whose own recap_as_of_public it may use.
CREATE FUNCTION dphp.recap_as_of_public(s text, region text, t timestamptz)
RETURNS TABLE (level text, region_code text, male integer, female integer, total integer, tps_count integer,
    tps_loksus_count integer, new_voters integer, disabled integer, under_age integer,
    over_capacity_tps integer, d1 integer, d2 integer, d3 integer, d4 integer, d5 integer, d6 integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    n integer;
    fn regprocedure;
BEGIN
    fn := to_regprocedure(format('%I.recap_as_of_public(text, text, timestamptz)', s));
    IF fn IS NULL OR NOT has_function_privilege(session_user, fn, 'EXECUTE')
       OR NOT has_schema_privilege(session_user, s, 'USAGE') THEN
        RAISE EXCEPTION 'permission denied for schema %', s USING ERRCODE = '42501';
    END IF;
    EXECUTE format('SELECT min_voters FROM %I.privacy_config', s) INTO n;
    RETURN QUERY EXECUTE format(
        'SELECT r.level, r.region_code, r.male, r.female, r.total, r.tps_count, r.tps_loksus_count,
                r.new_voters, CASE WHEN w THEN NULL ELSE r.disabled END, r.under_age, r.over_capacity_tps,
                CASE WHEN w THEN NULL ELSE r.d1 END, CASE WHEN w THEN NULL ELSE r.d2 END, CASE WHEN w THEN NULL ELSE r.d3 END, CASE WHEN w THEN NULL ELSE r.d4 END, CASE WHEN w THEN NULL ELSE r.d5 END, CASE WHEN w THEN NULL ELSE r.d6 END
         FROM %1$I.recap_as_of($1, $2, $3) r,
              LATERAL (SELECT %1$I.privacy_withheld(r.level, r.male + r.female, $4)) x(w)', s)
        USING s, region, t, n;
END $fn$;

-- Every region of every level as readers see it (with d1..d6, for the web service).
CREATE VIEW dphp.recap_public AS
SELECT r.level, r.region_code, r.male, r.female, r.total, r.tps_count, r.tps_loksus_count, r.new_voters,
       CASE WHEN w.withheld THEN NULL ELSE r.disabled END AS disabled,
       r.under_age, r.over_capacity_tps,
       CASE WHEN w.withheld THEN NULL ELSE r.d1 END AS d1,
       CASE WHEN w.withheld THEN NULL ELSE r.d2 END AS d2,
       CASE WHEN w.withheld THEN NULL ELSE r.d3 END AS d3,
       CASE WHEN w.withheld THEN NULL ELSE r.d4 END AS d4,
       CASE WHEN w.withheld THEN NULL ELSE r.d5 END AS d5,
       CASE WHEN w.withheld THEN NULL ELSE r.d6 END AS d6
FROM dphp.recap_full r
CROSS JOIN dphp.privacy_config p
CROSS JOIN LATERAL (SELECT dphp.privacy_withheld(r.level, r.male + r.female, p.min_voters) AS withheld) w;

-- The read interface of CONTRACT section 5, now with the threshold applied.
CREATE OR REPLACE VIEW dphp.recap AS
SELECT level, region_code, male, female, total, tps_count, tps_loksus_count, new_voters,
       disabled, under_age, over_capacity_tps
FROM dphp.recap_public;

REVOKE ALL ON dphp.recap_full, dphp.recap_tps FROM dphp_reader;
REVOKE ALL ON FUNCTION dphp.recap_as_of(text, text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION dphp.recap_as_of_public(text, text, timestamptz) FROM PUBLIC;
GRANT SELECT ON dphp.recap, dphp.recap_public, dphp.meetings, dphp.privacy_config TO dphp_reader;
GRANT EXECUTE ON FUNCTION dphp.recap_as_of_public(text, text, timestamptz) TO dphp_reader;

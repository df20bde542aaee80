-- The as-of recap (007) counted the events after the cutoff up to a million before choosing its
-- plan, though the choice only compares that count with the region's voters. At a province's
-- size the count dominated a desa's as-of recap: a kabupaten's `dphp meetings` (one as-of recap
-- per meeting, 313 meetings in Blora) took 10.7 s on the full Jawa Tengah run (issue #15).
-- Counting stops at the region's voters + 1 now: the same choice, the same rows.
CREATE OR REPLACE FUNCTION dphp.recap_as_of(s text, region text, t timestamptz)
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
    EXECUTE format('SELECT coalesce(sum(male + female + under_age), 0) FROM %I.tps_tally WHERE %s',
                   s, replace(cond, '@', 'desa_code'))
        INTO region_voters USING t, lo, hi;
    -- The choice of plan only asks whether more events follow the cutoff than the region has
    -- voters: counting stops there (and at a million).
    EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %I.voter_event WHERE event_time > $1 LIMIT $2) a', s)
        INTO late_count USING t, least(region_voters + 1, 1000000);
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

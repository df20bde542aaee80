-- The reader's as-of function (007) served any schema whose own recap_as_of_public the caller
-- could execute, so a reader could create its own functions in its temporary schema and have
-- them run with the owner's rights (found by review). It now serves only a projection whose
-- schema, functions and privacy_config its owner owns, and no schema the caller may create in.
CREATE OR REPLACE FUNCTION dphp.recap_as_of_public(s text, region text, t timestamptz)
RETURNS TABLE (level text, region_code text, male integer, female integer, total integer, tps_count integer,
    tps_loksus_count integer, new_voters integer, disabled integer, under_age integer,
    over_capacity_tps integer, d1 integer, d2 integer, d3 integer, d4 integer, d5 integer, d6 integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    n integer;
    fn regprocedure;
BEGIN
    fn := to_regprocedure(format('%I.recap_as_of_public(text, text, timestamptz)', s));
    -- Only a projection this function's owner owns (current_user here: SECURITY DEFINER): a
    -- schema the caller could create objects in (its temporary schema, one of its own) would let
    -- it run its own recap_as_of with the owner's rights.
    IF fn IS NULL OR NOT has_function_privilege(session_user, fn, 'EXECUTE')
       OR NOT has_schema_privilege(session_user, s, 'USAGE')
       OR NOT EXISTS (SELECT FROM pg_namespace ns WHERE ns.nspname = s AND ns.nspowner = to_regrole(current_user::text)
                      AND ns.nspname NOT LIKE 'pg\_%')
       OR EXISTS (SELECT FROM pg_proc p JOIN pg_namespace ns ON ns.oid = p.pronamespace
                  WHERE ns.nspname = s AND p.proname IN ('recap_as_of', 'recap_as_of_public', 'privacy_withheld')
                    AND p.proowner <> to_regrole(current_user::text))
       OR EXISTS (SELECT FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
                  WHERE ns.nspname = s AND c.relname = 'privacy_config' AND c.relowner <> to_regrole(current_user::text))
       OR has_schema_privilege(session_user, s, 'CREATE') AND NOT pg_has_role(session_user, to_regrole(current_user::text), 'MEMBER') THEN
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
REVOKE ALL ON FUNCTION dphp.recap_as_of_public(text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dphp.recap_as_of_public(text, text, timestamptz) TO dphp_reader;

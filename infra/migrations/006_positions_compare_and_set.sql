-- Positions move by compare-and-set. A batch of a partition is stored only if the stored
-- position is still the offset the batch starts from; otherwise the whole transaction fails with
-- SQLSTATE DP001 and the consumer reads the positions again. This is what makes a batch that is
-- not durably stored impossible to skip: after PostgreSQL lost its last commits (an immediate
-- stop with synchronous_commit off), a service that still believes in the lost position cannot
-- store past the gap. It also fences an instance that lost its partitions to another one.
-- The schema is an argument, not written into the body: `dphp replay` renames schemas, and a
-- function's body is kept as text.
CREATE FUNCTION dphp.advance_positions(s text, g text, ts text[], ps integer[], froms bigint[], tos bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    moved bigint;
BEGIN
    -- A partition seen for the first time starts at 0 (no unique violation: nothing logged).
    EXECUTE format('INSERT INTO %I.consumer_position (group_id, topic, partition, next_offset)
                    SELECT $1, x.t, x.p, 0 FROM unnest($2, $3) AS x(t, p) ORDER BY x.t, x.p
                    ON CONFLICT (group_id, topic, partition) DO NOTHING', s)
        USING g, ts, ps;
    EXECUTE format('UPDATE %I.consumer_position c SET next_offset = x.o, updated_at = now()
                    FROM unnest($2, $3, $4, $5) AS x(t, p, f, o)
                    WHERE c.group_id = $1 AND c.topic = x.t AND c.partition = x.p AND c.next_offset = x.f', s)
        USING g, ts, ps, froms, tos;
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved <> cardinality(ts) THEN
        RAISE EXCEPTION 'the stored positions are not where this batch starts: another writer stored these partitions, or the database lost its last commits'
            USING ERRCODE = 'DP001';
    END IF;
END $$;

-- Raises an error with a code and a message of our own: used instead of a unique violation for
-- control flow, whose message PostgreSQL logs with the key (a voter's NIK) in its DETAIL line.
CREATE FUNCTION dphp.raise_if(failed boolean, code text, message text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF failed THEN
        RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message;
    END IF;
END $$;

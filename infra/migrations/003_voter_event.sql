-- A cheaper write per event (issue #5: PostgreSQL bounded the projection's rate).
-- Before: every registration was kept whole in `registration` (personal data, a key on the
-- event id and three secondary indexes), and each voter was inserted, locked and updated.
-- Now: the events of both voter topics go to one narrow history table, `voter_event`, with
-- what the recap and the as-of recap need (no names or addresses), keyed by
-- (nik, event_time, event_id): the key both deduplicates and serves the per-voter lookups.
-- The voter row holds the identity of the latest registration (personal data) and the
-- latest placement, and is written once per batch. Older registrations' personal data are
-- not kept in the database: the topics hold every event.

CREATE TABLE dphp.voter_event (
    nik             text COLLATE "C" NOT NULL,
    event_time      timestamptz NOT NULL,
    event_id        text COLLATE "C" NOT NULL,
    registered      boolean NOT NULL,   -- voter-registered; false: voter-moved
    sex             text,               -- registrations only, as the next four
    eligible        boolean,            -- with projection_config.voting_day
    new_voter       boolean,
    disability      smallint,
    desa_code       text COLLATE "C" NOT NULL,   -- tps or to_tps
    tps_number      smallint NOT NULL,
    loksus          boolean NOT NULL,
    reason          text,               -- movements only, as from_*
    from_desa_code  text COLLATE "C",
    from_tps_number smallint,
    PRIMARY KEY (nik, event_time, event_id)
);
-- As-of recaps: the voters with events after a cutoff, and those who were ever placed in a region.
CREATE INDEX voter_event_time ON dphp.voter_event (event_time);
CREATE INDEX voter_event_desa ON dphp.voter_event (desa_code);

INSERT INTO dphp.voter_event
SELECT nik, event_time, event_id, true, sex, eligible, new_voter, disability, desa_code, tps_number,
       loksus, NULL, NULL, NULL
FROM dphp.registration
UNION ALL
SELECT nik, event_time, event_id, false, NULL, NULL, NULL, NULL, desa_code, tps_number, loksus,
       reason, from_desa_code, from_tps_number
FROM dphp.movement
ON CONFLICT DO NOTHING;

ALTER TABLE dphp.voter
    ADD COLUMN nkk            text,
    ADD COLUMN name           text,
    ADD COLUMN birth_place    text,
    ADD COLUMN birth_date     date,
    ADD COLUMN marital_status text,
    ADD COLUMN ktp_el         boolean,
    ADD COLUMN street         text,
    ADD COLUMN rt             text,
    ADD COLUMN rw             text;

UPDATE dphp.voter v SET
    nkk = r.nkk, name = r.name, birth_place = r.birth_place, birth_date = r.birth_date,
    marital_status = r.marital_status, ktp_el = r.ktp_el, street = r.street, rt = r.rt, rw = r.rw
FROM dphp.registration r
WHERE r.event_id = v.reg_id;

DROP TABLE dphp.registration;
DROP TABLE dphp.movement;

-- Foundation: consumed positions (consumer group, topic, partition -> next offset).
-- Written in the same transaction as the projection rows they account for.
CREATE TABLE dphp.consumer_position (
    group_id    text    NOT NULL,
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

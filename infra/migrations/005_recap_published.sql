-- The report service: what it last published to the recap topic for each region, so that it
-- publishes a region again only when its figures change, and a zero recap for a region that no
-- longer has any voter (the compacted topic would otherwise keep its last figures).
CREATE TABLE dphp.recap_published (
    region_code  text COLLATE "C" PRIMARY KEY,
    level        text NOT NULL,
    figures      jsonb NOT NULL,
    as_of        timestamptz,
    published_at timestamptz NOT NULL
);

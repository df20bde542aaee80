-- What the reader role may know of the projection's freshness, for the web service's pages and its
-- cache (issues #12, #14): the newest event applied and when recaps were last published, as one
-- row of a view (a view reads with its owner's rights: the reader sees the two times, never the
-- voter_event rows), and the stored positions (group, topic, partition, offsets: no personal data),
-- which move with every stored batch and so key the web service's cache.
CREATE VIEW dphp.freshness AS
SELECT (SELECT max(event_time) FROM dphp.voter_event) AS newest_event_time,
       (SELECT max(published_at) FROM dphp.recap_published) AS recaps_published_at;

GRANT SELECT ON dphp.freshness, dphp.consumer_position TO dphp_reader;

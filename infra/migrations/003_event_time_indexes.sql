-- As-of recaps start from the current counters and correct them for the voters with events
-- after the cutoff: find those events by time.
CREATE INDEX registration_time ON dphp.registration (event_time);
CREATE INDEX movement_time ON dphp.movement (event_time);

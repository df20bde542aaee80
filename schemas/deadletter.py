"""The dead-letter topic's record headers (CONTRACT 1): their names, defined once for the writer
(the projection services), the reader (`dphp dlq`) and the AsyncAPI generator."""

from __future__ import annotations

ORIGINAL_TOPIC = "dphp.original.topic"
ORIGINAL_PARTITION = "dphp.original.partition"
ORIGINAL_OFFSET = "dphp.original.offset"
CONSUMER_GROUP = "dphp.consumer.group"
ERROR_CLASS = "dphp.error.class"
ERROR_REASON = "dphp.error.reason"
FAILED_AT = "dphp.failed.at"
#: Set by `dphp dlq retry` on a republished record: the dead letter it came from (`PARTITION:OFFSET`).
RETRIED_FROM = "dphp.retried.from"

#: Every header a dead letter carries, in the order they are written.
HEADERS = (ORIGINAL_TOPIC, ORIGINAL_PARTITION, ORIGINAL_OFFSET, CONSUMER_GROUP, ERROR_CLASS, ERROR_REASON, FAILED_AT)
#: The prefix of DPHP's own headers.
PREFIX = "dphp."
#: A reason is one line of at most this many characters (longer ones are cut, marked with "…").
REASON_MAX_CHARS = 1000
#: The error class of an event that validation accepted but the database cannot store.
UNSTORABLE = "UnstorableEvent"

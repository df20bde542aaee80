"""A projection service's own readiness checks (the lag monitor adds database, broker and stalls)."""

from __future__ import annotations

import time
from typing import Any


def owned_partitions(projection: Any) -> set[tuple[str, int]]:
    """(topic, partition) pairs this instance is assigned."""
    consumer = projection.consumer
    if consumer is None:
        return set()
    return {(tp.topic, tp.partition) for tp in consumer.assignment()}


def consumer_problem(projection: Any, fetch_within_s: float) -> str | None:
    """Why the consumer is not joined and fetching, or None: joined its group (with partitions, or
    with none while other members own them all) and, owning partitions, a fetch answered lately."""
    consumer = projection.consumer
    if consumer is None:
        return "the consumer has not started"
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or getattr(coordinator, "generation", -1) < 0:
        return f"the consumer has not joined its group {projection.group_id}"
    assigned = consumer.assignment()
    if not assigned:
        return None  # joined a generation and got no partition: other members own them all
    polls = [consumer.last_poll_timestamp(tp) for tp in assigned]
    if any(t is None for t in polls):
        return "the consumer has not fetched from all its partitions yet"
    ago = time.time() - max(polls) / 1000
    if ago > fetch_within_s:
        return f"the consumer has not fetched for {ago:.0f} s"
    return None


def database_problem(projection: Any) -> str | None:
    health = projection.db_health
    return f"database unavailable for the batches ({health.last_error})" if health.failing else None

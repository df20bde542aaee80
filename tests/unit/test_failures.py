"""The one classification of failures that every service uses (services/common/failures.py)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiokafka import errors as kafka_errors

from services.common.failures import Backoff, Failure, classify

pytestmark = pytest.mark.unit


def pg(sqlstate: str) -> asyncpg.PostgresError:
    exc = asyncpg.PostgresError.new({"C": sqlstate, "M": "a message", "S": "ERROR"})
    assert exc.sqlstate == sqlstate
    return exc


@pytest.mark.parametrize("sqlstate, expected", [
    ("53100", Failure.TRANSIENT),  # disk full
    ("53200", Failure.TRANSIENT),  # out of memory
    ("53300", Failure.TRANSIENT),  # too many connections
    ("25006", Failure.TRANSIENT),  # read-only transaction (a standby after a failover)
    ("25P03", Failure.TRANSIENT),  # idle-in-transaction timeout
    ("55P03", Failure.TRANSIENT),  # lock timeout
    ("57014", Failure.TRANSIENT),  # statement timeout / cancelled
    ("57P01", Failure.TRANSIENT),  # admin shutdown
    ("57P02", Failure.TRANSIENT),  # crash shutdown
    ("58030", Failure.TRANSIENT),  # I/O error
    ("08006", Failure.TRANSIENT),  # connection failure
    ("40001", Failure.TRANSIENT),  # serialization failure (a lost race)
    ("40P01", Failure.TRANSIENT),  # deadlock
    ("22008", Failure.EVENT),  # datetime field overflow
    ("22003", Failure.EVENT),  # numeric value out of range
    ("22021", Failure.EVENT),  # invalid byte sequence (NUL)
    ("23514", Failure.EVENT),  # check violation
    ("54000", Failure.EVENT),  # program limit exceeded (an index row too large)
    ("42703", Failure.BUG),  # undefined column
    ("42P01", Failure.BUG),  # undefined table
    ("DP001", Failure.BUG),  # our positions' compare-and-set: handled before classification
])
def test_database_errors_by_sqlstate(sqlstate, expected):
    assert classify(pg(sqlstate)) is expected


@pytest.mark.parametrize("exc, expected", [
    (ConnectionRefusedError(), Failure.TRANSIENT),
    (asyncio.TimeoutError(), Failure.TRANSIENT),
    (asyncpg.InterfaceError("connection is closed"), Failure.TRANSIENT),
    (asyncpg.InternalClientError("cannot switch to state 15"), Failure.TRANSIENT),
    (OverflowError("value out of int16 range"), Failure.EVENT),
    (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), Failure.EVENT),
    (kafka_errors.KafkaConnectionError(), Failure.TRANSIENT),
    (kafka_errors.KafkaTimeoutError(), Failure.TRANSIENT),
    (kafka_errors.NotLeaderForPartitionError(), Failure.TRANSIENT),
    (kafka_errors.MessageSizeTooLargeError(), Failure.BUG),
    (KeyError("nik"), Failure.BUG),
    (TypeError("bad row"), Failure.BUG),
])
def test_other_errors(exc, expected):
    assert classify(exc) is expected


def test_backoff_doubles_to_its_cap_and_resets():
    b = Backoff(first=0.5, cap=4)
    assert [b.delay() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    b.reset()
    assert b.delay() == 0.5


def test_a_success_that_began_before_the_failure_is_not_the_dependencys_return(caplog):
    """Two lanes: one fails as PostgreSQL goes down while the other's commit, begun earlier, still
    succeeds. That success must not log "reachable again" (then "unavailable" once more)."""
    import logging

    from services.common.failures import Health

    async def scenario() -> list[str]:
        health = Health("PostgreSQL", logging.getLogger("test.health"))
        begun_before = health.now()
        await asyncio.sleep(0.01)
        health.failed(ConnectionResetError("gone"))
        health.ok(begun_before)  # the other lane's commit, begun before the failure
        assert health.failing
        await asyncio.sleep(0.01)
        health.ok(health.now())  # an operation begun after it: the database is back
        assert not health.failing
        return [r.getMessage().split(" (")[0].split(" after")[0] for r in caplog.records]

    with caplog.at_level(logging.WARNING, logger="test.health"):
        assert asyncio.run(scenario()) == ["PostgreSQL unavailable", "PostgreSQL reachable again"]

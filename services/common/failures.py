"""What a failure means, decided in one place for every service, and how to wait before a retry.

Three classes (`classify`):
- TRANSIENT: the broker or the database is unreachable, restarting, out of disk or memory,
  read-only after a failover, or a lock or statement timed out. Nothing is wrong with the work:
  retry it with backoff, logging one line when the dependency fails and one when it is back.
- EVENT: the database refuses to store one event (a value out of a column's range, a constraint,
  a limit). Find the event (bisection), dead-letter it with a reason, store the rest.
- BUG: anything else (a missing column, a type error in our code). Stop the batch loudly: a
  traceback, and the batch is not stored; it is tried again with backoff, so that a fix (a
  migration, a restart with new code) lets it continue.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

T = TypeVar("T")


class Failure(enum.Enum):
    TRANSIENT = "transient"
    EVENT = "event"
    BUG = "bug"


#: SQLSTATE classes after which the same work may succeed later: 08 connection exception,
#: 25 invalid transaction state (25006 read-only after a failover, 25P03 idle-in-transaction
#: timeout), 40 transaction rollback (serialization, deadlock), 53 insufficient resources (disk
#: full, out of memory, too many connections), 55 object not in prerequisite state (55P03 lock
#: timeout), 57 operator intervention (shutdown, statement timeout), 58 system error (I/O).
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "25", "40", "53", "55", "57", "58"})
#: SQLSTATE classes that mean: this data cannot be stored. 22 data exception, 23 integrity
#: constraint violation, 54 program limit exceeded (a value or row too large).
EVENT_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})


def classify(exc: BaseException) -> Failure:
    """The class of a failure of the broker, the database, or of storing events."""
    match exc:
        case asyncpg.PostgresError():
            code = getattr(exc, "sqlstate", None) or ""
            if not code and isinstance(exc, asyncpg.DataError):
                return Failure.EVENT  # a value asyncpg could not encode for its parameter
            if code[:2] in TRANSIENT_SQLSTATE_CLASSES:
                return Failure.TRANSIENT
            if code[:2] in EVENT_SQLSTATE_CLASSES:
                return Failure.EVENT
            return Failure.BUG
        # The client side of a connection that broke: asyncpg's protocol left in a bad state by a
        # server that went away ("cannot switch to state ..."), a closed connection, a timeout.
        case asyncpg.InterfaceError() | asyncpg.InternalClientError() | OSError() | asyncio.TimeoutError():
            return Failure.TRANSIENT
        case KafkaConnectionError() | KafkaTimeoutError():
            return Failure.TRANSIENT
        case KafkaError():
            return Failure.TRANSIENT if getattr(exc, "retriable", False) else Failure.BUG
        # Values that the driver cannot encode for a column (measured with COPY: a number beyond
        # a smallint or 64 bits, a date beyond PostgreSQL's range, a lone surrogate): one event's data.
        case OverflowError() | UnicodeError():
            return Failure.EVENT
    return Failure.BUG


def is_transient(exc: BaseException) -> bool:
    return classify(exc) is Failure.TRANSIENT


def short(exc: BaseException) -> str:
    """One line naming a failure, without its details (which may quote data)."""
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Backoff:
    """Delays between retries: `first`, doubling up to `cap` seconds; `reset` after a success."""

    first: float = 0.5
    cap: float = 10.0
    _next: float = field(default=0.0, init=False)

    def delay(self) -> float:
        self._next = self.first if self._next == 0 else min(self._next * 2, self.cap)
        return self._next

    async def wait(self) -> None:
        await asyncio.sleep(self.delay())

    def reset(self) -> None:
        self._next = 0.0


class Health:
    """Logs one line when a dependency starts failing and one when it is back, not one per retry."""

    def __init__(self, what: str, log: logging.Logger) -> None:
        self.what = what
        self.log = log
        self.failing_since: float | None = None
        self.last_error: str | None = None

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def failed(self, exc: BaseException) -> None:
        self.last_error = short(exc)
        if self.failing_since is None:
            self.failing_since = asyncio.get_running_loop().time()
            self.log.warning("%s unavailable (%s); retrying with backoff, nothing committed",
                             self.what, self.last_error)

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    def ok(self, started: float | None = None) -> None:
        """A success; `started`: when the operation that succeeded began (`now()`). One that began
        before the failure was noticed proves nothing (another connection's transaction that was
        already committing as the server went down) and is not taken as the dependency's return."""
        if self.failing_since is not None:
            if started is not None and started < self.failing_since:
                return
            took = asyncio.get_running_loop().time() - self.failing_since
            self.log.warning("%s reachable again after %.1f s; resumed", self.what, took)
            self.failing_since = None
            self.last_error = None


async def retry_transient(action: Callable[[], Awaitable[T]], health: Health, backoff: Backoff | None = None) -> T:
    """Runs `action` until it succeeds, waiting with backoff after each transient failure (logged
    through `health`: one line when it starts failing, one when it is back); others are raised."""
    backoff = backoff or Backoff()
    while True:
        started = health.now()
        try:
            result = await action()
        except Exception as exc:
            if classify(exc) is not Failure.TRANSIENT:
                raise
            health.failed(exc)
            await backoff.wait()
            continue
        health.ok(started)
        return result

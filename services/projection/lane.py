"""A lane: one database connection that stores a service's batches, reconnecting with backoff."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from services.common.failures import Backoff, Failure, Health, classify
from services.projection import store as st

log = logging.getLogger("dphp.projection")

OpenStore = Callable[[], Awaitable[Any]]  # a connected store (ProjectionStore or a test's fake)


class Lane:
    """Runs actions on a store, retrying them while a failure is transient.

    `on_reconnect` is called whenever a new connection replaces one that was lost: the consumer
    then reads its positions again (the database may have lost its last commits)."""

    def __init__(self, open_store: OpenStore, health: Health, on_reconnect: Callable[[], None] = lambda: None) -> None:
        self.open_store = open_store
        self.health = health
        self.on_reconnect = on_reconnect
        self._store: Any = None
        self._connected_before = False

    async def store_ready(self) -> Any:
        """A connected store; retries with backoff while the database is unreachable."""
        backoff = Backoff()
        while True:
            if self._store is not None and not self._store.conn.is_closed():
                return self._store
            self.drop_connection()
            started = self.health.now()
            try:
                self._store = await self.open_store()
            except Exception as exc:
                if classify(exc) is not Failure.TRANSIENT:
                    raise
                self.health.failed(exc)
                await backoff.wait()
                continue
            if self._connected_before:
                self.on_reconnect()
            self._connected_before = True
            self.health.ok(started)
            return self._store

    async def with_db(self, action: Callable[[Any], Awaitable[Any]]) -> Any:
        """Runs `action` on the store; retries it with backoff while a failure is transient."""
        backoff = Backoff()
        while True:
            store = await self.store_ready()
            started = self.health.now()
            try:
                result = await action(store)
                self.health.ok(started)
                return result
            except st.ProjectionSwitched:
                # `dphp replay` put a rebuilt projection in place: continue on it, from its positions.
                log.warning("the projection was replaced by a rebuilt one (dphp replay); continuing on it")
                self.drop_connection()
            except Exception as exc:
                if classify(exc) is not Failure.TRANSIENT:
                    raise
                # Class 40 (a deadlock, a lost race) leaves the connection usable; anything else
                # may not have: a new connection, and the positions are read again.
                if not isinstance(exc, asyncpg.TransactionRollbackError):
                    self.drop_connection()
                self.health.failed(exc)
                await backoff.wait()

    def drop_connection(self) -> None:
        if self._store is not None:
            self._store.conn.terminate()
        self._store = None

    async def close(self) -> None:
        if self._store is not None and not self._store.conn.is_closed():
            await self._store.conn.close()
        self._store = None

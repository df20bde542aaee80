"""The lag monitor of a service: every `metrics_interval_s` it looks at the stored positions and the
end offsets (`status.group_lags`, as `dphp status` does), at the newest event applied, and whether
PostgreSQL and the broker answer; it feeds the metrics and decides readiness.

Ready means: the last look is recent, PostgreSQL and the broker answered it, no partition this
instance owns has lag with a stored position that has not moved for `stall_after_s`, and the
service's own checks (consumer joined and fetching, its database connections) pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from services.common.failures import short
from services.common.metrics import PartitionLag, ServiceMetrics
from services.common.settings import Settings
from services.operations import status

log = logging.getLogger("dphp.monitor")

Check = Callable[[], str | None]  # a reason the service is not ready, or None


class StallTracker:
    """Per partition, since when its lag has kept the same stored position (pure: no I/O)."""

    def __init__(self) -> None:
        self._since: dict[tuple[str, str, int], tuple[int, float]] = {}

    def look(self, groups: Iterable[dict], now: float) -> list[PartitionLag]:
        out, seen = [], set()
        for g in groups:
            for p in g["partitions"]:
                key = (g["group"], g["topic"], p["partition"])
                seen.add(key)
                position = p["stored_position"]
                before = self._since.get(key)
                if p["lag"] <= 0 or before is None or before[0] != position:
                    self._since[key] = (position, now)
                since = self._since[key][1]
                out.append(PartitionLag(g["group"], g["topic"], p["partition"], position, p["end_offset"],
                                        now - since if p["lag"] > 0 else 0.0))
        for key in set(self._since) - seen:
            del self._since[key]
        return out


class LagMonitor:
    """Looks every `settings.metrics_interval_s` at the groups of `services`; `owned()` gives the
    (topic, partition) pairs whose stall makes this instance not ready; `checks` are the service's
    own readiness checks."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics, services: tuple[str, ...],
                 owned: Callable[[], set[tuple[str, int]]] = set, checks: tuple[Check, ...] = ()) -> None:
        self.settings = settings
        self.metrics = metrics
        self.services = services
        self.owned = owned
        self.checks = checks
        self.stalls = StallTracker()
        self.looked_at: float | None = None  # monotonic time of the last complete look
        self.problem: str | None = "starting: no look at the broker and the database yet"
        self._task: asyncio.Task | None = None
        self._consumer = None
        self._conn = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping
                pass
        await self._close_conn()
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            await self.look()
            await asyncio.sleep(max(0.1, self.settings.metrics_interval_s - (time.monotonic() - started)))

    async def look(self) -> None:
        """One look; failures mark the broker or the database down (never raised).

        The newest event is read after the stored positions: rows and positions are committed
        together, so a look that shows a group caught up also shows that group's newest event
        (read first, a batch stored between the two reads gave lag 0 beside a stale time)."""
        timeout = max(5.0, 2 * self.settings.metrics_interval_s)
        try:
            conn = await asyncio.wait_for(self._connection(), timeout)
        except Exception as exc:  # noqa: BLE001 - any failure means: not reachable now
            await self._database_down(exc)
            return
        try:
            consumer = await asyncio.wait_for(self._kafka(), timeout)
            groups = await asyncio.wait_for(status.group_lags(consumer, conn, self.settings, self.services), timeout)
        except Exception as exc:  # noqa: BLE001
            groups, kafka_problem = None, f"broker unreachable or lag unknown ({short(exc)})"
        try:
            newest = await asyncio.wait_for(status.newest_event(conn, self.settings.db_schema), timeout)
        except Exception as exc:  # noqa: BLE001
            await self._database_down(exc)
            return
        self.metrics.database_up.set(1)
        if newest is not None:
            self.metrics.newest_event.set(newest.timestamp())
        if groups is None:
            self._down(database=False, why=kafka_problem)
            return
        self.metrics.kafka_up.set(1)
        self.metrics.lags = self.stalls.look(groups, time.monotonic())
        self.looked_at = time.monotonic()
        self.problem = None
        self.readiness()  # keeps dphp_ready current between probes

    async def _database_down(self, exc: BaseException) -> None:
        await self._close_conn()
        self._down(database=True, why=f"database unreachable ({short(exc)})")

    def _down(self, database: bool, why: str) -> None:
        (self.metrics.database_up if database else self.metrics.kafka_up).set(0)
        if self.problem != why:
            log.warning("not ready: %s", why)
        self.problem = why
        self.metrics.ready.set(0)

    async def _connection(self):
        from services.common.db import connect

        if self._conn is None or self._conn.is_closed():
            self._conn = await connect(self.settings, timeout=5)
        return self._conn

    async def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def _kafka(self):
        from services.common.kafka import kafka_consumer

        if self._consumer is None:
            consumer = kafka_consumer(self.settings, request_timeout_ms=10000)
            try:
                await consumer.start()
            except BaseException:
                await consumer.stop()
                raise
            self._consumer = consumer
        return self._consumer

    def readiness(self) -> tuple[bool, list[str]]:
        """Whether the service is ready, and every reason it is not."""
        reasons = []
        if self.problem is not None:
            reasons.append(self.problem)
        elif self.looked_at is None or time.monotonic() - self.looked_at > 3 * self.settings.metrics_interval_s + 10:
            reasons.append("the lag monitor has not looked for a while")
        owned = self.owned()
        for p in self.metrics.lags:
            if (p.topic, p.partition) in owned and p.stalled_seconds >= self.settings.stall_after_s:
                reasons.append(f"stalled: {p.group} {p.topic}[{p.partition}] at {p.stored_position}, "
                               f"lag {p.lag}, not advancing for {p.stalled_seconds:.0f} s")
        for check in self.checks:
            reason = check()
            if reason:
                reasons.append(reason)
        self.metrics.ready.set(0 if reasons else 1)
        return not reasons, reasons


class ServiceOperations:
    """What a service runs for its operators: the lag monitor and the HTTP server with /metrics and
    /health/*; nothing at all with `DPHP_METRICS_ENABLED=false`."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics, services: tuple[str, ...],
                 owned: Callable[[], set[tuple[str, int]]] = set, checks: tuple[Check, ...] = ()) -> None:
        from services.common.http import HttpServer, operations_routes

        self.enabled = settings.metrics_enabled
        self.monitor = LagMonitor(settings, metrics, services, owned, checks)
        self.http = HttpServer(settings, operations_routes(metrics.registry, self.monitor.readiness),
                               metrics.service)

    async def start(self) -> None:
        if self.enabled:
            await self.http.start()
            await self.monitor.start()

    async def stop(self) -> None:
        if self.enabled:
            await self.monitor.stop()
            await self.http.stop()

"""The web service's /metrics and /health/* (README "Monitoring"): the routes every DPHP service
serves (`services.common.http.operations_routes`), mounted on the web app. The web service reads
the projection only, so it is ready when PostgreSQL answered its last look; the look also sets
`dphp_database_up` and the projection's freshness (`dphp_newest_event_timestamp_seconds`)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI

from services.common.failures import short
from services.common.metrics import ServiceMetrics
from services.common.settings import Settings

log = logging.getLogger("dphp.web")


class WebHealth:
    def __init__(self, settings: Settings, data, metrics: ServiceMetrics | None = None) -> None:
        self.settings, self.data = settings, data
        self.metrics = metrics or ServiceMetrics("web")
        self.database_error: str | None = "no look at PostgreSQL yet"
        self._task: asyncio.Task | None = None

    def mount(self, app: FastAPI) -> None:
        """The routes at their exact paths (a Starlette `Mount` would answer `/metrics` with a
        redirect to `/metrics/`)."""
        from starlette.routing import Route

        from services.common.http import operations_routes

        for path, route in reversed(operations_routes(self.metrics.registry, self.readiness)):
            app.router.routes.insert(0, Route(path, endpoint=_AsgiEndpoint(route), include_in_schema=False))


    def readiness(self) -> tuple[bool, list[str]]:
        reasons = [f"PostgreSQL: {self.database_error}"] if self.database_error else []
        self.metrics.ready.set(0 if reasons else 1)
        return not reasons, reasons

    async def look(self) -> None:
        try:
            fresh = await asyncio.wait_for(self.data.freshness(), self.settings.metrics_interval_s)
        except Exception as exc:  # noqa: BLE001 - any failure to read means not ready, with its reason
            if self.database_error is None:
                log.warning("PostgreSQL does not answer the web service: %s", short(exc))
            self.database_error = short(exc)
            self.metrics.database_up.set(0)
            return
        if self.database_error is not None:
            log.info("PostgreSQL answers the web service")
        self.database_error = None
        self.metrics.database_up.set(1)
        if fresh["newest_event_time"] is not None:
            self.metrics.newest_event.set(fresh["newest_event_time"].timestamp())

    async def _run(self) -> None:
        while True:
            await self.look()
            await asyncio.sleep(self.settings.metrics_interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class _AsgiEndpoint:
    """An ASGI app as a Starlette route's endpoint (a plain function would be taken for a
    request handler)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)

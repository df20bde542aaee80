"""Each service's small HTTP server: `/metrics` (Prometheus text format), `/health/live`, `/health/ready`.

`operations_routes(registry, readiness)` gives the three routes as ASGI apps, for any ASGI
server or app to mount (the web service mounts them next to its own pages). `HttpServer` serves
them with uvicorn inside the service's own event loop: `/health/live` answering proves that the
loop runs. With `DPHP_HTTP_PORT=0` the kernel picks a free port; the address is logged and, when
`DPHP_HTTP_ADDRESS_FILE` is set (`dphp dev up` sets it next to the PID file), written there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

from faststream.asgi import AsgiResponse
from prometheus_client import CollectorRegistry, make_asgi_app

from services.common.settings import Settings

log = logging.getLogger("dphp.http")

Readiness = Callable[[], tuple[bool, list[str]]]  # (ready, reasons it is not)
ASGIApp = Callable[..., Any]


def _json(status: int, body: dict) -> AsgiResponse:
    return AsgiResponse(json.dumps(body).encode(), status_code=status, headers={"content-type": "application/json"})


def operations_routes(registry: CollectorRegistry, readiness: Readiness) -> list[tuple[str, ASGIApp]]:
    """(path, ASGI app) for /metrics, /health/live and /health/ready."""

    async def live(scope, receive, send) -> None:
        await _json(200, {"status": "live"})(scope, receive, send)

    async def ready(scope, receive, send) -> None:
        ok, reasons = readiness()
        await _json(200 if ok else 503, {"status": "ready" if ok else "not ready", "reasons": reasons})(
            scope, receive, send)

    return [("/metrics", make_asgi_app(registry)), ("/health/live", live), ("/health/ready", ready)]


def router(routes: list[tuple[str, ASGIApp]]) -> ASGIApp:
    """An ASGI app dispatching exact paths; anything else is 404."""
    table = dict(routes)

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        handler = table.get(scope["path"])
        if handler is None:
            await _json(404, {"error": "not found"})(scope, receive, send)
        else:
            await handler(scope, receive, send)

    return app


class HttpServer:
    """Serves `routes` on `settings.http_host:http_port` in the running event loop."""

    def __init__(self, settings: Settings, routes: list[tuple[str, ASGIApp]], name: str) -> None:
        self.settings = settings
        self.routes = routes
        self.name = name
        self.address: str | None = None
        self._server = None
        self._task: asyncio.Task | None = None
        self._socket: socket.socket | None = None

    async def start(self) -> str:
        import uvicorn

        family = socket.AF_INET6 if ":" in self.settings.http_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.settings.http_host, self.settings.http_port))
        except OSError as exc:
            sock.close()
            raise SystemExit(f"{self.name}: cannot listen on {self.settings.http_host}:{self.settings.http_port} "
                             f"for HTTP ({exc.strerror}); set DPHP_HTTP_PORT (0: a free port)") from None
        sock.listen(64)
        sock.setblocking(False)
        self._socket = sock
        host, port = sock.getsockname()[:2]
        config = uvicorn.Config(router(self.routes), lifespan="off", log_config=None, access_log=False,
                                log_level="warning")
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)  # "off": does nothing
        # Not `server.serve()`: it would take over SIGINT/SIGTERM from the FastStream app.
        await server.startup(sockets=[sock])
        self._server = server
        self._task = asyncio.create_task(server.main_loop())
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        self.address = f"http://{shown}:{port}"
        if self.settings.http_address_file is not None:
            self.settings.http_address_file.parent.mkdir(parents=True, exist_ok=True)
            self.settings.http_address_file.write_text(self.address + "\n")
        log.info("%s: HTTP on %s (/metrics, /health/live, /health/ready)", self.name, self.address)
        return self.address

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        await self._server.shutdown(sockets=[self._socket] if self._socket else None)
        if self.settings.http_address_file is not None:
            self.settings.http_address_file.unlink(missing_ok=True)
        self._server = None

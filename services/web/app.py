"""The web service: the recap of every region with drill-down, meetings, printable forms and the
same data as JSON (`/api/...`, OpenAPI at `/docs`). Server-rendered, no JavaScript needed.

`dphp run web` (or `python -m services.web.app`) serves it on DPHP_WEB_HOST:DPHP_WEB_PORT. The app
is built by `create_app(settings, data)`: its dependencies come in, so other routes (metrics,
health) can be mounted on it and tests can give it their own settings.
"""

from __future__ import annotations

import datetime as dt
import logging
from contextlib import asynccontextmanager
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from schemas.recap import RecapRow
from services.common.errors import InvalidArgument
from services.common.settings import Settings
from services.operations import reading
from services.operations.regions import check_region
from services.web import render
from services.web.data import WebData
from services.web.health import WebHealth

log = logging.getLogger("dphp.web")

AS_OF = Query(None, description="RFC 3339 time with offset: the recap over the events up to it",
              examples=["2024-07-10T00:00:00+07:00"])


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def parse_as_of(value: str | None) -> dt.datetime | None:
    try:
        return reading.parse_as_of(value, name="as_of")
    except InvalidArgument as exc:
        raise HttpError(422, str(exc)) from None


def known_region(code: str) -> str:
    try:
        check_region(code)
    except InvalidArgument as exc:
        raise HttpError(404, str(exc)) from None
    return code


def level_in(code: str, level: str | None) -> str:
    try:
        return reading.resolve_level(code, level)
    except InvalidArgument as exc:
        raise HttpError(422, str(exc).replace("--level", "level")) from None


async def region_view(data: WebData, code: str, as_of: dt.datetime | None) -> dict:
    """The context of a region page and of its print form: its own row and its children's rows."""
    known_region(code)
    own_level = level_in(code, render.own_level(code))
    own = await data.recap(code, own_level, as_of)
    child = render.child_level(code)
    children = await data.recap(code, child, as_of) if child else []
    return render.region_context(code, own, children, await data.freshness(), as_of)


def create_app(settings: Settings | None = None, data: WebData | None = None) -> FastAPI:
    settings = settings or Settings()
    owns_data = data is None
    data = data or WebData(settings)

    health = WebHealth(settings, data) if settings.metrics_enabled else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if owns_data:
            await data.start()
        if health is not None:
            health.start()
        try:
            yield
        finally:
            if health is not None:
                await health.stop()
            if owns_data:
                await data.close()

    app = FastAPI(title="DPHP recap", version="1", lifespan=lifespan,
                  description="The recapitulation of the updated voter list (DPHP), as in `dphp report` "
                              "and `dphp meetings`. No NIK anywhere.")
    app.state.data = data
    if health is not None:
        health.mount(app)  # /metrics, /health/live, /health/ready as every service serves them

    @app.exception_handler(HttpError)
    async def http_error(request: Request, exc: HttpError):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        return HTMLResponse(render.error_page(exc.status, exc.message), status_code=exc.status)

    def html(body: str) -> HTMLResponse:
        return HTMLResponse(body, headers={"Cache-Control": "no-cache"})

    def suffix(as_of: dt.datetime | None) -> str:
        return "?" + urlencode({"as_of": as_of.isoformat()}) if as_of else ""

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def nation(as_of: str | None = AS_OF):
        return await region_page("ID", as_of)

    @app.get("/region/{path:path}", response_class=HTMLResponse, include_in_schema=False)
    async def region(path: str, as_of: str | None = AS_OF):
        # A TPS code holds a slash (33.16.01.2001/001): the page kind is the last part.
        if path.endswith("/meetings"):
            code = known_region(path.removesuffix("/meetings"))
            meetings = await data.meetings(code)
            return html(render.meetings_page(render.meetings_context(code, meetings, await data.freshness())))
        if path.endswith("/print"):
            ctx = await region_view(data, path.removesuffix("/print"), parse_as_of(as_of))
            return html(render.region_print(ctx))
        return await region_page(path, as_of)

    async def region_page(code: str, as_of_text: str | None):
        t = parse_as_of(as_of_text)
        if as_of_text == "":
            return RedirectResponse(f"/region/{quote(code)}", status_code=303)  # the form's empty field
        ctx = await region_view(data, code, t)
        return html(render.region_page({**ctx, "q": suffix(t)}))

    @app.get("/meeting/{path:path}", response_class=HTMLResponse, include_in_schema=False)
    async def meeting_print(path: str):
        if not path.endswith("/print"):
            raise HttpError(404, "use /meeting/{meeting_id}/print for the minutes of a meeting")
        meeting = await data.meeting(path.removesuffix("/print"))
        if meeting is None:
            raise HttpError(404, f"no meeting {path.removesuffix('/print')!r}")
        ctx = render.meetings_context(meeting["region_code"], [meeting], await data.freshness())
        return html(render.meetings_print(ctx))

    @app.get("/api/recap/{code:path}", response_model=list[RecapRow], summary="Recap rows, as `dphp report`")
    async def api_recap(code: str, level: str | None = Query(None, description="tps, desa, kecamatan, kabupaten, "
                                                                                "provinsi or nasional; default: the level below"),
                        as_of: str | None = AS_OF):
        """One recap row for every region of `level` inside `code`: equal to
        `dphp report --region CODE --level L [--as-of T] --format json`."""
        known_region(code)
        rows = await data.recap(code, level_in(code, level), parse_as_of(as_of))
        return JSONResponse(rows)

    @app.get("/api/meetings/{code:path}", summary="Meetings, as `dphp meetings`")
    async def api_meetings(code: str):
        """Meetings of the region and inside it with attendees, declared, computed and discrepancy:
        the objects of `dphp meetings --region CODE --format json` (plus venue and notes)."""
        return JSONResponse(await data.meetings(known_region(code)))

    @app.get("/api/freshness", summary="The newest event applied and when recaps were last published")
    async def api_freshness():
        f = await data.freshness()
        return {k: (v.isoformat() if v else None) for k, v in f.items()}

    return app


def serve(settings: Settings) -> None:
    """Runs the web service in the foreground (uvicorn)."""
    import uvicorn

    from services.common.logs import setup_logging

    setup_logging()
    address = f"http://{settings.web_host}:{settings.web_port}"
    log.info("web service on %s/ (/metrics, /health/live, /health/ready too)", address)
    # Where `dphp dev status` and the local Prometheus's targets find it, as for every service.
    if settings.http_address_file is not None:
        settings.http_address_file.parent.mkdir(parents=True, exist_ok=True)
        settings.http_address_file.write_text(address + "\n")
    try:
        uvicorn.run(create_app(settings), host=settings.web_host, port=settings.web_port, log_level="warning",
                    access_log=False)
    finally:
        if settings.http_address_file is not None:
            settings.http_address_file.unlink(missing_ok=True)


if __name__ == "__main__":
    serve(Settings())

"""Printable recap forms and minutes for the command line (`dphp report|meetings --format
html|pdf --out FILE`): the same data as the JSON output, the same templates as the web pages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from services.common.settings import Settings
from services.operations import reading
from services.web import render


async def _freshness(settings: Settings) -> dict:
    from services.web.data import read_freshness

    async with reading.reader(settings) as conn:
        return await read_freshness(conn, settings.db_schema)


async def report_html(settings: Settings, region: str, level: str, as_of: dt.datetime | None) -> str:
    """The recap form of `region`: its own totals and one row per region of `level` inside it."""
    own_level = render.own_level(region)
    own = await reading.report(settings, region, own_level, as_of)
    rows = await reading.report(settings, region, level, as_of) if level != own_level else []
    ctx = render.region_context(region, own, rows, await _freshness(settings), as_of)
    if level != own_level:
        ctx["child_level"] = level
    return render.region_print(ctx)


async def meetings_html(settings: Settings, region: str | None) -> str:
    """The minutes of every meeting of `region` (all meetings without one), a page each."""
    code = region or "ID"
    meetings = await reading.meetings(settings, region)
    return render.meetings_print(render.meetings_context(code, meetings, await _freshness(settings)))


def write(html: str, fmt: str, out: Path, chromium: str) -> Path:
    if fmt == "pdf":
        from services.web.pdf import html_to_pdf

        return html_to_pdf(html, out, chromium)
    Path(out).write_text(html, encoding="utf-8")
    return Path(out)

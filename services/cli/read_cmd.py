"""Read commands: `dphp report`, `dphp meetings`, `dphp status`, and `dphp run`."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import enum
import io
import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from services.cli.common import CELL_LIMIT, OutputFormat, cell, dump_json, err, expected_errors, fail, load_settings, out
from services.cli.main import app
from services.common.errors import InvalidArgument
from schemas.recap import RECAP_COUNT_FIELDS as RECAP_FIELDS
from services.common.logs import quiet_kafka_logs
from services.operations import reading, regions
from services.operations.status import breaches, gather_status
from services.projection.recap import DECLARED_FIELDS, LEVELS

FORMAT = typer.Option(OutputFormat.table, "--format", help="table, json or csv")


class PrintableFormat(str, enum.Enum):
    """The formats of `report` and `meetings`: the data formats, and printable forms."""

    table = "table"
    json = "json"
    csv = "csv"
    html = "html"
    pdf = "pdf"


PRINTABLE = typer.Option(PrintableFormat.table, "--format",
                         help="table, json, csv, or a printable form: html or pdf (with --out FILE)")
OUT = typer.Option(None, "--out", help="file for --format html|pdf (html without it: stdout)")


def write_printable(fmt: PrintableFormat, out_file: Path | None, make_html) -> None:
    """Renders the printable form (`make_html()`: a coroutine giving its HTML) to --out or stdout."""
    from services.web.printing import write

    if fmt is PrintableFormat.pdf and out_file is None:
        fail("--format pdf needs --out FILE", code=2)
    html = asyncio.run(make_html())
    if out_file is None:
        sys.stdout.write(html)
        return
    written = write(html, fmt.value, out_file, load_settings().chromium)
    err.print(f"wrote {written}")


def parse_time(value: str | None) -> dt.datetime | None:
    try:
        return reading.parse_as_of(value)
    except InvalidArgument as exc:
        fail(str(exc), code=2)


def emit(rows: list[dict[str, Any]], fmt: OutputFormat, columns: list[str], title: str | None = None) -> None:
    """Rows as JSON (exact values), CSV or a table; every string printed as text (see cli.common)."""
    if fmt is OutputFormat.json:
        sys.stdout.write(dump_json(rows) + "\n")
        return
    flat = [{c: _cell(r.get(c)) for c in columns} for r in rows]
    if fmt is OutputFormat.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({c: cell(v) for c, v in r.items()} for r in flat)
        sys.stdout.write(buf.getvalue())
        return
    table = Table(*columns, title=None if title is None else Text(cell(title)))
    for r in flat:
        table.add_row(*(Text(cell(r[c], CELL_LIMIT)) for c in columns))
    out.print(table)


def _cell(value: Any) -> Any:
    if isinstance(value, dict):
        return " ".join(f"{k}:{v}" for k, v in value.items())
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value


@app.command("report")
@expected_errors
def report(
    region: str = typer.Option(..., "--region", help="region code: ID, 33, 33.16, 33.16.01, 33.16.01.2001"),
    level: str | None = typer.Option(None, "--level", help=f"one of {', '.join(LEVELS)}; default: the level below"),
    as_of: str | None = typer.Option(None, "--as-of", help="recap over the events up to this RFC 3339 time"),
    printable: PrintableFormat = PRINTABLE,
    out_file: Path | None = OUT,
) -> None:
    """One recap row for every region of a level inside a region (html/pdf: the A4 recap form)."""
    settings = load_settings()
    level = reading.resolve_level(region, level)
    t = parse_time(as_of)
    if printable in (PrintableFormat.html, PrintableFormat.pdf):
        from services.web.printing import report_html

        return write_printable(printable, out_file, lambda: report_html(settings, region, level, t))
    fmt = OutputFormat(printable.value)
    ordered = asyncio.run(reading.report(settings, region, level, t))
    columns = ["region_code", "name", "male", "female", "total", "tps_count", "tps_loksus_count",
               "new_voters", "disabled", "under_age", "over_capacity_tps"]
    if fmt is OutputFormat.json:
        columns = ["level", "region_code", "name", *RECAP_FIELDS[:7], "disability_by_type", *RECAP_FIELDS[7:]]
    elif fmt is OutputFormat.csv:
        # CSV readers get one column per disability type instead of an object.
        for r in ordered:
            for k, v in r["disability_by_type"].items():
                r[f"disability_{k}"] = v
        columns = ["level", "region_code", "name", *RECAP_FIELDS[:7], *(f"disability_{k}" for k in range(1, 7)),
                   *RECAP_FIELDS[7:]]
    emit(ordered, fmt, columns, title=f"{level} recap in {region} {regions.region_name(region)}" + (f" as of {as_of}" if as_of else ""))


@app.command("meetings")
@expected_errors
def meetings(
    region: str | None = typer.Option(None, "--region", help="only meetings of this region or inside it"),
    printable: PrintableFormat = PRINTABLE,
    out_file: Path | None = OUT,
) -> None:
    """Recapitulation meetings with attendees, declared and computed figures and the discrepancy
    (html/pdf: the minutes, a page per meeting)."""
    settings = load_settings()
    if printable in (PrintableFormat.html, PrintableFormat.pdf):
        from services.web.printing import meetings_html

        if region:
            regions.check_region(region)
        return write_printable(printable, out_file, lambda: meetings_html(settings, region))
    fmt = OutputFormat(printable.value)
    rows = asyncio.run(reading.meetings(settings, region))
    if fmt is OutputFormat.json:
        keys = ["meeting_id", "level", "region_code", "stage", "held_at", "data_cutoff", "attendees",
                "declared", "computed", "discrepancy"]
        emit([{k: r[k] for k in keys} for r in rows], fmt, keys)
        return
    flat = []
    for r in rows:
        row = {"meeting_id": r["meeting_id"], "level": r["level"], "region_code": r["region_code"],
               "stage": r["stage"], "held_at": r["held_at"], "attendees": len(r["attendees"])}
        for f in DECLARED_FIELDS:
            d = r["declared"][f] if r["declared"] else None
            row[f"{f}"] = f"{d if d is not None else '-'} / {r['computed'][f]}"
            row[f"{f}_diff"] = r["discrepancy"][f] if r["discrepancy"] else ""
        flat.append(row)
    columns = ["meeting_id", "level", "region_code", "stage", "held_at", "attendees",
               *[c for f in DECLARED_FIELDS for c in (f, f"{f}_diff")]]
    if fmt is OutputFormat.csv:
        emit(flat, fmt, columns)
    else:
        table_cols = ["meeting_id", "held_at", *DECLARED_FIELDS]
        emit(flat, fmt, table_cols, title="meetings: declared / computed (discrepancy in --format csv/json)")


@app.command("status")
@expected_errors
def status(
    fmt: OutputFormat = FORMAT,
    fail_on_lag: int | None = typer.Option(None, "--fail-on-lag", min=0, metavar="N",
                                           help="exit 3 when any group's lag exceeds N records"),
    max_staleness: float | None = typer.Option(None, "--max-staleness", min=0, metavar="SECONDS",
                                               help="exit 3 when a group with lag applied no batch for SECONDS"),
) -> None:
    """Per consumer group and partition: stored position, end offset, lag; projection freshness.
    Exit 3 (for cron and other monitors) when --fail-on-lag or --max-staleness is exceeded."""
    quiet_kafka_logs()
    settings = load_settings()
    result = asyncio.run(gather_status(settings))
    show_status(settings, result, fmt)
    problems = breaches(result, fail_on_lag, max_staleness)
    if problems:
        fail("; ".join(problems), code=3)


def show_status(settings, result: dict, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    rows = [{"group": g["group"], "topic": g["topic"], **p} for g in result["groups"] for p in g["partitions"]]
    emit(rows, fmt, ["group", "topic", "partition", "stored_position", "end_offset", "lag"],
         title="consumer positions (stored in the database with each batch)")
    if fmt is OutputFormat.table:
        for g in result["groups"]:
            out.print(f"{g['group']}: lag {g['lag']}, last batch applied at {g['last_applied_at'] or '-'}")
        out.print(f"newest event in the projection: {result['newest_event_time'] or '-'}")
        out.print(f"recaps last published to {settings.topic_recap}: {result['recaps_published_at'] or '-'}")
        out.print(Text("converged", "green") if result["converged"] else Text("not converged yet", "yellow"))


@app.command("run")
def run(service: str = typer.Argument(..., help="registrations, movements, meetings, report or web")) -> None:
    """Run one service in the foreground (any number of instances may run: a projection service's
    instances share its partitions, a second report instance waits as a standby)."""
    import importlib

    known = ("registrations", "movements", "meetings", "report", "web")
    if service not in known:
        fail(f"unknown service {service!r}: choose one of {', '.join(known)}", code=2)
    if service == "web":  # an HTTP server (uvicorn), not a FastStream app
        from services.web.app import serve

        return serve(load_settings())
    module = importlib.import_module(f"services.{service}.app")
    try:
        asyncio.run(module.create_app(load_settings()).run())
    except KeyboardInterrupt:
        pass

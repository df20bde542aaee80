"""`dphp subscribe`: follow the recap topic, as a live table or one JSON object per line."""

from __future__ import annotations

import asyncio
import sys

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from services.cli.common import OutputFormat, cell, expected_errors, fail, load_settings, out
from services.cli.main import app
from services.projection.recap import LEVELS

COLUMNS = ("region_code", "name", "male", "female", "total", "tps_count", "tps_loksus_count", "new_voters",
           "disabled", "under_age", "over_capacity_tps", "as_of")


def _table(latest: dict, title: str) -> Table:
    table = Table(*COLUMNS, title=Text(cell(title)))
    for code in sorted(latest):
        r = latest[code].model_dump(mode="json")
        table.add_row(*(Text(cell(r[c], 60)) for c in COLUMNS))
    return table


@app.command("subscribe")
@expected_errors
def subscribe(
    region: str | None = typer.Option(None, "--region", help="only recaps of this region or inside it"),
    level: str | None = typer.Option(None, "--level", help=f"one of {', '.join(LEVELS)} or all; "
                                     "default: the level below --region's (all without --region)"),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="first the latest recap of every region"),
    exit_at_end: bool = typer.Option(False, "--exit-at-end", help="stop at the topic's end instead of following"),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table (live) or json (one object a line)"),
) -> None:
    """Follow the recap topic: a live table, or with --format json one recap object per line."""
    from services.common.logs import quiet_kafka_logs
    from services.operations.subscribing import follow, recap_filter

    if fmt is OutputFormat.csv:
        fail("--format csv is not offered for a stream: use table or json", code=2)
    quiet_kafka_logs()
    settings = load_settings()
    wanted = recap_filter(region, level)

    if fmt is OutputFormat.json:
        def show(recap) -> None:
            sys.stdout.write(recap.model_dump_json() + "\n")
            sys.stdout.flush()

        asyncio.run(follow(settings, wanted, show, from_beginning=from_beginning, exit_at_end=exit_at_end))
        return
    latest: dict = {}
    title = f"{settings.topic_recap}: {region or 'every region'} ({level or 'default level'}), Ctrl-C to stop"
    with Live(_table(latest, title), console=out, auto_refresh=False) as live:
        def update(recap) -> None:
            latest[recap.region_code] = recap
            live.update(_table(latest, title), refresh=True)

        asyncio.run(follow(settings, wanted, update, from_beginning=from_beginning, exit_at_end=exit_at_end))

"""`dphp replay`: rebuild the projection from the topics, then switch over."""

from __future__ import annotations

import asyncio
import json
import sys

import typer

from services.cli.common import OutputFormat, expected_errors, load_settings, log_stderr, out
from services.cli.main import app
from services.common.logs import quiet_kafka_logs
from services.operations.replay import replay


@app.command("replay")
@expected_errors
def replay_command(
    keep_old: bool = typer.Option(True, "--keep-old/--drop-old",
                                  help="keep the replaced projection as <schema>_replaced_<time> (default) or drop it"),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table or json"),
) -> None:
    """Rebuild the projection from the beginning of the topics, then switch over.

    The rebuild goes to a new schema while the services and readers keep using the current
    projection; the switch-over is one transaction, and the services continue on the rebuilt
    projection. Use it after changing DPHP_VOTING_DAY (restart the services with the new value
    afterwards) or to recover a damaged projection.

    The switch-over waits at most DPHP_REPLAY_SWITCH_TIMEOUT_S for its lock and for catching up
    with the live projection; past it, or when the live positions name records the topics do
    not have, the replay stops with one line: the live projection untouched, the rebuild dropped.
    """
    quiet_kafka_logs()
    settings = load_settings()
    shown = [-1]

    def progress(done: int, total: int) -> None:
        step = 100 * done // total if total else 100
        if step // 5 > shown[0] // 5:
            shown[0] = step
            log_stderr(f"replay: {done:,} of {total:,} records ({step}%)")

    result = asyncio.run(replay(settings, keep_old=keep_old, progress=progress))
    summary = {"schema": result.schema, "replaced": result.replaced, "events": result.events,
               "invalid": result.invalid, "seconds": round(result.seconds, 1)}
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    out.print(f"rebuilt {result.schema} from {result.events:,} events ({result.invalid:,} invalid, skipped: "
              f"the services dead-letter them) in {result.seconds:.1f} s and switched over")
    if result.replaced:
        out.print(f"the previous projection is kept as {result.replaced}; "
                  f"drop it when no longer needed: DROP SCHEMA {result.replaced} CASCADE")

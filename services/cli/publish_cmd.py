"""`dphp publish FILE...`: validate JSONL/CSV events and publish the valid ones."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from pathlib import Path

import typer

from services.cli.common import OutputFormat, err, expected_errors, fail, load_settings
from services.cli.main import app
from services.common.logs import quiet_kafka_logs
from services.operations.batch_publishing import publish_batched
from services.operations.publishing import count_lines


@app.command("publish")
@expected_errors
def publish_cmd(
    files: list[Path] = typer.Argument(..., help="JSONL files of CloudEvents, or CSV files (one event type each)"),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table, json or csv"),
) -> None:
    """Validate events and publish the valid ones (idempotent producer, acks=all).

    Validation runs in DPHP_PUBLISH_WORKERS processes (default: one per CPU); the valid events
    go out in batches per partition, in file order within each partition.

    Rejected lines are reported with file, line number and reason; exit 1 if any was rejected.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    for f in files:
        if not f.is_file():
            fail(f"no such file: {f}", code=2)
    settings = load_settings()
    quiet_kafka_logs()
    total_lines = sum(count_lines(f) for f in files)
    with Progress(TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("publish", total=total_lines)
        result = asyncio.run(publish_batched(settings, files, progress=lambda n: bar.advance(task, n)))
    rate = result.accepted / result.seconds if result.seconds > 0 else 0.0
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps({"accepted": result.accepted, "rejected": result.rejected}) + "\n")
    elif fmt is OutputFormat.csv:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["file", "line", "reason"], lineterminator="\n")
        w.writeheader()
        w.writerows(result.rejected)
        sys.stdout.write(buf.getvalue())
    else:
        for r in result.rejected[:50]:
            err.print(f"rejected {r['file']}:{r['line']}: {r['reason']}", soft_wrap=True, markup=False)
        if len(result.rejected) > 50:
            err.print(f"... and {len(result.rejected) - 50} more rejected lines (--format json lists all)")
    err.print(f"published {result.accepted} events in {result.seconds:.1f} s ({rate:,.0f} events/s); "
              f"rejected {len(result.rejected)}", markup=False)
    if result.rejected:
        raise typer.Exit(1)


"""`dphp dev up | down | status` and `dphp db migrate`."""

from __future__ import annotations

import asyncio
import json
import time

import typer
from rich.table import Table
from rich.text import Text

from services.cli.common import OutputFormat, expected_errors, load_settings, log_stderr, out
from services.cli.main import app

dev = typer.Typer(help="The local stack: Kafka broker, PostgreSQL and the DPHP services as background processes.",
                  no_args_is_help=True)
db = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(dev, name="dev")
app.add_typer(db, name="db")


@dev.command("up")
@expected_errors
def dev_up(
    services: bool = typer.Option(True, "--services/--no-services", help="also start the DPHP services"),
    secure: bool = typer.Option(False, "--secure", help="the second, authenticated and encrypted stack "
                                "(SASL_SSL, ACLs, scram-sha-256) on its own ports; credentials in <state>/secrets"),
    monitoring: bool = typer.Option(False, "--monitoring",
                                    help="also start Prometheus (Debian's `prometheus`) scraping the services"),
) -> None:
    """Start the broker, the database and the services (idempotent); create topics; migrate."""
    from services.devstack.stack import up

    started = time.monotonic()
    if secure:
        from services.devstack import secure as secure_stack

        secure_stack.up(load_settings(), log=log_stderr, with_services=services)
    else:
        up(load_settings(), log=log_stderr, with_services=services, with_monitoring=monitoring)
    log_stderr(f"stack up in {time.monotonic() - started:.1f} s; `dphp dev status` shows it, `dphp dev down` stops it")


@dev.command("down")
@expected_errors
def dev_down() -> None:
    """Stop, by their PIDs, the processes that `dphp dev up` started."""
    from services.devstack.stack import down

    down(load_settings(), log=log_stderr)


@dev.command("status")
@expected_errors
def dev_status(fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table, json or csv"),
               secure: bool = typer.Option(False, "--secure", help="show the secure stack (`dev up --secure`)")) -> None:
    """Show the broker, the database and the services with their addresses and PIDs."""
    from services.devstack.stack import status

    if secure:
        from services.devstack import secure as secure_stack

        rows = [{"component": name, "address": address, "managed": True, "pid": pid, "up": up, "http": http}
                for name, address, pid, up, http in secure_stack.status(load_settings())]
    else:
        rows = [
            {"component": c.name, "address": c.address, "managed": c.managed, "pid": c.pid, "up": c.up, "http": c.http}
            for c in status(load_settings())
        ]
    if fmt is OutputFormat.json:
        print(json.dumps(rows))
    elif fmt is OutputFormat.csv:
        print("component,address,managed,pid,up,http")
        for r in rows:
            print(f"{r['component']},{r['address']},{r['managed']},{r['pid'] or ''},{r['up']},{r['http'] or ''}")
    else:
        table = Table("component", "address", "started by dphp", "pid", "state", "http (/metrics, /health)")
        for r in rows:
            table.add_row(r["component"], r["address"],
                          "yes" if r["managed"] else ("no (external)" if r["up"] else "-"),
                          str(r["pid"] or "-"), Text("up", "green") if r["up"] else Text("down", "red"),
                          r["http"] or "-")
        out.print(table)


@db.command("migrate")
@expected_errors
def db_migrate() -> None:
    """Apply the SQL migrations under infra/migrations that are not yet recorded (idempotent)."""
    from services.common.db import migrate

    applied = asyncio.run(migrate(load_settings()))
    log_stderr(f"applied {', '.join(applied)}" if applied else "database schema up to date")

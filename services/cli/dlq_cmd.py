"""`dphp dlq list` and `dphp dlq retry`: the dead-letter topic for operators."""

from __future__ import annotations

import asyncio
import sys

import typer

from services.cli.common import OutputFormat, dump_json, expected_errors, fail, load_settings, out
from services.cli.main import app

dlq = typer.Typer(help="Dead letters: events the services could not apply, with the reasons.",
                  no_args_is_help=True)
app.add_typer(dlq, name="dlq")

COLUMNS = ["id", "original_topic", "original_partition", "original_offset", "error_class", "reason",
           "failed_at", "key"]
ERROR_CLASS = typer.Option(None, "--error-class", help="only these: malformed, unknown_type, unexpected_type, "
                                                      "schema, rule, UnapplicableEvent")
TOPIC = typer.Option(None, "--topic", help="only dead letters from this topic")


def _quiet_kafka_logs() -> None:
    # aiokafka's own log lines ("Unable connect to ...") would add to the one-line error.
    import logging

    logging.getLogger("aiokafka").addHandler(logging.NullHandler())


def _selector(error_class: str | None, topic: str | None, ids: set[str] | None = None):
    def keep(d) -> bool:
        return ((error_class is None or d.error_class == error_class)
                and (topic is None or d.original_topic == topic)
                and (ids is None or d.id in ids))
    return keep


@dlq.command("list")
@expected_errors
def list_(error_class: str | None = ERROR_CLASS, topic: str | None = TOPIC,
          fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table, json or csv")) -> None:
    """Every dead letter with where it came from and why (never the event's content; keys masked)."""
    from services.cli.read_cmd import emit
    from services.common.deadletter import read_dead_letters

    settings = load_settings()
    _quiet_kafka_logs()
    letters = asyncio.run(read_dead_letters(settings, _selector(error_class, topic)))
    rows = [d.row() for d in letters]
    if fmt is OutputFormat.json:
        sys.stdout.write(dump_json(rows) + "\n")
        return
    emit(rows, fmt, COLUMNS, title=f"{len(rows)} dead letter(s) in {settings.topic_dead_letter}")


@dlq.command("retry")
@expected_errors
def retry(
    ids: list[str] = typer.Option(None, "--id", help="PARTITION:OFFSET of a dead letter (as `dlq list` shows); "
                                                     "repeat for more"),
    all_: bool = typer.Option(False, "--all", help="every dead letter (narrowed by --error-class, --topic)"),
    error_class: str | None = ERROR_CLASS, topic: str | None = TOPIC,
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would be re-published, send nothing"),
) -> None:
    """Re-publish selected dead letters, unchanged, to their original topics (after a fix).

    Only to the three input topics: if a selected dead letter names any other topic (the recap
    topic, for instance), nothing of the selection is sent and the command exits 1.

    The services validate them again: applied if they now pass (applying twice is harmless),
    dead-lettered again with the new reason if not.
    """
    from services.common.deadletter import check_retryable, read_dead_letters, republish

    if not ids and not all_:
        fail("choose dead letters: --id PARTITION:OFFSET (repeatable) or --all", code=2)
    if ids and all_:
        fail("--id and --all exclude each other", code=2)
    for i in ids or []:
        p, _, o = i.partition(":")
        if not (p.isdigit() and o.isdigit()):
            fail(f"--id {i!r}: expected PARTITION:OFFSET, e.g. 0:17", code=2)
    settings = load_settings()
    _quiet_kafka_logs()
    wanted = set(ids) if ids else None
    letters = asyncio.run(read_dead_letters(settings, _selector(error_class, topic, wanted)))
    if wanted:
        unknown = sorted(wanted - {d.id for d in letters})
        if unknown:
            fail(f"no such dead letter(s) in {settings.topic_dead_letter} with the given filters: "
                 f"{', '.join(unknown)}", code=1)
    check_retryable(settings, letters)  # only to the input topics; all of the selection or nothing
    if dry_run:
        for d in letters:
            out.print(f"would re-publish {d.id} to {d.original_topic} ({d.error_class}: {d.row()['reason']})")
        out.print(f"{len(letters)} dead letter(s) selected; nothing sent (--dry-run)")
        return
    sent = asyncio.run(republish(settings, letters))
    out.print(f"re-published {sent} dead letter(s) to their original topics")

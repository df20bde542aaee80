"""Operator commands print hostile strings as text, never as markup (issue #10): real dead letters
and a real meeting, applied by the meetings service, whose strings are rich markup, emoji codes
and terminal escape sequences; every command exits 0 and shows each string literally."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json

import pytest
from aiokafka import AIOKafkaProducer

from services.cli.common import visible
from services.common.topics import ensure_topics
from tests.conftest import unique_settings
from tests.strategies import make_meeting
from tests.support.kafka import produce
from tests.support.services import dphp, start_services, wait_converged

pytestmark = pytest.mark.e2e

WIB = dt.timezone(dt.timedelta(hours=7))
# Valid as a meeting_id (no control characters), hostile as rich markup.
MEETING_ID = "[/bold][link=https://x.example]pleno[red:house:\\"
VENUE = "[/venue] Balai [link=file:///etc/passwd]Desa[/link]"
ATTENDEE = "[bold]Budi[/ \\[x]"
# Key of an invalid record: anything goes there, escape sequences included.
BAD_KEY = b"\x1b[31m[/bold]key\x1b[0m"
REASON = "[/bold] \x1b]8;;http://evil.example\x07click\x1b]8;;\x07 [red"


def one_row_cell(stdout: str, column: str) -> str:
    """The text of one column of a one-row rich table, its wrapped lines joined by a space."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "┃" in line)
    names = [c.strip() for c in lines[header].split("┃")[1:-1]]
    parts = [line.split("│")[1:-1][names.index(column)].strip() for line in lines[header + 2:] if "│" in line]
    return " ".join(p for p in parts if p)


def has_no_escape(text: str) -> bool:
    return "\x1b" not in text and "\x07" not in text and "\x9b" not in text


@pytest.mark.timeout(300)
async def test_dlq_list_and_meetings_print_hostile_strings_literally(stack, tmp_path):
    settings = unique_settings(stack)
    await ensure_topics(settings)
    t = dt.datetime(2024, 6, 24, 9, 0, tzinfo=WIB)
    meeting = make_meeting("m-hostile-1", t, MEETING_ID, "kecamatan", "33.16.01", venue=VENUE,
                           attendees=[{"name": ATTENDEE, "role": "[/role]", "institution": "[i]PPK"}],
                           declared={"male": 1, "female": 2, "total": 3, "tps_count": 1, "tps_loksus_count": 0})
    await produce(settings, [meeting, (settings.topic_meetings, BAD_KEY, b'{"not json [/bold]')])
    # A dead letter as another writer may have left it: its reason is markup and an OSC 8 link.
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic_dead_letter, value=b"{}", key=b"[/k]", headers=[
            ("dphp.original.topic", settings.topic_meetings.encode()), ("dphp.original.partition", b"0"),
            ("dphp.original.offset", b"99"), ("dphp.error.class", b"[red]rule"),
            ("dphp.error.reason", REASON.encode()), ("dphp.failed.at", b"2024-06-24T02:00:00Z")])
    finally:
        await producer.stop()

    procs = start_services(settings, tmp_path / "logs", names=("meetings",))
    try:
        await wait_converged(settings, timeout=120, processes=procs)
        letters = []
        for _ in range(60):  # the service's dead letter is sent before its position is stored
            listed = await asyncio.to_thread(dphp, settings, "dlq", "list", "--format", "json")
            assert listed.returncode == 0, listed.stderr
            letters = json.loads(listed.stdout)
            if len(letters) == 2:
                break
            await asyncio.sleep(0.5)
    finally:
        for p in procs:
            p.stop()
    assert {d["reason"] for d in letters} >= {REASON}, letters
    assert {d["key"] for d in letters} == {BAD_KEY.decode(), "[/k]"}

    table = dphp(settings, "dlq", "list")
    assert table.returncode == 0, table.stderr
    assert "Traceback" not in table.stderr
    assert "[red]rule" in table.stdout and "[/k]" in table.stdout
    assert visible(BAD_KEY.decode()) in table.stdout
    assert has_no_escape(table.stdout)
    forged = dphp(settings, "dlq", "list", "--error-class", "[red]rule")
    assert forged.returncode == 0, forged.stderr
    assert one_row_cell(forged.stdout, "reason") == visible(REASON), forged.stdout
    assert has_no_escape(forged.stdout)
    as_csv = dphp(settings, "dlq", "list", "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    assert visible(REASON) in {r["reason"] for r in csv.DictReader(io.StringIO(as_csv.stdout))}
    assert has_no_escape(as_csv.stdout)

    for args in (("meetings",), ("meetings", "--region", "33.16")):
        shown = dphp(settings, *args)
        assert shown.returncode == 0, shown.stderr
        assert MEETING_ID in shown.stdout, shown.stdout
        assert "1 / " in shown.stdout  # the declared figures are there too
    as_csv = dphp(settings, "meetings", "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    assert [r["meeting_id"] for r in csv.DictReader(io.StringIO(as_csv.stdout))] == [MEETING_ID]
    as_json = dphp(settings, "meetings", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    (got,) = json.loads(as_json.stdout)
    assert got["meeting_id"] == MEETING_ID and got["attendees"][0]["name"] == ATTENDEE


def test_a_region_argument_of_markup_is_one_literal_error_line(stack):
    settings = unique_settings(stack)
    for args in (("report", "--region", "[/bold]"), ("meetings", "--region", "[red")):
        result = dphp(settings, *args)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and args[2] in lines[0], result.stderr

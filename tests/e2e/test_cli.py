"""The `dphp` commands as an operator runs them, against the services and the session stack."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys

import pytest

from services.common.topics import ensure_topics
from services.devstack.process import free_port
from services.projection.fold import Projection, instant
from services.projection.recap import comparable_meetings, comparable_report
from tests.conftest import unique_settings
from tests.eventsets import deliveries, event_set
from tests.support.kafka import produce, topic_of
from tests.support.services import ROOT, dphp, settings_env, start_services, wait_converged

pytestmark = pytest.mark.e2e

CAPACITY = 3
LEVELS = ("tps", "desa", "kecamatan", "kabupaten", "provinsi", "nasional")
WIB = dt.timezone(dt.timedelta(hours=7))


def run_json(settings, *args: str):
    """Runs a command with `--format json`: exit 0, stdout exactly one JSON document."""
    result = dphp(settings, *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return one_document(result.stdout)


def one_document(stdout: str):
    decoder = json.JSONDecoder()
    doc, end = decoder.raw_decode(stdout)
    assert stdout[end:].strip() == "", f"more than one JSON document on stdout: {stdout[end:end + 200]!r}"
    return doc


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return lines[0]


def check_status_shape(status: dict, settings, ends: dict[str, int]) -> None:
    assert set(status) >= {"groups", "converged"}
    assert isinstance(status["converged"], bool)
    groups = {g["group"]: g for g in status["groups"]}
    services = {"registrations": settings.topic_registered, "movements": settings.topic_moved,
                "meetings": settings.topic_meetings}
    assert set(groups) == {settings.group_id(s) for s in services}
    for service, topic in services.items():
        g = groups[settings.group_id(service)]
        assert g["topic"] == topic
        partitions = g["partitions"]
        assert [p["partition"] for p in partitions] == list(range(len(partitions)))
        assert len(partitions) == (settings.partitions_meetings if service == "meetings" else 6)
        for p in partitions:
            assert set(p) >= {"partition", "stored_position", "end_offset", "lag"}
            assert p["lag"] == p["end_offset"] - p["stored_position"] >= 0
        assert g["lag"] == sum(p["lag"] for p in partitions)
        assert sum(p["end_offset"] for p in partitions) == ends[topic]
    assert status["converged"] == all(p["lag"] == 0 for g in status["groups"] for p in g["partitions"])


def report_all_levels(settings, *extra: str) -> dict:
    got = {}
    for level in LEVELS:
        got.update(comparable_report(run_json(settings, "report", "--region", "ID", "--level", level, *extra)))
    return got


@pytest.mark.timeout(600)
async def test_status_report_and_meetings_on_running_services(stack, tmp_path):
    settings = unique_settings(stack, tps_capacity=CAPACITY)
    await ensure_topics(settings)
    events = event_set(51, voters=300)
    stream = deliveries(events, 51)
    await produce(settings, stream)
    ends: dict[str, int] = {}
    for e in stream:
        ends[topic_of(settings, e)] = ends.get(topic_of(settings, e), 0) + 1

    # Before any service ran: not converged, exit 0 all the same.
    before = run_json(settings, "status")
    check_status_shape(before, settings, ends)
    assert before["converged"] is False
    assert all(p["stored_position"] == 0 for g in before["groups"] for p in g["partitions"])

    procs = start_services(settings, tmp_path / "logs")
    try:
        await wait_converged(settings, timeout=300, processes=procs)
    finally:
        for p in procs:
            p.stop()

    after = run_json(settings, "status")
    check_status_shape(after, settings, ends)
    assert after["converged"] is True
    table = dphp(settings, "status")
    assert table.returncode == 0, table.stderr
    assert "converged" in table.stdout and settings.group_id("registrations") in table.stdout

    fold = Projection(tps_capacity=CAPACITY)
    fold.apply(events)
    want = comparable_report(fold.recap())
    assert report_all_levels(settings) == want

    # CSV: a header and one row per region, the same figures as JSON.
    as_json = run_json(settings, "report", "--region", "33.16")
    as_csv = dphp(settings, "report", "--region", "33.16", "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["region_code"] for r in rows] == [r["region_code"] for r in as_json]
    assert {"level", "region_code", "name", "male", "female", "total", "tps_count", "tps_loksus_count",
            "new_voters", "disabled", "under_age", "over_capacity_tps"} <= set(rows[0])
    for c, j in zip(rows, as_json, strict=True):
        assert c["level"] == "kecamatan" and c["name"] == j["name"]
        for field in ("male", "female", "total", "tps_count", "tps_loksus_count", "new_voters", "disabled",
                      "under_age", "over_capacity_tps"):
            assert int(c[field]) == j[field]
        assert {k: int(c[f"disability_{k}"]) for k in "123456"} == j["disability_by_type"]
    # Table: every region and its name.
    as_table = dphp(settings, "report", "--region", "33.16", "--format", "table")
    assert as_table.returncode == 0, as_table.stderr
    for r in as_json:
        assert r["region_code"] in as_table.stdout
        assert str(r["total"]) in as_table.stdout

    # --as-of: the fold over the events up to T (T inclusive, any offset).
    instants = sorted({instant(e.time) for e in events})
    edge = instants[len(instants) // 3]
    for t, text in ((edge, edge.astimezone(WIB).isoformat()),
                    (edge + dt.timedelta(minutes=45), (edge + dt.timedelta(minutes=45)).isoformat().replace("+00:00", "Z")),
                    (instants[-1], instants[-1].isoformat())):
        assert report_all_levels(settings, "--as-of", text) == comparable_report(fold.recap_as_of(t)), text
    assert comparable_report(fold.recap_as_of(edge)) not in ({}, want)  # a real cut through the set
    assert comparable_report(fold.recap_as_of(instants[-1])) == want

    meetings = run_json(settings, "meetings")
    assert comparable_meetings(meetings) == comparable_meetings(fold.meetings())
    inside = run_json(settings, "meetings", "--region", "33.16.01")
    assert comparable_meetings(inside) == comparable_meetings(fold.meetings("33.16.01"))
    assert dphp(settings, "meetings", "--format", "csv").returncode == 0
    assert dphp(settings, "meetings").returncode == 0


def test_json_output_is_one_document_and_logs_go_to_stderr(stack, tmp_path):
    settings = unique_settings(stack)
    sample = tmp_path / "sample.jsonl"
    result = subprocess.run([sys.executable, "-m", "services.cli", "sample", "--out", str(sample), "--voters", "50",
                             "--format", "json"], env=settings_env(settings), capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    summary = one_document(result.stdout)
    assert summary["events"] == len(sample.read_bytes().splitlines())

    import asyncio

    asyncio.run(ensure_topics(settings))
    published = dphp(settings, "publish", str(sample), "--format", "json")
    assert published.returncode == 0, published.stderr
    assert one_document(published.stdout) == {"accepted": summary["events"], "rejected": []}
    assert "events/s" in published.stderr and "events/s" not in published.stdout

    migrate = dphp(settings, "db", "migrate")
    assert migrate.returncode == 0, migrate.stderr
    assert migrate.stdout == "" and migrate.stderr.strip()  # a log line, on stderr
    for args in (("report", "--region", "33.16"), ("report", "--region", "ID", "--as-of", "2024-08-01T00:00:00+07:00"),
                 ("meetings",), ("status",), ("dev", "status")):
        doc = run_json(settings, *args)
        assert isinstance(doc, list if args[0] in ("report", "meetings", "dev") else dict), args


def test_status_with_the_broker_unreachable_is_one_line(stack):
    settings = unique_settings(stack, kafka_bootstrap=f"127.0.0.1:{free_port()}")
    for fmt in ("json", "table"):
        result = dphp(settings, "status", "--format", fmt)
        assert result.returncode == 1
        assert result.stdout == ""
        line = one_error_line(result)
        assert "Kafka" in line


def test_report_as_of_before_any_event_has_no_figures(stack):
    settings = unique_settings(stack)
    assert dphp(settings, "db", "migrate").returncode == 0
    for level in LEVELS:
        rows = run_json(settings, "report", "--region", "ID", "--level", level, "--as-of", "2000-01-01T00:00:00+07:00")
        for r in rows:  # regions without voters may be left out, or given as zeros (CONTRACT 4)
            assert all(isinstance(r[f], int) for f in ("male", "female", "total", "under_age")), r
        assert comparable_report(rows) == {}


def test_status_with_the_database_unreachable_is_one_line(stack):
    port = free_port()
    settings = unique_settings(stack, database_url=f"postgresql://dphp@127.0.0.1:{port}/dphp")
    for fmt in ("json", "table"):
        result = dphp(settings, "status", "--format", fmt)
        assert result.returncode == 1
        assert result.stdout == ""
        line = one_error_line(result)
        assert str(port) in line


def test_unknown_region_is_a_usage_error(stack):
    settings = unique_settings(stack)
    for args in (("report", "--region", "99.99"), ("report", "--region", "99.99", "--format", "json"),
                 ("meetings", "--region", "99.99")):
        result = dphp(settings, *args)
        assert result.returncode == 2, args
        assert result.stdout == ""
        assert "99.99" in one_error_line(result)
    bad_time = dphp(settings, "report", "--region", "33.16", "--as-of", "2024-08-11T09:00:00")
    assert bad_time.returncode == 2
    assert "offset" in one_error_line(bad_time)
    # Found by review: a TPS code with a second slash printed a traceback; a far time too.
    for args in (("report", "--region", "33.16.01.2001/001/x", "--format", "html"),
                 ("report", "--region", "33.16", "--as-of", "9999-12-31T23:59:59Z")):
        result = dphp(settings, *args)
        assert result.returncode == 2, args
        assert "unknown region code" in one_error_line(result) or "out of range" in one_error_line(result)


@pytest.mark.parametrize("command", ["publish", "report", "meetings", "status", "dev up", "dev down", "dev status",
                                     "db migrate", "sample", "run", "dev", "db"])
def test_every_command_answers_help(command):
    result = subprocess.run([sys.executable, "-m", "services.cli", *command.split(), "--help"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert result.stderr == ""


def test_report_of_an_empty_projection_has_no_rows_of_nulls(stack):
    settings = unique_settings(stack)
    assert dphp(settings, "db", "migrate").returncode == 0
    for level in LEVELS:
        rows = run_json(settings, "report", "--region", "ID", "--level", level)
        assert all(v is not None for r in rows for v in r.values()), rows

"""`dphp publish` through the real broker: throughput, exact bytes, keys and headers; rejected
lines with their physical line numbers; idempotence of the projection under republishing."""

from __future__ import annotations

import collections
import copy
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.events import CONTENT_TYPE, MeetingHeld, VoterMoved, VoterRegistered
from schemas.parsing import InvalidEvent, csv_columns, csv_row_to_json, event_to_csv_row, parse_event
from services.common.topics import ensure_topics
from services.projection.fold import Projection
from services.projection.recap import comparable_meetings, comparable_report
from services.sample.generator import write_sample
from tests.conftest import unique_settings
from tests.eventsets import event_set
from tests.support.services import ROOT, dphp_json, settings_env, start_services, wait_converged

pytestmark = pytest.mark.integration

LEVELS = ("tps", "desa", "kecamatan", "kabupaten", "provinsi", "nasional")


def publish(settings, *files: Path, fmt: str = "json", timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", "publish", *map(str, files), "--format", fmt],
                          env=settings_env(settings), capture_output=True, text=True, timeout=timeout, cwd=ROOT)


async def read_topic(settings, topic: str, timeout: float = 120) -> list:
    """Every record of `topic`, up to the end offsets at the time of the call."""
    import asyncio

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                group_id=None, max_partition_fetch_bytes=8 * 1024 * 1024,
                                fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        for _ in range(50):
            if parts:
                break
            await consumer._client.force_metadata_update()
            consumer._client.add_topic(topic)
            await asyncio.sleep(0.1)
            parts = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        records = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while remaining and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=1000, max_records=20000)
            for tp, recs in batch.items():
                records.extend(r for r in recs if r.offset < ends[tp])
                if recs and recs[-1].offset >= ends[tp] - 1:
                    remaining.discard(tp)
        assert not remaining, f"{topic}: not read to the end within {timeout} s"
        return records
    finally:
        await consumer.stop()


async def read_all_topics(settings) -> dict[str, list]:
    return {kind: await read_topic(settings, topic) for kind, topic in
            (("registered", settings.topic_registered), ("moved", settings.topic_moved),
             ("meetings", settings.topic_meetings))}


def key_of(doc: dict) -> bytes:
    data = doc["data"]
    return (data["meeting_id"] if "meeting_id" in data else data["nik"]).encode()


KIND_OF_TYPE = {"id.go.kpu.dphp.voter-registered.v1": "registered", "id.go.kpu.dphp.voter-moved.v1": "moved",
                "id.go.kpu.dphp.meeting-held.v1": "meetings"}


@pytest.mark.timeout(600)
async def test_publish_100k_sample_events_exactly(stack, tmp_path):
    settings = unique_settings(stack)
    await ensure_topics(settings)
    path = tmp_path / "blora.jsonl"
    stats = write_sample("33.16", 98_000, 11, path)
    assert stats.events >= 100_000
    lines = path.read_bytes().splitlines()
    assert len(lines) == stats.events

    result = publish(settings, path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"accepted": stats.events, "rejected": []}
    assert result.stdout.count("\n") == 1  # one JSON document, the logs on stderr
    assert "events/s" in result.stderr

    by_topic = await read_all_topics(settings)
    assert {k: len(v) for k, v in by_topic.items()} == {
        "registered": stats.by_type["id.go.kpu.dphp.voter-registered.v1"],
        "moved": stats.by_type["id.go.kpu.dphp.voter-moved.v1"],
        "meetings": stats.by_type["id.go.kpu.dphp.meeting-held.v1"],
    }
    # The same bytes as the file's lines, on the topic of their type, keyed by NIK / meeting_id.
    published = []
    for kind, records in by_topic.items():
        for r in records:
            doc = orjson.loads(r.value)
            assert KIND_OF_TYPE[doc["type"]] == kind
            assert r.key == key_of(doc)
            assert dict(r.headers) == {"content-type": CONTENT_TYPE.encode()}
            published.append(r.value)
    assert CONTENT_TYPE == "application/cloudevents+json"
    assert collections.Counter(published) == collections.Counter(lines)
    # A NIK's events share a partition (the key decides it): order per voter is kept.
    partitions: dict[bytes, set[int]] = collections.defaultdict(set)
    for r in by_topic["registered"]:
        partitions[r.key].add(r.partition)
    assert all(len(p) == 1 for p in partitions.values())


def _variant(event, **changes) -> bytes:
    doc = copy.deepcopy(event.model_dump(mode="json"))
    for path, value in changes.items():
        target = doc
        keys = path.split("__")
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
    return json.dumps(doc).encode()


def _reason(raw: bytes) -> str:
    try:
        parse_event(raw)
    except InvalidEvent as exc:
        return exc.reason
    raise AssertionError(f"expected an invalid event: {raw[:200]!r}")


BAD_NIK = "3316017713900001"  # day 77 - 40 = 37: impossible


async def test_publish_reports_rejected_lines_and_publishes_the_rest(stack, tmp_path):
    settings = unique_settings(stack)
    await ensure_topics(settings)
    events = event_set(41, voters=40)
    regs = [e for e in events if isinstance(e, VoterRegistered)]
    moves = [e for e in events if isinstance(e, VoterMoved)]
    meetings = [e for e in events if isinstance(e, MeetingHeld)]

    # JSONL: valid events mixed with bad lines and blank ones (skipped, but counted as lines).
    bad_json = b'{"specversion": "1.0", "id": '
    bad_nik = _variant(regs[1], subject=BAD_NIK, data__nik=BAD_NIK)
    bad_desa = _variant(regs[2], data__tps__desa_code="33.16.01.2999")
    bad_utf8 = b'{"specversion": "1.0", "id": "\xff\xfe"}'
    jsonl_lines = [
        regs[0].model_dump_json().encode(),  # 1
        bad_json,  # 2
        b"",  # 3 blank
        moves[0].model_dump_json().encode(),  # 4
        bad_nik,  # 5
        b"   \t",  # 6 blank (whitespace only)
        bad_desa,  # 7
        meetings[0].model_dump_json().encode(),  # 8
        b"",  # 9 blank
        bad_utf8,  # 10
        regs[3].model_dump_json().encode(),  # 11 (no newline at the end of the file)
    ]
    jsonl = tmp_path / "mixed.jsonl"
    jsonl.write_bytes(b"\n".join(jsonl_lines))
    jsonl_valid = [jsonl_lines[i] for i in (0, 3, 7, 10)]

    # CSV of registrations: the header is line 1.
    columns = csv_columns(regs[0].type)
    good_rows = [event_to_csv_row(e, columns) for e in regs[4:7]]
    nik_row = event_to_csv_row(regs[7], columns)
    nik_row[columns.index("subject")] = nik_row[columns.index("data.nik")] = BAD_NIK
    desa_row = event_to_csv_row(regs[8], columns)
    desa_row[columns.index("data.tps.desa_code")] = "33.16.01.2999"
    short_row = event_to_csv_row(regs[9], columns)[:5]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)  # 1
    w.writerow(good_rows[0])  # 2
    buf.write("\n")  # 3 blank
    w.writerow(nik_row)  # 4
    w.writerow(good_rows[1])  # 5
    w.writerow(desa_row)  # 6
    buf.write("\n\n")  # 7, 8 blank
    w.writerow(short_row)  # 9
    w.writerow(good_rows[2])  # 10
    regs_csv = tmp_path / "registrations.csv"
    regs_csv.write_text(buf.getvalue(), encoding="utf-8")

    # CSV of meetings: a JSON cell that is not JSON.
    mcols = csv_columns(meetings[1].type)
    mrows = [event_to_csv_row(m, mcols) for m in meetings[1:3]]
    broken = list(mrows[1])
    broken[mcols.index("data.attendees")] = "[{not json"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(mcols)  # 1
    w.writerow(mrows[0])  # 2
    w.writerow(broken)  # 3
    meetings_csv = tmp_path / "meetings.csv"
    meetings_csv.write_text(buf.getvalue(), encoding="utf-8")

    def csv_reason(header, row) -> str:
        try:
            raw = csv_row_to_json(header, row)
        except InvalidEvent as exc:
            return exc.reason
        return _reason(raw)

    expected_rejected = [
        {"file": str(jsonl), "line": 2, "reason": _reason(bad_json)},
        {"file": str(jsonl), "line": 5, "reason": _reason(bad_nik)},
        {"file": str(jsonl), "line": 7, "reason": _reason(bad_desa)},
        {"file": str(jsonl), "line": 10, "reason": _reason(bad_utf8)},
        {"file": str(regs_csv), "line": 4, "reason": csv_reason(columns, nik_row)},
        {"file": str(regs_csv), "line": 6, "reason": csv_reason(columns, desa_row)},
        {"file": str(regs_csv), "line": 9, "reason": csv_reason(columns, short_row)},
        {"file": str(meetings_csv), "line": 3, "reason": csv_reason(mcols, broken)},
    ]
    # The reasons say what is wrong, without the full NIK.
    reasons = [r["reason"] for r in expected_rejected]
    assert "JSON" in reasons[0] and "NIK" in reasons[1] and "desa" in reasons[2] and "UTF-8" in reasons[3]
    assert "NIK" in reasons[4] and "desa" in reasons[5] and "fields" in reasons[6] and "JSON" in reasons[7]
    assert not any(BAD_NIK in r for r in reasons)
    valid_count = len(jsonl_valid) + len(good_rows) + 1

    result = publish(settings, jsonl, regs_csv, meetings_csv)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout) == {"accepted": valid_count, "rejected": expected_rejected}

    # The valid events, and only they, are on their topics.
    by_topic = await read_all_topics(settings)
    got = {kind: sorted(r.value for r in recs) for kind, recs in by_topic.items()}
    csv_events = {e.id: e for e in regs[4:7]}
    jsonl_by_kind = collections.defaultdict(list)
    for raw in jsonl_valid:
        jsonl_by_kind[KIND_OF_TYPE[orjson.loads(raw)["type"]]].append(raw)
    assert len(got["registered"]) == 2 + 3
    assert len(got["moved"]) == 1 and got["moved"] == sorted(jsonl_by_kind["moved"])
    assert len(got["meetings"]) == 2
    assert set(jsonl_by_kind["registered"]) <= set(got["registered"])
    from_csv = [parse_event(v) for v in got["registered"] if v not in jsonl_by_kind["registered"]]
    assert sorted(e.id for e in from_csv) == sorted(csv_events)
    # The same event (a CSV file has no column for the optional datacontenttype).
    optional = {"datacontenttype", "dataschema"}
    assert all(e.model_dump(exclude=optional) == csv_events[e.id].model_dump(exclude=optional) for e in from_csv)
    meeting_ids = {parse_event(v).id for v in got["meetings"]}
    assert meeting_ids == {meetings[0].id, meetings[1].id}
    for recs in by_topic.values():
        for r in recs:
            assert r.key == key_of(orjson.loads(r.value))

    # The table form: rejected lines on stderr, one per line, exit 1.
    table = publish(settings, regs_csv, fmt="table")
    assert table.returncode == 1
    assert f"rejected {regs_csv}:4: " in table.stderr and f"rejected {regs_csv}:9: " in table.stderr
    assert "Traceback" not in table.stderr


def _snapshot(settings) -> tuple[dict, dict]:
    report = {}
    for level in LEVELS:
        report.update(comparable_report(dphp_json(settings, "report", "--region", "ID", "--level", level)))
    return report, comparable_meetings(dphp_json(settings, "meetings"))


@pytest.mark.timeout(600)
async def test_publishing_the_same_file_twice_changes_nothing(stack, tmp_path):
    settings = unique_settings(stack, batch_max_records=500)
    await ensure_topics(settings)
    path = tmp_path / "sample.jsonl"
    stats = write_sample("33.16", 3000, 12, path)
    procs = start_services(settings, tmp_path / "logs")
    try:
        first = publish(settings, path)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout) == {"accepted": stats.events, "rejected": []}
        await wait_converged(settings, timeout=300, processes=procs)
        once = _snapshot(settings)

        second = publish(settings, path)
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout) == {"accepted": stats.events, "rejected": []}
        status = await wait_converged(settings, timeout=300, processes=procs)
        twice = _snapshot(settings)
    finally:
        for p in procs:
            p.stop()
    # Every event is on the topics twice, and counted once.
    assert sum(p["end_offset"] for g in status["groups"] for p in g["partitions"]) == 2 * stats.events
    assert twice == once

    events = [parse_event(line) for line in path.read_bytes().splitlines()]
    fold = Projection(tps_capacity=settings.tps_capacity)
    fold.apply(events)
    assert once[0] == comparable_report(fold.recap())
    assert once[1] == comparable_meetings(fold.meetings())
    kab = once[0][("kabupaten", "33.16")]
    assert {k: kab[k] for k in ("male", "female", "total", "under_age", "new_voters", "disabled",
                                "tps_count", "tps_loksus_count")} == {
        "male": stats.male, "female": stats.female, "total": stats.total, "under_age": stats.under_age,
        "new_voters": stats.new_voters, "disabled": stats.disabled, "tps_count": stats.tps_count,
        "tps_loksus_count": stats.tps_loksus_count}
    for p in procs:
        assert "dead-lettered" not in p.output()


async def test_publish_with_the_broker_down_is_one_line(stack, tmp_path):
    from services.devstack.process import free_port

    settings = unique_settings(stack, kafka_bootstrap=f"127.0.0.1:{free_port()}")
    path = tmp_path / "one.jsonl"
    path.write_bytes(event_set(42, voters=1)[0].model_dump_json().encode() + b"\n")
    for fmt in ("json", "table"):
        result = publish(settings, path, fmt=fmt, timeout=120)
        assert result.returncode == 1
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Kafka" in result.stderr and "Traceback" not in result.stderr
    missing = publish(settings, tmp_path / "missing.jsonl")
    assert missing.returncode == 2
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr

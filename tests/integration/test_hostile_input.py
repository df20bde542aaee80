"""The hostile-input campaign (issue 10, deliverable 3): thousands of generated hostile records,
interleaved with valid events on every partition of the three input topics, consumed by the three
projection services running as processes against a real broker and PostgreSQL.

What must hold (CONTRACT 2 v1.1, 1 and 5):
* no service crashes or stalls: every group converges;
* each invalid record is in the dead-letter topic exactly once (matched by its original topic,
  partition and offset headers), unchanged (key and value), with an error class and a reason;
* each valid record is applied: the projection equals the pure fold of the valid events at every
  level, and the meetings equal the fold's meetings;
* no full NIK of the input in any log file of the stack (services, PostgreSQL, broker);
* `dphp dlq list`, `dphp meetings`, `dphp report` and `dphp status` print the stored data as text
  without crashing.

The records come from ``tests.support.hostile`` (seeded: the same seed gives the same bytes):
about 4,000 hostile records in about 310 kinds and the ~840 valid events they derive from, 40 MiB.
The stack is the test session's own one when it started one (its log files are readable), else
one started here on free ports and stopped at the end (by PID).

Run: ``.venv/bin/python -m pytest tests/integration/test_hostile_input.py -s`` (``-s`` shows the
table when it passes; it is part of the failure message otherwise). About a minute when nothing
stalls; a stall costs ``DPHP_HOSTILE_STALL_S`` more. Settings, all optional:

* ``DPHP_HOSTILE_SCALE`` (1): records per kind multiplied (5: ~20,000 hostile records, ~200 MiB,
  about 2.5 minutes); ``DPHP_HOSTILE_SEED`` (10): another seed;
* ``DPHP_HOSTILE_ONLY`` / ``DPHP_HOSTILE_EXCLUDE``: regular expressions on kind names, to find
  which kinds cause a stall (``DPHP_HOSTILE_ONLY='^time:'``);
* ``DPHP_HOSTILE_STALL_S`` (45): no stored position moving for this long is a stall;
  ``DPHP_HOSTILE_TIMEOUT_S`` (240): the longest wait for convergence;
* ``DPHP_HOSTILE_REPORT``: also write the table and the problems to this file;
* ``DPHP_TEST_STATE_DIR``: with ``DPHP_TEST_KAFKA_BOOTSTRAP``/``DPHP_TEST_DATABASE_URL``, the
  state folder of that stack, whose ``logs/`` are then searched for NIKs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from schemas.events import CONTENT_TYPE
from schemas.parsing import mask_nik
from services.common.topics import ensure_topics, partitions_of
from services.projection.fold import Projection
from services.projection.recap import LEVELS, comparable_meetings, comparable_report
from tests.conftest import Stack, _start_own_stack, unique_settings
from tests.support.hostile import MIB, Campaign, HostileRecord, campaign, interleave
from tests.support.services import dphp, start_services

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

SCALE = float(os.environ.get("DPHP_HOSTILE_SCALE", "1"))
SEED = int(os.environ.get("DPHP_HOSTILE_SEED", "10"))
#: Regular expressions on kind names, to narrow the campaign down while looking for a cause.
ONLY, EXCLUDE = os.environ.get("DPHP_HOSTILE_ONLY") or None, os.environ.get("DPHP_HOSTILE_EXCLUDE") or None
#: Also write the table and the problems to this file.
REPORT = os.environ.get("DPHP_HOSTILE_REPORT")
#: No change of any stored position for this long (after the first one) counts as a stall.
STALL_S = float(os.environ.get("DPHP_HOSTILE_STALL_S", "45"))
CONVERGE_TIMEOUT_S = float(os.environ.get("DPHP_HOSTILE_TIMEOUT_S", "240")) * max(1.0, SCALE)
MEETING_PARTITIONS = 3
SERVICE_OF = {"registered": "registrations", "moved": "movements", "meetings": "meetings"}


# --- the stack ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def own_stack(stack: Stack, tmp_path_factory: pytest.TempPathFactory):
    """A stack whose log files this test can read: the session's, if the tests started it, else
    one started here (stopped at the end, by PID)."""
    if stack.state_dir is not None:
        yield stack
        return
    if os.environ.get("DPHP_TEST_STATE_DIR") and stack.origin.startswith("from DPHP_TEST_"):
        # A stack of the DPHP_TEST_* variables whose state folder (with logs/) is named too.
        yield Stack(stack.kafka_bootstrap, stack.database_url, stack.origin, Path(os.environ["DPHP_TEST_STATE_DIR"]))
        return
    tmp = Path(tmp_path_factory.mktemp("hostile-stack"))
    own = _start_own_stack(tmp)
    try:
        yield own
    finally:
        from services.devstack import kafka, postgres

        port = int(own.database_url.rsplit(":", 1)[1].split("/")[0])
        postgres.stop(postgres.PostgresLayout(state=tmp, host="127.0.0.1", port=port))
        kafka.stop(kafka.KafkaLayout(state=tmp, jars_root=Path("."), version="", host="127.0.0.1", port=0,
                                     controller_port=0))


# --- publishing ------------------------------------------------------------------------------------

Coord = tuple[str, int, int]  # topic, partition, offset


@dataclass
class Published:
    coords: dict[int, Coord] = field(default_factory=dict)  # record index -> where it is
    refused: dict[int, str] = field(default_factory=dict)  # record index -> the broker's error


async def publish(settings, placed: list[tuple[HostileRecord, int]], topic_name: dict[str, str]) -> Published:
    """Sends every record to its partition. Records of more than 512 KiB go one at a time through a
    producer of their own (not idempotent), so that one the broker refuses fails alone."""
    out = Published()
    headers = [("content-type", CONTENT_TYPE.encode())]
    small = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all",
                             linger_ms=5, max_request_size=8 * MIB)
    large = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", max_request_size=8 * MIB,
                             request_timeout_ms=60000)
    await small.start()
    await large.start()
    try:
        pending = []
        for i, (r, p) in enumerate(placed):
            size = len(r.value or b"") + len(r.key or b"")
            record_headers = headers if r.headers is None else r.headers
            if size > 512 * 1024:
                try:
                    md = await large.send_and_wait(topic_name[r.topic], value=r.value, key=r.key, partition=p,
                                                   headers=record_headers)
                    out.coords[i] = (md.topic, md.partition, md.offset)
                except KafkaError as exc:
                    out.refused[i] = type(exc).__name__
                continue
            pending.append((i, await small.send(topic_name[r.topic], value=r.value, key=r.key, partition=p,
                                                headers=record_headers)))
        for i, fut in pending:
            md = await fut
            out.coords[i] = (md.topic, md.partition, md.offset)
    finally:
        await small.stop()
        await large.stop()
    return out


async def read_topic(settings, topic: str) -> list:
    """Every record of a topic up to its end offsets, whatever their size."""
    for _ in range(60):  # the admin client's description is sometimes empty for a moment
        ids = (await partitions_of(settings, [topic]))[topic]
        if ids:
            break
        await asyncio.sleep(0.5)
    assert ids, f"topic {topic} has no partitions"
    # "earliest": assign() starts a reset of the position by the reset policy which may complete
    # after seek_to_beginning() and win; with "latest" it did (a run read nothing).
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=16 * MIB,
                                fetch_max_bytes=50 * MIB)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in ids]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        out = []
        seen = {tp: 0 for tp in tps}  # the next offset not read yet, per partition
        deadline = time.monotonic() + 120
        while any(seen[tp] < ends[tp] for tp in tps) and time.monotonic() < deadline:
            batch = await consumer.getmany(*[tp for tp in tps if seen[tp] < ends[tp]], timeout_ms=1000)
            for tp, recs in batch.items():
                out.extend(r for r in recs if r.offset < ends[tp])
                if recs:
                    seen[tp] = max(seen[tp], recs[-1].offset + 1)
        assert all(seen[tp] >= ends[tp] for tp in tps), f"{topic}: read up to {seen}, ends {ends}"
        return out
    finally:
        await consumer.stop()


# --- waiting ---------------------------------------------------------------------------------------

async def wait_settled(settings, procs) -> tuple[dict, str, float, list[str]]:
    """Until every group converged, or positions stopped moving for STALL_S, or the timeout: the
    last status, "converged" / "stalled" / "timeout", the seconds taken and the crashes seen."""
    from services.cli.read_cmd import gather_status

    started = time.monotonic()
    last_positions = None
    last_change = started
    status: dict = {}
    crashes: list[str] = []
    seen_exit: set[int] = set()
    while True:
        now = time.monotonic()
        try:
            status = await gather_status(settings)
        except Exception as exc:  # noqa: BLE001 - shown in the report
            status = {"error": repr(exc), "groups": [], "converged": False}
        for i, p in enumerate(procs):
            if p.proc.poll() is not None and i not in seen_exit:
                seen_exit.add(i)
                crashes.append(f"{p.service} exited with {p.proc.returncode}: {p.output()[-1500:]}")
        if status.get("converged"):
            return status, "converged", now - started, crashes
        positions = {(g["group"], q["partition"]): q["stored_position"]
                     for g in status.get("groups", []) for q in g["partitions"]}
        if positions != last_positions:
            last_positions, last_change = positions, now
        if now - last_change > STALL_S:  # the services start within a few seconds
            return status, "stalled", now - started, crashes
        if now - started > CONVERGE_TIMEOUT_S:
            return status, "timeout", now - started, crashes
        await asyncio.sleep(1.0)


# --- checking ---------------------------------------------------------------------------------------

def cli(settings, *args: str) -> tuple[int, str, str]:
    import subprocess
    import sys

    from tests.support.services import ROOT, settings_env

    env = settings_env(settings)
    env["COLUMNS"] = "4000"  # wide tables: cells are not wrapped, hostile strings stay whole
    r = subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, capture_output=True, text=True,
                       timeout=300, cwd=ROOT, errors="replace")
    return r.returncode, r.stdout, r.stderr


def cli_json(settings, problems: list[str], *args: str):
    code, out, err = cli(settings, *args, "--format", "json")
    if code != 0:
        problems.append(f"`dphp {' '.join(args)} --format json` exited {code}: {err.strip()[-800:]}")
        return None
    try:
        return json.loads(out)
    except ValueError as exc:
        problems.append(f"`dphp {' '.join(args)} --format json` printed no JSON document ({exc})")
        return None


@dataclass
class Outcome:
    ok: bool
    what: str  # dead-lettered / applied / not reached / ...
    detail: str = ""


def judge(r: HostileRecord, coord: Coord | None, refused: str | None, dead: list, positions: dict) -> Outcome:
    if refused is not None:
        if r.expect == "invalid" or r.refusable:
            return Outcome(True, "refused by the input topic", refused)
        return Outcome(False, "refused by the input topic", refused)
    topic, partition, offset = coord
    passed = positions.get((topic, partition), 0) > offset
    n = len(dead)
    if n > 1:
        return Outcome(False, f"dead-lettered {n} times")
    if n == 1:
        return Outcome(r.expect != "valid", "dead-lettered", dead[0]["reason"])
    if not passed:
        return Outcome(False, "not reached (its partition stopped before it)")
    if r.expect == "invalid":
        return Outcome(False, "passed without a dead letter")
    return Outcome(True, "applied")


def nik_leaks(paths: list[Path], niks: set[str]) -> dict[str, Counter]:
    digits = re.compile(rb"(?<![0-9])[0-9]{16}(?![0-9])")
    leaks: dict[str, Counter] = {}
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        found = Counter(m.group(0).decode() for m in digits.finditer(data) if m.group(0).decode() in niks)
        if found:
            leaks[str(path)] = found
    return leaks


def log_files(stack: Stack, service_logs: Path) -> list[Path]:
    files = sorted(p for p in service_logs.rglob("*") if p.is_file())
    if stack.state_dir is not None:
        files += sorted(p for p in (Path(stack.state_dir) / "logs").rglob("*") if p.is_file())
    return files


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


# --- the campaign ------------------------------------------------------------------------------------

async def test_hostile_input_campaign(own_stack, tmp_path):
    t0 = time.monotonic()
    settings = unique_settings(own_stack, partitions_meetings=MEETING_PARTITIONS, batch_max_records=300)
    topic_name = {"registered": settings.topic_registered, "moved": settings.topic_moved,
                  "meetings": settings.topic_meetings}
    kind_of_topic = {v: k for k, v in topic_name.items()}
    await ensure_topics(settings)
    for _ in range(60):  # a topic just created may not be described yet
        parts = await partitions_of(settings, list(topic_name.values()))
        if all(parts.values()):
            break
        await asyncio.sleep(0.5)
    camp: Campaign = campaign(SEED, SCALE, only=ONLY, exclude=EXCLUDE)
    placed = interleave(camp.records, {k: len(parts[v]) for k, v in topic_name.items()}, SEED)
    records = [r for r, _ in placed]
    if ONLY is None and EXCLUDE is None:
        assert len(camp.hostile) >= 2000
    published = await publish(settings, placed, topic_name)
    t_published = time.monotonic()

    log_dir = tmp_path / "services"
    procs = start_services(settings, log_dir)
    try:
        status, state, waited, crashes = await wait_settled(settings, procs)
    finally:
        for p in procs:
            p.stop()
    exit_codes = {p.service: p.proc.returncode for p in procs}

    problems: list[str] = []
    if state != "converged":
        problems.append(f"the groups did not converge: {state} after {waited:.0f} s")
    problems += [f"crash: {c}" for c in crashes]
    for service, code in exit_codes.items():
        if code not in (0, -15):
            problems.append(f"{service} ended with exit code {code}")
    positions = {(g["topic"], q["partition"]): q["stored_position"]
                 for g in status.get("groups", []) for q in g["partitions"]}
    ends = {(g["topic"], q["partition"]): q["end_offset"] for g in status.get("groups", []) for q in g["partitions"]}

    # Dead letters, by their original coordinates.
    dead_records = await read_topic(settings, settings.topic_dead_letter)
    dead: dict[Coord, list[dict]] = defaultdict(list)
    by_coord = {c: i for i, c in published.coords.items()}
    for d in dead_records:
        h = {k: v.decode("utf-8", "replace") for k, v in d.headers}
        twice = sorted(k for k, n in Counter(k for k, _ in d.headers).items() if n > 1 and k.startswith("dphp."))
        if twice:
            problems.append(f"dead letter {d.partition}:{d.offset} has the headers {twice} more than once")
        try:
            coord = (h["dphp.original.topic"], int(h["dphp.original.partition"]), int(h["dphp.original.offset"]))
        except (KeyError, ValueError):
            problems.append(f"dead letter {d.partition}:{d.offset} without original coordinates: {sorted(h)}")
            continue
        entry = {"reason": h.get("dphp.error.reason", ""), "class": h.get("dphp.error.class", ""), "headers": h,
                 "key": d.key, "value": d.value}
        dead[coord].append(entry)
        i = by_coord.get(coord)
        if i is None:
            problems.append(f"dead letter {d.partition}:{d.offset} names {coord}, which no record of the campaign has")
            continue
        r = records[i]
        bad = []
        if d.value != r.value:
            bad.append(f"value changed ({len(d.value or b'')} bytes, was {len(r.value or b'')})")
        if d.key != r.key:
            bad.append("key changed")
        if not entry["reason"] or not entry["class"]:
            bad.append("no reason or error class")
        if h.get("dphp.consumer.group") != settings.group_id(SERVICE_OF[r.topic]):
            bad.append(f"consumer group {h.get('dphp.consumer.group')!r}")
        try:
            dt.datetime.fromisoformat(h.get("dphp.failed.at", "").replace("Z", "+00:00"))
        except ValueError:
            bad.append(f"failed.at {h.get('dphp.failed.at')!r}")
        leaked = [n for n in camp.niks if n in entry["reason"]]
        if leaked:
            bad.append(f"a full NIK in the reason ({mask_nik(leaked[0])})")
        if bad:
            problems.append(f"dead letter of {r.kind} at {coord}: {'; '.join(bad)}")

    # Every record judged.
    outcomes: list[Outcome] = []
    for i, r in enumerate(records):
        outcomes.append(judge(r, published.coords.get(i), published.refused.get(i), dead.get(published.coords.get(i), []),
                              positions))

    # Where a partition stopped: the record at its stored position.
    stalls = []
    for (topic, partition), end in sorted(ends.items()):
        pos = positions.get((topic, partition), 0)
        if pos < end:
            i = by_coord.get((topic, partition, pos))
            culprit = f"{records[i].kind} ({records[i].expect})" if i is not None else "?"
            stalls.append(f"{kind_of_topic.get(topic, topic)}[{partition}] stopped at offset {pos} of {end}: "
                          f"the next record is {culprit}")
    problems += [f"stall: {s}" for s in stalls]

    # Per kind.
    per_kind: dict[str, dict] = {}
    for r, o in zip(records, outcomes):
        k = per_kind.setdefault(r.kind, {"expect": r.expect, "records": 0, "dead": 0, "applied": 0, "refused": 0,
                                         "not_reached": 0, "wrong": 0, "example": ""})
        k["records"] += 1
        k["dead"] += o.what.startswith("dead-lettered")
        k["applied"] += o.what == "applied"
        k["refused"] += o.what.startswith("refused")
        k["not_reached"] += o.what.startswith("not reached")
        if not o.ok:
            k["wrong"] += 1
            if not k["example"] or o.what.startswith(("passed", "dead-lettered", "refused")):
                k["example"] = f"{o.what}{': ' + o.detail[:90] if o.detail else ''}"
    rows = [[name, k["expect"], k["records"], k["dead"], k["applied"], k["refused"], k["not_reached"], k["wrong"],
             k["example"]] for name, k in sorted(per_kind.items())]
    totals = Counter()
    for k in per_kind.values():
        for f in ("records", "dead", "applied", "refused", "not_reached", "wrong"):
            totals[f] += k[f]
    rows.append(["TOTAL", "", totals["records"], totals["dead"], totals["applied"], totals["refused"],
                 totals["not_reached"], totals["wrong"], ""])
    report = table(rows, ["kind", "expect", "records", "dead-lettered", "applied", "refused", "not reached", "wrong",
                          "first problem"])
    wrong_kinds = sorted(name for name, k in per_kind.items() if k["wrong"])
    for name in wrong_kinds:
        k = per_kind[name]
        if k["wrong"] != k["not_reached"]:  # records only stuck behind a stall are counted there
            problems.append(f"{name} ({k['expect']}): {k['wrong']} of {k['records']} wrong, e.g. {k['example']}")

    # Coverage: every partition of every input topic holds valid and invalid records.
    for topic_kind, name in topic_name.items():
        for p in parts[name]:
            mix = Counter(r.expect for (r, q) in placed if r.topic == topic_kind and q == p)
            if ONLY is None and EXCLUDE is None:
                assert mix["valid"] and mix["invalid"], (name, p, mix)

    # The projection against the pure fold of the valid events (and of the undecided ones the
    # services accepted), at every level, and the meetings.
    expected = Projection(tps_capacity=settings.tps_capacity, voting_day=settings.voting_day)
    expected.apply([r.event for r, o in zip(records, outcomes)
                    if (r.expect == "valid" and not (r.refusable and o.what.startswith("refused")))
                    or (r.expect == "either" and o.what == "applied")])
    want = comparable_report(expected.recap())
    got: dict = {}
    for level in LEVELS:
        rows_json = cli_json(settings, problems, "report", "--region", "ID", "--level", level)
        if rows_json is not None:
            got.update(comparable_report(rows_json))
    if got != want:
        differ = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        problems.append(f"the projection differs from the fold in {len(differ)} regions, e.g. "
                        + "; ".join(f"{k}: got {got.get(k)} want {want.get(k)}" for k in differ[:3]))
    meetings_json = cli_json(settings, problems, "meetings")
    if meetings_json is not None:
        want_m = comparable_meetings(expected.meetings())
        try:
            got_m = comparable_meetings(meetings_json)
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"`dphp meetings --format json` prints what CONTRACT 4 does not allow: {exc!r}"[:600])
            got_m = want_m
        if got_m != want_m:
            missing = sorted(set(want_m) - set(got_m))
            extra = sorted(set(got_m) - set(want_m))
            differ = sorted(k for k in set(got_m) & set(want_m) if got_m[k] != want_m[k])
            problems.append(f"meetings differ from the fold: {len(missing)} missing (e.g. {[m[:60] for m in missing[:3]]}), "
                            f"{len(extra)} not expected (e.g. {[m[:60] for m in extra[:3]]}), {len(differ)} with other "
                            f"figures (e.g. {[m[:60] for m in differ[:3]]})")

    # Operator commands on the stored data: tables print, hostile strings as text.
    for args in (("dlq", "list"), ("meetings",), ("report", "--region", "ID"), ("report", "--region", "33.16"),
                 ("report", "--region", "33.16", "--level", "tps"), ("status",)):
        code, out, err = cli(settings, *args)
        if code != 0 or "Traceback" in err:
            problems.append(f"`dphp {' '.join(args)}` (table) exited {code}: {err.strip()[-600:]}")
        elif args == ("meetings",):
            shown = [r.event.data.meeting_id for r, o in zip(records, outcomes)
                     if r.kind == "markup:data.meeting_id" and o.what == "applied"]
            hidden = [m for m in shown if m not in out]
            if hidden:
                problems.append(f"`dphp meetings` does not show {len(hidden)} meeting ids with markup as text, "
                                f"e.g. {hidden[0]!r}")
        if args == ("dlq", "list"):
            leaked = {n for n in camp.niks if n in out}
            if leaked:
                problems.append(f"`dphp dlq list` prints {len(leaked)} full NIKs, e.g. {mask_nik(min(leaked))}")
    dlq_json = cli_json(settings, problems, "dlq", "list")
    if dlq_json is not None and len(dlq_json) != len(dead_records):
        problems.append(f"`dphp dlq list` shows {len(dlq_json)} dead letters, the topic holds {len(dead_records)}")

    # No full NIK of the input in any log file of the stack.
    files = log_files(own_stack, log_dir)
    leaks = nik_leaks(files, camp.niks)
    for path, found in leaks.items():
        problems.append(f"{sum(found.values())} full NIKs ({len(found)} distinct, e.g. {mask_nik(min(found))}) "
                        f"in {path}")
    tracebacks = {p.service: p.output().count("Traceback") for p in procs}
    for service, n in tracebacks.items():
        if n:  # hostile input is an invalid event, never a bug: no traceback for it
            problems.append(f"{n} tracebacks in the log of {service}")

    took = time.monotonic() - t0
    summary = (
        f"hostile-input campaign: seed {SEED}, scale {SCALE}, only {ONLY}, exclude {EXCLUDE}: {len(records)} records "
        f"({len(camp.hostile)} hostile in {len(per_kind) - 1} kinds + {len(records) - len(camp.hostile)} valid base "
        f"events), {sum(len(r.value or b'') for r in records) / MIB:.1f} MiB; published in "
        f"{t_published - t0:.0f} s; services {state} after {waited:.0f} s; {len(dead_records)} dead letters; "
        f"tracebacks in service logs {tracebacks}; {len(files)} log files checked for {len(camp.niks)} NIKs; "
        f"total {took:.0f} s")
    text = f"\n{report}\n\n{summary}\n" + ("\nstalls:\n  " + "\n  ".join(stalls) + "\n" if stalls else "")
    print(text)
    for path in (tmp_path / "hostile-report.txt", *([Path(REPORT)] if REPORT else [])):
        path.write_text(text + "\nproblems:\n" + "\n".join(problems) + "\n")
    assert not problems, text + "\nproblems:\n  " + "\n  ".join(problems)

"""Contract 1.1 bounds: events at the edges of every bound, parsed as the consumer parses them, are
stored by the projection's SQL and read back unchanged (PostgreSQL text, timestamptz, date,
smallint, jsonb), and a recap and the meetings can be computed from them."""

from __future__ import annotations

import datetime as dt

import asyncpg
import orjson
import pytest

from schemas.events import FIGURE_MAX, TYPE_MEETING_HELD, TYPE_VOTER_MOVED, TYPE_VOTER_REGISTERED
from schemas.parsing import parse_event_fields
from services.common.db import migrate
from services.projection import queries
from services.projection import store as st
from tests.conftest_schemas_helpers import meeting, moved, raw, registered, with_changes

pytestmark = pytest.mark.integration

FOUR_BYTES = "😀"  # 4 bytes in UTF-8, one character
TIME_EDGES = ["1900-01-01T00:00:00Z", "1899-12-31T23:00:00-01:00", "1899-12-31T00:01:00-23:59",
              "2100-12-31T23:59:59Z", "2101-01-01T23:58:59+23:59"]


def _registrations() -> list[bytes]:
    out = []
    for i, (time, birth) in enumerate([("1900-01-01T00:00:00Z", "1900-01-01"), ("2100-12-31T23:59:59Z", "2100-12-31"),
                                       ("2101-01-01T23:58:59+23:59", "1990-05-12")]):
        nik = f"33160152059{i:05d}"
        doc = with_changes(registered(), "data.nik", nik)
        doc["subject"], doc["time"], doc["id"] = nik, time, FOUR_BYTES * 255 + str(i)
        doc["source"] = "/" + "s" * 255
        doc["data"]["birth_date"] = birth
        doc["data"]["name"] = FOUR_BYTES * 1000
        doc["data"]["birth_place"] = "é" * 1000
        doc["data"]["address"] = {"street": "王" * 1000, "rt": "~" * 300, "rw": "\u00a0\u2028\u007f"}
        doc["data"]["tps"]["number"] = 999
        out.append(raw(doc))
    return out


def _moves() -> list[bytes]:
    out = []
    for i, time in enumerate(TIME_EDGES[:3]):
        doc = with_changes(moved(), "time", time)
        doc["id"] = f"move-{i}" + "m" * 250
        out.append(raw(doc))
    return out


def _meetings() -> list[bytes]:
    attendee = {"institution": "I" * 1000, "name": FOUR_BYTES * 1000, "role": "r\u2028" * 500}
    docs = [
        {"held_at": TIME_EDGES[1], "data_cutoff": TIME_EDGES[4], "attendees": [attendee] * 3,
         "declared": dict.fromkeys(("male", "female", "total", "tps_count", "tps_loksus_count"), FIGURE_MAX),
         "notes": ("baris\tkolom\n" * 1000)[:10_000], "venue": FOUR_BYTES * 256},
        {"held_at": TIME_EDGES[3], "data_cutoff": TIME_EDGES[0], "declared": None, "notes": "",
         "attendees": [{"institution": "a", "name": "b", "role": "c"}] * 1000, "venue": "v"},
    ]
    out = []
    for i, data in enumerate(docs):
        doc = meeting()
        meeting_id = f"pleno-{i}-" + FOUR_BYTES * 240
        doc["data"].update(data, meeting_id=meeting_id)
        doc["subject"], doc["id"], doc["time"] = meeting_id, f"meet-{i}", TIME_EDGES[i]
        out.append(raw(doc))
    return out


@pytest.fixture
async def store(settings):
    await migrate(settings)
    conn = await asyncpg.connect(settings.database_url)
    s = st.ProjectionStore(conn, settings.db_schema)
    await s.prepare()
    await s.ensure_config(settings.voting_day, 600)
    yield s
    await conn.execute(f"DROP SCHEMA {settings.db_schema} CASCADE")
    await conn.close()


async def test_events_at_the_bounds_are_stored_and_read_back(store, settings):
    regs = [parse_event_fields(r, TYPE_VOTER_REGISTERED) for r in _registrations()]
    moves = [parse_event_fields(r, TYPE_VOTER_MOVED) for r in _moves()]
    meets = [parse_event_fields(r, TYPE_MEETING_HELD) for r in _meetings()]
    assert all(len(r) <= 1_048_576 for r in _meetings())
    cutoff = st.eligibility_cutoff(settings.voting_day)
    await store.apply_registrations([st.registration_row(e, cutoff) for e in regs], "g.reg", [("t", 0, 0, 3)])
    await store.apply_movements([st.movement_row(e) for e in moves], "g.mov", [("t", 0, 0, 3)])
    await store.apply_meetings([st.meeting_row(e) for e in meets], "g.meet", [("t", 0, 0, 2)])

    s = settings.db_schema
    voters = {r["nik"]: r for r in await store.conn.fetch(f"SELECT * FROM {s}.voter")}
    for e in regs:
        row = voters[e["data"]["nik"]]
        assert row["name"] == e["data"]["name"] and row["street"] == e["data"]["address"]["street"]
        assert row["birth_date"] == e["data"]["birth_date"]
        assert row["reg_time"] == e["time"]  # the same instant
    times = await store.conn.fetch(f"SELECT event_time FROM {s}.voter_event")
    assert min(r["event_time"] for r in times) == dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
    assert max(r["event_time"] for r in times) == dt.datetime(2100, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)

    shown = {m["meeting_id"]: m for m in await queries.meetings(store.conn, s)}
    for e in meets:
        m = shown[e["data"]["meeting_id"]]
        assert m["notes"] == e["data"]["notes"] and m["venue"] == e["data"]["venue"]
        assert m["attendees"] == e["data"]["attendees"]
        assert m["declared"] == e["data"]["declared"]
        assert dt.datetime.fromisoformat(m["held_at"]) == e["data"]["held_at"]
        if m["declared"] is not None:
            assert m["discrepancy"]["total"] == FIGURE_MAX - m["computed"]["total"]
        orjson.dumps(m)  # shown as JSON too

    rows = await queries.report(store.conn, s, "33.16", "kabupaten")
    assert [r["region_code"] for r in rows] == ["33.16"]
    as_of = await queries.report(store.conn, s, "33.16", "kabupaten", as_of=dt.datetime(2100, 12, 31, 23, 59, 59,
                                                                                         tzinfo=dt.timezone.utc))
    assert as_of and as_of[0]["total"] + as_of[0]["under_age"] == rows[0]["total"] + rows[0]["under_age"]

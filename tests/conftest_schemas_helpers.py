"""Shared helpers of the schema tests: canonical examples and hypothesis strategies of valid events.

Not a conftest (nothing here is a fixture); the test modules import it.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

from schemas import regions
from schemas.events import (
    TYPE_MEETING_HELD,
    TYPE_VOTER_MOVED,
    TYPE_VOTER_REGISTERED,
    Address,
    Attendee,
    DeclaredFigures,
    MeetingHeld,
    MeetingHeldData,
    Tps,
    VoterMoved,
    VoterMovedData,
    VoterRegistered,
    VoterRegisteredData,
)
from schemas.recap import DisabilityByType, Recap

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "schemas" / "examples"
EXAMPLE_NAMES = ("voter-registered.v1", "voter-moved.v1", "meeting-held.v1")


def example(name: str) -> dict[str, Any]:
    """A canonical example (schemas/examples/NAME.json) as a fresh dict."""
    return json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def registered() -> dict[str, Any]:
    return example("voter-registered.v1")


def moved() -> dict[str, Any]:
    return example("voter-moved.v1")


def meeting() -> dict[str, Any]:
    return example("meeting-held.v1")


def raw(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc)


def with_changes(doc: dict[str, Any], path: str, value: Any = ..., *, delete: bool = False) -> dict[str, Any]:
    """A copy of ``doc`` with the dotted ``path`` set to ``value`` (or deleted)."""
    out = copy.deepcopy(doc)
    parts = path.split(".")
    target = out
    for p in parts[:-1]:
        target = target[p]
    if delete:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value
    return out


# --- strategies -----------------------------------------------------------------------------------

# Offsets up to +-23:59 (RFC 3339 allows them; real ones are -12:00 .. +14:00).
OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)
# Local times a day inside the bounds of contract 1.1 (1900-01-01T00:00:00Z .. 2100-12-31T23:59:59Z
# as instants), so that every offset keeps them inside.
aware_datetimes = st.datetimes(
    min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2100, 12, 30, 23, 59, 59), timezones=OFFSETS
)
# Text without C0 control characters (contract 1.1; PostgreSQL cannot store NUL) and without
# surrogates (not UTF-8); notes may hold tab and newline.
_C0 = "".join(chr(c) for c in range(32))
_chars = st.characters(exclude_categories=("Cs",), exclude_characters=_C0)
text = st.text(_chars, max_size=30)
nonempty_text = st.text(_chars, min_size=1, max_size=30)
notes_text = st.text(st.one_of(_chars, st.sampled_from("\t\n")), max_size=30)
digits = st.text("0123456789", min_size=1, max_size=1)


def _n_digits(n: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=n, max_size=n)


@st.composite
def niks(draw: st.DrawFn, birth: dt.date | None = None) -> str:
    """A NIK with a possible date part: any region digits (not checked), DDMMYY, day + 40 for women."""
    region = draw(_n_digits(6))
    day = birth if birth is not None else draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31)))
    female = draw(st.booleans())
    dd = day.day + (40 if female else 0)
    return f"{region}{dd:02d}{day.month:02d}{day.year % 100:02d}{draw(_n_digits(4))}"


nkks = _n_digits(16)
blora_desa = st.deferred(lambda: st.sampled_from(regions.within("33.16", "desa")))
any_desa = st.deferred(lambda: st.sampled_from(sorted(regions.desa_codes())))
tps = st.builds(
    Tps,
    desa_code=blora_desa,
    number=st.integers(1, 999),
    kind=st.sampled_from(["reguler", "lokasi_khusus"]),
)
tps_anywhere = st.builds(
    Tps, desa_code=any_desa, number=st.integers(1, 999), kind=st.sampled_from(["reguler", "lokasi_khusus"])
)
sources = st.from_regex(r"/kpu/[0-9]{2}\.[0-9]{2}/[a-z]{1,10}", fullmatch=True)
ids = st.one_of(st.uuids().map(str), nonempty_text)
extensions = st.dictionaries(
    st.from_regex(r"x[a-z0-9]{1,10}", fullmatch=True),
    st.one_of(text, st.integers(-(2**53), 2**53), st.booleans()),
    max_size=2,
)


@st.composite
def voter_registered(draw: st.DrawFn, with_extensions: bool = True) -> VoterRegistered:
    time = draw(aware_datetimes)
    birth = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=time.date()))
    nik = draw(niks(birth=birth if draw(st.booleans()) else None))
    data = VoterRegisteredData(
        nik=nik, nkk=draw(nkks), name=draw(nonempty_text), birth_place=draw(text), birth_date=birth,
        sex=draw(st.sampled_from(["L", "P"])), marital_status=draw(st.sampled_from(["B", "S", "P"])),
        disability=draw(st.one_of(st.none(), st.integers(1, 6))), ktp_el=draw(st.booleans()),
        address=Address(street=draw(text), rt=draw(_n_digits(3)), rw=draw(_n_digits(3))),
        tps=draw(tps), new_voter=draw(st.booleans()),
    )
    ext = draw(extensions) if with_extensions else {}
    return VoterRegistered(
        specversion="1.0", id=draw(ids), source=draw(sources), type=TYPE_VOTER_REGISTERED, time=time,
        subject=nik, datacontenttype=draw(st.sampled_from([None, "application/json"])), data=data, **ext,
    )


@st.composite
def voter_moved(draw: st.DrawFn, with_extensions: bool = True) -> VoterMoved:
    nik = draw(niks())
    data = VoterMovedData(
        nik=nik, to_tps=draw(tps_anywhere), from_tps=draw(st.one_of(st.none(), tps)),
        reason=draw(st.sampled_from(["pindah_domisili", "pindah_memilih", "salah_penempatan_tps"])),
    )
    ext = draw(extensions) if with_extensions else {}
    return VoterMoved(
        specversion="1.0", id=draw(ids), source=draw(sources), type=TYPE_VOTER_MOVED,
        time=draw(aware_datetimes), subject=nik, data=data, **ext,
    )


@st.composite
def meeting_regions(draw: st.DrawFn) -> tuple[str, str]:
    level = draw(st.sampled_from(["provinsi", "kabupaten", "kecamatan", "desa"]))
    if level == "provinsi":
        code = draw(st.sampled_from(regions.within("ID", "provinsi")))
    elif level == "kabupaten":
        code = draw(st.sampled_from(regions.within("33", "kabupaten")))
    else:
        code = draw(st.sampled_from(regions.within("33.16", level)))
    return level, code


FIGURES = st.one_of(st.integers(0, 10**8), st.sampled_from([0, 2_147_483_647]))
declared = st.builds(
    DeclaredFigures, male=FIGURES, female=FIGURES, total=FIGURES, tps_count=FIGURES, tps_loksus_count=FIGURES,
)


@st.composite
def meeting_held(draw: st.DrawFn, with_extensions: bool = True) -> MeetingHeld:
    level, code = draw(meeting_regions())
    meeting_id = draw(nonempty_text)
    data = MeetingHeldData(
        meeting_id=meeting_id, level=level, region_code=code,
        stage=draw(st.sampled_from(["dphp", "dps", "dpshp", "dpt"])),
        held_at=draw(aware_datetimes), data_cutoff=draw(st.one_of(st.none(), aware_datetimes)),
        venue=draw(nonempty_text),
        attendees=draw(st.lists(st.builds(Attendee, institution=text, name=text, role=text), max_size=4)),
        declared=draw(st.one_of(st.none(), declared)), notes=draw(notes_text),
    )
    ext = draw(extensions) if with_extensions else {}
    return MeetingHeld(
        specversion="1.0", id=draw(ids), source=draw(sources), type=TYPE_MEETING_HELD,
        time=draw(aware_datetimes), subject=meeting_id, data=data, **ext,
    )


def events(with_extensions: bool = True) -> st.SearchStrategy[VoterRegistered | VoterMoved | MeetingHeld]:
    return st.one_of(
        voter_registered(with_extensions), voter_moved(with_extensions), meeting_held(with_extensions)
    )


@st.composite
def recap_codes(draw: st.DrawFn) -> tuple[str, str]:
    level = draw(st.sampled_from(["nasional", "provinsi", "kabupaten", "kecamatan", "desa", "tps"]))
    if level == "nasional":
        return level, "ID"
    if level == "tps":
        return level, regions.tps_code(draw(blora_desa), draw(st.integers(1, 999)))
    if level == "provinsi":
        return level, draw(st.sampled_from(regions.within("ID", "provinsi")))
    return level, draw(st.sampled_from(regions.within("33.16" if level != "kabupaten" else "33", level)))


counts = st.integers(0, 10**9)


@st.composite
def recaps(draw: st.DrawFn) -> Recap:
    level, code = draw(recap_codes())
    return Recap(
        level=level, region_code=code, name=draw(text),
        male=draw(counts), female=draw(counts), total=draw(counts), tps_count=draw(counts),
        tps_loksus_count=draw(counts), new_voters=draw(counts), disabled=draw(counts),
        disability_by_type=DisabilityByType.from_mapping({str(i): draw(counts) for i in range(1, 7)}),
        under_age=draw(counts), over_capacity_tps=draw(counts),
        as_of=draw(st.one_of(st.none(), aware_datetimes)), published_at=draw(aware_datetimes),
    )

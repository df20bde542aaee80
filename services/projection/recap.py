"""Recap rows, region levels and the JSON forms of `dphp report` / `dphp meetings` (CONTRACT 3-4).

Pure code: no I/O, no database, no broker. `services.projection.fold` builds the rows; this
module says what a row is, how region codes nest, and how rows and meetings look as JSON.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from schemas.recap import DECLARED_FIELDS, DISABILITY_TYPES, LEVELS  # noqa: F401 - defined once, there
from schemas.recap import RecapLevel as Level

NATION_CODE = "ID"

# Length of the region code at each administrative level (`33.16.01.2001` is a desa).
_CODE_LENGTH: dict[str, int] = {"provinsi": 2, "kabupaten": 5, "kecamatan": 8, "desa": 13}

RegionKey = tuple[str, str]  # (level, region_code)
TpsKey = tuple[str, int]  # (desa_code, number)


def _zero_disability() -> dict[str, int]:
    return dict.fromkeys(DISABILITY_TYPES, 0)


@dataclass
class RecapRow:
    """The figures of one region (CONTRACT 3). `under_age` counts registered voters who are not
    eligible; every other field counts eligible voters only."""

    male: int = 0
    female: int = 0
    total: int = 0
    new_voters: int = 0
    disabled: int = 0
    disability_by_type: dict[str, int] = field(default_factory=_zero_disability)
    under_age: int = 0
    tps_count: int = 0
    tps_loksus_count: int = 0
    over_capacity_tps: int = 0

    def add(self, other: RecapRow) -> None:
        """Add `other`'s figures to this row (used to sum TPS rows into higher levels)."""
        for f in fields(self):
            if f.name == "disability_by_type":
                for k, v in other.disability_by_type.items():
                    self.disability_by_type[k] = self.disability_by_type.get(k, 0) + v
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def is_zero(self) -> bool:
        return self == RecapRow()

    def as_dict(self) -> dict[str, Any]:
        """The recap fields as JSON-able values (`disability_by_type` with keys "1".."6")."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = {k: value.get(k, 0) for k in DISABILITY_TYPES} if f.name == "disability_by_type" else value
        return out


#: The fields of a RecapRow (the counts and `disability_by_type`).
ROW_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RecapRow))
Recap = dict[RegionKey, RecapRow]


# --- region codes -------------------------------------------------------------------------

def tps_code(desa_code: str, number: int) -> str:
    """Region code of a TPS: `33.16.01.2001/001`."""
    return f"{desa_code}/{number:03d}"


def tps_regions(desa_code: str, number: int) -> list[RegionKey]:
    """The TPS and every region containing it, from the TPS up to the nation."""
    return [
        ("tps", tps_code(desa_code, number)),
        ("desa", desa_code),
        ("kecamatan", desa_code[:8]),
        ("kabupaten", desa_code[:5]),
        ("provinsi", desa_code[:2]),
        ("nasional", NATION_CODE),
    ]


def level_of(region_code: str) -> Level:
    """The level of a region code, from its shape (`ID`, `33`, `33.16`, ..., `33.16.01.2001/001`)."""
    if region_code == NATION_CODE:
        return "nasional"
    if "/" in region_code:
        return "tps"
    for level, length in _CODE_LENGTH.items():
        if len(region_code) == length:
            return level  # type: ignore[return-value]
    raise ValueError(f"not a region code: {region_code!r}")


def level_below(level: Level) -> Level:
    """The default level of `dphp report` for a region of `level` (a TPS has none below: itself)."""
    i = LEVELS.index(level)
    return LEVELS[max(i - 1, 0)]


def region_contains(outer: str, inner: str) -> bool:
    """Whether region `inner` is `outer` or inside it. Codes nest by dotted segments, so `33.1`
    does not contain `33.16`; a TPS `D/NNN` is inside desa `D`."""
    if outer == NATION_CODE or inner == outer:
        return True
    return inner.startswith(outer + ".") or inner.startswith(outer + "/")


def select_rows(recap: Mapping[RegionKey, RecapRow], region: str, level: Level | None = None) -> list[tuple[RegionKey, RecapRow]]:
    """Rows of `dphp report --region REGION [--level LEVEL]`: every region of `level` (default:
    the level below the region's) inside `region`, sorted by code. Regions without a row are
    zeros and are left out. A level above the region's is a usage error (ValueError)."""
    own = level_of(region)
    wanted = level or level_below(own)
    if LEVELS.index(wanted) > LEVELS.index(own):
        raise ValueError(f"level {wanted} is above the level of region {region} ({own})")
    return sorted(
        ((key, row) for key, row in recap.items() if key[0] == wanted and region_contains(region, key[1])),
        key=lambda item: item[0][1],
    )


# --- comparison helpers ---------------------------------------------------------------------

def nonzero(recap: Mapping[RegionKey, RecapRow]) -> Recap:
    """The recap without its rows of zeros (a missing row reads as zeros)."""
    return {key: row for key, row in recap.items() if not row.is_zero()}


def recaps_equal(a: Mapping[RegionKey, RecapRow], b: Mapping[RegionKey, RecapRow]) -> bool:
    """Equality of two recaps, a missing row counting as a row of zeros."""
    return nonzero(a) == nonzero(b)


def row_of(recap: Mapping[RegionKey, RecapRow], level: str, region_code: str) -> RecapRow:
    """The row of a region, zeros when the recap has none."""
    return recap.get((level, region_code)) or RecapRow()


# --- JSON forms (CONTRACT 4) ------------------------------------------------------------------

def report_json(rows: Mapping[RegionKey, RecapRow] | Iterable[tuple[RegionKey, RecapRow]],
                names: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Rows as `dphp report --format json` prints them: objects with `level`, `region_code`,
    `name` (only when `names` maps the code) and the recap fields. Ordered by level (finest
    first) then code, unless given as an already ordered iterable of pairs."""
    items = sorted(rows.items(), key=lambda kv: (LEVELS.index(kv[0][0]), kv[0][1])) if isinstance(rows, Mapping) else list(rows)
    out = []
    for (level, code), row in items:
        obj: dict[str, Any] = {"level": level, "region_code": code}
        if names is not None and code in names:
            obj["name"] = names[code]
        obj.update(row.as_dict())
        out.append(obj)
    return out


def comparable_report(rows: Mapping[RegionKey, RecapRow] | Iterable[Mapping[str, Any]]) -> dict[RegionKey, dict[str, Any]]:
    """Normal form for comparing report rows, from a recap or from `report_json`-shaped objects
    (e.g. `dphp report --format json` output): keyed by (level, region_code), recap fields only
    (`name` and unknown keys dropped), rows whose figures are all zero (or withheld, null: the
    privacy threshold) dropped."""
    if isinstance(rows, Mapping):
        objs: Iterable[Mapping[str, Any]] = report_json(rows)
    else:
        objs = rows
    zero = RecapRow().as_dict()
    out: dict[RegionKey, dict[str, Any]] = {}
    for obj in objs:
        key = (obj["level"], obj["region_code"])
        figures = {name: obj[name] for name in ROW_FIELDS}
        if isinstance(figures["disability_by_type"], Mapping):
            figures["disability_by_type"] = dict(figures["disability_by_type"])
        if {name: zero[name] if value is None else value for name, value in figures.items()} == zero:
            continue
        if key in out:
            raise ValueError(f"region {key} appears twice")
        out[key] = figures
    return out


def rfc3339(t: dt.datetime) -> str:
    """RFC 3339 text of an aware datetime, keeping its offset (`Z` for UTC)."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("datetime without offset")
    text = t.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def instant(value: str | dt.datetime) -> dt.datetime:
    """A time (aware datetime or RFC 3339 text) as a UTC instant; a time without offset is refused."""
    t = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"time without offset: {value!r}")
    return t.astimezone(dt.UTC)


_MEETING_KEYS = ("meeting_id", "level", "region_code", "stage", "held_at", "data_cutoff",
                 "attendees", "declared", "computed", "discrepancy")


def comparable_meetings(meetings: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Normal form for comparing meetings, from `MeetingView`s or from `dphp meetings --format
    json`-shaped objects: keyed by meeting_id, contract keys only (venue, notes and unknown keys
    dropped); `held_at` and `data_cutoff` as UTC instants, a null `data_cutoff` replaced by
    `held_at` (CONTRACT 2: null means held_at); attendees as plain objects in their order."""
    out: dict[str, dict[str, Any]] = {}
    for m in meetings:
        obj = m.as_json() if hasattr(m, "as_json") else m
        norm = {k: obj[k] for k in _MEETING_KEYS}
        norm["held_at"] = instant(obj["held_at"])
        norm["data_cutoff"] = instant(obj["data_cutoff"]) if obj["data_cutoff"] is not None else norm["held_at"]
        norm["attendees"] = [{k: a[k] for k in ("institution", "name", "role")} for a in obj["attendees"]]
        for k in ("declared", "computed", "discrepancy"):
            norm[k] = None if obj[k] is None else {f: obj[k][f] for f in DECLARED_FIELDS}
        if norm["meeting_id"] in out:
            raise ValueError(f"meeting {norm['meeting_id']!r} appears twice")
        out[norm["meeting_id"]] = norm
    return out


def region_display_name(code: str) -> str:
    """The name of a region code of any level: "Indonesia", a Kemendagri name, "TPS 001 <desa>"."""
    from schemas.regions import region_name as name

    if code == NATION_CODE:
        return "Indonesia"
    if "/" in code:
        desa, number = code.split("/")
        return f"TPS {number} {name(desa) or desa}"
    return name(code) or ""

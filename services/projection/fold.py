"""The projection as a pure fold over a set of events (CONTRACT 3): the reference the SQL layer
is tested against.

`Projection` keeps every distinct event (by `id`) and, per NIK, its registrations and its
placements sorted by the order key, so that both the current recap and the recap as of any
time are read from the same history:

    p = Projection(voting_day=dt.date(2024, 11, 27), tps_capacity=600)
    p.apply(events)            # any order, any duplicates, any number of calls
    p.recap()                  # {(level, region_code): RecapRow}
    p.recap_as_of(t)           # over the events with time <= t only
    p.meetings(region="33.16") # [MeetingView]

No I/O anywhere in this module.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from schemas.events import Event, MeetingHeld, Tps, VoterMoved, VoterRegistered, VoterRegisteredData
from services.projection.recap import (
    instant,
    DECLARED_FIELDS,
    LEVELS,
    ROW_FIELDS,
    Level,
    Recap,
    RecapRow,
    TpsKey,
    comparable_meetings,
    comparable_report,
    nonzero,
    recaps_equal,
    region_contains,
    report_json,
    rfc3339,
    row_of,
    select_rows,
    tps_regions,
)

__all__ = [
    "DEFAULT_TPS_CAPACITY", "DEFAULT_VOTING_DAY", "LEVELS", "ROW_FIELDS", "MeetingView", "OrderKey",
    "Projection", "Recap", "RecapRow", "comparable_meetings", "comparable_report", "eligibility_cutoff",
    "fold", "instant", "is_eligible", "nonzero", "order_key", "recap_as_of", "recaps_equal",
    "region_contains", "report_json", "row_of", "select_rows",
]

DEFAULT_VOTING_DAY = dt.date(2024, 11, 27)
DEFAULT_TPS_CAPACITY = 600

#: Order of events: the instant of `time` (UTC, microseconds), then `id` by code point.
OrderKey = tuple[dt.datetime, str]


def order_key(event: Event) -> OrderKey:
    """CONTRACT 3: by time as an instant, ties broken by id compared by code point (Python's
    str order is code-point order, as PostgreSQL's COLLATE "C" on UTF-8)."""
    return (instant(event.time), event.id)


def eligibility_cutoff(voting_day: dt.date) -> dt.date:
    """Latest birth date that is 17 years old on `voting_day` (29 Feb counts as 28 Feb)."""
    year = voting_day.year - 17
    try:
        return voting_day.replace(year=year)
    except ValueError:  # 29 February; year - 17 is never a leap year
        return voting_day.replace(year=year, day=28)


def is_eligible(voter: VoterRegisteredData, voting_day: dt.date) -> bool:
    """Aged 17 or more on voting day, or married or formerly married (S, P)."""
    return voter.birth_date <= eligibility_cutoff(voting_day) or voter.marital_status in ("S", "P")


def tps_key(tps: Tps) -> TpsKey:
    return (tps.desa_code, tps.number)


T = TypeVar("T")


def _latest(history: list[tuple[OrderKey, T]], as_of: dt.datetime | None) -> T | None:
    """The value of the latest entry of a key-sorted history, among those with time <= as_of."""
    end = len(history) if as_of is None else bisect_right(history, as_of, key=lambda entry: entry[0][0])
    return history[end - 1][1] if end else None


@dataclass
class _VoterHistory:
    """What the events of one NIK say, each list sorted by order key."""

    registrations: list[tuple[OrderKey, VoterRegisteredData]] = field(default_factory=list)
    placements: list[tuple[OrderKey, TpsKey]] = field(default_factory=list)  # registered and moved


@dataclass(frozen=True)
class MeetingView:
    """A meeting as `dphp meetings` shows it. `computed` is the as-of recap of (level,
    region_code) at the cutoff; `discrepancy` = declared - computed (None without declared)."""

    meeting_id: str
    level: str
    region_code: str
    stage: str
    held_at: dt.datetime
    data_cutoff: dt.datetime | None
    venue: str
    attendees: list[dict[str, str]]
    declared: dict[str, int] | None
    computed: dict[str, int]
    discrepancy: dict[str, int] | None
    notes: str = ""

    @property
    def cutoff(self) -> dt.datetime:
        """The time of the data: `data_cutoff`, or `held_at` when it is null."""
        return self.data_cutoff or self.held_at

    def as_json(self) -> dict[str, Any]:
        """The object `dphp meetings --format json` prints (times in RFC 3339 with their offset)."""
        return {
            "meeting_id": self.meeting_id,
            "level": self.level,
            "region_code": self.region_code,
            "stage": self.stage,
            "held_at": rfc3339(self.held_at),
            "data_cutoff": rfc3339(self.data_cutoff) if self.data_cutoff is not None else None,
            "attendees": [dict(a) for a in self.attendees],
            "declared": dict(self.declared) if self.declared is not None else None,
            "computed": dict(self.computed),
            "discrepancy": dict(self.discrepancy) if self.discrepancy is not None else None,
        }


class Projection:
    """Mutable state of the fold. `apply` is incremental and order-insensitive; events already
    seen (same `id`) are ignored. Publishers never reuse an id for other content (CONTRACT 2)."""

    def __init__(self, *, voting_day: dt.date = DEFAULT_VOTING_DAY, tps_capacity: int = DEFAULT_TPS_CAPACITY) -> None:
        self.voting_day = voting_day
        self.tps_capacity = tps_capacity
        self._events: dict[str, Event] = {}
        self._voters: dict[str, _VoterHistory] = {}
        self._loksus_since: dict[TpsKey, dt.datetime] = {}  # earliest instant naming the TPS loksus
        self._meetings: dict[str, tuple[OrderKey, MeetingHeld]] = {}  # latest event per meeting_id

    # --- the apply step -----------------------------------------------------------------------

    def apply(self, events: Iterable[Event]) -> None:
        for event in events:
            if event.id in self._events:
                continue
            self._events[event.id] = event
            key = order_key(event)
            match event:
                case VoterRegistered(data=data):
                    voter = self._voters.setdefault(data.nik, _VoterHistory())
                    insort(voter.registrations, (key, data), key=lambda entry: entry[0])
                    insort(voter.placements, (key, tps_key(data.tps)), key=lambda entry: entry[0])
                    self._note_kind(data.tps, key)
                case VoterMoved(data=data):
                    voter = self._voters.setdefault(data.nik, _VoterHistory())
                    insort(voter.placements, (key, tps_key(data.to_tps)), key=lambda entry: entry[0])
                    self._note_kind(data.to_tps, key)  # from_tps is informative only
                case MeetingHeld(data=data):
                    current = self._meetings.get(data.meeting_id)
                    if current is None or key > current[0]:
                        self._meetings[data.meeting_id] = (key, event)
                case _:
                    raise TypeError(f"not a DPHP event: {type(event).__name__}")

    def _note_kind(self, tps: Tps, key: OrderKey) -> None:
        if tps.kind == "lokasi_khusus":
            t = key[0]
            since = self._loksus_since.get(tps_key(tps))
            if since is None or t < since:
                self._loksus_since[tps_key(tps)] = t

    # --- reading --------------------------------------------------------------------------------

    @property
    def events(self) -> list[Event]:
        """Every distinct event applied so far, in order key order."""
        return sorted(self._events.values(), key=order_key)

    def newest_time(self, as_of: dt.datetime | None = None) -> dt.datetime | None:
        """Instant of the newest event included (all topics), None when there is none."""
        times = [instant(e.time) for e in self._events.values()]
        if as_of is not None:
            times = [t for t in times if t <= instant(as_of)]
        return max(times, default=None)

    def recap(self, level: Level | str | None = None, *, as_of: dt.datetime | None = None) -> Recap:
        """Rows of every region with at least one registered voter placed in it, at every level
        (or only `level`), keyed by (level, region_code). With `as_of`, over the events with
        time <= as_of only."""
        t = instant(as_of) if as_of is not None else None
        if level is not None and level not in LEVELS:
            raise ValueError(f"unknown level: {level!r}")

        by_tps: dict[TpsKey, RecapRow] = {}
        for voter in self._voters.values():
            identity = _latest(voter.registrations, t)
            if identity is None:  # counts only once registered
                continue
            placement = _latest(voter.placements, t)
            assert placement is not None  # a registration is also a placement
            row = by_tps.setdefault(placement, RecapRow())
            if is_eligible(identity, self.voting_day):
                row.total += 1
                row.male += identity.sex == "L"
                row.female += identity.sex == "P"
                row.new_voters += identity.new_voter
                if identity.disability is not None:
                    row.disabled += 1
                    row.disability_by_type[str(identity.disability)] += 1
            else:
                row.under_age += 1

        recap: Recap = {}
        for (desa_code, number), row in by_tps.items():
            if row.total > 0:
                row.tps_count = 1
                since = self._loksus_since.get((desa_code, number))
                row.tps_loksus_count = int(since is not None and (t is None or since <= t))
                row.over_capacity_tps = int(row.total > self.tps_capacity)
            for region in tps_regions(desa_code, number):
                if level is None or region[0] == level:
                    recap.setdefault(region, RecapRow()).add(row)
        return recap

    def recap_as_of(self, t: dt.datetime, level: Level | str | None = None) -> Recap:
        """The recap over the stored events with time <= t (identity, placement, TPS kind)."""
        return self.recap(level, as_of=t)

    def meetings(self, region: str | None = None) -> list[MeetingView]:
        """Meetings whose region is `region` or inside it (all when None), ordered by held_at
        then meeting_id; each defined by its latest `meeting-held` event."""
        chosen = [event.data for _, event in self._meetings.values()
                  if region is None or region_contains(region, event.data.region_code)]
        chosen.sort(key=lambda m: (instant(m.held_at), m.meeting_id))
        recaps: dict[tuple[dt.datetime, str], Recap] = {}  # one as-of recap per (cutoff, level)
        views = []
        for m in chosen:
            asked = (instant(m.data_cutoff or m.held_at), m.level)
            if asked not in recaps:
                recaps[asked] = self.recap(m.level, as_of=asked[0])
            row = row_of(recaps[asked], m.level, m.region_code)
            computed = {f: getattr(row, f) for f in DECLARED_FIELDS}
            declared = m.declared.model_dump() if m.declared is not None else None
            views.append(MeetingView(
                meeting_id=m.meeting_id,
                level=m.level,
                region_code=m.region_code,
                stage=m.stage,
                held_at=m.held_at,
                data_cutoff=m.data_cutoff,
                venue=m.venue,
                attendees=[a.model_dump() for a in m.attendees],
                declared=declared,
                computed=computed,
                discrepancy={f: declared[f] - computed[f] for f in DECLARED_FIELDS} if declared is not None else None,
                notes=m.notes,
            ))
        return views


# --- functional entry points --------------------------------------------------------------------

def fold(events: Iterable[Event], *, voting_day: dt.date = DEFAULT_VOTING_DAY,
         tps_capacity: int = DEFAULT_TPS_CAPACITY) -> Projection:
    """A fresh projection of `events`."""
    p = Projection(voting_day=voting_day, tps_capacity=tps_capacity)
    p.apply(events)
    return p


def recap_as_of(events: Iterable[Event], t: dt.datetime, level: Level | str | None = None, *,
                voting_day: dt.date = DEFAULT_VOTING_DAY, tps_capacity: int = DEFAULT_TPS_CAPACITY) -> Recap:
    """The recap of the events with time <= t, by filtering first (the definition)."""
    limit = instant(t)
    return fold((e for e in events if instant(e.time) <= limit),
                voting_day=voting_day, tps_capacity=tps_capacity).recap(level)

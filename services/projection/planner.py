"""The batch planner: records in, per lane the rows to store with their records and positions, and
the invalid events apart. Pure (no I/O), so that it is tested alone and shared by every caller."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.parsing import InvalidEvent, parse_event_fields

Partition = tuple[str, int]  # topic, partition
Position = tuple[str, int, int, int]  # topic, partition, offset the batch starts from, next offset


@dataclass
class LanePart:
    """What one lane stores of a batch: rows (with the records they came from, to isolate an event
    the database refuses) and the positions of its partitions, in one transaction."""

    rows: list[tuple] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)

    @property
    def partitions(self) -> list[Partition]:
        return [(t, p) for t, p, _, _ in self.positions]


@dataclass
class BatchPlan:
    parts: dict[int, LanePart]  # by lane number, lanes without partitions left out
    invalid: list[tuple[Any, InvalidEvent]]

    @property
    def next_offsets(self) -> dict[Partition, int]:
        return {(t, p): o for part in self.parts.values() for t, p, _, o in part.positions}


class BatchPlanner:
    """Validates and converts a batch, partition by partition; `plan()` gives the result.

    A partition always goes to the same lane (partition modulo lanes), so that its batches are
    stored one after another on one connection. Records are `add`ed in chunks so that a caller
    may let other work run between them.
    """

    def __init__(self, event_type: str, to_row: Callable[[Any, Any], tuple], cutoff: Any, lanes: int) -> None:
        self.event_type, self.to_row, self.cutoff, self.lanes = event_type, to_row, cutoff, lanes
        self._parts: dict[int, LanePart] = {}
        self._invalid: list[tuple[Any, InvalidEvent]] = []

    def start_partition(self, tp: Partition, expected: int, next_offset: int) -> None:
        """Declares a partition of the batch: it continues from `expected` up to `next_offset`."""
        self._part(tp).positions.append((tp[0], tp[1], expected, next_offset))

    def add(self, tp: Partition, records: Sequence[Any]) -> None:
        """Validates the records of a partition (in offset order) and converts the valid ones."""
        part = self._part(tp)
        add_row, add_rec = part.rows.append, part.records.append
        event_type, to_row, cutoff, invalid = self.event_type, self.to_row, self.cutoff, self._invalid
        for rec in records:
            try:
                add_row(to_row(parse_event_fields(rec.value, event_type), cutoff))
            except InvalidEvent as exc:
                invalid.append((rec, exc))
                continue
            except (OverflowError, UnicodeError) as exc:
                # Validated, but no row can hold it (validation's bounds should prevent this).
                invalid.append((rec, unstorable(exc)))
                continue
            add_rec(rec)

    def plan(self) -> BatchPlan:
        return BatchPlan(dict(sorted(self._parts.items())), self._invalid)

    def _part(self, tp: Partition) -> LanePart:
        lane = tp[1] % self.lanes
        part = self._parts.get(lane)
        if part is None:
            part = self._parts[lane] = LanePart()
        return part


def unstorable(exc: BaseException) -> InvalidEvent:
    """Why an event that validation accepted cannot be stored: the error's class and code, not its
    message (PostgreSQL's messages may quote the value)."""
    from schemas import deadletter as dl

    code = getattr(exc, "sqlstate", None)
    return InvalidEvent(f"the database cannot store the event: {type(exc).__name__}"
                        + (f" (SQLSTATE {code})" if code else ""), dl.UNSTORABLE)

"""The consumer's parts alone: the pure batch planner and the lane scheduler."""

from __future__ import annotations

import asyncio
import json

import pytest

from schemas.events import TYPE_VOTER_REGISTERED
from services.projection import store as st
from services.projection.planner import BatchPlanner
from services.projection.scheduler import EarlierBatchFailed, LaneScheduler
from tests.eventsets import event_set
from tests.support.records import Record

pytestmark = pytest.mark.unit

CUTOFF = st.eligibility_cutoff(__import__("datetime").date(2024, 11, 27))


def registrations(n: int) -> list[bytes]:
    return [e.model_dump_json().encode() for e in event_set(5, voters=n) if e.type.endswith("voter-registered.v1")]


def test_the_planner_splits_by_lane_keeps_the_positions_and_sets_the_invalid_apart():
    values = registrations(40)[:24]
    values[5] = b"{not json"
    doc = json.loads(values[9])
    doc["data"]["nik"] = "3316017713900001"  # an impossible date part
    values[9] = json.dumps(doc).encode()
    records = [Record("t", i % 3, i // 3, b"k", v) for i, v in enumerate(values)]
    planner = BatchPlanner(TYPE_VOTER_REGISTERED, st.registration_row, CUTOFF, lanes=2)
    for p in range(3):
        recs = [r for r in records if r.partition == p]
        planner.start_partition(("t", p), recs[0].offset, recs[-1].offset + 1)
        planner.add(("t", p), recs[:3])
        planner.add(("t", p), recs[3:])
    plan = planner.plan()
    assert sorted(plan.parts) == [0, 1]
    assert plan.parts[0].positions == [("t", 0, 0, 8), ("t", 2, 0, 8)]
    assert plan.parts[1].positions == [("t", 1, 0, 8)]
    assert [(r.partition, r.offset) for r, _ in plan.invalid] == [(0, 3), (2, 1)]  # partition by partition
    for part in plan.parts.values():
        assert len(part.rows) == len(part.records)
        assert [row[0] for row in part.rows] == [json.loads(r.value)["id"] for r in part.records]
    assert sum(len(p.rows) for p in plan.parts.values()) == len(values) - 2
    assert plan.next_offsets == {("t", 0): 8, ("t", 1): 8, ("t", 2): 8}


class Gate:
    """A store whose parts finish when released, recording the order they ran in."""

    def __init__(self) -> None:
        self.ran: list[tuple[int, int]] = []
        self.release = asyncio.Event()

    def part(self, batch: int, lane: int, fail: bool = False):
        async def store():
            await self.release.wait()
            self.ran.append((batch, lane))
            if fail:
                raise RuntimeError(f"batch {batch} lane {lane}")
        return store


async def test_the_scheduler_stores_each_lane_in_order_and_bounds_the_batches_in_flight():
    gate, scheduler = Gate(), LaneScheduler(lanes=2, batches_in_flight=2)
    for b in range(2):
        scheduler.submit({0: ([("t", 0)], gate.part(b, 0)), 1: ([("t", 1)], gate.part(b, 1))})
    room = asyncio.create_task(scheduler.room())
    await asyncio.sleep(0.05)
    assert not room.done()  # a third batch must wait
    gate.release.set()
    assert (await room).error is None and len(scheduler) == 1
    assert (await scheduler.settle()).error is None
    assert [r for r in gate.ran if r[1] == 0] == [(0, 0), (1, 0)]  # a lane's parts in batch order
    assert not scheduler.busy


async def test_when_a_part_fails_the_later_parts_of_its_lane_are_not_stored():
    gate, scheduler = Gate(), LaneScheduler(lanes=2, batches_in_flight=3)
    scheduler.submit({0: ([("t", 0)], gate.part(0, 0, fail=True)), 1: ([("t", 1)], gate.part(0, 1))})
    scheduler.submit({0: ([("t", 0), ("t", 2)], gate.part(1, 0)), 1: ([("t", 1)], gate.part(1, 1))})
    gate.release.set()
    settled = await scheduler.settle()
    assert isinstance(settled.error, RuntimeError)
    assert settled.failed_partitions == [("t", 0), ("t", 0), ("t", 2)]
    assert sorted(gate.ran) == [(0, 0), (0, 1), (1, 1)]  # batch 1's lane 0 never ran


async def test_a_later_part_reports_the_earlier_failure():
    scheduler = LaneScheduler(lanes=1, batches_in_flight=2)

    async def fails():
        raise ValueError("x")

    async def fine():
        return None

    scheduler.submit({0: (["a"], fails)})
    scheduler.submit({0: (["a"], fine)})
    first = scheduler._inflight[0].parts[0].task  # noqa: SLF001 - only to check the second's exception
    second = scheduler._inflight[1].parts[0].task  # noqa: SLF001
    await scheduler.settle()
    assert isinstance(first.exception(), ValueError)
    assert isinstance(second.exception(), EarlierBatchFailed)

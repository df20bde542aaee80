"""Handler-level tests of a projection service's batch logic, with the database and broker faked.

Delivery, offsets and rebalancing are tested against the real broker in tests/integration.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from services.common.settings import Settings
from services.projection.consumer import ProjectionConsumer
from tests.eventsets import event_set
from tests.support.records import Record

pytestmark = pytest.mark.unit


class FakeStore:
    def __init__(self) -> None:
        self.applied: list[tuple] = []
        self.positions_stored: list = []

    async def positions(self, group_id, topic):
        return {}

    async def apply_registrations(self, rows, group_id, positions):
        if any(row[4] == "UNSTORABLE" for row in rows):  # the name column
            raise asyncpg.DataError("value out of range")
        self.applied.extend(rows)
        self.positions_stored.extend(positions)


class FakeConnection:
    def is_closed(self) -> bool:
        return False


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, list]] = []

    async def send(self, topic, value, key, headers):
        self.sent.append((topic, value, key, headers))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def consumer() -> tuple[ProjectionConsumer, FakeStore, FakeProducer]:
    c = ProjectionConsumer(Settings(), "registrations")
    store, producer = FakeStore(), FakeProducer()
    for lane in c._lanes:
        lane._store, lane._conn = store, FakeConnection()
    c._producer, c._migrated = producer, True
    return c, store, producer


def registrations(n: int) -> list[bytes]:
    events = [e for e in event_set(3, voters=n) if e.type.endswith("voter-registered.v1")]
    return [e.model_dump_json().encode() for e in events]


async def test_an_event_the_database_refuses_is_dead_lettered_and_the_rest_applied():
    c, store, producer = consumer()
    values = registrations(20)
    doc = json.loads(values[7])
    doc["data"]["name"] = "UNSTORABLE"
    values[7] = json.dumps(doc).encode()
    records = [Record(c.topic, 0, i, b"k", v) for i, v in enumerate(values)]
    await c.handle(records)
    assert len(store.applied) == len(values) - 1
    assert [s[1] for s in producer.sent] == [values[7]]
    headers = dict(producer.sent[0][3])
    assert headers["dphp.error.class"] == b"UnapplicableEvent"
    assert headers["dphp.original.offset"] == b"7"
    assert (c.topic, 0, len(values)) in store.positions_stored  # the batch's position is stored


async def test_records_before_the_stored_position_are_skipped():
    c, store, producer = consumer()
    values = registrations(10)
    await c.handle([Record(c.topic, 0, i, b"k", v) for i, v in enumerate(values[:5])])
    # A redelivery after a rebalance starts again at offset 0.
    await c.handle([Record(c.topic, 0, i, b"k", v) for i, v in enumerate(values)])
    assert len(store.applied) == len(values)
    assert producer.sent == []


async def test_a_batch_is_spread_over_the_lanes_by_partition_each_with_its_positions():
    c, _, _ = consumer()
    assert len(c._lanes) == 2  # the default
    stores = [FakeStore() for _ in c._lanes]
    for lane, store in zip(c._lanes, stores):
        lane._store = store
    values = registrations(20)
    records = [Record(c.topic, i % 4, i // 4, b"k", v) for i, v in enumerate(values)]
    await c.handle(records)
    for n, store in enumerate(stores):
        assert {p for _, p, _ in store.positions_stored} == {p for p in range(4) if p % 2 == n}
        assert len(store.applied) == sum(1 for r in records if r.partition % 2 == n)


class GatedStore(FakeStore):
    """Applies a batch once let through; raises `error` for the batch whose first event id is `fails`."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.fails: str | None = None
        self.started: list[str] = []

    async def apply_registrations(self, rows, group_id, positions):
        self.started.append(rows[0][0])
        await self.gate.wait()
        if rows[0][0] == self.fails:
            self.fails = None  # once
            raise RuntimeError("the database went away")
        await super().apply_registrations(rows, group_id, positions)


def gated_consumer() -> tuple[ProjectionConsumer, GatedStore, list[bytes]]:
    c, _, _ = consumer()
    store = GatedStore()
    for lane in c._lanes:
        lane._store = store
    values = registrations(60)[:30]
    assert len(values) == 30
    return c, store, values


async def test_batches_are_stored_in_order_while_the_next_ones_are_validated():
    c, store, values = gated_consumer()
    assert c.batches_in_flight == 2  # the default
    batches = [[Record(c.topic, 0, i, b"k", values[i]) for i in range(k, k + 10)] for k in (0, 10, 20)]
    await c.submit(batches[0])
    await asyncio.wait_for(c.submit(batches[1]), 2)  # returns although the first batch is not stored
    await asyncio.sleep(0.05)
    assert store.applied == [] and len(store.started) == 1  # the second waits for the first, on its lane
    third = asyncio.create_task(c.submit(batches[2]))
    await asyncio.sleep(0.05)
    assert not third.done()  # two batches in flight at most
    store.gate.set()
    await third
    await c.flush()
    assert [row[0] for row in store.applied] == [json.loads(v)["id"] for v in values]
    assert store.positions_stored[-1] == (c.topic, 0, 30)


async def test_when_a_batch_in_flight_fails_the_next_one_is_not_stored_and_both_are_read_again():
    c, store, values = gated_consumer()
    first = [Record(c.topic, 0, i, b"k", values[i]) for i in range(10)]
    second = [Record(c.topic, 0, i, b"k", values[i]) for i in range(10, 20)]
    store.fails = json.loads(values[0])["id"]
    await c.submit(first)
    await c.submit(second)
    store.gate.set()
    with pytest.raises(RuntimeError):
        await c.flush()
    assert store.applied == [] and len(store.started) == 1  # the second never started
    assert (c.topic, 0) not in c._next  # read again from the stored position
    await c.handle(first + second)  # the redelivery after the seek back
    assert [row[0] for row in store.applied] == [json.loads(v)["id"] for v in values[:20]]

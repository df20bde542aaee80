"""Handler-level tests of a projection service's batch logic, with the database and broker faked.

Delivery, offsets and rebalancing are tested against the real broker in tests/integration.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from schemas import deadletter as dl
from services.common.deadletter import DeadLetterWriter
from services.common.settings import Settings
from services.projection.consumer import ProjectionConsumer
from tests.eventsets import event_set
from tests.support.records import Record

pytestmark = pytest.mark.unit


class FakeConnection:
    def is_closed(self) -> bool:
        return False

    def terminate(self) -> None:
        pass

    async def close(self) -> None:
        pass


class FakeStore:
    conn = FakeConnection()

    def __init__(self) -> None:
        self.applied: list[tuple] = []
        self.positions_stored: list = []
        self.durable: list[bool] = []

    async def positions(self, group_id, topic):
        return {}

    async def apply_registrations(self, rows, group_id, positions, durable=False):
        if any(row[4] == "UNSTORABLE" for row in rows):  # the name column
            raise asyncpg.DataError("value out of range")
        self.durable.append(durable)
        self.applied.extend(rows)
        self.positions_stored.extend(positions)


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, list]] = []

    async def send(self, topic, value, key, headers):
        self.sent.append((topic, value, key, headers))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def consumer(*stores: FakeStore, dead_letter: bool = True) -> tuple[ProjectionConsumer, FakeStore, FakeProducer]:
    """A consumer whose lanes get `stores` in turn (one store for all by default) and whose dead
    letters go to a fake producer, both passed in through the constructor (`dead_letter=False`:
    a rebuild's, as `dphp replay` makes it)."""
    settings = Settings()
    stores = stores or (FakeStore(),)
    producer = FakeProducer()
    handed = iter(range(1_000_000))

    async def open_store():
        return stores[next(handed) % len(stores)]

    c = ProjectionConsumer(settings, "registrations", dead_letter=dead_letter, open_store=open_store,
                           dead_letters=DeadLetterWriter(settings, settings.group_id("registrations"), producer))
    return c, stores[0], producer


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
    assert headers[dl.ERROR_CLASS] == dl.UNSTORABLE.encode()
    assert headers[dl.ORIGINAL_OFFSET] == b"7"
    assert (c.topic, 0, 0, len(values)) in store.positions_stored  # the batch's position is stored


async def test_records_before_the_stored_position_are_skipped():
    c, store, producer = consumer()
    values = registrations(10)
    await c.handle([Record(c.topic, 0, i, b"k", v) for i, v in enumerate(values[:5])])
    # A redelivery after a rebalance starts again at offset 0.
    await c.handle([Record(c.topic, 0, i, b"k", v) for i, v in enumerate(values)])
    assert len(store.applied) == len(values)
    assert producer.sent == []


async def test_a_batch_is_spread_over_the_lanes_by_partition_each_with_its_positions():
    stores = [FakeStore(), FakeStore()]
    c, _, _ = consumer(*stores)
    assert len(c.lanes) == 2  # the default
    values = registrations(20)
    records = [Record(c.topic, i % 4, i // 4, b"k", v) for i, v in enumerate(values)]
    await c.handle(records)
    for n, store in enumerate(stores):
        assert {p for _, p, _, _ in store.positions_stored} == {p for p in range(4) if p % 2 == n}
        assert len(store.applied) == sum(1 for r in records if r.partition % 2 == n)


class GatedStore(FakeStore):
    """Applies a batch once let through; raises `error` for the batch whose first event id is `fails`."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.fails: str | None = None
        self.started: list[str] = []

    async def apply_registrations(self, rows, group_id, positions, durable=False):
        self.started.append(rows[0][0])
        await self.gate.wait()
        if rows[0][0] == self.fails:
            self.fails = None  # once
            raise RuntimeError("the database went away")
        await super().apply_registrations(rows, group_id, positions, durable)


def gated_consumer() -> tuple[ProjectionConsumer, GatedStore, list[bytes]]:
    store = GatedStore()
    c, _, _ = consumer(store)
    values = registrations(60)[:30]
    assert len(values) == 30
    return c, store, values


async def test_batches_are_stored_in_order_while_the_next_ones_are_validated():
    c, store, values = gated_consumer()
    assert c.scheduler.batches_in_flight == 2  # the default
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
    assert store.positions_stored[-1] == (c.topic, 0, 20, 30)


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
    assert c.next_offset((c.topic, 0)) is None  # read again from the stored position
    await c.handle(first + second)  # the redelivery after the seek back
    assert [row[0] for row in store.applied] == [json.loads(v)["id"] for v in values[:20]]


class CountingStore(FakeStore):
    """Counts transactions; refuses (as PostgreSQL would, class 22) any batch with a poisoned name."""

    def __init__(self) -> None:
        super().__init__()
        self.transactions = 0

    async def apply_registrations(self, rows, group_id, positions, durable=False):
        self.transactions += 1
        await super().apply_registrations(rows, group_id, positions, durable)


@pytest.mark.parametrize("bad", [[0], [511], [3, 700], [10, 11, 12]])
async def test_finding_the_events_the_database_refuses_costs_log_n_transactions(bad):
    store = CountingStore()
    c, _, producer = consumer(store)
    values = registrations(700)[:1024]
    n = len(values)
    for i in bad:
        doc = json.loads(values[i])
        doc["data"]["name"] = "UNSTORABLE"
        values[i] = json.dumps(doc).encode()
    await c.handle([Record(c.topic, 0, i, b"k", v) for i, v in enumerate(values)])
    assert sorted(int(dict(s[3])[dl.ORIGINAL_OFFSET]) for s in producer.sent) == bad
    assert len(store.applied) == n - len(bad)
    # The whole batch, then two halves per level for each bad event, then the positions.
    assert store.transactions <= 2 + 2 * len(bad) * (n - 1).bit_length()
    assert store.positions_stored[-1] == (c.topic, 0, 0, n)


class FlakyProducer(FakeProducer):
    """The broker acknowledges every record but the third, once."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def send(self, topic, value, key, headers):
        future = await super().send(topic, value, key, headers)
        if len(self.sent) == 3 and not self.failed:
            self.failed = True
            from aiokafka.errors import KafkaTimeoutError
            failing = asyncio.get_running_loop().create_future()
            failing.set_exception(KafkaTimeoutError())
            return failing
        return future


async def test_a_dead_letter_is_sent_again_alone_when_the_broker_did_not_acknowledge_it():
    settings = Settings()
    producer = FlakyProducer()
    writer = DeadLetterWriter(settings, "g", producer)
    from schemas.parsing import InvalidEvent
    letters = [(Record("t", 0, i, b"k", b"x%d" % i), InvalidEvent("bad", "malformed")) for i in range(5)]
    await writer.send(letters)
    values = [s[1] for s in producer.sent]
    assert values == [b"x0", b"x1", b"x2", b"x3", b"x4", b"x2"]  # the unacknowledged one once more, alone


class MovedStore(FakeStore):
    """Another writer stored the partition meanwhile: its stored position is `stored`."""

    def __init__(self, stored: int) -> None:
        super().__init__()
        self.stored = stored
        self.reads = 0

    async def positions(self, group_id, topic):
        self.reads += 1
        return {0: self.stored}

    async def apply_registrations(self, rows, group_id, positions, durable=False):
        from services.projection.store import PositionsMoved
        if any(f != self.stored for _, _, f, _ in positions):
            raise PositionsMoved("moved")
        await super().apply_registrations(rows, group_id, positions, durable)
        for _, _, _, o in positions:
            self.stored = o


async def test_a_batch_whose_positions_moved_is_not_stored_and_the_positions_are_read_again():
    store = MovedStore(stored=0)
    c, _, producer = consumer(store)
    values = registrations(30)[:10]
    assert len(values) == 10
    await c.handle([Record(c.topic, 0, i, b"k", v) for i, v in enumerate(values[:5])])
    assert store.stored == 5 and store.reads == 1
    store.stored = 8  # another instance stored 5..7 (or the database lost commits: store.stored = 2)
    from services.projection.store import PositionsMoved
    with pytest.raises(PositionsMoved):
        await c.handle([Record(c.topic, 0, i, b"k", values[i]) for i in range(5, 10)])
    assert len(store.applied) == 5 and producer.sent == []
    assert c.next_offset((c.topic, 0)) is None  # read again before the next batch
    await c.handle([Record(c.topic, 0, i, b"k", values[i]) for i in range(5, 10)])
    assert store.reads == 2 and store.stored == 10
    assert [r[0] for r in store.applied][5:] == [json.loads(v)["id"] for v in values[8:]]


async def test_after_a_reconnect_the_positions_are_read_again():
    c, store, _ = consumer()
    values = registrations(10)
    await c.handle([Record(c.topic, 0, i, b"k", v) for i, v in enumerate(values[:5])])
    assert c.next_offset((c.topic, 0)) == 5
    c.lanes[1].on_reconnect()  # what a lane does when a new connection replaces a lost one
    assert c.next_offset((c.topic, 0)) is None


async def test_a_batch_that_dead_lettered_commits_durably_the_others_do_not():
    # A database crash that lost its commit would make the service dead-letter those events again.
    c, store, producer = consumer()
    values = registrations(30)[:10]
    await c.handle([Record(c.topic, 0, i, b"k", v) for i, v in enumerate(values[:5])])
    await c.handle([Record(c.topic, 0, 5, b"k", b"{broken")]
                   + [Record(c.topic, 0, i, b"k", values[i]) for i in range(6, 10)])
    assert store.durable == [False, True]
    assert len(producer.sent) == 1


async def test_a_bug_in_converting_events_stops_the_batch_loudly_and_pauses_before_the_next(caplog):
    from services.projection import consumer as consumer_module
    c, store, producer = consumer()

    def broken(event, cutoff):
        raise TypeError("Integer exceeds 64-bit range")

    c.kind = consumer_module.Kind(c.kind.service, c.kind.event_type, c.kind.topic, broken, c.kind.apply)
    records = [Record(c.topic, 0, i, b"k", v) for i, v in enumerate(registrations(30)[:5])]
    loop = asyncio.get_running_loop()
    await c.handle(records)
    started = loop.time()
    await c.handle(records)  # the redelivery after the seek back: paused first, one line, no traceback
    assert loop.time() - started >= 0.9
    assert store.applied == [] and producer.sent == [] and c.next_offset((c.topic, 0)) is None
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2 and errors[0].exc_info and not errors[1].exc_info


class FakeKafkaConsumer:
    def __init__(self, topic: str, partitions) -> None:
        from aiokafka import TopicPartition
        self._assigned = {TopicPartition(topic, p) for p in partitions}
        self.seeks: list[tuple[int, int]] = []

    def assignment(self):
        return self._assigned

    def seek(self, tp, offset) -> None:
        self.seeks.append((tp.partition, offset))

    async def commit(self, offsets) -> None:
        pass


async def test_records_not_stored_are_fetched_again_even_when_no_later_record_comes():
    # At the end of a topic no later fetch would reveal the gap: the consumer seeks back itself.
    store = MovedStore(stored=0)
    c, _, _ = consumer(store)
    kafka = FakeKafkaConsumer(c.topic, [0, 1])
    c.consumer_ref = lambda: kafka
    values = registrations(30)[:10]
    await c.handle([Record(c.topic, 0, i, b"k", v) for i, v in enumerate(values[:5])])
    store.stored = 2  # the database lost the last commit
    from services.projection.store import PositionsMoved
    first = [Record(c.topic, 0, i, b"k", values[i]) for i in range(5, 8)]
    second = [Record(c.topic, 0, i, b"k", values[i]) for i in range(8, 10)]
    await c.submit(first)
    await c.submit(second)
    with pytest.raises(PositionsMoved):
        await c.flush()
    assert kafka.seeks and kafka.seeks[0] == (0, 5)  # the failed part's start, at once
    assert all(p == 0 for p, _ in kafka.seeks)
    # The records come back from there; the stored position (2) is earlier: one more seek back.
    await c.handle([Record(c.topic, 0, i, b"k", values[i]) for i in range(5, 10)])
    assert kafka.seeks[-1] == (0, 2)
    await c.handle([Record(c.topic, 0, i, b"k", values[i]) for i in range(2, 10)])
    assert store.stored == 10


class ReconnectingStore(FakeStore):
    """Its positions are read on a new connection: the lane calls on_reconnect meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.lane = None

    async def positions(self, group_id, topic):
        self.lane.on_reconnect()
        return {p: o for _, p, _, o in self.positions_stored}


async def test_positions_forgotten_while_they_are_read_are_taken_from_that_read():
    # A database crash: the read of an unknown partition's position reconnects, which forgets the
    # positions of the batch's other partitions too (a KeyError stopped the batch before).
    store = ReconnectingStore()
    c, _, _ = consumer(store)
    store.lane = c.lanes[0]
    values = registrations(30)[:10]
    await c.handle([Record(c.topic, 0, i, b"k", v) for i, v in enumerate(values[:3])])
    await c.handle([Record(c.topic, 0, i, b"k", values[i]) for i in range(3, 6)]
                   + [Record(c.topic, 1, i, b"k", values[6 + i]) for i in range(2)])
    assert [row[0] for row in store.applied] == [json.loads(v)["id"] for v in values[:8]]


async def test_records_passed_over_are_dead_lettered_once_when_invalid():
    # A rebuild (`dphp replay`) stored the position 8 and sent no dead letters: the service that
    # continues from it sends those of the invalid records it passes over, once.
    store = MovedStore(stored=8)
    c, _, producer = consumer(store)
    values = registrations(30)[:10]
    values[3] = b"{broken"
    batch = [Record(c.topic, 0, i, b"k", v) for i, v in enumerate(values)]
    await c.handle(batch)
    assert [(s[0], s[1]) for s in producer.sent] == [(c.settings.topic_dead_letter, b"{broken")]
    assert len(store.applied) == 2 and store.stored == 10  # only 8 and 9 applied
    assert c.dead_lettered == 1

    committed = []

    class Subscriber:  # the aiokafka consumer: Kafka is advised of what was read
        def assignment(self):
            from aiokafka import TopicPartition
            return {TopicPartition(c.topic, 0)}

        async def commit(self, offsets):
            committed.append({tp.partition: o for tp, o in offsets.items()})

    c.consumer_ref = Subscriber
    await c.handle(batch)  # read again (a rebalance): every record passed over, none sent twice
    assert len(producer.sent) == 1 and c.dead_lettered == 1
    assert committed == [{0: 10}]


async def test_a_rebuild_dead_letters_nothing_it_passes_over():
    c, store, producer = consumer(MovedStore(stored=8), dead_letter=False)
    values = registrations(30)[:10]
    values[3] = b"{broken"
    await c.handle([Record(c.topic, 0, i, b"k", v) for i, v in enumerate(values)])
    assert producer.sent == [] and len(store.applied) == 2


async def test_a_rebuild_dead_letters_only_the_events_the_database_refuses():
    # A service reading past them after the switch-over could not tell them: they pass validation.
    c, store, producer = consumer(dead_letter=False)
    values = registrations(30)[:6]
    values[1] = b"{broken"
    event = json.loads(values[4])
    event["data"]["name"] = "UNSTORABLE"  # the fake store refuses it
    values[4] = json.dumps(event).encode()
    await c.handle([Record(c.topic, 0, i, b"k", v) for i, v in enumerate(values)])
    assert [s[1] for s in producer.sent] == [values[4]]
    assert dict(producer.sent[0][3])[dl.ERROR_CLASS] == dl.UNSTORABLE.encode()
    assert c.dead_lettered == 2 and len(store.applied) == 4  # both counted, the rest applied

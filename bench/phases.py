"""The parts of the benchmark besides the services' catch-up: sink limit, naive baseline, latency."""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psutil
from aiokafka.partitioner import murmur2

from bench.procs import cpu_delta, listener_pid, machine_busy_pct, postgres_cpu, process_cpu
from schemas.events import CONTENT_TYPE, TYPE_VOTER_MOVED, TYPE_VOTER_REGISTERED
from schemas.parsing import parse_event_fields
from services.common.db import migrate
from services.common.failures import Health, retry_transient
from services.common.kafka import faststream_broker, kafka_consumer, kafka_producer
from services.common.settings import Settings
from services.projection import store as st
from services.projection.scheduler import LaneScheduler

log = logging.getLogger("bench")
HEADERS = [("content-type", CONTENT_TYPE.encode())]


# --- parsing (not timed as part of the sink) ----------------------------------------------------

@dataclass
class Parsed:
    rows: dict[str, list[tuple]]
    events: int
    seconds: float

    @property
    def us_per_event(self) -> float:
        return self.seconds / self.events * 1e6 if self.events else 0.0


def parse_sample(path: Path, cutoff) -> Parsed:
    """Parses every event of the sample (as the services do) and builds its row."""
    rows: dict[str, list[tuple]] = {"registrations": [], "movements": [], "meetings": []}
    reg, mov, meet = rows["registrations"].append, rows["movements"].append, rows["meetings"].append
    n = 0
    started = time.perf_counter()
    with open(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            e = parse_event_fields(line)
            n += 1
            if e["type"] == TYPE_VOTER_REGISTERED:
                reg(st.registration_row(e, cutoff))
            elif e["type"] == TYPE_VOTER_MOVED:
                mov(st.movement_row(e))
            else:
                meet(st.meeting_row(e))
    return Parsed(rows, n, time.perf_counter() - started)


# --- the sink limit --------------------------------------------------------------------------------

class TimedConnection:
    """Wraps an asyncpg connection: times each statement of the store by its name."""

    def __init__(self, conn: asyncpg.Connection, names: dict[str, str]) -> None:
        self._conn = conn
        self._names = names
        self.seconds: dict[str, float] = defaultdict(float)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def _timed(self, name: str, call):
        t = time.perf_counter()
        try:
            return await call
        finally:
            self.seconds[name] += time.perf_counter() - t

    def _name(self, query: str) -> str:
        # A batch's statements after the COPY go as one query that starts with a known one.
        if query in self._names:
            return self._names[query]
        return next((name for sql, name in self._names.items() if sql and query.startswith(sql)), "other SQL")

    async def execute(self, query: str, *args, **kwargs):
        return await self._timed(self._name(query), self._conn.execute(query, *args, **kwargs))

    async def fetchval(self, query: str, *args, **kwargs):
        return await self._timed(self._name(query), self._conn.fetchval(query, *args, **kwargs))

    async def copy_records_to_table(self, *args, **kwargs):
        return await self._timed("COPY into stage", self._conn.copy_records_to_table(*args, **kwargs))


@dataclass
class SinkResult:
    events: int
    seconds: float
    batch: int
    by_kind_seconds: dict[str, float]
    breakdown: dict[str, float]  # registrations: seconds per statement, "BEGIN/COMMIT" the rest
    recap: dict[str, Any] | None = None
    lanes: int = 1  # connections of the registrations
    races: int = 0  # batch parts applied again after losing a race for a new voter
    pg_cpu_s: float = 0.0  # every PostgreSQL server process, while timed
    own_cpu_s: float = 0.0  # this process (row encoding, the lanes' I/O), while timed
    busy_pct: float = 0.0  # the machine, while timed

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


APPLY = {"registrations": "apply_registrations", "movements": "apply_movements", "meetings": "apply_meetings"}


def lane_of(nik: str, partitions: int, lanes: int) -> int:
    """The lane a service stores a voter event in: the partition of its key (Kafka's default
    partitioner, murmur2) modulo the lanes."""
    return ((murmur2(nik.encode()) & 0x7FFFFFFF) % partitions) % lanes


async def sink(settings: Settings, parsed: Parsed, batch: int) -> SinkResult:
    """Applies the parsed rows straight to PostgreSQL through ProjectionStore, as the services
    store them: batches of `batch` rows, each spread over `settings.db_lanes` connections by
    partition (one connection for meetings: one partition), each lane its parts one after the
    other, the lanes concurrently; the three event types concurrently; into `settings.db_schema`.
    The statements of the registrations' first lane are timed."""
    await migrate(settings)
    partitions = {"registrations": settings.partitions_registered, "movements": settings.partitions_moved,
                  "meetings": settings.partitions_meetings}
    lanes = {kind: min(settings.db_lanes, partitions[kind]) for kind in APPLY}
    stores: dict[str, list[st.ProjectionStore]] = {kind: [] for kind in APPLY}
    timed: TimedConnection | None = None
    for kind in APPLY:
        for lane in range(lanes[kind]):
            conn = await st.connect_writer(settings)
            store = st.ProjectionStore(conn, settings.db_schema)
            await store.prepare()
            await store.ensure_config(settings.voting_day, settings.tps_capacity)
            if kind == "registrations" and lane == 0:
                names = {sql: name for name, sql in store._sql.items()}
                names[store._sql["apply_registration"]] = "history, voters, tally, positions (one round trip)"
                timed = TimedConnection(conn, names)
                store.conn = timed
            stores[kind].append(store)
    by_kind: dict[str, float] = {}
    timed_apply = 0.0

    health = Health("PostgreSQL (sink)", log)

    async def apply(kind: str, lane: int, rows: list[tuple], from_offset: int, next_offset: int) -> None:
        nonlocal timed_apply
        t = time.perf_counter()
        # As a service's lane (`Lane.with_db`): a transient failure is retried with backoff. The
        # movements' new voters race with the registrations' (a serialization failure after
        # `ProjectionStore.RACE_ATTEMPTS` immediate attempts), rarely, but often enough that a
        # sink without the retry failed one `make bench` of 2026-12-04.
        await retry_transient(lambda: getattr(stores[kind][lane], APPLY[kind])(
            rows, f"bench.sink.{kind}", [(f"sink.{kind}", lane, from_offset, next_offset)]), health)
        if kind == "registrations" and lane == 0:
            timed_apply += time.perf_counter() - t

    # The batches and their parts per lane, before the clock starts (the services know a
    # record's partition; here it is computed, which is not the database's work).
    work: dict[str, list[tuple[int, int, list[list[tuple]]]]] = {}
    for kind in APPLY:
        rows, n = parsed.rows[kind], lanes[kind]
        work[kind] = []
        for i in range(0, len(rows), batch):
            chunk = rows[i:i + batch]
            parts: list[list[tuple]] = [[] for _ in range(n)]
            for row in chunk:
                # voter rows: nik is column 1; meetings: one lane
                parts[lane_of(row[1], partitions[kind], n) if n > 1 else 0].append(row)
            work[kind].append((i, i + len(chunk), parts))

    async def run(kind: str) -> None:
        # As a service stores its batches, with its scheduler: each lane applies its part of one
        # batch after its part of the batch before, without waiting for the other lanes. A service
        # validates up to `batches_in_flight` batches ahead; the sink has no validation to wait
        # for, so every batch may be in flight.
        t0 = time.perf_counter()
        scheduler = LaneScheduler(lanes[kind], batches_in_flight=max(1, len(work[kind])))
        for from_offset, next_offset, parts in work[kind]:
            scheduler.submit({lane: ([lane], lambda lane=lane, f=from_offset, o=next_offset, part=parts[lane]:
                                     apply(kind, lane, part, f, o))
                              for lane in range(lanes[kind])})
        settled = await scheduler.settle()
        if settled.error is not None:
            raise settled.error
        by_kind[kind] = time.perf_counter() - t0

    try:
        # CPU as for the catch-up, so that the record compares what an event costs in each phase.
        me = psutil.Process()
        pg0, own0, machine0 = postgres_cpu(), me.cpu_times(), psutil.cpu_times()
        started = time.perf_counter()
        await asyncio.gather(*(run(k) for k in APPLY))
        seconds = time.perf_counter() - started
        pg1, own1, machine1 = postgres_cpu(), me.cpu_times(), psutil.cpu_times()
        breakdown = dict(timed.seconds)
        breakdown["BEGIN/COMMIT, Python"] = timed_apply - sum(breakdown.values())
        recap = await region_recap(stores["meetings"][0].conn, settings.db_schema)
        races = sum(store.races for kind_stores in stores.values() for store in kind_stores)
    finally:
        for store in (s for kind_stores in stores.values() for s in kind_stores):
            conn = store.conn._conn if isinstance(store.conn, TimedConnection) else store.conn
            await conn.close()
    return SinkResult(parsed.events, seconds, batch, by_kind, breakdown, recap, lanes["registrations"], races,
                      pg_cpu_s=cpu_delta(pg0, pg1),
                      own_cpu_s=(own1.user + own1.system) - (own0.user + own0.system),
                      busy_pct=machine_busy_pct(machine0, machine1))


async def settle(settings: Settings, vacuum: str | None = None) -> float | None:
    """Before a timed phase, finishes the writes of the phases before it, so that each phase
    measures its own work: the kernel's dirty pages are written (`os.sync`: a publication leaves
    about 1 GB of them, which the kernel wrote back during the first seconds of the catch-up that
    followed), the tables of schema `vacuum` (filled by the phase before and kept) are vacuumed and
    analysed now instead of by autovacuum during this phase (seen overlapping the sink), and
    CHECKPOINT writes PostgreSQL's dirty buffers. Its seconds, or None where the role may not run
    CHECKPOINT (superuser or pg_checkpoint)."""
    t = time.perf_counter()
    await asyncio.to_thread(os.sync)
    conn = await asyncpg.connect(settings.database_dsn, timeout=10)
    try:
        if vacuum is not None:
            tables = await conn.fetch("SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables "
                                      "WHERE schemaname = $1 ORDER BY tablename", vacuum)
            if tables:
                await conn.execute("VACUUM (ANALYZE) " + ", ".join(r["name"] for r in tables))
        try:
            await conn.execute("CHECKPOINT")
        except asyncpg.InsufficientPrivilegeError:
            return None
    finally:
        await conn.close()
    return time.perf_counter() - t


async def region_recap(conn: asyncpg.Connection, schema: str, level: str = "kabupaten") -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT * FROM {schema}.recap WHERE level = $1 ORDER BY total DESC LIMIT 1", level)
    return dict(row) if row else None


# --- the naive baseline ------------------------------------------------------------------------------

@dataclass
class NaiveResult:
    events: int
    seconds: float
    timed_out: bool = False

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def produce(settings: Settings, topic: str, lines: list[bytes]) -> None:
    producer = kafka_producer(settings, linger_ms=10, max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = []
        for raw in lines:
            key = orjson.loads(raw)["subject"].encode()
            futures.append(await producer.send(topic, value=raw, key=key, headers=HEADERS))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def naive(settings: Settings, topic: str, group_id: str, lines: list[bytes], timeout: float) -> NaiveResult:
    """A minimal FastStream subscriber: one message at a time, one transaction per event (the same
    ProjectionStore.apply_registrations with one row and its position), its own topic and group."""
    from faststream import AckPolicy
    from faststream.kafka.annotations import KafkaMessage

    from services.common.topics import TopicSpec, ensure_topics

    await ensure_topics(settings, [TopicSpec(topic, settings.partitions_registered, {})])
    await produce(settings, topic, lines)
    await migrate(settings)
    conn = await asyncpg.connect(settings.database_dsn, timeout=10)
    store = st.ProjectionStore(conn, settings.db_schema)
    await store.prepare()
    await store.ensure_config(settings.voting_day, settings.tps_capacity)
    cutoff = st.eligibility_cutoff(settings.voting_day)
    want = len(lines)
    done = asyncio.Event()
    state = {"n": 0, "first": None, "last": None}

    async def no_decode(message, original_decoder=None):
        return None

    broker = faststream_broker(settings, logger=logging.getLogger("bench.naive"), log_level=logging.DEBUG)
    subscriber = broker.subscriber(topic, group_id=group_id, auto_offset_reset="earliest",
                                   ack_policy=AckPolicy.MANUAL, decoder=no_decode)

    @subscriber
    async def handle(message: KafkaMessage) -> None:
        rec = message.raw_message
        if state["first"] is None:
            state["first"] = time.perf_counter()
        event = parse_event_fields(rec.value, TYPE_VOTER_REGISTERED)
        await store.apply_registrations([st.registration_row(event, cutoff)], group_id,
                                        [(rec.topic, rec.partition, rec.offset, rec.offset + 1)])
        state["n"] += 1
        state["last"] = time.perf_counter()
        if state["n"] >= want:
            done.set()

    await broker.start()
    timed_out = False
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except asyncio.TimeoutError:
        timed_out = True
    finally:
        await broker.stop()
        await conn.close()
    if state["first"] is None:
        return NaiveResult(0, 0.0, True)
    return NaiveResult(state["n"], state["last"] - state["first"], timed_out)


# --- publish-to-visible latency ------------------------------------------------------------------

@dataclass
class LatencyResult:
    rate_target: float
    sent: int
    send_seconds: float
    seen: int
    latencies_ms: list[float] = field(default_factory=list)
    poll_ms: float = 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, max(0, round(q / 100 * len(xs)) - 1))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def rate(self) -> float:
        return self.sent / self.send_seconds if self.send_seconds > 0 else 0.0


async def latency(settings: Settings, lines: list[bytes], rate: float, poll_s: float = 0.02,
                  settle_timeout: float = 60.0) -> LatencyResult:
    """Sends `lines` (voter-registered events) to the services' topic at a steady `rate`,
    stamping each send, and polls the projection's history for each event's row.

    A latency is (start of the poll that first saw the row) - (send call): an upper bound, at most
    one poll interval late."""
    ids = [orjson.loads(raw)["id"] for raw in lines]
    keys = [orjson.loads(raw)["subject"].encode() for raw in lines]
    nik_of = {i: k.decode() for i, k in zip(ids, keys)}
    sent_at: dict[str, float] = {}
    pending: dict[str, None] = {}  # sent, not seen yet (in send order)
    seen: dict[str, float] = {}
    result = LatencyResult(rate, 0, 0.0, 0, poll_ms=poll_s * 1000)
    producer = kafka_producer(settings)
    await producer.start()
    conn = await asyncpg.connect(settings.database_dsn, timeout=10)
    sending = True

    async def poll() -> None:
        # By the history's key (nik first): each lookup is an index probe.
        sql = (f"SELECT e.event_id FROM {settings.db_schema}.voter_event e "
               f"JOIN unnest($1::text[], $2::text[]) AS x(nik, event_id) USING (nik, event_id)")
        deadline = None
        while True:
            batch = list(pending)
            if not sending:
                if not batch:
                    return
                deadline = deadline or time.monotonic() + settle_timeout
                if time.monotonic() > deadline:
                    return
            t = time.monotonic()
            if batch:
                for r in await conn.fetch(sql, [nik_of[i] for i in batch], batch):
                    seen[r["event_id"]] = t
                    pending.pop(r["event_id"], None)
            await asyncio.sleep(max(0.0, poll_s - (time.monotonic() - t)))

    poller = asyncio.create_task(poll())
    futures = []
    try:
        start = time.monotonic()
        i, n = 0, len(lines)
        while i < n:
            due = min(n, int((time.monotonic() - start) * rate) + 1)
            while i < due:
                sent_at[ids[i]] = time.monotonic()
                pending[ids[i]] = None
                futures.append(await producer.send(settings.topic_registered, value=lines[i], key=keys[i],
                                                   headers=HEADERS))
                i += 1
            await asyncio.sleep(0.002)
        result.send_seconds = time.monotonic() - start
        result.sent = n
        await asyncio.gather(*futures)
        sending = False
        await poller
    finally:
        sending = False
        if not poller.done():
            poller.cancel()
        await producer.stop()
        await conn.close()
    result.seen = len(seen)
    result.latencies_ms = [(seen[i] - sent_at[i]) * 1000 for i in seen]
    return result



@dataclass
class WarmUp:
    """What ran before the pairs, untimed (`warm_up`)."""

    records: int = 0  # read from the topics
    read_s: float = 0.0
    kafka_cpu_s: float | None = None  # the broker's CPU while they were read
    sink_rate: float = 0.0  # the sink pass, events/s
    sink_pg_cpu_s: float = 0.0
    events: int = 0


async def warm_up(settings: Settings, ends: dict[tuple[str, int], int], parsed: Parsed, batch: int,
                  drop_schema: Any) -> WarmUp:
    """Before the pairs, untimed: reads every record of the topics once, then applies the sample
    once with the sink into schema `warm_schema(settings)` (dropped after).

    The first phase of a run found PostgreSQL cold, and that first phase is always pair 1's
    catch-up (pairs alternate, catch-up first in the odd ones): pair 1 had the lowest e2e/sink in
    7 of the 8 recorded runs of 2026-12-04 before this warm-up. With only the read of the topics
    as a warm-up, pair 1's catch-up still cost PostgreSQL 22.2 µs of CPU per event against 15.9 in
    the later pairs on a stack started just before the run, and 18.7 against 15.4-16.0 right after
    that run, with its 111 WAL segments (1.8 GB) in place for reuse (a new segment is written in
    full before use; a fresh cluster has none). With the sink pass, 16.1 against 16.6-17.1
    (docs/benchmarks.md, eighth round).
    The read (about 2 s) runs the broker's fetch path once; it did not measurably change pair 1's
    broker CPU, which stays higher than the later pairs'."""
    warm = WarmUp(events=parsed.events)
    warm.records, warm.read_s, warm.kafka_cpu_s = await _read_topics(settings, ends)
    sink_settings = settings.model_copy(update={"db_schema": warm_schema(settings)})
    try:
        result = await sink(sink_settings, parsed, batch)
    finally:
        await drop_schema(settings, sink_settings.db_schema)
    warm.sink_rate, warm.sink_pg_cpu_s = result.rate, result.pg_cpu_s
    return warm


def warm_schema(settings: Settings) -> str:
    """The schema of the warm-up's sink pass."""
    return f"{settings.db_schema}_warm"


async def _read_topics(settings: Settings, ends: dict[tuple[str, int], int],
                       timeout: float = 300) -> tuple[int, float, float | None]:
    """Reads the partitions to `ends` with a plain consumer without a group, as the services fetch
    (2 MB a partition): records, seconds, the broker's CPU seconds."""
    from aiokafka import TopicPartition

    wanted = {TopicPartition(t, p): end for (t, p), end in ends.items() if end > 0}
    consumer = kafka_consumer(settings, group_id=None, enable_auto_commit=False,
                              max_partition_fetch_bytes=2 * 1024 * 1024)
    kafka_pid = listener_pid(settings.kafka_port)
    cpu0, started = process_cpu(kafka_pid), time.perf_counter()
    records = 0
    await consumer.start()
    try:
        consumer.assign(list(wanted))
        await consumer.seek_to_beginning(*wanted)
        while wanted:
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"warm-up: {len(wanted)} partitions not read to their end after {timeout:.0f} s")
            for tp, recs in (await consumer.getmany(timeout_ms=1000, max_records=10_000)).items():
                records += len(recs)
                if recs and recs[-1].offset + 1 >= wanted.get(tp, 0):
                    wanted.pop(tp, None)
    finally:
        await consumer.stop()
    cpu1 = process_cpu(kafka_pid)
    return records, time.perf_counter() - started, (cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None)

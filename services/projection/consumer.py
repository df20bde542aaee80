"""A projection service: consumes one topic in batches and applies them to PostgreSQL.

Positions live in the database, written in the batch's transaction by compare-and-set from
where the batch starts; on partition assignment, and after any reconnect to the database, the
consumer reads them again and seeks to them, so Kafka's committed offsets are advisory only.
Invalid events go to the dead-letter topic unchanged. Failures are classified in one place
(`services.common.failures`): transient ones are retried with backoff and commit nothing; an
event the database cannot store is found by bisection and dead-lettered; anything else stops
the batch loudly.
"""

from __future__ import annotations

import asyncio
import logging
import operator
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import asyncpg
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalOperation, KafkaError

from schemas import deadletter as dl
from schemas import regions
from schemas.events import TYPE_MEETING_HELD, TYPE_VOTER_MOVED, TYPE_VOTER_REGISTERED
from schemas.parsing import InvalidEvent, parse_event_fields
from services.common.db import migrate
from services.common.deadletter import DeadLetterWriter
from services.common.failures import Backoff, Failure, Health, classify, short
from services.common.settings import Settings
from services.projection import store as st

log = logging.getLogger("dphp.projection")
_TOPIC_PARTITION = operator.attrgetter("topic", "partition")

Apply = Callable[[st.ProjectionStore, Sequence[tuple], str, Sequence[st.Position]], Awaitable[None]]


@dataclass(frozen=True)
class Kind:
    service: str
    event_type: str
    topic: Callable[[Settings], str]
    to_row: Callable[[Any, Any], tuple]
    apply: Apply  # stores rows and positions through a ProjectionStore


KINDS = {
    "registrations": Kind("registrations", TYPE_VOTER_REGISTERED, lambda s: s.topic_registered,
                          st.registration_row, lambda store, *args, **kw: store.apply_registrations(*args, **kw)),
    "movements": Kind("movements", TYPE_VOTER_MOVED, lambda s: s.topic_moved,
                      lambda e, cutoff: st.movement_row(e), lambda store, *args, **kw: store.apply_movements(*args, **kw)),
    "meetings": Kind("meetings", TYPE_MEETING_HELD, lambda s: s.topic_meetings,
                     lambda e, cutoff: st.meeting_row(e), lambda store, *args, **kw: store.apply_meetings(*args, **kw)),
}


class _EarlierBatchFailed(Exception):
    """A lane's part of a batch was not stored because the lane's part of the batch before failed."""


class _Lane:
    """One connection that applies batches, with its store; reconnects with backoff.

    `on_reconnect` is called whenever a new connection replaces one that was lost: the consumer
    then reads its positions again (the database may have lost its last commits)."""

    def __init__(self, settings: Settings, health: Health, on_reconnect: Callable[[], None] = lambda: None,
                 connect: Callable[[Settings], Awaitable[asyncpg.Connection]] = st.connect_writer) -> None:
        self.settings = settings
        self.health = health
        self.on_reconnect = on_reconnect
        self._connect = connect
        self._conn: asyncpg.Connection | None = None
        self._store: st.ProjectionStore | None = None
        self._connected_before = False

    async def store_ready(self) -> st.ProjectionStore:
        """A connected store; retries with backoff while the database is unreachable."""
        backoff = Backoff()
        while True:
            if self._store is not None and self._conn is not None and not self._conn.is_closed():
                return self._store
            self.drop_connection()
            try:
                conn = await self._connect(self.settings)
                try:
                    store = st.ProjectionStore(conn, self.settings.db_schema)
                    await store.prepare()
                    await store.ensure_config(self.settings.voting_day, self.settings.tps_capacity)
                except BaseException:
                    conn.terminate()
                    raise
                self._conn, self._store = conn, store
                if self._connected_before:
                    self.on_reconnect()
                self._connected_before = True
                self.health.ok()
                return store
            except Exception as exc:
                if classify(exc) is not Failure.TRANSIENT:
                    raise
                self.health.failed(exc)
                await backoff.wait()

    async def with_db(self, action: Callable[[st.ProjectionStore], Awaitable[Any]]) -> Any:
        """Runs `action` on the store; retries it with backoff while a failure is transient."""
        backoff = Backoff()
        while True:
            store = await self.store_ready()
            try:
                result = await action(store)
                self.health.ok()
                return result
            except st.ProjectionSwitched:
                # `dphp replay` put a rebuilt projection in place: continue on it, from its positions.
                log.warning("the projection was replaced by a rebuilt one (dphp replay); continuing on it")
                self.drop_connection()
            except Exception as exc:
                if classify(exc) is not Failure.TRANSIENT:
                    raise
                # Class 40 (a deadlock, a lost race) leaves the connection usable; anything else
                # may not have: a new connection, and the positions are read again.
                if not isinstance(exc, asyncpg.TransactionRollbackError):
                    self.drop_connection()
                self.health.failed(exc)
                await backoff.wait()

    def drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
        self._conn = self._store = None

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()


class ProjectionConsumer:
    """The logic of one projection service; `app.py` wires it into a FastStream app.

    A batch's partitions are spread over `settings.db_lanes` connections (partition modulo
    lanes), which apply their parts concurrently, each in its own transaction with the
    positions of its partitions: PostgreSQL works on one batch with several cores.
    """

    def __init__(self, settings: Settings, service: str, dead_letter: bool = True,
                 dead_letters: DeadLetterWriter | None = None) -> None:
        self.settings = settings
        # False for a rebuild (`dphp replay`): the services dead-lettered invalid events already.
        self.dead_letter = dead_letter
        self.kind = KINDS[service]
        self.topic = self.kind.topic(settings)
        self.group_id = settings.group_id(service)
        self.cutoff = st.eligible_cutoff(settings.voting_day)
        # Returns the aiokafka consumer of the subscriber (set by the app's wiring).
        self.consumer_ref: Callable[[], Any] = lambda: None
        self.dead_letters = dead_letters or DeadLetterWriter(settings, self.group_id)
        self._db_health = Health("PostgreSQL", log)
        self._lanes = [_Lane(settings, self._db_health, on_reconnect=self.forget_positions)
                       for _ in range(settings.db_lanes)]
        self._migrated = False
        self._next: dict[tuple[str, int], int] = {}  # next offset to apply, per partition
        self._sought: dict[tuple[str, int], int] = {}
        # The batches being stored, oldest first (see `submit`): each a task per lane, with the
        # partitions it advances. A lane's task waits for the lane's task of the batch before.
        self._inflight: deque[list[tuple[asyncio.Task, tuple[tuple[str, int], ...]]]] = deque()
        self._lane_tail: list[asyncio.Task | None] = [None] * len(self._lanes)
        self.batches_in_flight = settings.batches_in_flight
        # After a batch failed for a bug: the next one waits (1 s, doubling up to a minute).
        self._bug_backoff = Backoff(first=1.0, cap=60.0)
        self._resume_at = 0.0
        self._last_bug: str | None = None
        self.applied = 0
        self.dead_lettered = 0

    # lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        regions.load()  # the region tree for validation (~0.3 s): now, not while the first batch waits
        await self._migrate()
        await self._lanes[0].store_ready()
        if self.dead_letter:
            await self.dead_letters.start()

    async def stop(self) -> None:
        # The batches in flight, if any; not for long (the database may be down): if one is cut short,
        # its transaction is rolled back and the batch is applied again after a restart.
        try:
            await asyncio.wait_for(self.flush(), timeout=5)
        except (Exception, asyncio.TimeoutError):  # noqa: BLE001 - logged by the batch's task
            pass
        if self.dead_letter:
            await self.dead_letters.stop()
        for lane in self._lanes:
            await lane.close()

    async def _migrate(self) -> None:
        """Applies the migrations (idempotent; one migrator at a time); retries with backoff."""
        backoff = Backoff()
        while not self._migrated:
            try:
                await migrate(self.settings)
                self._migrated = True
            except Exception as exc:
                if classify(exc) is not Failure.TRANSIENT:
                    raise
                self._db_health.failed(exc)
                await backoff.wait()

    def forget_positions(self) -> None:
        """Reads every partition's position from the database again before its next batch."""
        self._next.clear()

    # rebalancing -----------------------------------------------------------------------
    def listener(self) -> ConsumerRebalanceListener:
        outer = self

        class ForgetPositionsOnRebalance(ConsumerRebalanceListener):
            # The listener may run while a batch is in flight, so it does no I/O: it only marks
            # partitions whose position must be read again from the database before use.
            async def on_partitions_revoked(self, revoked):
                for tp in revoked:
                    outer._next.pop((tp.topic, tp.partition), None)

            async def on_partitions_assigned(self, assigned):
                for tp in assigned:
                    outer._next.pop((tp.topic, tp.partition), None)
                log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))

        return ForgetPositionsOnRebalance()

    async def _in_order(self, records: Sequence[Any]) -> dict[tuple[str, int], tuple[int, list[Any]]]:
        """Per partition, the position it continues from and the records that continue it.

        Records before it were applied already (skipped); a gap after it (the fetch started
        elsewhere, e.g. at an advisory Kafka offset ahead of the database) seeks back.
        """
        by_tp: dict[tuple[str, int], list[Any]] = {}
        # A fetched batch holds each partition's records one after the other, in offset order.
        for tp, recs in groupby(records, key=_TOPIC_PARTITION):
            if tp in by_tp:
                by_tp[tp].extend(recs)
            else:
                by_tp[tp] = list(recs)
        if any(tp not in self._next for tp in by_tp):
            await self._settle()  # the connection is free and the batches in flight's positions are stored
        unknown = [tp for tp in by_tp if tp not in self._next]
        if unknown:
            stored = await self._lanes[0].with_db(lambda store: store.positions(self.group_id, self.topic))
            for tp in unknown:
                self._next[tp] = stored.get(tp[1], 0)
            log.info("resuming partitions %s from stored positions %s",
                     sorted(p for _, p in unknown), {p: stored.get(p, 0) for _, p in sorted(unknown)})
        kept: dict[tuple[str, int], tuple[int, list[Any]]] = {}
        for tp, recs in by_tp.items():
            expected = self._next[tp]
            if recs[0].offset < expected:
                recs = [r for r in recs if r.offset >= expected]
                if not recs:
                    continue
            if recs[0].offset > expected and self._sought.get(tp) != expected:
                self._sought[tp] = expected
                if self.consumer is not None:
                    self.consumer.seek(TopicPartition(*tp), expected)
                log.info("partition %d fetched from %d, stored position is %d: seeking back",
                         tp[1], recs[0].offset, expected)
                continue
            # Offsets may legitimately skip (compaction, transaction markers): accept after one seek.
            self._sought.pop(tp, None)
            kept[tp] = (expected, recs)
        return kept

    @property
    def consumer(self):
        return self.consumer_ref()

    # the batch -----------------------------------------------------------------------
    async def handle(self, records: Sequence[Any]) -> None:
        """Validates, dead-letters the invalid, applies the rest with the positions (stored on return)."""
        await self.submit(records)
        await self.flush()

    async def submit(self, records: Sequence[Any]) -> None:
        """`handle` without waiting for the database: returns once the batch is queued for storing,
        so that the service fetches and validates the next batches meanwhile (the services' wiring
        uses this). At most `settings.batches_in_flight` batches are being stored; they are stored
        in order, each lane's part with its partitions' positions in its own transaction, as with
        `handle`; `flush` waits for all of them."""
        wait = self._resume_at - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)  # a batch before failed for a bug: not in a tight loop
        by_tp = await self._in_order(records)
        if not by_tp:
            return
        lanes = len(self._lanes)
        # Per lane: the rows to store and their records (for isolating an event the database rejects).
        lane_rows: list[list[tuple]] = [[] for _ in range(lanes)]
        lane_recs: list[list[Any]] = [[] for _ in range(lanes)]
        bad: list[tuple[Any, InvalidEvent]] = []
        positions: dict[tuple[str, int], tuple[int, int]] = {}  # partition -> (from, next offset)
        event_type, to_row, cutoff = self.kind.event_type, self.kind.to_row, self.cutoff
        for tp, (expected, recs) in by_tp.items():
            positions[tp] = (expected, recs[-1].offset + 1)  # offsets ascend within a partition
            add_row, add_rec = lane_rows[tp[1] % lanes].append, lane_recs[tp[1] % lanes].append
            for start in range(0, len(recs), 500):
                if start and self._inflight:
                    await asyncio.sleep(0)  # let the batches in flight send their next statements
                for rec in recs[start:start + 500]:
                    try:
                        add_row(to_row(parse_event_fields(rec.value, event_type), cutoff))
                    except InvalidEvent as exc:
                        bad.append((rec, exc))
                        continue
                    except (OverflowError, UnicodeError) as exc:
                        # Validated, but no row can hold it (validation's bounds should prevent this).
                        bad.append((rec, _unstorable(exc)))
                        continue
                    add_rec(rec)
        if await self._settle(keep=self.batches_in_flight - 1) is not None:
            # A batch before failed (logged): this one continues it, so it is not applied
            # either; the next batch reads them again from the stored positions (a seek).
            await self._settle()
            for tp in positions:
                self._next.pop(tp, None)
            return
        if bad:
            await self._dead_letter(bad)
        for tp, (_, o) in positions.items():
            self._next[tp] = o  # the next batch continues after this one
        # Each lane stores its partitions' events and positions; a partition is always in the same lane.
        lane_positions: dict[int, list[st.Position]] = {}
        for (t, p), (f, o) in positions.items():
            lane_positions.setdefault(p % lanes, []).append((t, p, f, o))
        batch = []
        for i, lane_pos in sorted(lane_positions.items()):
            task = asyncio.create_task(self._store_batch(self._lanes[i], lane_rows[i], lane_recs[i], lane_pos,
                                                         after=self._lane_tail[i], durable=bool(bad)))
            self._lane_tail[i] = task
            batch.append((task, tuple((t, p) for t, p, _, _ in lane_pos)))
        self._inflight.append(batch)

    async def flush(self) -> None:
        """Waits until the batches in flight are stored; raises the first error if one failed."""
        error = await self._settle()
        if error is not None:
            raise error

    async def _settle(self, keep: int = 0) -> BaseException | None:
        """Waits for the oldest batches in flight until `keep` remain; returns the first error, if
        any (its partitions are then read again from the stored positions, as if not handled)."""
        error: BaseException | None = None
        while len(self._inflight) > keep:
            for task, partitions in self._inflight.popleft():
                try:
                    await task
                except Exception as exc:  # noqa: BLE001 - logged by the task, returned to the caller
                    for tp in partitions:
                        self._next.pop(tp, None)
                    error = error or exc
        if not self._inflight:
            self._lane_tail = [None] * len(self._lanes)
        return error

    async def _store_batch(self, lane: _Lane, rows: list[tuple], recs: list[Any],
                           positions: list[st.Position], after: asyncio.Task | None, durable: bool = False) -> None:
        if after is not None:
            try:
                await after  # the lane's part of the batch before: stored first, on the same connection
            except Exception:  # noqa: BLE001 - logged by that task
                raise _EarlierBatchFailed() from None
        try:
            await self._apply(lane, rows, recs, positions, durable)
        except st.PositionsMoved:
            log.warning("partitions %s: the stored positions are not where this batch starts (another "
                        "instance stored them, or the database lost its last commits); reading them again",
                        sorted(p for _, p, _, _ in positions))
            raise
        except Exception as exc:
            # A bug (see services.common.failures): the batch stops here, loudly, and is read again
            # from the stored positions after a pause that doubles while the failure repeats.
            what = short(exc)
            if what != self._last_bug:
                log.exception("a batch of %d events was not stored (%s); it will be read again from the "
                              "stored positions", len(rows), what)
            else:
                log.error("a batch of %d events was not stored again (%s)", len(rows), what)
            self._last_bug = what
            self._resume_at = asyncio.get_running_loop().time() + self._bug_backoff.delay()
            raise
        if self._last_bug is not None:
            log.warning("batches are stored again after: %s", self._last_bug)
            self._last_bug = None
        self._bug_backoff.reset()
        self.applied += len(rows)
        await self._advisory_commit(positions)

    async def _apply(self, lane: _Lane, rows: list[tuple], recs: list[Any], positions: list[st.Position],
                     durable: bool = False) -> None:
        apply, group = self.kind.apply, self.group_id
        try:
            await lane.with_db(lambda store: apply(store, rows, group, positions, durable=durable))
            return
        except Exception as exc:
            if classify(exc) is not Failure.EVENT:
                raise
            log.error("a batch of %d events was rejected by the database (%s); isolating the event(s)",
                      len(rows), type(exc).__name__)
            why = _unstorable(exc)
        # Some event can never be stored: find it by bisection, dead-letter it, store the
        # positions. Applying an event again is harmless (set semantics).
        rejected = await self._isolate(lane, rows, recs, why)
        if rejected:
            await self._dead_letter(rejected)
        await lane.with_db(lambda store: apply(store, [], group, positions, durable=durable or bool(rejected)))

    async def _isolate(self, lane: _Lane, rows: list[tuple], recs: list[Any],
                       why: InvalidEvent) -> list[tuple[Any, InvalidEvent]]:
        """The events of `rows` (which the database refused as a whole, saying `why`) that it
        refuses alone; the others are stored. Halves are tried in turn: k bad events of n cost
        at most 2k log2(n) transactions, not n."""
        if len(rows) == 1:
            return [(recs[0], why)]
        apply, group = self.kind.apply, self.group_id
        mid = len(rows) // 2
        rejected = []
        for part_rows, part_recs in ((rows[:mid], recs[:mid]), (rows[mid:], recs[mid:])):
            try:
                await lane.with_db(lambda store, r=part_rows: apply(store, r, group, []))
            except Exception as exc:
                if classify(exc) is not Failure.EVENT:
                    raise
                rejected += await self._isolate(lane, part_rows, part_recs, _unstorable(exc))
        return rejected

    async def _dead_letter(self, bad: list[tuple[Any, InvalidEvent]]) -> None:
        if self.dead_letter:
            await self.dead_letters.send(bad)
        self.dead_lettered += len(bad)  # a rebuild counts them, it does not send them again

    async def _advisory_commit(self, positions: list[st.Position]) -> None:
        # Kafka's committed offsets only serve outside tools; the database is the truth.
        if self.consumer is None:
            return
        owned = self.consumer.assignment()
        offsets = {TopicPartition(t, p): o for t, p, _, o in positions if TopicPartition(t, p) in owned}
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except IllegalOperation:  # a consumer without a group (dphp replay): nothing to advise
            return
        except KafkaError as exc:
            log.debug("advisory commit skipped: %s", exc)


def _unstorable(exc: BaseException) -> InvalidEvent:
    """Why an event that validation accepted cannot be stored: the error's class and code, not its
    message (PostgreSQL's messages may quote the value)."""
    code = getattr(exc, "sqlstate", None)
    return InvalidEvent(f"the database cannot store the event: {type(exc).__name__}"
                        + (f" (SQLSTATE {code})" if code else ""), dl.UNSTORABLE)

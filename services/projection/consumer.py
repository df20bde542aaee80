"""A projection service: consumes one topic in batches and applies them to PostgreSQL.

Positions live in the database, written in the batch's transaction by compare-and-set from
where the batch starts; on partition assignment, and after any reconnect to the database, the
consumer reads them again and seeks to them, so Kafka's committed offsets are advisory only.
Invalid events go to the dead-letter topic unchanged. Failures are classified in one place
(`services.common.failures`): transient ones are retried with backoff and commit nothing; an
event the database cannot store is found by bisection and dead-lettered; anything else stops
the batch loudly.

The parts: `ProjectionConsumer` (ordering and seek-back, tying the rest together), the pure
`planner.BatchPlanner`, the `scheduler.LaneScheduler` of batches in flight, `lane.Lane` (a
connection with retries) and `services.common.deadletter.DeadLetterWriter`.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalOperation, KafkaError

from schemas import regions
from schemas.events import TYPE_MEETING_HELD, TYPE_VOTER_MOVED, TYPE_VOTER_REGISTERED
from schemas.parsing import InvalidEvent
from services.common.db import migrate
from services.common.deadletter import DeadLetterWriter
from services.common.failures import Backoff, Failure, Health, classify, retry_transient, short
from services.common.metrics import ServiceMetrics
from services.common.settings import Settings
from services.projection import store as st
from services.projection.lane import Lane, OpenStore
from services.projection.planner import BatchPlanner, LanePart, Partition, unstorable
from services.projection.scheduler import LaneScheduler

log = logging.getLogger("dphp.projection")
_TOPIC_PARTITION = operator.attrgetter("topic", "partition")

Apply = Callable[..., Awaitable[None]]  # (store, rows, group_id, positions, durable=False)


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


class ProjectionConsumer:
    """The logic of one projection service; `app.py` wires it into a FastStream app.

    A batch's partitions are spread over `settings.db_lanes` connections (partition modulo
    lanes), which apply their parts concurrently, each in its own transaction with the
    positions of its partitions: PostgreSQL works on one batch with several cores.
    Dependencies come in through the constructor (production defaults): `dead_letters`, the
    writer of the dead-letter topic; `open_store`, which gives each lane a connected store;
    `metrics`, the service's Prometheus metrics (applied, dead-lettered, batch store time).
    """

    def __init__(self, settings: Settings, service: str, dead_letter: bool = True,
                 dead_letters: DeadLetterWriter | None = None, open_store: OpenStore | None = None,
                 metrics: ServiceMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or ServiceMetrics(service)
        # False for a rebuild (`dphp replay`): the services dead-letter invalid events (`_dead_letter_passed`);
        # it sends only those the database refuses, which a service reading past them cannot tell.
        self.dead_letter = dead_letter
        self.kind = KINDS[service]
        self.topic = self.kind.topic(settings)
        self.group_id = settings.group_id(service)
        self.cutoff = st.eligibility_cutoff(settings.voting_day)
        # Returns the aiokafka consumer of the subscriber (set by the app's wiring).
        self.consumer_ref: Callable[[], Any] = lambda: None
        self.dead_letters = dead_letters or DeadLetterWriter(settings, self.group_id)
        self._db_health = Health("PostgreSQL", log)
        open_store = open_store or (lambda: st.open_writer_store(settings))
        self.lanes = [Lane(open_store, self._db_health, on_reconnect=self.forget_positions)
                      for _ in range(settings.db_lanes)]
        self.scheduler = LaneScheduler(len(self.lanes), settings.batches_in_flight)
        self._next: dict[Partition, int] = {}  # next offset to apply, per partition
        self._sought: dict[Partition, int] = {}
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
        await self.lanes[0].store_ready()
        await self.dead_letters.start()

    async def stop(self) -> None:
        # The batches in flight, if any; not for long (the database may be down): if one is cut short,
        # its transaction is rolled back and the batch is applied again after a restart.
        try:
            await asyncio.wait_for(self.flush(), timeout=5)
        except (Exception, asyncio.TimeoutError):  # noqa: BLE001 - logged by the batch's task
            pass
        await self.dead_letters.stop()
        for lane in self.lanes:
            await lane.close()

    async def _migrate(self) -> None:
        """Applies the migrations (idempotent; one migrator at a time); retries with backoff."""
        await retry_transient(lambda: migrate(self.settings), self._db_health)

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

    @property
    def consumer(self):
        return self.consumer_ref()

    @property
    def db_health(self) -> Health:
        """Whether the lanes reach the database (readiness)."""
        return self._db_health

    def next_offset(self, tp: Partition) -> int | None:
        """The offset the next batch of a partition starts from, if known (read from the database)."""
        return self._next.get(tp)

    async def _in_order(self, records: Sequence[Any]) -> tuple[dict[Partition, tuple[int, list[Any]]], list[Any]]:
        """Per partition, the position it continues from and the records that continue it; and
        the records before it, which were applied already (passed over).

        A gap after it (the fetch started elsewhere, e.g. at an advisory Kafka offset ahead of the
        database) seeks back.
        """
        by_tp: dict[Partition, list[Any]] = {}
        # A fetched batch holds each partition's records one after the other, in offset order.
        for tp, recs in groupby(records, key=_TOPIC_PARTITION):
            if tp in by_tp:
                by_tp[tp].extend(recs)
            else:
                by_tp[tp] = list(recs)
        if any(tp not in self._next for tp in by_tp):
            await self.scheduler.settle()  # the batches in flight's positions are stored
        unknown = [tp for tp in by_tp if tp not in self._next]
        if unknown:
            stored = await self.lanes[0].with_db(lambda store: store.positions(self.group_id, self.topic))
            # Read after any reconnect of that call (which forgets every position), with no batch in
            # flight: current for every partition of this batch, not only those unknown before it.
            unknown = [tp for tp in by_tp if tp not in self._next]
            for tp in unknown:
                self._next[tp] = stored.get(tp[1], 0)
            log.info("resuming partitions %s from stored positions %s",
                     sorted(p for _, p in unknown), {p: stored.get(p, 0) for _, p in sorted(unknown)})
        kept: dict[Partition, tuple[int, list[Any]]] = {}
        passed: list[Any] = []
        for tp, recs in by_tp.items():
            expected = self._next[tp]
            if recs[0].offset < expected:
                passed += [r for r in recs if r.offset < expected]
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
        return kept, passed

    async def _dead_letter_passed(self, passed: list[Any]) -> None:
        """Dead-letters the invalid records among those passed over, unless their dead letters are
        in the topic already.

        Records below a stored position were applied by whoever stored it. A service sends its dead
        letters before it stores the positions past them, so theirs are in the topic; but a rebuild
        (`dphp replay`) sends none, and a service that lagged behind the rebuild continues after the
        switch-over from the rebuild's positions. It is that service, the partition's owner, that
        sends the dead letters of the records it passes over, so the rebuild and a service do not
        both send one. (It fetches them because Kafka's committed offsets of its group, from which
        it fetches, are committed only after storing. Events the database refuses pass validation:
        the rebuild sends their dead letters itself.)"""
        planner = BatchPlanner(self.kind.event_type, self.kind.to_row, self.cutoff, 1)
        for tp, recs in groupby(passed, key=_TOPIC_PARTITION):
            planner.add(tp, list(recs))
        invalid = planner.plan().invalid
        if invalid:
            await self._dead_letter(invalid)
        # Advise Kafka that these are read (their dead letters are sent): outside tools show no lag
        # for them, and a restart does not read them again.
        last = {(r.topic, r.partition): r.offset for r in passed}  # offsets ascend within a partition
        await self._advisory_commit([(t, p, o, o + 1) for (t, p), o in last.items()])

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
        try:
            by_tp, passed = await self._in_order(records)
            if passed and self.dead_letter:
                await self._dead_letter_passed(passed)
        except Exception as exc:  # noqa: BLE001 - a bug (transient failures are retried inside)
            self._failed_for_bug(exc, len(records))
            self._rewind({tp: next(recs).offset for tp, recs in groupby(records, key=_TOPIC_PARTITION)})
            return
        if not by_tp:
            return
        planner = BatchPlanner(self.kind.event_type, self.kind.to_row, self.cutoff, len(self.lanes))
        try:
            for tp, (expected, recs) in by_tp.items():
                planner.start_partition(tp, expected, recs[-1].offset + 1)  # offsets ascend within a partition
                for start in range(0, len(recs), 500):
                    if start and self.scheduler.busy:
                        await asyncio.sleep(0)  # let the batches in flight send their next statements
                    planner.add(tp, recs[start:start + 500])
        except Exception as exc:  # noqa: BLE001 - a bug in converting events: loud, then paused
            self._failed_for_bug(exc, sum(len(r) for _, r in by_tp.values()))
            self._rewind({tp: expected for tp, (expected, _) in by_tp.items()})
            return
        plan = planner.plan()
        starts = {(t, p): f for part in plan.parts.values() for t, p, f, _ in part.positions}
        if self._forget((await self.scheduler.room()).failed_partitions):
            # A batch before failed (logged): this one continues it, so it is not applied
            # either; its partitions are read again from the stored positions.
            self._forget((await self.scheduler.settle()).failed_partitions)
            self._rewind(starts)
            return
        if plan.invalid:
            await self._dead_letter(plan.invalid)
        self._next.update(plan.next_offsets)  # the next batch continues after this one
        durable = bool(plan.invalid)
        self.scheduler.submit(
            {lane: (part.partitions, lambda lane=lane, part=part: self._store_part(self.lanes[lane], part, durable))
             for lane, part in plan.parts.items()},
            skipped=lambda lane: self._rewind({(t, p): f for t, p, f, _ in plan.parts[lane].positions}))

    async def flush(self) -> None:
        """Waits until the batches in flight are stored; raises the first error if one failed."""
        settled = await self.scheduler.settle()
        self._forget(settled.failed_partitions)
        if settled.error is not None:
            raise settled.error

    def _forget(self, partitions) -> bool:
        for tp in partitions:
            self._next.pop(tp, None)
        return bool(partitions)

    def _rewind(self, starts: dict[Partition, int]) -> None:
        """For records that were fetched but will not be stored: forget the partitions' positions
        and fetch again from where the records started. Waiting for the next fetch to notice the
        gap is not enough: at the end of a topic there is no next record, and the partition would
        stall. The stored positions are read when the records come back (`_in_order`), and a
        position still earlier than these (the database lost commits) seeks further back then."""
        consumer = self.consumer
        owned = consumer.assignment() if consumer is not None else set()
        for tp, offset in starts.items():
            self._next.pop(tp, None)
            self._sought.pop(tp, None)
            if TopicPartition(*tp) in owned:
                consumer.seek(TopicPartition(*tp), offset)

    async def _store_part(self, lane: Lane, part: LanePart, durable: bool) -> None:
        try:
            try:
                started = time.perf_counter()
                await self._apply(lane, part, durable)
                self.metrics.batch_store.observe(time.perf_counter() - started)
            except BaseException:
                self._rewind({(t, p): f for t, p, f, _ in part.positions})
                raise
        except st.PositionsMoved:
            log.warning("partitions %s: the stored positions are not where this batch starts (another "
                        "instance stored them, or the database lost its last commits); reading them again",
                        sorted(p for _, p in part.partitions))
            raise
        except Exception as exc:
            self._failed_for_bug(exc, len(part.rows))
            raise
        if self._last_bug is not None:
            log.warning("batches are stored again after: %s", self._last_bug)
            self._last_bug = None
        self._bug_backoff.reset()
        self.applied += len(part.rows)
        self.metrics.applied.inc(len(part.rows))
        await self._advisory_commit(part.positions)

    def _failed_for_bug(self, exc: BaseException, events: int) -> None:
        """A bug (see services.common.failures): the batch stops here, loudly (a traceback when the
        failure is new, a line when it repeats), and is read again from the stored positions after
        a pause that doubles while the failure repeats, up to a minute."""
        what = short(exc)
        if what != self._last_bug:
            log.error("a batch of %d events was not stored (%s); it will be read again from the stored "
                      "positions", events, what, exc_info=exc)
        else:
            log.error("a batch of %d events was not stored again (%s)", events, what)
        self._last_bug = what
        self._resume_at = asyncio.get_running_loop().time() + self._bug_backoff.delay()

    async def _apply(self, lane: Lane, part: LanePart, durable: bool = False) -> None:
        apply, group = self.kind.apply, self.group_id
        try:
            await lane.with_db(lambda store: apply(store, part.rows, group, part.positions, durable=durable))
            return
        except Exception as exc:
            if classify(exc) is not Failure.EVENT:
                raise
            log.error("a batch of %d events was rejected by the database (%s); isolating the event(s)",
                      len(part.rows), type(exc).__name__)
            why = unstorable(exc)
        # Some event can never be stored: find it by bisection, dead-letter it, store the
        # positions. Applying an event again is harmless (set semantics).
        rejected = await self._isolate(lane, part.rows, part.records, why)
        if rejected:
            await self._dead_letter(rejected, refused_by_database=True)
        await lane.with_db(lambda store: apply(store, [], group, part.positions, durable=durable or bool(rejected)))

    async def _isolate(self, lane: Lane, rows: list[tuple], recs: list[Any],
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
                rejected += await self._isolate(lane, part_rows, part_recs, unstorable(exc))
        return rejected

    async def _dead_letter(self, bad: list[tuple[Any, InvalidEvent]], refused_by_database: bool = False) -> None:
        """Sends the dead letters of invalid events; a rebuild counts them and sends only those the
        database refused: they pass validation, so a service reading past them could not tell."""
        if self.dead_letter or refused_by_database:
            sent = await self.dead_letters.send(bad)
            if self.dead_letter:  # counted as sent now: not those in the topic already (a batch read again)
                bad = sent
        self.dead_lettered += len(bad)
        for error_class, n in Counter(why.error_class for _, why in bad).items():
            self.metrics.dead_lettered(error_class, n)

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

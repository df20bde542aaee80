"""A projection service: consumes one topic in batches and applies them to PostgreSQL.

Positions live in the database, written in the batch's transaction; on partition assignment
the consumer seeks to them, so Kafka's committed offsets are advisory only. Invalid events go
to the dead-letter topic unchanged; transient failures (database or broker down) are retried
with backoff and commit nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import operator
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalOperation, KafkaError

from schemas import regions
from schemas.events import TYPE_MEETING_HELD, TYPE_VOTER_MOVED, TYPE_VOTER_REGISTERED
from schemas.parsing import InvalidEvent, parse_event_fields
from services.common.db import migrate
from services.common.settings import Settings
from services.projection import store as st

log = logging.getLogger("dphp.projection")
_TOPIC_PARTITION = operator.attrgetter("topic", "partition")

TRANSIENT_DB_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # A server that shuts down under an idle connection can leave asyncpg's protocol in a bad
    # state ("cannot switch to state ...; another operation is in progress"): reconnect.
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.TooManyConnectionsError,
    asyncpg.QueryCanceledError,
)


@dataclass(frozen=True)
class Kind:
    service: str
    event_type: str
    topic: Callable[[Settings], str]
    to_row: Callable[[Any, Any], tuple]
    apply: str  # name of the ProjectionStore method


KINDS = {
    "registrations": Kind("registrations", TYPE_VOTER_REGISTERED, lambda s: s.topic_registered,
                          st.registration_row, "apply_registrations"),
    "movements": Kind("movements", TYPE_VOTER_MOVED, lambda s: s.topic_moved,
                      lambda e, cutoff: st.movement_row(e), "apply_movements"),
    "meetings": Kind("meetings", TYPE_MEETING_HELD, lambda s: s.topic_meetings,
                     lambda e, cutoff: st.meeting_row(e), "apply_meetings"),
}


class _EarlierBatchFailed(Exception):
    """A lane's part of a batch was not stored because the lane's part of the batch before failed."""


class _Health:
    """Logs one line per change between healthy and failing, not one per retry."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failing_since: float | None = None

    def failed(self, exc: BaseException, retry_in: float) -> None:
        if self.failing_since is None:
            self.failing_since = asyncio.get_running_loop().time()
            log.warning("%s unavailable (%s: %s); retrying with backoff, nothing committed",
                        self.what, type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")

    def ok(self) -> None:
        if self.failing_since is not None:
            took = asyncio.get_running_loop().time() - self.failing_since
            log.warning("%s reachable again after %.1f s; resumed", self.what, took)
            self.failing_since = None


class _Lane:
    """One connection that applies batches, with its store; reconnects with backoff."""

    def __init__(self, settings: Settings, health: _Health) -> None:
        self.settings = settings
        self.health = health
        self._conn: asyncpg.Connection | None = None
        self._store: st.ProjectionStore | None = None

    async def store_ready(self) -> st.ProjectionStore:
        """A connected store; retries with backoff while the database is unreachable."""
        delay = 0.5
        while True:
            if self._store is not None and self._conn is not None and not self._conn.is_closed():
                return self._store
            try:
                conn = await asyncpg.connect(self.settings.database_url, timeout=10,
                                             server_settings=st.WRITER_SERVER_SETTINGS)
                store = st.ProjectionStore(conn, self.settings.db_schema)
                await store.prepare()
                await store.ensure_config(self.settings.voting_day, self.settings.tps_capacity)
                self._conn, self._store = conn, store
                self.health.ok()
                return store
            except TRANSIENT_DB_ERRORS as exc:
                self.health.failed(exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def with_db(self, action):
        delay = 0.5
        while True:
            store = await self.store_ready()
            try:
                result = await action(store)
                self.health.ok()
                return result
            except st.ProjectionSwitched:
                # `dphp replay` put a rebuilt projection in place: continue on it. Its positions
                # are at or past this service's, and applying an event again changes nothing.
                log.warning("the projection was replaced by a rebuilt one (dphp replay); continuing on it")
                self.drop_connection()
            except TRANSIENT_DB_ERRORS as exc:
                if not isinstance(exc, (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)):
                    self.drop_connection()
                self.health.failed(exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

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

    def __init__(self, settings: Settings, service: str, dead_letter: bool = True) -> None:
        self.settings = settings
        # False for a rebuild (`dphp replay`): the services dead-lettered invalid events already.
        self.dead_letter = dead_letter
        self.kind = KINDS[service]
        self.topic = self.kind.topic(settings)
        self.group_id = settings.group_id(service)
        self.cutoff = st.eligible_cutoff(settings.voting_day)
        # Returns the aiokafka consumer of the subscriber (set by the app's wiring).
        self.consumer_ref: Callable[[], Any] = lambda: None
        self._producer: AIOKafkaProducer | None = None
        self._db_health = _Health("PostgreSQL")
        self._lanes = [_Lane(settings, self._db_health) for _ in range(settings.db_lanes)]
        self._kafka_health = _Health("Kafka (dead-letter topic)")
        self._migrated = False
        self._next: dict[tuple[str, int], int] = {}  # next offset to apply, per partition
        self._sought: dict[tuple[str, int], int] = {}
        # The batches being stored, oldest first (see `submit`): each a task per lane, with the
        # partitions it advances. A lane's task waits for the lane's task of the batch before.
        self._inflight: deque[list[tuple[asyncio.Task, tuple[tuple[str, int], ...]]]] = deque()
        self._lane_tail: list[asyncio.Task | None] = [None] * len(self._lanes)
        self.batches_in_flight = settings.batches_in_flight
        self.applied = 0
        self.dead_lettered = 0

    # lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        regions.load()  # the region tree for validation (~0.3 s): now, not while the first batch waits
        await self._migrate()
        await self._lanes[0].store_ready()
        if not self.dead_letter:
            return
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap, enable_idempotence=True, acks="all",
            **self.settings.kafka_security_kwargs(),
        )
        await self._producer.start()

    async def stop(self) -> None:
        # The batches in flight, if any; not for long (the database may be down): if one is cut short,
        # its transaction is rolled back and the batch is applied again after a restart.
        try:
            await asyncio.wait_for(self.flush(), timeout=5)
        except (Exception, asyncio.TimeoutError):  # noqa: BLE001 - logged by the batch's task
            pass
        if self._producer is not None:
            await self._producer.stop()
        for lane in self._lanes:
            await lane.close()

    async def _migrate(self) -> None:
        """Applies the migrations (idempotent; one migrator at a time); retries with backoff."""
        delay = 0.5
        while not self._migrated:
            try:
                await migrate(self.settings)
                self._migrated = True
            except TRANSIENT_DB_ERRORS as exc:
                self._db_health.failed(exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

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

    async def _in_order(self, records: Sequence[Any]) -> dict[tuple[str, int], list[Any]]:
        """Per partition, the records that continue it from its stored position.

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
        kept: dict[tuple[str, int], list[Any]] = {}
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
            kept[tp] = recs
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
        by_tp = await self._in_order(records)
        if not by_tp:
            return
        lanes = len(self._lanes)
        # Per lane: the rows to store and their records (for isolating an event the database rejects).
        lane_rows: list[list[tuple]] = [[] for _ in range(lanes)]
        lane_recs: list[list[Any]] = [[] for _ in range(lanes)]
        bad: list[tuple[Any, InvalidEvent]] = []
        next_offsets: dict[tuple[str, int], int] = {}
        event_type, to_row, cutoff = self.kind.event_type, self.kind.to_row, self.cutoff
        for tp, recs in by_tp.items():
            next_offsets[tp] = recs[-1].offset + 1  # offsets ascend within a partition
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
                    add_rec(rec)
        if await self._settle(keep=self.batches_in_flight - 1) is not None:
            # A batch before failed (logged): this one continues it, so it is not applied
            # either; the next batch reads them again from the stored positions (a seek).
            await self._settle()
            for tp in next_offsets:
                self._next.pop(tp, None)
            return
        if bad:
            await self._dead_letter(bad)
        for tp, o in next_offsets.items():
            self._next[tp] = o  # the next batch continues after this one
        # Each lane stores its partitions' events and positions; a partition is always in the same lane.
        lane_offsets: dict[int, dict[tuple[str, int], int]] = {}
        for tp, o in next_offsets.items():
            lane_offsets.setdefault(tp[1] % lanes, {})[tp] = o
        batch = []
        for i, offsets in sorted(lane_offsets.items()):
            task = asyncio.create_task(self._store_batch(self._lanes[i], lane_rows[i], lane_recs[i], offsets,
                                                         after=self._lane_tail[i]))
            self._lane_tail[i] = task
            batch.append((task, tuple(offsets)))
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
                           next_offsets: dict[tuple[str, int], int], after: asyncio.Task | None) -> None:
        if after is not None:
            try:
                await after  # the lane's part of the batch before: stored first, on the same connection
            except Exception:  # noqa: BLE001 - logged by that task
                raise _EarlierBatchFailed() from None
        try:
            await self._apply(lane, rows, recs, [(t, p, o) for (t, p), o in next_offsets.items()])
        except Exception:
            log.exception("a batch of %d events was not stored; it will be read again from the stored positions",
                          len(rows))
            raise
        self.applied += len(rows)
        await self._advisory_commit(next_offsets)

    async def _apply(self, lane: _Lane, rows: list[tuple], recs: list[Any], positions: list[st.Position]) -> None:
        try:
            await lane.with_db(lambda store: getattr(store, self.kind.apply)(rows, self.group_id, positions))
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, asyncpg.ProgramLimitExceededError) as exc:
            # Some event can never be applied: find it by applying one at a time, then
            # dead-letter it and store the positions. Re-applying is harmless (set semantics).
            log.error("batch of %d rejected by the database (%s); isolating the event(s)", len(rows), type(exc).__name__)
            rejected = []
            for rec, row in zip(recs, rows):
                try:
                    await lane.with_db(lambda store: getattr(store, self.kind.apply)([row], self.group_id, []))
                except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError,
                        asyncpg.ProgramLimitExceededError) as one:
                    rejected.append((rec, InvalidEvent(f"database rejected the event: {type(one).__name__}",
                                                       "UnapplicableEvent")))
            if rejected:
                await self._dead_letter(rejected)
            await lane.with_db(lambda store: getattr(store, self.kind.apply)([], self.group_id, positions))

    async def _dead_letter(self, bad: list[tuple[Any, InvalidEvent]]) -> None:
        if not self.dead_letter:
            self.dead_lettered += len(bad)  # counted, not sent again
            return
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        delay = 0.5
        while True:
            try:
                futures = []
                for rec, exc in bad:
                    headers = [
                        ("dphp.original.topic", rec.topic.encode()),
                        ("dphp.original.partition", str(rec.partition).encode()),
                        ("dphp.original.offset", str(rec.offset).encode()),
                        ("dphp.consumer.group", self.group_id.encode()),
                        ("dphp.error.class", exc.error_class.encode()),
                        ("dphp.error.reason", exc.reason.encode()),
                        ("dphp.failed.at", now.encode()),
                    ]
                    futures.append(await self._producer.send(
                        self.settings.topic_dead_letter, value=rec.value, key=rec.key, headers=headers))
                await asyncio.gather(*futures)
                self._kafka_health.ok()
                break
            except KafkaError as exc:
                self._kafka_health.failed(exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        for rec, exc in bad:
            log.warning("dead-lettered %s/%d@%d: %s", rec.topic, rec.partition, rec.offset, exc.reason)
        self.dead_lettered += len(bad)

    async def _advisory_commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        # Kafka's committed offsets only serve outside tools; the database is the truth.
        if self.consumer is None:
            return
        owned = self.consumer.assignment()
        offsets = {TopicPartition(t, p): o for (t, p), o in next_offsets.items() if TopicPartition(t, p) in owned}
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except IllegalOperation:  # a consumer without a group (dphp replay): nothing to advise
            return
        except KafkaError as exc:
            log.debug("advisory commit skipped: %s", exc)

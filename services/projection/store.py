"""The thin SQL layer: applies batches of events to PostgreSQL, set-based, in one transaction.

The statements are in `sql.py`, the rows they take in `rows.py`. The consumed positions are
written in the batch's transaction, by compare-and-set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import asyncpg

from services.projection.rows import (  # noqa: F401 - the store's rows, importable from here
    MEETING_COLUMNS, MOVE_COLUMNS, REG_COLUMNS, eligibility_cutoff, meeting_row, movement_row, registration_row,
)
from services.projection.sql import TEMP_TABLES, literal, statements

Position = tuple[str, int, int, int]  # topic, partition, offset the batch starts from, next offset

#: SQLSTATE of `advance_positions` (migration 006) when a stored position is not where a batch starts.
POSITIONS_MOVED_SQLSTATE = "DP001"


def writer_server_settings(settings) -> dict[str, str]:
    """Session settings of a connection that applies batches (asyncpg `server_settings`).

    synchronous_commit (`DPHP_DB_SYNCHRONOUS_COMMIT`, on by default): a batch's commit returns once
    its WAL is on disk, so a crash of the server loses no stored batch, and no recap computed from
    one (a report or a recap published before the crash) is later contradicted. Its cost did not
    show in `make bench` (docs/benchmarks.md, sixth round): a lane waits for the flush while the
    service validates the next batch. With off, a crash may lose the last commits; no event is
    lost by that either: positions move only by compare-and-set from where the batch starts
    (`advance_positions`), and a service reads them again after any reconnect, so the lost
    batches are read and applied again.
    Timeouts: a frozen or cut-off instance must not hold the locks that other instances,
    services and `dphp replay` need. PostgreSQL ends a session idle in a transaction after
    `db_idle_in_transaction_timeout_s` (its transaction is rolled back, so its batch is redone
    from the stored positions by whoever owns the partitions then, and the compare-and-set
    refuses the frozen one's later writes); a lock waited for longer than `db_lock_timeout_s`
    or a statement longer than `db_statement_timeout_s` fails and the batch is retried with
    backoff. TCP keepalives find a client that vanished without closing its connection.
    work_mem and temp_buffers: a batch's sorts and stage tables stay in memory.
    standard_conforming_strings (the default) for the literals of the positions (`sql.literal`).
    """
    return {
        "synchronous_commit": "on" if settings.db_synchronous_commit else "off",
        "work_mem": "64MB", "temp_buffers": "128MB", "standard_conforming_strings": "on",
        "idle_in_transaction_session_timeout": f"{int(settings.db_idle_in_transaction_timeout_s * 1000)}",
        "lock_timeout": f"{int(settings.db_lock_timeout_s * 1000)}",
        "statement_timeout": f"{int(settings.db_statement_timeout_s * 1000)}",
        "tcp_keepalives_idle": "15", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3",
    }


async def connect_writer(settings, schema: str | None = None) -> asyncpg.Connection:
    """A connection that applies batches, with `writer_server_settings` and a client-side timeout
    (a little longer than the server's statement timeout: for a server that went silent)."""
    return await asyncpg.connect(settings.database_dsn, timeout=10, server_settings=writer_server_settings(settings),
                                 command_timeout=settings.db_statement_timeout_s + 30)


class PositionsMoved(Exception):
    """A batch was not stored: the stored position of one of its partitions is not where it starts.

    Another instance stored the partition (this one lost it in a rebalance), or PostgreSQL lost
    its last commits in a crash. The consumer reads the positions again and continues from them.
    """


class ProjectionSwitched(Exception):
    """The projection this connection writes to was replaced by `dphp replay`: reconnect."""


class ProjectionStore:
    """Applies batches to the projection in schema `schema`. One connection, one batch at a time."""

    #: A batch that lost a race for a new voter (another transaction inserted it first) is
    #: applied again, this many times at most.
    RACE_ATTEMPTS = 5

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self.conn = conn
        self.s = schema
        self._sql = statements(schema)
        self.races = 0  # races lost for a new voter (each batch applied again, here or by the caller)
        self.generation: int | None = None  # of the projection, read by ensure_config

    async def prepare(self) -> None:
        await self.conn.execute(TEMP_TABLES)

    async def ensure_config(self, voting_day: dt.date, tps_capacity: int) -> None:
        """Records the voting day and capacity; a changed voting day needs a rebuild."""
        row = await self.conn.fetchrow(f"SELECT voting_day FROM {self.s}.projection_config")
        if row is not None and row["voting_day"] != voting_day:
            has_data = await self.conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {self.s}.voter_event)")
            if has_data:
                raise ValueError(
                    f"the projection was built for voting day {row['voting_day']}, the settings say "
                    f"{voting_day}: rebuild it with `dphp replay`"
                )
        await self.conn.execute(
            f"""INSERT INTO {self.s}.projection_config (voting_day, tps_capacity) VALUES ($1, $2)
                ON CONFLICT (singleton) DO UPDATE SET voting_day = $1, tps_capacity = $2
                WHERE ({self.s}.projection_config.voting_day, {self.s}.projection_config.tps_capacity)
                      IS DISTINCT FROM ($1, $2)""",
            voting_day, tps_capacity,
        )
        self.generation = await self.conn.fetchval(f"SELECT generation FROM {self.s}.projection_config")

    async def _begin(self, durable: bool) -> None:
        await self._check_generation()
        if durable:
            await self.conn.execute("SET LOCAL synchronous_commit = on")

    async def _check_generation(self) -> None:
        # The first statement of every batch: waits while `dphp replay` switches over, and
        # notices when it has (the projection under this name is another one then).
        if self.generation is None:
            return
        if await self.conn.fetchval(self._sql["generation"]) != self.generation:
            raise ProjectionSwitched(self.s)

    async def positions(self, group_id: str, topic: str) -> dict[int, int]:
        rows = await self.conn.fetch(
            f"SELECT partition, next_offset FROM {self.s}.consumer_position WHERE group_id = $1 AND topic = $2",
            group_id, topic,
        )
        return {r["partition"]: r["next_offset"] for r in rows}

    # `durable`: the commit waits for its WAL on disk whatever `synchronous_commit` says; for a
    # batch whose invalid events were dead-lettered, so that a database crash cannot make the
    # service read and dead-letter them a second time.

    async def apply_registrations(self, rows: Sequence[tuple], group_id: str, positions: Iterable[Position],
                                  durable: bool = False) -> None:
        await self._apply_voter_events("registration", rows, REG_COLUMNS, group_id, positions, durable)

    async def apply_movements(self, rows: Sequence[tuple], group_id: str, positions: Iterable[Position],
                              durable: bool = False) -> None:
        await self._apply_voter_events("movement", rows, MOVE_COLUMNS, group_id, positions, durable)

    async def apply_meetings(self, rows: Sequence[tuple], group_id: str, positions: Iterable[Position],
                             durable: bool = False) -> None:
        try:
            async with self.conn.transaction():
                await self._begin(durable)
                if rows:
                    await self.conn.copy_records_to_table("stage_meeting", records=rows, columns=MEETING_COLUMNS)
                    await self.conn.execute(self._sql["meetings"] + self._positions_statement(group_id, sorted(positions)))
                else:
                    await self._store_positions(group_id, positions)
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == POSITIONS_MOVED_SQLSTATE:
                raise PositionsMoved(str(exc)) from None
            raise

    async def _apply_voter_events(
        self, kind: str, rows: Sequence[tuple], columns: tuple[str, ...], group_id: str,
        positions: Iterable[Position], durable: bool = False,
    ) -> None:
        sql = self._sql
        positions = sorted(positions)
        for attempt in range(1, self.RACE_ATTEMPTS + 1):
            try:
                async with self.conn.transaction():
                    await self._begin(durable)
                    if not rows:
                        await self._store_positions(group_id, positions)
                        return
                    await self.conn.copy_records_to_table(f"stage_{kind}", records=rows, columns=columns)
                    # The rest of the batch in one round trip (the simple query protocol runs the
                    # statements in order and stops at the first error): while the service's event
                    # loop validates the next batch, each round trip can wait for it.
                    await self.conn.execute(sql[f"apply_{kind}"] + self._positions_statement(group_id, positions))
                return
            except asyncpg.SerializationError:
                # Lost a race for a new voter (`insert_voters`): apply the batch again.
                self.races += 1
                if attempt == self.RACE_ATTEMPTS:
                    raise
            except asyncpg.PostgresError as exc:
                if exc.sqlstate == POSITIONS_MOVED_SQLSTATE:
                    raise PositionsMoved(str(exc)) from None
                raise

    def _positions_statement(self, group_id: str, positions: Sequence[Position]) -> str:
        """The positions' compare-and-set with its values as literals, to run with other statements."""
        if not positions:
            return ""
        topics = ", ".join(literal(t) for t, _, _, _ in positions)
        # format() parses only the template: braces or quotes in the names stay inside their literals.
        return ";" + self._sql["positions_values"].format(
            group=literal(group_id), topics=topics,
            partitions=", ".join(str(int(p)) for _, p, _, _ in positions),
            froms=", ".join(str(int(f)) for _, _, f, _ in positions),
            tos=", ".join(str(int(o)) for _, _, _, o in positions))

    async def _store_positions(self, group_id: str, positions: Iterable[Position]) -> None:
        positions = sorted(positions)
        if not positions:
            return
        await self.conn.execute(
            self._sql["positions"], self.s, group_id,
            [p[0] for p in positions], [p[1] for p in positions], [p[2] for p in positions], [p[3] for p in positions],
        )


async def open_writer_store(settings) -> ProjectionStore:
    """A store on a new writer connection, its session prepared and the configuration checked."""
    conn = await connect_writer(settings)
    try:
        store = ProjectionStore(conn, settings.db_schema)
        await store.prepare()
        await store.ensure_config(settings.voting_day, settings.tps_capacity)
    except BaseException:
        conn.terminate()
        raise
    return store

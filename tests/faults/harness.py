"""The fault campaign's machinery: its own broker and database, the services as supervised
processes, a publisher that survives broker restarts, the faults, and the measurements.

Everything here acts on processes this harness started, by PID: the campaign's own Kafka and
PostgreSQL (in a temporary state folder, on free ports) and its own service processes.
"""

from __future__ import annotations

import asyncio
import collections
import os
import pwd
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.events import CONTENT_TYPE
from services.common.settings import Settings
from services.devstack import kafka, postgres
from services.devstack.process import free_port, port_open
from tests.faults.eventset import CampaignEvents, Record
from tests.support.services import ROOT, ServiceProcess, dphp_json, settings_env

SERVICES = ("registrations", "movements", "meetings")
LEVELS = ("tps", "desa", "kecamatan", "kabupaten", "provinsi", "nasional")
# aiokafka's default session timeout (the services do not change it): a frozen member is
# expelled after it; the freeze lasts longer.
SESSION_TIMEOUT_S = 10
FREEZE_S = SESSION_TIMEOUT_S + 6


# --------------------------------------------------------------------------- the campaign's stack

@dataclass
class OwnStack:
    state: Path
    kafka: kafka.KafkaLayout
    pg: postgres.PostgresLayout

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka.port}"

    @property
    def database_url(self) -> str:
        return self.pg.url

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg.port}/{self.pg.database}"

    def start(self) -> None:
        kafka.start(self.kafka, log=lambda line: None)
        postgres.start(self.pg, log=lambda line: None)

    def stop(self) -> None:
        for stop in (lambda: postgres.stop(self.pg), lambda: kafka.stop(self.kafka)):
            try:
                stop()
            except Exception as exc:  # pragma: no cover - best effort at the end
                print(f"stopping the campaign's stack: {exc!r}", file=sys.stderr)


def own_stack(state: Path) -> OwnStack:
    settings = Settings()
    kl = kafka.KafkaLayout(state=state, jars_root=settings.kafka_jars_dir.expanduser(),
                           version=settings.kafka_version, host="127.0.0.1",
                           port=free_port(), controller_port=free_port())
    pl = postgres.PostgresLayout(state=state, host="127.0.0.1", port=free_port())
    stack = OwnStack(state, kl, pl)
    stack.start()
    return stack


def run_settings(stack: OwnStack, tps_capacity: int, **overrides) -> Settings:
    uid = uuid.uuid4().hex[:10]
    values = dict(
        kafka_bootstrap=stack.bootstrap, database_url=stack.database_url,
        topic_registered=f"f{uid}.voter-registered", topic_moved=f"f{uid}.voter-moved",
        topic_meetings=f"f{uid}.meeting-held", topic_dead_letter=f"f{uid}.dead-letter",
        topic_recap=f"f{uid}.recap", group_prefix=f"f{uid}", db_schema=f"f_{uid}",
        tps_capacity=tps_capacity,
        # The harder case: a crash of PostgreSQL may lose the last commits, which the services
        # must then apply again (the default, on, loses none).
        db_synchronous_commit=False,
    )
    values.update(overrides)
    return Settings(**values)


def topic_of(settings: Settings, kind: str) -> str:
    return {"registered": settings.topic_registered, "moved": settings.topic_moved,
            "meetings": settings.topic_meetings}[kind]


# --------------------------------------------------------------------------- services, supervised

class Fleet:
    """The projection services as processes. A supervisor restarts an instance that exits on its
    own (as systemd or Kubernetes would), and counts it; instances this harness kills, freezes or
    stops are not restarted by it."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings, self.log_dir = settings, log_dir
        self.procs: dict[str, list[ServiceProcess]] = {s: [] for s in SERVICES}
        self._n = 0
        self.supervisor_restarts = 0
        self.retired: list[ServiceProcess] = []
        self._task: asyncio.Task | None = None
        self._restarted: dict[str, float] = {}

    def start(self, service: str) -> ServiceProcess:
        self._n += 1
        p = ServiceProcess(self.settings, service, self.log_dir, instance=self._n).start()
        self.procs[service].append(p)
        return p

    def running(self, service: str | None = None) -> list[ServiceProcess]:
        names = [service] if service else SERVICES
        return [p for s in names for p in self.procs[s] if p.proc and p.proc.poll() is None]

    def retire(self, p: ServiceProcess) -> None:
        self.procs[p.service].remove(p)
        self.retired.append(p)

    def supervise_once(self) -> None:
        now = time.monotonic()
        for service in SERVICES:
            for p in list(self.procs[service]):
                if p.proc is not None and p.proc.poll() is not None:
                    if now - self._restarted.get(service, 0) < 2:
                        continue  # a restart policy's back-off
                    self._restarted[service] = now
                    self.retire(p)
                    self.supervisor_restarts += 1
                    self.start(service)

    async def supervise(self) -> None:
        while True:
            self.supervise_once()
            await asyncio.sleep(0.5)

    def __enter__(self) -> Fleet:
        self._task = asyncio.get_running_loop().create_task(self.supervise())
        return self

    def __exit__(self, *exc) -> None:
        if self._task:
            self._task.cancel()
        for p in [p for ps in self.procs.values() for p in ps]:
            if p.proc and p.proc.poll() is None:
                try:
                    os.kill(p.proc.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            p.stop()

    def error_lines(self) -> int:
        """ERROR lines the services logged: evidence that a fault reached them."""
        return sum(p.output().count(" ERROR ") for p in self.retired + [p for ps in self.procs.values() for p in ps])

    def outputs(self, tail: int = 1500) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.output()[-tail:]}"
                         for p in self.retired + [p for ps in self.procs.values() for p in ps])


# --------------------------------------------------------------------------- publishing

class Publisher:
    """Publishes records in chunks; a chunk that fails (the broker is down) is sent again by a new
    producer. Valid events sent twice are harmless (the projection is idempotent); invalid ones
    sent twice are two dead letters, which the dead-letter check derives from the topics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None
        self.resends = 0

    async def _producer(self) -> AIOKafkaProducer:
        if self.producer is None:
            p = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap, enable_idempotence=True,
                                 acks="all", linger_ms=5, request_timeout_ms=8000, max_batch_size=256 * 1024)
            await asyncio.wait_for(p.start(), 20)
            self.producer = p
        return self.producer

    async def _drop(self) -> None:
        p, self.producer = self.producer, None
        if p is not None:
            try:
                await asyncio.wait_for(p.stop(), 10)
            except Exception:
                pass

    async def _send_chunk(self, chunk: list[Record]) -> None:
        producer = await self._producer()
        headers = [("content-type", CONTENT_TYPE.encode())]
        futures = [await producer.send(topic_of(self.settings, kind), value=value, key=key, headers=headers)
                   for kind, key, value in chunk]
        await asyncio.gather(*futures)

    async def send(self, records: list[Record], rate: float | None = None, chunk: int = 2000) -> None:
        start = time.monotonic()
        i = 0
        while i < len(records):
            part = records[i:i + chunk]
            try:
                await asyncio.wait_for(self._send_chunk(part), 12)
            except Exception:
                self.resends += 1
                await self._drop()
                await asyncio.sleep(1.0)
                continue
            i += len(part)
            if rate:
                ahead = i / rate - (time.monotonic() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)

    async def close(self) -> None:
        await self._drop()


# --------------------------------------------------------------------------- faults

@dataclass
class Chaos:
    stack: OwnStack
    fleet: Fleet
    rnd: random.Random
    injected: list[str] = field(default_factory=list)
    last_fault_end: float = 0.0
    replay: subprocess.Popen | None = None
    replay_log: Path | None = None
    tablespace_dir: Path | None = None
    cluster: object | None = None  # services.devstack.cluster.KafkaCluster, for leader kills
    published: asyncio.Event = field(default_factory=asyncio.Event)
    last: bool = False  # the run's last fault is under way
    notes: list[str] = field(default_factory=list)

    async def run(self, name: str) -> None:
        t = time.monotonic()
        await getattr(self, name.replace("-", "_"))()
        if name != "replay-wait":  # waiting for the replay is no fault
            self.injected.append("replay" if name == "replay-start" else name)
        self.last_fault_end = time.monotonic()
        print(f"  fault {name} took {self.last_fault_end - t:.1f} s", flush=True)

    # PostgreSQL --------------------------------------------------------------------------------
    async def pg_sigquit(self) -> None:
        """An immediate stop (no checkpoint, no WAL flush of async commits), then a restart."""
        pid = self.stack.pg.process.pid()
        assert pid, "the campaign's PostgreSQL is not running"
        os.kill(pid, signal.SIGQUIT)
        await asyncio.to_thread(_wait_gone, pid, 30)
        await _until(lambda: not port_open(self.stack.pg.host, self.stack.pg.port), 30)
        await asyncio.sleep(self.rnd.uniform(0.5, 2.5))
        await asyncio.to_thread(postgres.start, self.stack.pg, lambda line: None)

    async def pg_backend_kill(self) -> None:
        """SIGKILL of one backend of the services (a writer if one is busy): PostgreSQL then ends
        every other backend and recovers from the WAL, as after an OOM kill."""
        for _ in range(10):
            pid = await self._writer_backend()
            assert pid, "no backend of the services found"
            try:
                os.kill(pid, signal.SIGKILL)
                break
            except ProcessLookupError:  # it ended meanwhile: another one
                continue
        await asyncio.sleep(0.5)
        await _until(lambda: postgres.answers(self.stack.pg), 60)

    async def _writer_backend(self) -> int | None:
        conn = await asyncpg.connect(self.stack.admin_url, server_settings={"application_name": "dphp-faults"})
        try:
            deadline = time.monotonic() + 30  # services still starting have no backend yet
            rows = []
            while time.monotonic() < deadline:
                rows = await conn.fetch(
                    "SELECT pid, state, query FROM pg_stat_activity WHERE datname = $1 AND usename = $2 "
                    "AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
                    "AND coalesce(application_name, '') <> 'dphp-faults'", self.stack.pg.database, self.stack.pg.user)
                busy = [r for r in rows if r["state"] in ("active", "idle in transaction")
                        and "pg_stat_activity" not in (r["query"] or "")]
                if busy:
                    return self.rnd.choice(busy)["pid"]
                if rows and time.monotonic() > deadline - 25:
                    return self.rnd.choice(rows)["pid"]
                await asyncio.sleep(0.05)
            return self.rnd.choice(rows)["pid"] if rows else None
        finally:
            await conn.close()

    # the broker --------------------------------------------------------------------------------
    async def broker_kill(self) -> None:
        pid = self.stack.kafka.process.pid()
        assert pid, "the campaign's broker is not running"
        os.kill(pid, signal.SIGKILL)
        await asyncio.to_thread(_wait_gone, pid, 30)
        await asyncio.sleep(self.rnd.uniform(0.5, 3.0))
        await asyncio.to_thread(kafka.start, self.stack.kafka, lambda line: None)

    async def leader_kill(self) -> None:
        """SIGKILL of the leader of a random input partition of the three-broker cluster, while
        records are published and consumed; the node restarts with its data and catches up."""
        cluster, settings = self.cluster, self.fleet.settings
        topic, partitions = self.rnd.choice([(settings.topic_registered, settings.partitions_registered),
                                             (settings.topic_moved, settings.partitions_moved)])
        partition = self.rnd.randrange(partitions)
        leader = await cluster.wait_for_leader(topic, partition)
        await asyncio.to_thread(cluster.kill, leader)
        await cluster.wait_for_leader(topic, partition, exclude={leader})
        await asyncio.sleep(self.rnd.uniform(1.0, 4.0))
        await cluster.start_async(leader)
        await cluster.wait_in_sync(topic, partition, timeout=120)

    # services ------------------------------------------------------------------------------------
    async def service_kill(self) -> None:
        victim = self.rnd.choice(self.fleet.running())
        self.fleet.retire(victim)
        victim.kill()
        await asyncio.sleep(self.rnd.uniform(0.3, 2.0))
        self.fleet.start(victim.service)

    async def service_freeze(self) -> None:
        """SIGSTOP past the group's session timeout while another instance runs, then SIGCONT."""
        candidates = [s for s in SERVICES if len(self.fleet.running(s)) >= 2]
        victim = self.rnd.choice(self.fleet.running(self.rnd.choice(candidates)))
        os.kill(victim.proc.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(FREEZE_S)
        finally:
            os.kill(victim.proc.pid, signal.SIGCONT)

    async def instance_add(self) -> None:
        self.fleet.start(self.rnd.choice(SERVICES))

    async def instance_remove(self) -> None:
        candidates = [s for s in SERVICES if len(self.fleet.running(s)) >= 2]
        if not candidates:
            candidates = list(SERVICES)
        victim = self.rnd.choice(self.fleet.running(self.rnd.choice(candidates)))
        self.fleet.retire(victim)
        await asyncio.to_thread(victim.stop)  # SIGTERM: a clean leave
        if not self.fleet.running(victim.service):
            self.fleet.start(victim.service)

    # replay -------------------------------------------------------------------------------------
    async def replay_start(self) -> None:
        self.replay_log = self.fleet.log_dir / "replay.log"
        with open(self.replay_log, "ab") as log:
            self.replay = subprocess.Popen([sys.executable, "-m", "services.cli", "replay", "--drop-old"],
                                           env=settings_env(self.fleet.settings), stdout=log,
                                           stderr=subprocess.STDOUT, cwd=ROOT)

    async def replay_wait(self) -> None:
        assert self.replay is not None
        rc = await asyncio.to_thread(self.replay.wait, 900)
        tail = self.replay_log.read_text(errors="replace").strip().splitlines()[-1:] if self.replay_log else []
        self.notes.append(f"replay exit {rc}" + (f" ({tail[0][:120]})" if rc and tail else ""))

    # the disk ------------------------------------------------------------------------------------
    async def disk_fill(self) -> None:
        """The projection's tablespace runs out of space for a while, then space is freed."""
        assert self.tablespace_dir is not None
        ballast = self.tablespace_dir.parent / "ballast"
        await asyncio.to_thread(_fill, ballast)
        try:
            await asyncio.sleep(self.rnd.uniform(6, 10))
            if self.last:  # the disk stays full until the live traffic is in: writes do fail
                await asyncio.wait_for(self.published.wait(), 600)
                await asyncio.sleep(2)
        finally:
            ballast.unlink(missing_ok=True)


def _fill(path: Path) -> None:
    """Writes zeros to `path` until the file system is full, to the last block."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 4096):
            block = bytes(size)
            while True:
                try:
                    os.write(fd, block)
                except OSError:
                    break
    finally:
        os.close(fd)


def _wait_gone(pid: int, timeout: float) -> None:
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        pass


async def _until(cond, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(cond):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


# --------------------------------------------------------------------------- the disk scenario's tablespace

class SmallDisk:
    """A tmpfs mounted as a tablespace that the run's schema uses by default."""

    def __init__(self, stack: OwnStack, size_mb: int) -> None:
        self.stack, self.size_mb = stack, size_mb
        # Not below pytest's folders (mode 700): the server user must reach the tablespace.
        self.mount = Path(tempfile.mkdtemp(prefix="dphp-faults-disk-"))
        self.name = f"faults_{uuid.uuid4().hex[:6]}"

    @property
    def location(self) -> Path:
        return self.mount / "ts"

    async def __aenter__(self) -> SmallDisk:
        self.mount.chmod(0o755)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m", "tmpfs", str(self.mount)], check=True)
        self.location.mkdir()
        entry = pwd.getpwnam("postgres")
        os.chown(self.location, entry.pw_uid, entry.pw_gid)
        conn = await asyncpg.connect(self.stack.admin_url)
        try:
            await conn.execute(f"CREATE TABLESPACE {self.name} LOCATION '{self.location}'")
            await conn.execute(f"GRANT CREATE ON TABLESPACE {self.name} TO {self.stack.pg.user}")
            await conn.execute(f"ALTER DATABASE {self.stack.pg.database} SET default_tablespace = {self.name}")
        finally:
            await conn.close()
        return self

    async def release(self, schema: str) -> None:
        conn = await asyncpg.connect(self.stack.admin_url)
        try:
            await conn.execute(f"ALTER DATABASE {self.stack.pg.database} RESET default_tablespace")
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await conn.execute(f"DROP TABLESPACE IF EXISTS {self.name}")
        finally:
            await conn.close()
        subprocess.run(["umount", "-l", str(self.mount)], check=False)
        try:
            self.mount.rmdir()
        except OSError:
            pass

    async def __aexit__(self, *exc) -> None:
        pass


# --------------------------------------------------------------------------- measuring

async def wait_converged(settings: Settings, fleet: Fleet, timeout: float) -> tuple[bool, dict | None]:
    from services.cli.read_cmd import gather_status

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        fleet.supervise_once()
        try:
            last = await asyncio.wait_for(gather_status(settings), 30)
            if last["converged"]:
                return True, last
        except Exception as exc:
            last = {"error": repr(exc)}
        await asyncio.sleep(0.5)
    return False, last


async def read_to_end(settings: Settings, topic: str) -> list:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                group_id=None, max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        for _ in range(50):
            if parts:
                break
            await consumer._client.force_metadata_update()
            consumer._client.add_topic(topic)
            await asyncio.sleep(0.1)
            parts = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(parts or ())]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records = []
        while True:
            behind = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
            if not behind:
                break
            batch = await consumer.getmany(timeout_ms=1000, max_records=20000)
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()


@dataclass
class Outcome:
    scenario: str
    repetition: int
    events: int
    faults: list[str]
    converged: bool
    recover_s: float | None
    lost: int = 0
    double: int = 0
    cells_off: int = 0
    meetings_off: int = 0
    dlq_missing: int = 0
    dlq_extra: int = 0
    expected_dead: int = 0
    supervisor_restarts: int = 0
    service_errors: int = 0
    publisher_resends: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.converged and self.lost == 0 and self.double == 0 and self.cells_off == 0
                and self.meetings_off == 0 and self.dlq_missing == 0 and self.dlq_extra == 0)

    def problems(self) -> str:
        parts = []
        if not self.converged:
            parts.append("not converged")
        for name in ("lost", "double", "cells_off", "meetings_off", "dlq_missing", "dlq_extra"):
            if getattr(self, name):
                parts.append(f"{name}={getattr(self, name)}")
        return ", ".join(parts)


def compare_projection(settings: Settings, ce: CampaignEvents, outcome: Outcome) -> None:
    """lost / double: over every TPS, the registered voters placed there (`total` + `under_age`)
    that the fold has and the projection does not (sum of max(fold - projection, 0)), and the
    other way round (sum of max(projection - fold, 0)). cells_off: (region, field) cells differing
    at any level, every recap field (disability_by_type as one). meetings_off: meetings whose
    normalised view (declared, computed, discrepancy, attendees...) differs or is missing."""
    from services.projection.recap import comparable_meetings, comparable_report

    got: dict = {}
    for level in LEVELS:
        got.update(comparable_report(dphp_json(settings, "report", "--region", "ID", "--level", level)))
    want = ce.expected_report
    zero = None
    for key in set(want) | set(got):
        w, g = want.get(key), got.get(key)
        if zero is None:
            zero = {k: (0 if not isinstance(v, dict) else {kk: 0 for kk in v}) for k, v in (w or g).items()}
        w, g = w or zero, g or zero
        outcome.cells_off += sum(1 for f in w if w[f] != g[f])
        if key[0] == "tps":
            fw, fg = w["total"] + w["under_age"], g["total"] + g["under_age"]
            outcome.lost += max(fw - fg, 0)
            outcome.double += max(fg - fw, 0)
    meetings = comparable_meetings(dphp_json(settings, "meetings"))
    outcome.meetings_off = sum(1 for m in set(meetings) | set(ce.expected_meetings)
                               if meetings.get(m) != ce.expected_meetings.get(m))


DEAD_LETTER_GRACE_S = 30


async def compare_dead_letters(settings: Settings, ce: CampaignEvents, outcome: Outcome) -> None:
    """The dead-letter topic must hold exactly the invalid records the input topics hold: one dead
    letter per (original topic, partition, offset) of an invalid record, no other, none twice."""
    invalid = ce.invalid_values
    expected = collections.Counter()
    for topic in (settings.topic_registered, settings.topic_moved, settings.topic_meetings):
        for r in await read_to_end(settings, topic):
            if r.value in invalid:
                expected[(topic, r.partition, r.offset)] += 1
    # A service sends the dead letters of the records a rebuild applied when it next reads past them
    # (right after the switch-over, or after its restart): the projection can converge a moment
    # earlier. Missing ones are waited for, briefly; extra ones are not.
    deadline = time.monotonic() + DEAD_LETTER_GRACE_S
    while True:
        actual = collections.Counter()
        for r in await read_to_end(settings, settings.topic_dead_letter):
            h = {k: v.decode(errors="replace") for k, v in r.headers}
            actual[(h.get("dphp.original.topic"), int(h.get("dphp.original.partition", -1)),
                    int(h.get("dphp.original.offset", -1)))] += 1
        if not (expected - actual) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    outcome.expected_dead = sum(expected.values())
    outcome.dlq_missing = sum((expected - actual).values())
    outcome.dlq_extra = sum((actual - expected).values())
    foreign = sum(n for key, n in actual.items() if key not in expected)
    if outcome.dlq_extra:
        outcome.notes.append(f"extra dead letters: {outcome.dlq_extra - foreign} repeat an invalid record's dead letter, "
                             f"{foreign} are of no invalid record")


# --------------------------------------------------------------------------- the table

HEADER = ("| scenario | rep | events | faults injected | lost | double-counted | cells off | meetings off "
          "| dead letters (expected / missing / extra) | converged | s to recover | notes |")


def table(outcomes: list[Outcome]) -> str:
    lines = [HEADER, "|" + "---|" * 12]
    for o in outcomes:
        faults = ", ".join(f"{n}×{c}" if c > 1 else n for n, c in collections.Counter(o.faults).items())
        notes = list(o.notes)
        if o.service_errors:
            notes.append(f"{o.service_errors} ERROR lines in the services' logs")
        if o.supervisor_restarts:
            notes.append(f"{o.supervisor_restarts} service exits restarted by the supervisor")
        if o.publisher_resends:
            notes.append(f"{o.publisher_resends} publish chunks resent")
        lines.append(
            f"| {o.scenario} | {o.repetition} | {o.events:,} | {faults} ({len(o.faults)}) | {o.lost} | {o.double} "
            f"| {o.cells_off} | {o.meetings_off} | {o.expected_dead} / {o.dlq_missing} / {o.dlq_extra} "
            f"| {'yes' if o.converged else 'NO'} | {o.recover_s:.1f} | {'; '.join(notes)} |"
            if o.recover_s is not None else
            f"| {o.scenario} | {o.repetition} | {o.events:,} | {faults} ({len(o.faults)}) | {o.lost} | {o.double} "
            f"| {o.cells_off} | {o.meetings_off} | {o.expected_dead} / {o.dlq_missing} / {o.dlq_extra} "
            f"| {'yes' if o.converged else 'NO'} | - | {'; '.join(notes)} |")
    return "\n".join(lines)

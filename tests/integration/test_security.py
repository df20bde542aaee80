"""The secure stack (`dphp dev up --secure`) against itself: the whole flow with each principal's
own credentials, and everything the ACLs, the roles and the password rules refuse.

The session starts its own secure stack, as a user does (`dphp dev up --secure`), in a temporary
state folder on free ports, and stops it with `dphp dev down`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
from aiokafka.errors import (ClusterAuthorizationFailedError, GroupAuthorizationFailedError, KafkaError,
                             TopicAuthorizationFailedError)

from schemas.parsing import parse_event
from services.common.kafka import kafka_admin, kafka_consumer, kafka_producer
from services.common.settings import Settings
from services.devstack import access, secure
from services.devstack.process import free_port
from services.projection.fold import Projection

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

DPHP = str(Path(sys.executable).with_name("dphp"))


class SecureStack:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DPHP_")}
        self.env.update(DPHP_STATE_DIR=str(state), DPHP_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",
                        DPHP_DATABASE_URL=f"postgresql://dphp@127.0.0.1:{free_port()}/dphp",
                        DPHP_SECURE_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",
                        DPHP_SECURE_DATABASE_PORT=str(free_port()))
        self.settings = Settings(state_dir=state, secure_kafka_bootstrap=self.env["DPHP_SECURE_KAFKA_BOOTSTRAP"],
                                 secure_database_port=int(self.env["DPHP_SECURE_DATABASE_PORT"]))
        self.layout = secure.layout_of(self.settings)
        self.outputs: list[str] = []

    def dphp(self, *args: str, principal: str | None = None, check: bool = True, timeout: float = 300):
        env = dict(self.env)
        if principal:  # as `env $(cat .dphp/secrets/<principal>.env) dphp ...`
            for line in self.layout.env_file(principal).read_text().splitlines():
                key, _, value = line.partition("=")
                env[key] = value
        result = subprocess.run([DPHP, *args], env=env, capture_output=True, text=True, timeout=timeout)
        self.outputs.append(result.stdout + result.stderr)
        if check:
            assert result.returncode == 0, f"dphp {' '.join(args)}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
        return result

    def as_(self, principal: str) -> Settings:
        return secure.principal_settings(self.settings, principal)

    def passwords(self) -> list[str]:
        store = json.loads(self.layout.store.read_text())
        return [*store["kafka"].values(), *store["postgres"].values(), store["keystore"]]

    def dsn(self, role: str, password: str | None = None) -> str:
        store = json.loads(self.layout.store.read_text())
        pw = store["postgres"][role] if password is None else password
        return (f"postgresql://{role}:{pw}@{self.layout.host}:{self.layout.pg_port}/dphp"
                f"?sslmode=verify-full&sslrootcert={self.layout.ca_file}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> SecureStack:
    s = SecureStack(tmp_path_factory.mktemp("secure-stack"))
    try:
        s.dphp("dev", "up", "--secure")
        yield s
    finally:
        s.dphp("dev", "down", check=False)


@pytest.fixture(scope="module")
def published(stack: SecureStack, tmp_path_factory) -> Path:
    """A Blora sample published with the publisher's credentials; the services converged."""
    sample = tmp_path_factory.mktemp("secure-sample") / "sample.jsonl"
    stack.dphp("sample", "--region", "33.16", "--voters", "1500", "--seed", "7", "--out", str(sample))
    result = stack.dphp("publish", str(sample), "--format", "json", principal="dphp-publisher")
    assert json.loads(result.stdout)["rejected"] == []
    deadline = time.monotonic() + 180
    while True:
        status = json.loads(stack.dphp("status", "--format", "json", principal="dphp-operator").stdout)
        if status["converged"] and status["recaps_published_at"] and status["newest_event_time"]:
            break
        assert time.monotonic() < deadline, f"no convergence on the secure stack: {status}"
        time.sleep(1)
    return sample


def _refused(coro_factory) -> BaseException:
    async def run():
        try:
            await coro_factory()
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            return exc
        return None

    exc = asyncio.run(run())
    assert exc is not None, "the broker accepted it"
    return exc


def test_the_demo_flow_converges_to_the_fold_with_each_principals_credentials(stack, published) -> None:
    projection = Projection()
    with open(published, "rb") as f:
        projection.apply(parse_event(line) for line in f)
    expected = {code: row for (level, code), row in projection.recap().items()
                if level == "kecamatan" and code.startswith("33.16")}
    report = json.loads(stack.dphp("report", "--region", "33.16", "--format", "json", principal="dphp-operator").stdout)
    assert {r["region_code"]: (r["male"], r["female"], r["total"], r["tps_count"]) for r in report} == {
        code: (row.male, row.female, row.total, row.tps_count) for code, row in expected.items()}
    # the operator's other commands
    stack.dphp("meetings", "--region", "33.16", "--format", "json", principal="dphp-operator")
    assert json.loads(stack.dphp("dlq", "list", "--format", "json", principal="dphp-operator").stdout) == []

    # the subscriber reads the recap topic the report service published
    kabupaten = projection.recap()[("kabupaten", "33.16")]

    async def read_recaps() -> dict:
        consumer = kafka_consumer(stack.as_("dphp-subscriber"), "dphp.recap", group_id="dphp-subscriber.test",
                                  auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        recaps: dict = {}
        try:
            deadline = time.monotonic() + 60
            while "33.16" not in recaps and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    recaps.update({r.key.decode(): json.loads(r.value) for r in records})
        finally:
            await consumer.stop()
        return recaps

    recaps = asyncio.run(read_recaps())
    assert recaps["33.16"]["total"] == kabupaten.total and recaps["33.16"]["male"] == kabupaten.male


def test_an_unauthenticated_client_and_a_wrong_password_are_refused(stack) -> None:
    operator = stack.as_("dphp-operator")
    tls_only = operator.model_copy(update={"kafka_sasl_mechanism": None, "kafka_sasl_username": None,
                                           "kafka_sasl_password": None})
    plaintext = tls_only.model_copy(update={"kafka_tls_ca_file": None})
    from pydantic import SecretStr

    wrong = operator.model_copy(update={"kafka_sasl_password": SecretStr("not-the-password")})
    async def probe(settings):
        admin = kafka_admin(settings, request_timeout_ms=5000)
        try:
            await asyncio.wait_for(admin.start(), 15)
            return await admin.list_topics()
        finally:
            await admin.close()

    assert "dphp.recap" in asyncio.run(probe(operator))  # the same probe with the right credentials
    for settings in (tls_only, plaintext, wrong):
        _refused(lambda settings=settings: probe(settings))


def _read(settings: Settings, topic: str, group: str | None = None):
    async def attempt():
        consumer = kafka_consumer(settings, topic, group_id=group, auto_offset_reset="earliest",
                                  enable_auto_commit=False, request_timeout_ms=10000)
        try:
            await consumer.start()
            await consumer.getmany(timeout_ms=3000)
            await consumer.getmany(timeout_ms=3000)
        finally:
            await consumer.stop()
    return attempt


def _write(settings: Settings, topic: str):
    async def attempt():
        producer = kafka_producer(settings, request_timeout_ms=10000)
        try:
            await producer.start()
            await asyncio.wait_for(producer.send_and_wait(topic, b"{}", key=b"k"), 20)
        finally:
            await producer.stop()
    return attempt


def test_the_acls_refuse_what_a_principal_is_not_for(stack) -> None:
    s = stack.settings
    # (an idempotent producer of a principal that may write nowhere is refused its producer id)
    denied = (TopicAuthorizationFailedError, GroupAuthorizationFailedError, ClusterAuthorizationFailedError)
    attempts = {
        "the publisher reads an input topic": _read(stack.as_("dphp-publisher"), s.topic_registered),
        "the subscriber writes the recap topic": _write(stack.as_("dphp-subscriber"), s.topic_recap),
        "the subscriber writes an input topic": _write(stack.as_("dphp-subscriber"), s.topic_registered),
        "a service reads another service's topic": _read(stack.as_("dphp-registrations"), s.topic_moved),
        "a service uses another service's group": _read(stack.as_("dphp-movements"), s.topic_moved,
                                                          group=s.group_id("registrations")),
        "the report service publishes a voter": _write(stack.as_("dphp-report"), s.topic_registered),
    }
    for what, attempt in attempts.items():
        exc = _refused(attempt)
        assert isinstance(exc, denied), f"{what}: {exc!r}"
    # and what they are for works: the subscriber reads the recap topic, the publisher writes
    asyncio.run(_read(stack.as_("dphp-subscriber"), s.topic_recap, group="dphp-subscriber.acl-test")())
    asyncio.run(_write(stack.as_("dphp-publisher"), s.topic_meetings)())


def test_postgres_refuses_connections_without_the_right_password(stack) -> None:
    async def attempt(**kwargs):
        conn = await asyncpg.connect(host=stack.layout.host, port=stack.layout.pg_port, database="dphp",
                                     timeout=10, **kwargs)
        await conn.close()

    for kwargs in ({"user": "postgres"}, {"user": access.OWNER}, {"user": "dphp_reader"},
                   {"user": access.OWNER, "password": "wrong"}):
        with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError,
                            asyncpg.ClientConfigurationError)):
            asyncio.run(attempt(**kwargs))
    hba = (stack.layout.root / "postgres" / "data" / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line.strip() and not line.startswith("#")]
    assert rules and all(rule[-1] == "scram-sha-256" and rule[0] in ("hostssl", "local") for rule in rules), rules

    # the right password without TLS is refused too: every TCP rule is hostssl
    store = json.loads(stack.layout.store.read_text())
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
        asyncio.run(attempt(user=access.OWNER, password=store["postgres"][access.OWNER], ssl=False))
    asyncio.run(attempt(user=access.OWNER, password=store["postgres"][access.OWNER], ssl="require"))


def test_every_database_session_of_the_services_is_encrypted(stack, published) -> None:
    async def sessions():
        conn = await asyncpg.connect(stack.dsn("postgres"), timeout=10)
        try:
            return await conn.fetch("SELECT a.usename, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
                                    "WHERE a.backend_type = 'client backend'")
        finally:
            await conn.close()

    rows = asyncio.run(sessions())
    users = {r["usename"] for r in rows}
    assert {"dphp_registrations", "dphp_movements", "dphp_meetings", "dphp_report"} <= users, users
    assert all(r["ssl"] for r in rows), rows


def test_dphp_reader_cannot_select_personal_data_and_services_are_no_superusers(stack, published) -> None:
    async def check() -> None:
        reader = await asyncpg.connect(stack.dsn("dphp_reader"), timeout=10)
        try:
            assert await reader.fetchval("SELECT count(*) FROM dphp.recap") > 0
            tables = {r["tablename"] for r in await reader.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'dphp'")}
            assert {"voter", "voter_event"} <= tables
            personal = tables & {"registration", "movement", "voter", "voter_event"}
            for table in sorted(personal):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await reader.fetch(f"SELECT * FROM dphp.{table} LIMIT 1")
            readable = {t for t in tables
                        if await reader.fetchval("SELECT has_table_privilege($1, 'SELECT')", f"dphp.{t}")}
            assert not readable & personal, readable
        finally:
            await reader.close()
        report = await asyncpg.connect(stack.dsn("dphp_report"), timeout=10)
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await report.fetch("SELECT nik FROM dphp.voter_event LIMIT 1")
        finally:
            await report.close()
        for role, table in (("dphp_meetings", "voter"), ("dphp_registrations", "meeting"),
                            ("dphp_movements", "recap_published")):
            conn = await asyncpg.connect(stack.dsn(role), timeout=10)
            try:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetch(f"SELECT * FROM dphp.{table} LIMIT 1")
            finally:
                await conn.close()
        owner = await asyncpg.connect(stack.dsn(access.OWNER), timeout=10)
        try:
            supers = {r["rolname"] for r in await owner.fetch("SELECT rolname FROM pg_roles WHERE rolsuper")}
            assert supers == {"postgres"}
        finally:
            await owner.close()

    asyncio.run(check())


def test_a_replay_gives_each_service_the_same_privileges_and_no_default_ones(stack, published) -> None:
    stack.dphp("replay", "--drop-old", principal="dphp-operator")

    async def check() -> None:
        owner = await asyncpg.connect(stack.dsn(access.OWNER), timeout=10)
        try:
            may = lambda role, table, what: owner.fetchval(  # noqa: E731
                "SELECT has_table_privilege($1, $2, $3)", role, f"dphp.{table}", what)
            assert await may("dphp_registrations", "voter", "INSERT")
            assert await may("dphp_meetings", "meeting", "INSERT")
            assert not await may("dphp_meetings", "voter", "SELECT")
            assert not await may("dphp_registrations", "meeting", "SELECT")
            assert not await may("dphp_movements", "recap_published", "SELECT")
            assert await owner.fetchval("SELECT count(*) FROM pg_default_acl d JOIN pg_roles r ON r.oid = d.defaclrole "
                                        "WHERE r.rolname = $1", access.OWNER) == 0
            assert not await owner.fetchval("SELECT has_database_privilege('dphp_reader', 'dphp', 'TEMPORARY')")
            assert await owner.fetchval("SELECT has_database_privilege('dphp_reader', 'dphp', 'CONNECT')")
        finally:
            await owner.close()

    asyncio.run(check())
    status = json.loads(stack.dphp("status", "--format", "json", principal="dphp-operator").stdout)
    assert status["converged"], status


def test_no_password_in_any_output_or_log_file(stack, published) -> None:
    stack.dphp("dev", "status", "--secure")
    stack.dphp("dev", "status", "--format", "json")
    passwords = stack.passwords()
    assert len(passwords) >= 10 and all(len(p) >= 24 for p in passwords)
    for output in stack.outputs:
        for pw in passwords:
            assert pw not in output
    assert any("dphp-operator.env" in out for out in stack.outputs)  # where the credentials are, said
    logs = [p for p in stack.state.rglob("*.log")]
    assert len(logs) >= 6
    for log in logs:
        text = log.read_text(errors="replace")
        for pw in passwords:
            assert pw not in text, f"a password in {log}"
    # the services' roles and principals are enough for everything they do (their lag monitors too);
    # FastStream's own attempt to create its topic at start is the one refusal they meet
    for log in (stack.layout.root / "logs").glob("*-0.log"):
        for line in log.read_text(errors="replace").splitlines():
            assert "permission denied" not in line and "InsufficientPrivilege" not in line, line
            assert "AuthorizationFailed" not in line or "Failed to create topic" in line, line
    for path in stack.layout.secrets.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    # the SCRAM users' file of the storage formatter lived only while it formatted
    assert not (stack.layout.secrets / "kafka-format.args").exists()
    assert (stack.layout.root / "kafka" / "server.properties").stat().st_mode & 0o777 == 0o600

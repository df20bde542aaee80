"""Who may do what on the secure local stack: Kafka principals and their ACLs, PostgreSQL roles and
their privileges (README "Security"; the tables' grants are services/operations/grants.py).
PostgreSQL is given verifiers, never a password; the broker's storage formatter salted passwords in
a file it reads itself; none is on a command line or in an SQL statement."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from services.common.settings import Settings
from services.devstack.private import write_private
from services.devstack.process import StackError
from services.operations import grants
from services.operations.grants import OWNER, PROJECTION_SERVICES, READER, SERVICE_ROLES, WRITERS

if TYPE_CHECKING:
    from services.devstack.kafka import KafkaLayout
    from services.devstack.secure import SecureLayout

ADMIN = "dphp-admin"  # the broker's own SASL principal (inter-broker) and the stack's set-up: super user
BROKER_CN = "dphp-broker"  # the broker certificate's name: its principal on the controller listener
PRINCIPALS = (*(f"dphp-{s}" for s in PROJECTION_SERVICES), "dphp-report", "dphp-publisher", "dphp-subscriber",
              "dphp-operator")
SUBSCRIBER_GROUP_PREFIX = "dphp-subscriber"  # consumer groups the subscriber may use

DB_LOGIN_ROLES = (*SERVICE_ROLES, READER)
DB_ROLE_OF = {**{f"dphp-{s}": f"dphp_{s}" for s in PROJECTION_SERVICES}, "dphp-report": "dphp_report",
              "dphp-operator": OWNER}

KAFKA_SCRAM_ITERATIONS = 4096
PG_SCRAM_ITERATIONS = 4096


# --- Kafka ---------------------------------------------------------------------------------------

def scram_salted(password: str, iterations: int = KAFKA_SCRAM_ITERATIONS) -> tuple[str, str, int]:
    """SCRAM-SHA-512 (RFC 5802) salt and salted password, base64, for the storage formatter."""
    salt = os.urandom(24)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return base64.b64encode(salt).decode(), base64.b64encode(salted).decode(), iterations


def acl_specs(s: Settings) -> list[tuple[tuple[str, ...], list[str], tuple[str, ...]]]:
    """(principals, resource arguments of AclCommand, operations): everything that is allowed."""
    inputs = {"registrations": s.topic_registered, "movements": s.topic_moved, "meetings": s.topic_meetings}
    services = tuple(f"dphp-{n}" for n in PROJECTION_SERVICES)
    every_topic = [s.topic_registered, s.topic_moved, s.topic_meetings, s.topic_dead_letter, s.topic_recap]
    specs = [
        # each projection service reads its own topic in its own group only
        *(((f"dphp-{n}",), ["--topic", inputs[n], "--group", s.group_id(n)], ("Read",)) for n in PROJECTION_SERVICES),
        # and writes (and checks) dead letters
        (services, ["--topic", s.topic_dead_letter], ("Read", "Write")),
        (("dphp-report",), ["--topic", s.topic_recap], ("Write",)),
        # its lag monitor exports the three groups' lag: the input topics' end offsets
        (("dphp-report",), [a for t in inputs.values() for a in ("--topic", t)], ("Describe",)),
        # upstream publishers and the operator (publish, dlq retry) write the three input topics
        (("dphp-publisher", "dphp-operator"), [a for t in inputs.values() for a in ("--topic", t)], ("Write",)),
        (("dphp-subscriber",), ["--topic", s.topic_recap], ("Read",)),
        (("dphp-subscriber",), ["--resource-pattern-type", "prefixed", "--group", SUBSCRIBER_GROUP_PREFIX], ("Read",)),
        # the operator: status (group positions, end offsets), dlq list, replay; the demo creates topics
        (("dphp-operator",), [*(a for t in every_topic for a in ("--topic", t)),
                              *(a for n in PROJECTION_SERVICES for a in ("--group", s.group_id(n)))], ("Read",)),
        (("dphp-operator",), ["--cluster"], ("Create", "Describe")),
        # replay: the dead letters of events the database refuses (no service can tell them afterwards)
        (("dphp-operator",), ["--topic", s.topic_dead_letter], ("Write",)),
        # `make bench` as the operator: its own topics and groups, named bench<run>.*
        (("dphp-operator",), ["--resource-pattern-type", "prefixed", "--topic", "bench", "--group", "bench"], ("All",)),
    ]
    return specs


def admin_client_properties(admin_password: str, ca_file) -> str:
    """A Kafka tool's client configuration as the admin (AclCommand, ConfigCommand)."""
    return ("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{ADMIN}" password="{admin_password}";\n'
            f"ssl.truststore.type=PEM\nssl.truststore.location={ca_file}\n")


def apply_acls(kl: KafkaLayout, lay: SecureLayout, admin_password: str, settings: Settings) -> None:
    """Adds the ACLs with Kafka's AclCommand as the admin (idempotent), a few JVMs at a time."""
    config = lay.secrets / "admin-client.properties"
    write_private(config, admin_client_properties(admin_password, lay.ca_file))

    def add(spec) -> None:
        principals, resources, operations = spec
        cmd = ["java", "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp", str(kl.jars / "*"),
               "org.apache.kafka.tools.AclCommand", "--bootstrap-server", lay.bootstrap,
               "--command-config", str(config), "--add", *resources,
               *(a for p in principals for a in ("--allow-principal", f"User:{p}")),
               *(a for op in operations for a in ("--operation", op))]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            lines = (result.stdout + result.stderr).strip().splitlines()
            raise StackError(f"adding Kafka ACLs for {', '.join(principals)} failed: {lines[-1] if lines else result.returncode}")

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(add, acl_specs(settings)))


# --- PostgreSQL ----------------------------------------------------------------------------------

def pg_scram_verifier(password: str, iterations: int = PG_SCRAM_ITERATIONS) -> str:
    """PostgreSQL's stored form of a scram-sha-256 password (what `ALTER ROLE ... PASSWORD` takes
    instead of the password itself)."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


async def make_roles(host: str, port: int, database: str, passwords: dict[str, str], ssl=None,
                     reload: bool = False) -> None:
    """As `postgres` (over TLS with `ssl`): the owner, the services' roles (projection services in
    one group role) and the reader, each with its password (set again each time: idempotent), and
    the database; `reload`: the server reads its configuration again first (pg_hba.conf changed)."""
    import asyncpg

    conn = await asyncpg.connect(host=host, port=port, user="postgres", password=passwords["postgres"],
                                 database="postgres", timeout=10, ssl=ssl)
    try:
        if reload:
            await conn.execute("SELECT pg_reload_conf()")
        existing = {r["rolname"] for r in await conn.fetch("SELECT rolname FROM pg_roles")}
        if WRITERS not in existing:
            await conn.execute(f"CREATE ROLE {WRITERS} NOLOGIN")
        for role in (OWNER, *DB_LOGIN_ROLES):
            if role not in existing:
                await conn.execute(f"CREATE ROLE {role} LOGIN")
            await conn.execute(f"ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB "
                               f"PASSWORD '{pg_scram_verifier(passwords[role])}'")
        for service in PROJECTION_SERVICES:
            await conn.execute(f"GRANT {WRITERS} TO dphp_{service}")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            await conn.execute(f"CREATE DATABASE {database} OWNER {OWNER}")
    finally:
        await conn.close()


async def grant(owner_dsn: str, schema: str) -> None:
    """As the owner, after the migrations: `grants.grant_statements` in one transaction."""
    import asyncpg

    conn = await asyncpg.connect(owner_dsn, timeout=10)
    try:
        await grants.grant(conn, schema)
    finally:
        await conn.close()

"""`dphp dev up --secure`: a second local stack, authenticated, authorised and encrypted.

Beside the plain stack, on its own ports (DPHP_SECURE_KAFKA_BOOTSTRAP, DPHP_SECURE_DATABASE_PORT)
and in its own folder (`<state>/secure`): a KRaft broker whose clients connect over SASL_SSL
(SCRAM-SHA-512, users made when its storage is formatted) with a CA and broker certificate made
for the run, ACLs under StandardAuthorizer with nothing allowed where no ACL says so; PostgreSQL
with scram-sha-256 for every connection, an owner role that runs migrations, a role per service
and `dphp_reader`. Each principal's variables are in `<state>/secrets/<principal>.env` (0600);
passwords are never printed. What each principal may do is in `access.py` and README "Security".
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

from services.common.settings import Settings
from services.devstack import access, certs, kafka, postgres
from services.devstack.private import write_private
from services.devstack.process import StackError
from services.devstack.services import SERVICE_NAMES, service_process, start_services, stop_services

CONTROLLER_PORT_OFFSET = 1
MECHANISM = "SCRAM-SHA-512"
DATABASE = "dphp"


@dataclass(frozen=True)
class SecureLayout:
    root: Path  # <state>/secure: the broker, the database, logs, PID files, TLS material
    secrets: Path  # <state>/secrets: one .env file per principal, the stack's own secrets
    host: str
    kafka_port: int
    pg_port: int

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.root / "tls" / "broker.p12"

    @property
    def pg_tls(self) -> Path:
        return self.root / "postgres" / "tls"

    @property
    def store(self) -> Path:
        return self.secrets / "stack.json"

    def env_file(self, principal: str) -> Path:
        return self.secrets / f"{principal}.env"


def layout_of(settings: Settings) -> SecureLayout:
    host, port = settings.secure_kafka_bootstrap.split(",")[0].strip().rsplit(":", 1)
    state = settings.state_dir.resolve()
    return SecureLayout(state / "secure", state / "secrets", host, int(port), settings.secure_database_port)


def stack_settings(settings: Settings) -> Settings:
    """The settings' copy whose state folder is the secure stack's (its PID files and logs)."""
    lay = layout_of(settings)
    return settings.model_copy(update={"state_dir": lay.root, "kafka_bootstrap": lay.bootstrap,
                                       "web_port": settings.secure_web_port,
                                       "database_url": f"postgresql://{access.OWNER}@{lay.host}:{lay.pg_port}/{DATABASE}"})


def _kafka_layout(settings: Settings, lay: SecureLayout) -> kafka.KafkaLayout:
    return kafka.KafkaLayout(state=lay.root, jars_root=settings.kafka_jars_dir.expanduser(),
                             version=settings.kafka_version, host=lay.host, port=lay.kafka_port,
                             controller_port=lay.kafka_port + CONTROLLER_PORT_OFFSET)


def _pg_layout(lay: SecureLayout, password: str | None) -> postgres.PostgresLayout:
    return postgres.PostgresLayout(state=lay.root, host=lay.host, port=lay.pg_port, database=DATABASE,
                                   user=access.OWNER, superuser_password=password)


# --- secrets -------------------------------------------------------------------------------------

def passwords(lay: SecureLayout) -> dict:
    """The stack's passwords, made once (random, URL- and JAAS-safe) and kept in stack.json."""
    if lay.store.exists():
        return json.loads(lay.store.read_text())
    new = lambda: secrets.token_urlsafe(24)  # noqa: E731
    store = {"kafka": {p: new() for p in (access.ADMIN, *access.PRINCIPALS)},
             "postgres": {r: new() for r in ("postgres", access.OWNER, *access.DB_LOGIN_ROLES)},
             "keystore": new()}
    lay.secrets.mkdir(parents=True, exist_ok=True, mode=0o700)
    lay.secrets.chmod(0o700)
    write_private(lay.store, json.dumps(store, indent=1))
    return store


def principal_env(lay: SecureLayout, store: dict, principal: str) -> dict[str, str]:
    """The DPHP_* variables a principal's processes need."""
    env = {"DPHP_KAFKA_BOOTSTRAP": lay.bootstrap, "DPHP_KAFKA_SASL_MECHANISM": MECHANISM,
           "DPHP_KAFKA_SASL_USERNAME": principal, "DPHP_KAFKA_SASL_PASSWORD": store["kafka"][principal],
           "DPHP_KAFKA_TLS_CA_FILE": str(lay.ca_file)}
    role = access.DB_ROLE_OF.get(principal)
    if role:
        env["DPHP_DATABASE_URL"] = _db_url(lay, role, store["postgres"][role])
    return env


def _db_url(lay: SecureLayout, role: str, password: str) -> str:
    """A role's URL: TLS required, the server's certificate and host name checked against the CA."""
    return (f"postgresql://{role}:{password}@{lay.host}:{lay.pg_port}/{DATABASE}"
            f"?sslmode=verify-full&sslrootcert={lay.ca_file}")


def write_env_files(lay: SecureLayout, store: dict) -> None:
    for principal in access.PRINCIPALS:
        env = principal_env(lay, store, principal)
        write_private(lay.env_file(principal), "".join(f"{k}={v}\n" for k, v in env.items()))
    reader = _db_url(lay, access.READER, store["postgres"][access.READER])
    write_private(lay.env_file(access.READER), f"DPHP_DATABASE_URL={reader}\n")


def principal_settings(settings: Settings, principal: str) -> Settings:
    """Settings as the principal (from its .env file): for tests and the stack's own set-up."""
    lay = layout_of(settings)
    env = principal_env(lay, passwords(lay), principal)
    return Settings(**{k.removeprefix("DPHP_").lower(): v for k, v in env.items()})


# --- TLS and the broker --------------------------------------------------------------------------

def make_tls(lay: SecureLayout, store: dict) -> None:
    """The CA (once), the broker's keystore and PostgreSQL's certificate and key (once each)."""
    ca_key_file = lay.root / "tls" / "ca.key"
    if not (lay.ca_file.exists() and ca_key_file.exists()):
        ca_key, ca_cert = certs.make_ca("DPHP local CA")
        write_private(ca_key_file, ca_key)
        lay.ca_file.write_bytes(ca_cert)  # public
        for old in (lay.keystore, lay.pg_tls / "server.key"):
            old.unlink(missing_ok=True)
    ca_key, ca_cert = ca_key_file.read_bytes(), lay.ca_file.read_bytes()
    if not lay.keystore.exists():
        key, cert = certs.make_server_cert(ca_key, ca_cert, [access.BROKER_CN, lay.host, "localhost"])
        write_private(lay.keystore, certs.pkcs12_keystore(key, cert, ca_cert, store["keystore"]))
    if not (lay.pg_tls / "server.key").exists():
        key, cert = certs.make_server_cert(ca_key, ca_cert, ["dphp-postgres", lay.host, "localhost"])
        write_private(lay.pg_tls / "server.key", key)
        (lay.pg_tls / "server.crt").write_bytes(cert)
        postgres.give_to_server_user(lay.pg_tls, lay.pg_tls / "server.key", lay.pg_tls / "server.crt")


def postgres_tls_options(lay: SecureLayout) -> dict[str, str]:
    return {"ssl": "on", "ssl_cert_file": str(lay.pg_tls / "server.crt"),
            "ssl_key_file": str(lay.pg_tls / "server.key"), "ssl_min_protocol_version": "TLSv1.2"}


def require_tls_in_hba(data: Path) -> bool:
    """Makes every TCP rule of pg_hba.conf `hostssl` (a connection without TLS matches none and is
    refused); True when it changed the file (the server then reloads it)."""
    hba = data / "pg_hba.conf"
    lines = hba.read_text().splitlines(keepends=True)
    changed = [("hostssl" + line[4:]) if line.startswith("host ") or line.startswith("host\t") else line for line in lines]
    if changed == lines:
        return False
    hba.write_text("".join(changed))
    return True


def broker_properties(lay: SecureLayout, store: dict) -> dict[str, str]:
    """The secure broker's listeners: SASL_SSL for clients (and itself), the KRaft controller on
    loopback over TLS with client certificates (SCRAM is not supported there)."""
    admin = store["kafka"][access.ADMIN]
    h, p, c = lay.host, lay.kafka_port, lay.kafka_port + CONTROLLER_PORT_OFFSET
    return {
        "listeners": f"SASL_SSL://{h}:{p},CONTROLLER://{h}:{c}",
        "advertised.listeners": f"SASL_SSL://{h}:{p}",
        "inter.broker.listener.name": "SASL_SSL",
        "listener.security.protocol.map": "CONTROLLER:SSL,SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
            f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{access.ADMIN}" '
            f'password="{admin}";',
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(lay.keystore),
        "ssl.keystore.password": store["keystore"],
        "ssl.key.password": store["keystore"],
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(lay.ca_file),
        "listener.name.controller.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+),.*$/$1/,DEFAULT",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{access.ADMIN};User:{access.BROKER_CN}",
    }


def scram_users(store: dict) -> str:
    """The storage formatter's `--add-scram` arguments, one a line, for a file it reads itself
    (`@file`): salted passwords (password-equivalent for SCRAM), so never on a command line."""
    args: list[str] = []
    for name, password in store["kafka"].items():
        salt, salted, iterations = access.scram_salted(password)
        args += ["--add-scram",
                 f'{MECHANISM}=[name={name},salt="{salt}",saltedpassword="{salted}",iterations={iterations}]']
    return "".join(f"{a}\n" for a in args)


def write_scram_args(path: Path, store: dict, owner: tuple[int, int] | None = None) -> Path:
    write_private(path, scram_users(store), owner=owner)
    return path


# --- up / down / status --------------------------------------------------------------------------

def up(settings: Settings, log=print, with_services: bool = True) -> None:
    """Starts what of the secure stack does not run (idempotent); never prints a password."""
    from services.common.db import migrate
    from services.common.topics import ensure_topics

    lay = layout_of(settings)
    if lay.bootstrap == settings.kafka_bootstrap.split(",")[0].strip():
        raise StackError(f"the secure stack needs its own broker address: DPHP_SECURE_KAFKA_BOOTSTRAP ({lay.bootstrap}) "
                         "equals DPHP_KAFKA_BOOTSTRAP")
    lay.root.mkdir(parents=True, exist_ok=True)
    store = passwords(lay)
    make_tls(lay, store)
    kl = _kafka_layout(settings, lay)
    args = lay.secrets / "kafka-format.args"
    try:
        log(kafka.start(kl, log=log, overrides=broker_properties(lay, store), format_args=write_scram_args(args, store))
            .replace("kafka", "kafka (SASL_SSL)", 1))
    finally:
        args.unlink(missing_ok=True)  # needed only to format the storage (once)
    admin = principal_settings_as_admin(settings, lay, store)
    created = asyncio.run(ensure_topics(admin))
    log(f"topics: created {', '.join(created)}" if created else "topics: all present")
    access.apply_acls(kl, lay, store["kafka"][access.ADMIN], settings)
    log(f"kafka ACLs: {len(access.PRINCIPALS)} principals, nothing allowed without an ACL")
    pl = _pg_layout(lay, store["postgres"]["postgres"])
    log(postgres.start(pl, log=log, options=postgres_tls_options(lay)))
    tls = ssl.create_default_context(cafile=str(lay.ca_file))
    asyncio.run(access.make_roles(lay.host, lay.pg_port, DATABASE, store["postgres"], ssl=tls,
                                  reload=require_tls_in_hba(pl.data)))
    owner = settings.model_copy(update={"database_url": _db_url(lay, access.OWNER, store["postgres"][access.OWNER])})
    applied = asyncio.run(migrate(owner))
    log(f"migrations: applied {', '.join(applied)}" if applied else "migrations: up to date")
    asyncio.run(access.grant(owner.database_dsn, owner.db_schema))
    log("postgres: TLS and scram-sha-256 only; roles " + ", ".join((access.OWNER, *access.DB_LOGIN_ROLES)))
    write_env_files(lay, store)
    log(f"credentials: {lay.secrets}/<principal>.env (mode 0600), CA {lay.ca_file}; "
        f"e.g. `env $(cat {lay.env_file('dphp-operator')}) dphp status`")
    if with_services:
        base = stack_settings(settings)
        for line in start_services(base, env_for=lambda name: _service_env(settings, lay, store, name)):
            log(line)


def principal_settings_as_admin(settings: Settings, lay: SecureLayout, store: dict) -> Settings:
    return settings.model_copy(update={
        "kafka_bootstrap": lay.bootstrap, "kafka_sasl_mechanism": MECHANISM, "kafka_sasl_username": access.ADMIN,
        "kafka_sasl_password": _secret(store["kafka"][access.ADMIN]), "kafka_tls_ca_file": lay.ca_file})


def _secret(value: str):
    from pydantic import SecretStr

    return SecretStr(value)


def _service_env(settings: Settings, lay: SecureLayout, store: dict, name: str) -> dict[str, str]:
    """A service's environment: its principal's variables; the web service (no Kafka client) reads
    as `dphp_reader`, on its own port beside the plain stack's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DPHP_KAFKA_", "DPHP_DATABASE_"))}
    if name == "web":
        env["DPHP_DATABASE_URL"] = _db_url(lay, access.READER, store["postgres"][access.READER])
        env["DPHP_WEB_PORT"] = str(settings.secure_web_port)
    else:
        env.update(principal_env(lay, store, f"dphp-{name}"))
    env["DPHP_STATE_DIR"] = str(lay.root)
    return env


def started(settings: Settings) -> bool:
    """True when this state folder has PID files of a secure stack."""
    pids = layout_of(settings).root / "pids"
    return pids.is_dir() and any(pids.glob("*.pid"))


def down(settings: Settings, log=print) -> None:
    lay = layout_of(settings)
    for line in stop_services(stack_settings(settings)):
        log(f"secure {line}")
    log(f"secure {postgres.stop(_pg_layout(lay, None))}")
    log(f"secure {kafka.stop(_kafka_layout(settings, lay))}")


def status(settings: Settings) -> list[tuple[str, str, int | None, bool, str | None]]:
    """(component, address, pid, up, http address) of the secure stack; no credentials shown."""
    from services.devstack.process import port_open
    from services.devstack.services import http_address

    lay = layout_of(settings)
    kl, pl = _kafka_layout(settings, lay), _pg_layout(lay, None)
    rows = [("kafka (secure)", f"SASL_SSL {lay.bootstrap}", kl.process.pid(), port_open(lay.host, lay.kafka_port), None),
            ("postgres (secure)", f"postgresql://{lay.host}:{lay.pg_port}/{DATABASE} (TLS, scram-sha-256)",
             pl.process.pid(), port_open(lay.host, lay.pg_port), None)]
    base = stack_settings(settings)
    for name in SERVICE_NAMES:
        pid = service_process(base, name).pid()
        who = f"as {access.READER}, port {settings.secure_web_port}" if name == "web" else f"as dphp-{name}"
        rows.append((f"{name} (secure)", who, pid, pid is not None, http_address(base, name)))
    return rows


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `dphp dev up --secure`")

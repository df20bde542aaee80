"""The secure stack's material for Docker (`compose.secure.yml`), made by the same code as
`dphp dev up --secure`: `python -m services.devstack.compose_secrets /secrets` (once; kept, as
root) writes into the volume one folder per reader, and each container mounts only its own
folder(s) (volume subpaths), so that it sees only its own principal's secrets:

  store/      stack.json (every password) and ca.key: this generator only
  public/     ca.pem: everyone
  kafka/      the broker: server.properties, keystore, SCRAM users for the formatter (`@file`)
  acls/       the ACL set-up: the admin's client configuration and the commands
  postgres/   the server: the superuser's password
  setup/      `migrate`: the database roles' passwords (it makes the roles, then migrates as owner)
  dphp-admin/ `topics`: the admin's Kafka password
  <principal>/, dphp_reader/, grafana/: that service's password file(s)

`... --roles` (after PostgreSQL is up) makes the database roles, migrates as the owner, grants.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shlex
import sys
from pathlib import Path

from services.common.settings import Settings
from services.devstack import access, certs, kafka, secure
from services.devstack.private import write_private

KAFKA_UID = 1000  # apache/kafka runs as appuser
POSTGRES_UID = 999  # postgres:15 runs as postgres
GRAFANA_UID = 472  # grafana/grafana runs as grafana
DPHP_UID = 10001  # the dphp image's user (Dockerfile)
HOST, PORT, PG_HOST = "kafka", 9092, "postgres"
MOUNT = Path("/secrets")  # where the containers see the folders: /secrets/<folder>


def _folder(root: Path, name: str, uid: int) -> Path:
    path = root / name
    path.mkdir(mode=0o700, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, uid, uid)
    return path


def _private(path: Path, text: str | bytes, uid: int) -> None:
    write_private(path, text, owner=(uid, uid))


def _store(root: Path) -> dict:
    lay = secure.SecureLayout(root=root, secrets=root / "store", host=HOST, kafka_port=PORT, pg_port=5432)
    store = secure.passwords(lay)
    if "grafana" not in store:
        store["grafana"] = secrets.token_urlsafe(24)
        write_private(lay.store, json.dumps(store, indent=1))
    return store


def write(root: Path) -> None:
    """Writes (once; kept) every folder of the volume at `root`, each owned by its reader."""
    store = _store(root)
    public = root / "public"
    public.mkdir(mode=0o755, exist_ok=True)
    kdir = _folder(root, "kafka", KAFKA_UID)
    ca_file = MOUNT / "public" / "ca.pem"
    if not (kdir / "broker.p12").exists():
        ca_key, ca_cert = certs.make_ca("DPHP CA")
        key, cert = certs.make_server_cert(ca_key, ca_cert, [access.BROKER_CN, HOST, "localhost"])
        write_private(root / "store" / "ca.key", ca_key)
        _private(kdir / "broker.p12", certs.pkcs12_keystore(key, cert, ca_cert, store["keystore"]), KAFKA_UID)
        (public / "ca.pem").write_bytes(ca_cert)  # public
        (public / "ca.pem").chmod(0o644)
    tls = secure.SecureLayout(root=kdir, secrets=kdir, host=HOST, kafka_port=PORT, pg_port=5432)
    props = secure.broker_properties(tls, store)
    props.update({"ssl.keystore.location": str(MOUNT / "kafka" / "broker.p12"), "ssl.truststore.location": str(ca_file),
                  "log.dirs": "/var/lib/kafka/data"})
    layout = kafka.KafkaLayout(state=root, jars_root=root, version="", host=HOST, port=PORT, controller_port=PORT + 1)
    kafka.write_config(layout, props)  # root/kafka/server.properties, private
    secure.write_scram_args(kdir / "format.args", store, owner=(KAFKA_UID, KAFKA_UID))
    if not (kdir / "cluster.id").exists():
        (kdir / "cluster.id").write_text(kafka._cluster_id() + "\n")
    admin_client = access.admin_client_properties(store["kafka"][access.ADMIN], ca_file)
    _private(kdir / "admin-client.properties", admin_client, KAFKA_UID)  # the broker's health check
    if os.geteuid() == 0:  # the broker (appuser) reads them all
        for path in kdir.iterdir():
            os.chown(path, KAFKA_UID, KAFKA_UID)
    adir = _folder(root, "acls", KAFKA_UID)
    _private(adir / "admin-client.properties", admin_client, KAFKA_UID)
    _private(adir / "acls.sh", "set -e\n" + "".join(
        f"/opt/kafka/bin/kafka-acls.sh --bootstrap-server {HOST}:{PORT} --command-config {MOUNT}/acls/admin-client.properties "
        f"--add {shlex.join(resources)} {' '.join(f'--allow-principal User:{p}' for p in principals)} "
        f"{' '.join(f'--operation {op}' for op in operations)}\n"
        for principals, resources, operations in access.acl_specs(Settings())), KAFKA_UID)
    _private(_folder(root, "postgres", POSTGRES_UID) / "superuser.password", store["postgres"]["postgres"], POSTGRES_UID)
    _private(_folder(root, "setup", DPHP_UID) / "postgres.json", json.dumps(store["postgres"]), DPHP_UID)
    for principal in (access.ADMIN, *access.PRINCIPALS):
        folder = _folder(root, principal, DPHP_UID)
        _private(folder / "kafka.password", store["kafka"][principal], DPHP_UID)
        role = access.DB_ROLE_OF.get(principal)
        if role:
            _private(folder / "db.password", store["postgres"][role], DPHP_UID)
    _private(_folder(root, access.READER, DPHP_UID) / "db.password", store["postgres"][access.READER], DPHP_UID)
    _private(_folder(root, "grafana", GRAFANA_UID) / "admin.password", store["grafana"], GRAFANA_UID)


def roles(root: Path) -> None:
    """As `postgres`: the roles and the database; then the migrations as the owner, and grants."""
    from services.common.db import migrate

    passwords = json.loads((root / "setup" / "postgres.json").read_text())
    asyncio.run(access.make_roles(PG_HOST, 5432, secure.DATABASE, passwords))
    owner = Settings(database_url=f"postgresql://{access.OWNER}@{PG_HOST}:5432/{secure.DATABASE}",
                     database_password=passwords[access.OWNER])
    applied = asyncio.run(migrate(owner))
    asyncio.run(access.grant(owner.database_dsn, owner.db_schema))
    print(f"roles made; migrations applied: {', '.join(applied) or 'none needed'}")


def main(argv: list[str]) -> None:
    if not argv or argv[0].startswith("-") and len(argv) < 2:
        sys.exit("usage: python -m services.devstack.compose_secrets [--roles] DIR")
    if argv[0] == "--roles":
        roles(Path(argv[1]))
    else:
        write(Path(argv[0]))
        print(f"secrets in {argv[0]} (kept; delete the volume to make new ones)")


if __name__ == "__main__":
    main(sys.argv[1:])

"""The secure stack's material for Docker (`compose.secure.yml`), made by the same code as
`dphp dev up --secure`: `python -m services.devstack.compose_secrets /secrets` (once; kept) writes
the CA and the broker's keystore, its server.properties (SASL_SSL on kafka:9092, the controller
over mutual TLS), the storage formatter's SCRAM users, the ACL commands, and one password file
per principal and role (`/secrets/<principal>/kafka.password`, `.../db.password`) that the
services read through DPHP_KAFKA_SASL_PASSWORD_FILE and DPHP_DATABASE_PASSWORD_FILE.
`... --roles` (after PostgreSQL is up) makes the database roles, migrates as the owner, grants.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from pathlib import Path

from services.common.settings import Settings
from services.devstack import access, certs, kafka, secure

KAFKA_UID = 1000  # apache/kafka runs as appuser
POSTGRES_UID = 999  # postgres:15 runs as postgres
HOST, PORT, PG_HOST = "kafka", 9092, "postgres"


def _own(path: Path, uid: int) -> None:
    if os.geteuid() == 0:
        os.chown(path, uid, uid)


def write(root: Path) -> None:
    lay = secure.SecureLayout(root=root, secrets=root, host=HOST, kafka_port=PORT, pg_port=5432)
    store = secure.passwords(lay)
    kdir = root / "kafka"
    kdir.mkdir(exist_ok=True)
    if not (kdir / "broker.p12").exists():
        ca_key, ca_cert = certs.make_ca("DPHP CA")
        key, cert = certs.make_server_cert(ca_key, ca_cert, [access.BROKER_CN, HOST, "localhost"])
        secure.write_private(root / "ca.key", ca_key)
        secure.write_private(kdir / "broker.p12", certs.pkcs12_keystore(key, cert, ca_cert, store["keystore"]))
        (root / "ca.pem").write_bytes(ca_cert)
    tls = secure.SecureLayout(root=kdir, secrets=kdir, host=HOST, kafka_port=PORT, pg_port=5432)
    props = secure.broker_properties(tls, store)
    props.update({"ssl.keystore.location": str(kdir / "broker.p12"), "ssl.truststore.location": str(root / "ca.pem"),
                  "log.dirs": "/var/lib/kafka/data"})
    layout = kafka.KafkaLayout(state=root, jars_root=root, version="", host=HOST, port=PORT, controller_port=PORT + 1)
    kafka.write_config(layout, props)  # root/kafka/server.properties
    (kdir / "format.args").write_text(" ".join(secure.scram_users(store)) + "\n")
    if not (kdir / "cluster.id").exists():
        (kdir / "cluster.id").write_text(kafka._cluster_id() + "\n")
    secure.write_private(kdir / "admin-client.properties",
                          access.admin_client_properties(store["kafka"][access.ADMIN], root / "ca.pem"))
    (kdir / "acls.sh").write_text("set -e\n" + "".join(
        "/opt/kafka/bin/kafka-acls.sh --bootstrap-server kafka:9092 --command-config /secrets/kafka/admin-client.properties "
        f"--add {shlex.join(resources)} {' '.join(f'--allow-principal User:{p}' for p in principals)} "
        f"{' '.join(f'--operation {op}' for op in operations)}\n"
        for principals, resources, operations in access.acl_specs(Settings())))
    for path in kdir.iterdir():
        _own(path, KAFKA_UID)
    _own(kdir, KAFKA_UID)
    for principal in (access.ADMIN, *access.PRINCIPALS):
        secure.write_private(root / principal / "kafka.password", store["kafka"][principal])
        role = access.DB_ROLE_OF.get(principal)
        if role:
            secure.write_private(root / principal / "db.password", store["postgres"][role])
    secure.write_private(root / access.READER / "db.password", store["postgres"][access.READER])
    pg = root / "postgres"
    secure.write_private(pg / "superuser.password", store["postgres"]["postgres"])
    _own(pg, POSTGRES_UID)
    _own(pg / "superuser.password", POSTGRES_UID)


def roles(root: Path) -> None:
    """As `postgres`: the roles and the database; then the migrations as the owner, and grants."""
    from services.common.db import migrate

    lay = secure.SecureLayout(root=root, secrets=root, host=HOST, kafka_port=PORT, pg_port=5432)
    store = secure.passwords(lay)
    asyncio.run(access.make_roles(PG_HOST, 5432, secure.DATABASE, store["postgres"]))
    owner = Settings(database_url=f"postgresql://{access.OWNER}@{PG_HOST}:5432/{secure.DATABASE}",
                     database_password=store["postgres"][access.OWNER])
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

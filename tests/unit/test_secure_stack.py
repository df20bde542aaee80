"""The secure stack's configuration, without starting it: listeners, ACLs, roles, secrets files."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from services.common.settings import Settings
from services.devstack import access, secure

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(state_dir=tmp_path, secure_kafka_bootstrap="127.0.0.1:19192", secure_database_port=15433)


def test_the_broker_has_no_plaintext_client_listener_and_denies_without_acls(settings) -> None:
    lay = secure.layout_of(settings)
    props = secure.broker_properties(lay, secure.passwords(lay))
    assert props["listeners"] == "SASL_SSL://127.0.0.1:19192,CONTROLLER://127.0.0.1:19193"
    assert "PLAINTEXT" not in props["listener.security.protocol.map"].replace("SASL_", "")
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:dphp-admin;User:dphp-broker"


def _allowed(settings) -> dict[str, set[tuple[str, str]]]:
    allowed: dict[str, set[tuple[str, str]]] = {}
    for principals, resources, operations in access.acl_specs(settings):
        names = [f"{resources[i]}={resources[i + 1]}" for i in range(len(resources)) if resources[i] in ("--topic", "--group")]
        names += ["cluster"] if "--cluster" in resources else []
        for p in principals:
            allowed.setdefault(p, set()).update((n, op) for n in names for op in operations)
    return allowed


def test_each_principal_is_allowed_only_what_the_issue_lists(settings) -> None:
    s, allowed = settings, _allowed(settings)
    assert allowed["dphp-publisher"] == {(f"--topic={t}", "Write") for t in (s.topic_registered, s.topic_moved, s.topic_meetings)}
    assert allowed["dphp-subscriber"] == {(f"--topic={s.topic_recap}", "Read"), ("--group=dphp-subscriber", "Read")}
    assert allowed["dphp-report"] == {(f"--topic={s.topic_recap}", "Write"),
                                      *((f"--topic={t}", "Describe") for t in (s.topic_registered, s.topic_moved, s.topic_meetings))}
    assert allowed["dphp-registrations"] == {(f"--topic={s.topic_registered}", "Read"),
                                             (f"--group={s.group_id('registrations')}", "Read"),
                                             (f"--topic={s.topic_dead_letter}", "Read"),
                                             (f"--topic={s.topic_dead_letter}", "Write")}
    assert not any(op == "Read" and t == f"--topic={s.topic_moved}" for t, op in allowed["dphp-registrations"])
    # the operator writes the input topics (publish, dlq retry) and, in a replay, the dead letters of
    # events the database refuses; it writes nothing else
    assert {t for t, op in allowed["dphp-operator"] if op == "Write"} == {
        f"--topic={t}" for t in (s.topic_registered, s.topic_moved, s.topic_meetings, s.topic_dead_letter)}
    assert set(allowed) == set(access.PRINCIPALS)


def test_secrets_are_made_once_private_and_the_env_files_name_what_a_principal_needs(settings) -> None:
    lay = secure.layout_of(settings)
    store = secure.passwords(lay)
    assert secure.passwords(lay) == store  # kept, not made again
    assert lay.store.stat().st_mode & 0o777 == 0o600 and lay.secrets.stat().st_mode & 0o777 == 0o700
    secure.write_env_files(lay, store)
    op = dict(line.split("=", 1) for line in lay.env_file("dphp-operator").read_text().splitlines())
    assert op["DPHP_KAFKA_SASL_USERNAME"] == "dphp-operator" and op["DPHP_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert op["DPHP_DATABASE_URL"].startswith(f"postgresql://{access.OWNER}:")
    pub = dict(line.split("=", 1) for line in lay.env_file("dphp-publisher").read_text().splitlines())
    assert "DPHP_DATABASE_URL" not in pub
    reader = lay.env_file("dphp_reader").read_text()
    assert reader.startswith(f"DPHP_DATABASE_URL=postgresql://dphp_reader:{store['postgres']['dphp_reader']}@127.0.0.1:15433/dphp")
    for f in lay.secrets.iterdir():
        assert f.stat().st_mode & 0o777 == 0o600
    assert len(set(store["kafka"].values())) == len(store["kafka"])  # distinct random passwords


def test_scram_verifiers_follow_rfc5802() -> None:
    verifier = access.pg_scram_verifier("pw")
    mech, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored, server = keys.split(":")
    salted = hashlib.pbkdf2_hmac("sha256", b"pw", base64.b64decode(salt), int(iterations))
    assert mech == "SCRAM-SHA-256"
    assert base64.b64decode(stored) == hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    assert base64.b64decode(server) == hmac.new(salted, b"Server Key", "sha256").digest()
    salt, salted_pw, n = access.scram_salted("pw")
    assert base64.b64decode(salted_pw) == hashlib.pbkdf2_hmac("sha512", b"pw", base64.b64decode(salt), n)


def test_the_tls_material_is_a_ca_and_a_broker_certificate_for_its_address(settings, monkeypatch) -> None:
    from cryptography import x509

    from services.devstack import postgres

    monkeypatch.setattr(postgres, "give_to_server_user", lambda *paths: None)  # no chown in a unit test
    lay = secure.layout_of(settings)
    secure.make_tls(lay, secure.passwords(lay))
    ca = x509.load_pem_x509_certificate(lay.ca_file.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (lay.root / "tls" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert lay.keystore.stat().st_mode & 0o777 == 0o600
    assert (lay.pg_tls / "server.key").stat().st_mode & 0o777 == 0o600
    assert x509.load_pem_x509_certificate((lay.pg_tls / "server.crt").read_bytes()).issuer == ca.subject


def test_every_tcp_rule_of_pg_hba_requires_tls(tmp_path) -> None:
    (tmp_path / "pg_hba.conf").write_text("# comment host\nlocal all all scram-sha-256\n"
                                          "host    all all 127.0.0.1/32 scram-sha-256\nhost\treplication all ::1/128 scram-sha-256\n")
    assert secure.require_tls_in_hba(tmp_path)
    lines = (tmp_path / "pg_hba.conf").read_text().splitlines()
    assert lines[2].startswith("hostssl    all") and lines[3].startswith("hostssl\treplication")
    assert not secure.require_tls_in_hba(tmp_path)  # already so: unchanged, no reload


def test_the_reader_may_only_connect_and_no_default_privilege_is_granted() -> None:
    from services.operations.grants import grant_statements

    statements = grant_statements("dphp", "dphp")
    db_grants = [s for s in statements if s.startswith("GRANT") and "ON DATABASE" in s]
    assert [s for s in db_grants if "dphp_reader" in s] == ["GRANT CONNECT ON DATABASE dphp TO dphp_reader"]
    assert "REVOKE TEMPORARY ON DATABASE dphp FROM dphp_reader" in statements
    defaults = [s for s in statements if "DEFAULT PRIVILEGES" in s]
    assert defaults and all(" REVOKE " in s for s in defaults)  # earlier versions' are taken back
    # the rebuild of a replay is granted by name, as the live schema is
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON dphp_rebuild.meeting TO dphp_meetings" in grant_statements("dphp", "dphp_rebuild")

"""compose.secure.yml cannot run here (no Docker): keep it consistent with the settings, the
principals and the material that services/devstack/compose_secrets.py makes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.common.settings import Settings
from services.devstack import access, compose_secrets

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


class ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's merge tags (`!reset`, `!override`): the tagged value as it is."""


for tag in ("!reset", "!override"):
    ComposeLoader.add_constructor(tag, lambda loader, node: (
        loader.construct_mapping(node) if isinstance(node, yaml.MappingNode)
        else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else None))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.load((ROOT / "compose.secure.yml").read_text(), Loader=ComposeLoader)


def test_no_port_is_published_and_kafka_takes_only_the_generated_configuration(compose) -> None:
    services = compose["services"]
    assert services["kafka"]["ports"] == [] and services["postgres"]["ports"] == []
    assert all(not s.get("ports") for s in services.values())
    assert services["kafka"]["environment"] == {}  # the base file's PLAINTEXT listeners are dropped
    assert services["postgres"]["environment"]["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    assert "POSTGRES_PASSWORD" not in services["postgres"]["environment"]


def test_each_service_has_its_own_principal_role_and_password_files(compose, tmp_path) -> None:
    compose_secrets.write(tmp_path)
    fields = {f"DPHP_{name.upper()}" for name in Settings.model_fields}
    for name in ("registrations", "movements", "meetings", "report", "operator", "topics"):
        env = compose["services"][name]["environment"]
        assert set(k for k in env if k.startswith("DPHP_")) <= fields, name
        principal = env["DPHP_KAFKA_SASL_USERNAME"]
        assert principal in (access.ADMIN, *access.PRINCIPALS)
        assert name in principal or name == "topics"
        assert env["DPHP_KAFKA_TLS_CA_FILE"] == "/secrets/ca.pem" and "DPHP_KAFKA_SASL_PASSWORD" not in env
        for key in ("DPHP_KAFKA_SASL_PASSWORD_FILE", "DPHP_DATABASE_PASSWORD_FILE"):
            if key in env:
                assert (tmp_path / Path(env[key]).relative_to("/secrets")).stat().st_mode & 0o777 == 0o600
        if "DPHP_DATABASE_URL" in env:
            assert env["DPHP_DATABASE_URL"].split("//")[1].split("@")[0] == access.DB_ROLE_OF[principal]
    props = dict(line.split("=", 1) for line in (tmp_path / "kafka" / "server.properties").read_text().splitlines())
    assert props["listeners"] == "SASL_SSL://kafka:9092,CONTROLLER://kafka:9093"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert "PLAINTEXT" not in props["listener.security.protocol.map"].replace("SASL_", "")
    assert (tmp_path / "kafka" / "acls.sh").read_text().count("kafka-acls.sh") == len(access.acl_specs(Settings()))

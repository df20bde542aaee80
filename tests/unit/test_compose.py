"""docker-compose.yml cannot run here: keep it consistent with the settings and local scripts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.common.settings import DEFAULT_DATABASE_URL, DEFAULT_KAFKA_BOOTSTRAP, Settings
from services.devstack.services import SERVICE_NAMES

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_runs_and_the_infrastructure_is_there(compose):
    services = compose["services"]
    for name in SERVICE_NAMES:
        assert services[name]["command"] == ["dphp", "run", name]
    assert {"kafka", "postgres", "topics", "migrate"} <= set(services)


def test_ports_match_the_default_settings(compose):
    services = compose["services"]
    kafka_port = DEFAULT_KAFKA_BOOTSTRAP.rsplit(":", 1)[1]
    pg_port = DEFAULT_DATABASE_URL.split("@", 1)[1].split("/")[0].rsplit(":", 1)[1]
    assert f"{kafka_port}:{kafka_port}" in services["kafka"]["ports"]
    assert f"{pg_port}:{pg_port}" in services["postgres"]["ports"]
    assert services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].startswith(
        f"PLAINTEXT://{DEFAULT_KAFKA_BOOTSTRAP},"
    )


def test_kafka_image_is_the_pinned_version(compose):
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{Settings().kafka_version}"


def test_environment_names_are_settings(compose):
    fields = {f"DPHP_{name.upper()}" for name in Settings.model_fields}
    for name, service in compose["services"].items():
        for key in service.get("environment", {}) or {}:
            if key.startswith("DPHP_"):
                assert key in fields, f"{name}: {key} is not a setting"
    env = compose["services"]["registrations"]["environment"]
    assert {"DPHP_KAFKA_BOOTSTRAP", "DPHP_DATABASE_URL", "DPHP_VOTING_DAY", "DPHP_TPS_CAPACITY"} <= set(env)
    assert env["DPHP_VOTING_DAY"] == Settings().voting_day.isoformat()
    assert int(env["DPHP_TPS_CAPACITY"]) == Settings().tps_capacity

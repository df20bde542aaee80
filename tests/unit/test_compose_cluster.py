"""docker-compose.yml's profile "cluster" (three KRaft brokers) cannot run here: keep it coherent."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.common.settings import Settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    lines = (ROOT / "compose-cluster.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _value(text: str, env: dict[str, str]) -> str:
    """`${NAME:-default}` as Compose substitutes it with the env file."""
    if text.startswith("${") and text.endswith("}"):
        name, default = text[2:-1].split(":-", 1)
        return env.get(name, default)
    return text


def test_three_nodes_one_cluster(compose, env) -> None:
    nodes = {name: compose["services"][name] for name in ("kafka", "kafka-2", "kafka-3")}
    assert [n.get("profiles") for n in nodes.values()] == [None, ["cluster"], ["cluster"]]
    envs = {name: {k: _value(str(v), env) for k, v in n["environment"].items()} for name, n in nodes.items()}
    assert {e["KAFKA_NODE_ID"] for e in envs.values()} == {"1", "2", "3"}
    assert len({e["CLUSTER_ID"] for e in envs.values()}) == 1
    assert {e["KAFKA_CONTROLLER_QUORUM_VOTERS"] for e in envs.values()} == {
        "1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"}
    for e in envs.values():
        assert e["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert e["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
    assert {n["image"] for n in nodes.values()} == {f"apache/kafka:{Settings().kafka_version}"}
    # the host ports of the local cluster (`DPHP_KAFKA_BROKERS=3 dphp dev up`): 9092, 9094, 9096
    assert [n["ports"] for n in nodes.values()] == [["9092:9092"], ["9094:9094"], ["9096:9096"]]


def test_the_services_use_every_broker(compose, env) -> None:
    bootstrap = _value(compose["services"]["registrations"]["environment"]["DPHP_KAFKA_BOOTSTRAP"], env)
    assert bootstrap.split(",") == ["kafka:19092", "kafka-2:19092", "kafka-3:19092"]
    plain = _value(compose["services"]["registrations"]["environment"]["DPHP_KAFKA_BOOTSTRAP"], {})
    assert plain == "kafka:19092"  # without the env file: the one-broker stack, unchanged
    deps = compose["services"]["topics"]["depends_on"]
    assert deps["kafka-2"]["required"] is False and deps["kafka-3"]["required"] is False

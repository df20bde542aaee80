"""The dev stack's Kafka nodes: addresses, folders and broker settings of one broker and of a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.settings import Settings
from services.common.topics import replication_for
from services.devstack import kafka
from services.devstack.stack import kafka_addresses, kafka_layout, kafka_layouts

pytestmark = pytest.mark.unit


def settings(tmp_path: Path, **values) -> Settings:
    # Explicit values: the environment (DPHP_KAFKA_BOOTSTRAP of a test run) must not leak in.
    return Settings(**{"state_dir": tmp_path, "kafka_bootstrap": "127.0.0.1:9092", "kafka_brokers": 1, **values})


def props(layout: kafka.KafkaLayout) -> dict[str, str]:
    kafka.write_config(layout)
    return dict(line.split("=", 1) for line in layout.config.read_text().splitlines())


def test_the_plain_stack_keeps_its_one_broker_where_it_was(tmp_path):
    s = settings(tmp_path)
    [layout] = kafka_layouts(s)
    assert layout == kafka_layout(s)
    assert (layout.name, layout.address, layout.controller_port) == ("kafka", "127.0.0.1:9092", 9093)
    assert layout.data == tmp_path.resolve() / "kafka" / "data"
    assert layout.process.pid_file.name == "kafka.pid" and layout.process.cmdline_marker == "kafka.Kafka"
    p = props(layout)
    assert p["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert p["offsets.topic.replication.factor"] == "1" and "min.insync.replicas" not in p


def test_cluster_nodes_follow_a_single_address_in_port_pairs(tmp_path):
    s = settings(tmp_path, kafka_brokers=3, kafka_bootstrap="127.0.0.1:19092")
    assert kafka_addresses(s) == [("127.0.0.1", 19092), ("127.0.0.1", 19094), ("127.0.0.1", 19096)]
    layouts = kafka_layouts(s)
    assert [(l.name, l.node_id, l.port, l.controller_port) for l in layouts] == [
        ("kafka-1", 1, 19092, 19093), ("kafka-2", 2, 19094, 19095), ("kafka-3", 3, 19096, 19097)]
    assert kafka_layout(s) == layouts[0]
    # Each node its own folder, log and PID file; the PID check tells the nodes apart.
    assert len({l.data for l in layouts}) == len({l.process.pid_file for l in layouts}) == 3
    assert len({l.process.cmdline_marker for l in layouts}) == 3


def test_listed_addresses_are_the_nodes(tmp_path):
    s = settings(tmp_path, kafka_brokers=3, kafka_bootstrap="127.0.0.1:20000,127.0.0.1:21000")
    assert kafka_addresses(s) == [("127.0.0.1", 20000), ("127.0.0.1", 21000), ("127.0.0.1", 21002)]
    assert s.kafka_port == 20000


def test_cluster_nodes_are_voters_with_three_replicas_and_min_isr_two(tmp_path):
    layouts = kafka_layouts(settings(tmp_path, kafka_brokers=3, kafka_bootstrap="127.0.0.1:19092"))
    for layout in layouts:
        p = props(layout)
        assert p["node.id"] == str(layout.node_id)
        assert p["process.roles"] == "broker,controller"
        assert p["controller.quorum.voters"] == "1@127.0.0.1:19093,2@127.0.0.1:19095,3@127.0.0.1:19097"
        assert p["listeners"] == f"PLAINTEXT://{layout.address},CONTROLLER://127.0.0.1:{layout.controller_port}"
        for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                    "share.coordinator.state.topic.replication.factor", "default.replication.factor"):
            assert p[key] == "3", key
        for key in ("transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr", "min.insync.replicas"):
            assert p[key] == "2", key


def test_topics_are_replicated_as_the_cluster_allows():
    assert replication_for(1) == (1, {})
    assert replication_for(2) == (2, {})
    assert replication_for(3) == (3, {"min.insync.replicas": "2"})
    assert replication_for(5) == (3, {"min.insync.replicas": "2"})


def test_a_dev_stack_cluster_is_seen_by_the_fault_helpers(tmp_path):
    from services.devstack.cluster import KafkaCluster

    s = settings(tmp_path, kafka_brokers=3, kafka_bootstrap="127.0.0.1:19092")
    cluster = KafkaCluster.of_stack(s)
    assert cluster.bootstrap == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"
    assert [cluster.layouts[i] for i in cluster.node_ids] == kafka_layouts(s)
    assert cluster.pids() == {1: None, 2: None, 3: None}
    assert cluster.settings().kafka_bootstrap == cluster.bootstrap
    with pytest.raises(ValueError):
        KafkaCluster.of_stack(settings(tmp_path))

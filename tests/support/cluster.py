"""A three-node KRaft cluster for fault tests (see services/devstack/cluster.py for the API).

    from tests.support.cluster import kafka_cluster  # noqa: F401  (the fixture)

    async def test_x(kafka_cluster):
        await kafka_cluster.create_topic("t", partitions=3)
        kafka_cluster.kill(await kafka_cluster.leader_of("t", 0))
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from services.devstack.cluster import KafkaCluster, start_cluster


@contextmanager
def running_cluster(state: Path | None = None, nodes: int = 3, **kwargs) -> Iterator[KafkaCluster]:
    """A cluster started in `state` (default: a new temporary folder), stopped by PID at the end
    whatever happened to its nodes meanwhile."""
    with tempfile.TemporaryDirectory(prefix="dphp-cluster-") as tmp:
        cluster = start_cluster(state or Path(tmp), nodes, **kwargs)
        try:
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture
def kafka_cluster(tmp_path: Path) -> Iterator[KafkaCluster]:
    with running_cluster(tmp_path / "cluster") as cluster:
        yield cluster

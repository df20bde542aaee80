"""A KRaft cluster on this machine for fault tests: start it in a folder on free ports, kill a
node (SIGKILL, by PID), start it again with its data, find a partition's leader.

    cluster = start_cluster(tmp_path / "cluster")          # three nodes, waits until all run
    try:
        await cluster.create_topic("t", partitions=3)       # replication 3, min.insync.replicas 2
        leader = await cluster.leader_of("t", 0)
        cluster.kill(leader)
        await cluster.wait_for_leader("t", 0, exclude={leader})
        await cluster.start_async(leader)                   # same node id, same data
        await cluster.wait_in_sync("t", 0)
    finally:
        cluster.stop()

The nodes are the dev stack's own (`kafka.KafkaLayout` with a node id and the voters), so their
folders, logs and PID files are laid out as `DPHP_KAFKA_BROKERS=3 dphp dev up` lays them out, and
`cluster.settings()` gives settings with which `dphp dev down` (or `stack.down`) stops them too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.common.settings import Settings
from services.devstack import kafka
from services.devstack.process import free_port
from services.devstack.stack import CONTROLLER_PORT_OFFSET




@dataclass(frozen=True)
class PartitionState:
    topic: str
    partition: int
    leader: int | None  # None: no leader (none of the in-sync replicas is up)
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass
class KafkaCluster:
    """Nodes of a running cluster, by node id (1..n)."""

    state: Path
    layouts: dict[int, kafka.KafkaLayout]
    heap: str = "512m"
    # The JVMs started by this object (a node restarted by `start` gets a new one).
    children: dict[int, subprocess.Popen] = field(default_factory=dict)

    @classmethod
    def of_stack(cls, settings: Settings, heap: str = "512m") -> KafkaCluster:
        """The nodes of a stack started with `dphp dev up` (or `stack.up`) with these settings,
        DPHP_KAFKA_BROKERS=3: to kill and restart them while the services run."""
        from services.devstack.stack import kafka_layouts

        layouts = kafka_layouts(settings)
        if not layouts[0].clustered:
            raise ValueError("the settings name a single broker (DPHP_KAFKA_BROKERS=1), not a cluster")
        return cls(settings.state_dir.resolve(), {layout.node_id: layout for layout in layouts}, heap)

    @property
    def node_ids(self) -> list[int]:
        return sorted(self.layouts)

    @property
    def bootstrap(self) -> str:
        """Every node's address, comma-separated (clients try them in turn)."""
        return ",".join(self.layouts[i].address for i in self.node_ids)

    def address(self, node_id: int) -> str:
        return self.layouts[node_id].address

    def log_file(self, node_id: int) -> Path:
        return self.layouts[node_id].process.log_file

    def pid(self, node_id: int) -> int | None:
        """The node's PID if it runs (checked against its PID file and command line)."""
        return self.layouts[node_id].process.pid()

    def pids(self) -> dict[int, int | None]:
        return {i: self.pid(i) for i in self.node_ids}

    def process(self, node_id: int) -> subprocess.Popen | None:
        """The process handle of the node's JVM if this object started it."""
        return self.children.get(node_id)

    def running(self, node_id: int) -> bool:
        return self.pid(node_id) is not None

    def settings(self, **overrides) -> Settings:
        """Settings naming this cluster (bootstrap, broker count, state folder, jars)."""
        first = self.layouts[self.node_ids[0]]
        values = dict(kafka_bootstrap=self.bootstrap, kafka_brokers=len(self.layouts), state_dir=self.state,
                      kafka_version=first.version, kafka_jars_dir=first.jars_root)
        values.update(overrides)
        return Settings(**values)

    def kill(self, node_id: int, sig: signal.Signals = signal.SIGKILL, timeout: float = 30) -> int:
        """Sends `sig` (default SIGKILL: no clean shutdown) to the node by its PID and, unless the
        signal is SIGSTOP, waits until the process is gone; returns the PID."""
        pid = self.pid(node_id)
        if pid is None:
            raise RuntimeError(f"kafka node {node_id} is not running")
        os.kill(pid, sig)
        if sig in (signal.SIGSTOP, signal.SIGCONT):
            return pid
        child = self.children.get(node_id)
        if child is not None and child.pid == pid:
            child.wait(timeout)  # reaps it: no zombie keeps the PID file "alive"
        else:
            try:
                psutil.Process(pid).wait(timeout)
            except psutil.NoSuchProcess:
                pass
        return pid

    def start(self, node_id: int, wait: bool = True, timeout: float = 120) -> float:
        """Starts the node again with its data (same id, ports and folder); waits for its
        "Kafka Server started" unless `wait` is false. Returns seconds waited. Blocks: in async
        code use `start_async`."""
        layout = self.layouts[node_id]
        if layout.process.running():
            raise RuntimeError(f"kafka node {node_id} is already running (pid {layout.process.pid()})")
        started = kafka.launch(layout, heap=self.heap)
        self.children[node_id] = started.child
        return kafka.wait_started(started, timeout=timeout) if wait else 0.0

    async def start_async(self, node_id: int, timeout: float = 120) -> float:
        return await asyncio.to_thread(self.start, node_id, True, timeout)

    def stop(self) -> list[str]:
        """Stops every node by PID (SIGTERM, all at once; SIGKILL after 30 s)."""
        lines = kafka.stop_nodes([self.layouts[i] for i in self.node_ids])
        for child in self.children.values():
            if child.poll() is None:
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        return lines

    def __enter__(self) -> KafkaCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def admin(self, request_timeout_ms: int = 10000) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=request_timeout_ms)

    async def create_topic(self, name: str, partitions: int = 1, replication_factor: int | None = None,
                           min_insync_replicas: int | None = None, config: dict[str, str] | None = None) -> None:
        """Creates a topic; by default replicated to min(3, nodes) with min.insync.replicas=2 (three
        or more nodes) as the dev stack's topics are."""
        factor, min_isr = kafka.replication(len(self.layouts))
        configs = {"min.insync.replicas": str(min_insync_replicas or min_isr), **(config or {})}
        admin = self.admin()
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, num_partitions=partitions,
                                                replication_factor=replication_factor or factor,
                                                topic_configs=configs)])
        finally:
            await admin.close()
        for partition in range(partitions):  # every replica caught up: a kill then leaves two in sync
            await self.wait_in_sync(name, partition)

    async def partition_state(self, topic: str, partition: int) -> PartitionState | None:
        """Leader, replicas and in-sync replicas of a partition as the cluster's metadata says now
        (asked of any live node); None if the topic or partition is unknown."""
        admin = self.admin()
        await admin.start()
        try:
            described = await admin.describe_topics([topic])
        finally:
            await admin.close()
        for d in described:
            if d["topic"] != topic or d.get("error_code"):
                continue
            for p in d.get("partitions", []):
                if p["partition"] == partition:
                    leader = p["leader"] if p["leader"] >= 0 else None
                    return PartitionState(topic, partition, leader, tuple(p["replicas"]), tuple(p["isr"]))
        return None

    async def leader_of(self, topic: str, partition: int) -> int | None:
        """The node id of the partition's leader now (metadata can name a killed node until the
        controller fences it, `broker.session.timeout.ms` = 6 s here): see `wait_for_leader`."""
        state = await self.partition_state(topic, partition)
        return state.leader if state else None

    async def wait_for_leader(self, topic: str, partition: int, exclude: set[int] | frozenset[int] = frozenset(),
                              timeout: float = 60) -> int:
        """Waits until the partition has a leader that is not in `exclude`; returns its node id."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                leader = await self.leader_of(topic, partition)
            except Exception:  # noqa: BLE001 - a node going away mid-request: ask again
                leader = None
            if leader is not None and leader not in exclude:
                return leader
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}-{partition}: no leader outside {sorted(exclude)} after {timeout:.0f} s")
            await asyncio.sleep(0.2)

    async def wait_in_sync(self, topic: str, partition: int, replicas: set[int] | None = None,
                           timeout: float = 60) -> PartitionState:
        """Waits until the in-sync replicas include `replicas` (default: every replica)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                state = await self.partition_state(topic, partition)
            except Exception:  # noqa: BLE001
                state = None
            if state is not None and set(replicas or state.replicas) <= set(state.isr):
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}-{partition}: in-sync replicas {state and state.isr} after {timeout:.0f} s")
            await asyncio.sleep(0.2)


def cluster_layouts(state: Path, nodes: int = 3, host: str = "127.0.0.1", ports: list[int] | None = None,
                    version: str | None = None, jars_dir: Path | None = None) -> dict[int, kafka.KafkaLayout]:
    """Layouts of `nodes` cluster nodes in `state`: broker ports `ports` (default: free ones),
    each controller on its broker port + 1."""
    defaults = Settings()
    ports = ports or [free_port(neighbours=CONTROLLER_PORT_OFFSET) for _ in range(nodes)]
    voters = tuple((i, host, port + CONTROLLER_PORT_OFFSET) for i, port in enumerate(ports, 1))
    return {
        i: kafka.KafkaLayout(
            state=state.resolve(), jars_root=(jars_dir or defaults.kafka_jars_dir).expanduser(),
            version=version or defaults.kafka_version, host=host, port=port,
            controller_port=port + CONTROLLER_PORT_OFFSET, node_id=i, voters=voters,
        )
        for i, port in enumerate(ports, 1)
    }


def start_cluster(state: Path, nodes: int = 3, *, host: str = "127.0.0.1", ports: list[int] | None = None,
                  heap: str = "512m", timeout: float = 120, version: str | None = None,
                  jars_dir: Path | None = None, log=lambda line: None) -> KafkaCluster:
    """Starts a cluster of `nodes` combined broker+controller nodes in the folder `state` (data,
    logs and PID files below it) on free loopback ports; returns when every node has started.
    Nodes that started are stopped again if another fails."""
    state.mkdir(parents=True, exist_ok=True)
    cluster = KafkaCluster(state.resolve(), cluster_layouts(state, nodes, host, ports, version, jars_dir), heap)
    launched = kafka.launch_nodes([cluster.layouts[i] for i in cluster.node_ids], log=log, heap=heap)
    for started in launched:
        cluster.children[started.layout.node_id] = started.child
    try:
        for started in launched:
            kafka.wait_started(started, timeout=timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster

"""A three-node KRaft cluster keeps every acknowledged record when a partition leader is killed.

Its own cluster on free ports in a temporary folder (not the session's stack): replication 3,
min.insync.replicas=2; an idempotent producer with acks=all writes while the leader of
partition 0 gets SIGKILL, and goes on while the node is down and after it is started again. Every
record the producer acknowledged must then be in the log once, at the offset it was acknowledged
with, and no record twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.devstack.cluster import KafkaCluster
from tests.support.cluster import running_cluster

pytestmark = pytest.mark.integration

TOPIC = "cluster-failover"
PARTITIONS = 3


class Writer:
    """Sends numbered records (value = number, key = one of 97) until stopped, remembering the
    acknowledged ones' partition and offset."""

    def __init__(self, bootstrap: str):
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                         linger_ms=5, request_timeout_ms=30000, retry_backoff_ms=100)
        self.acked: dict[int, tuple[int, int]] = {}
        self.failed: dict[int, BaseException] = {}
        self.futures: list[asyncio.Future] = []
        self.sent = 0
        self.stopping = asyncio.Event()

    def _done(self, n: int, future: asyncio.Future) -> None:
        if future.exception() is not None:
            self.failed[n] = future.exception()
        else:
            meta = future.result()
            self.acked[n] = (meta.partition, meta.offset)

    async def run(self) -> None:
        await self.producer.start()
        try:
            while not self.stopping.is_set():
                for _ in range(50):
                    n = self.sent
                    future = await self.producer.send(TOPIC, value=str(n).encode(), key=f"k{n % 97}".encode())
                    future.add_done_callback(lambda f, n=n: self._done(n, f))
                    self.futures.append(future)
                    self.sent += 1
                await asyncio.sleep(0.01)
            await asyncio.gather(*self.futures, return_exceptions=True)
        finally:
            await self.producer.stop()

    async def until_acked(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count:
            assert time.monotonic() < deadline, f"{len(self.acked)} of {count} records acknowledged after {timeout} s"
            await asyncio.sleep(0.05)


async def read_log(bootstrap: str) -> dict[tuple[int, int], tuple[bytes, bytes]]:
    """Every record of the topic: (partition, offset) -> (key, value)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        records = {}
        deadline = time.monotonic() + 60
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, "reading the topic took over 60 s"
            for recs in (await consumer.getmany(timeout_ms=1000)).values():
                for r in recs:
                    records[(r.partition, r.offset)] = (r.key, r.value)
        return records
    finally:
        await consumer.stop()


async def min_insync_replicas(cluster: KafkaCluster) -> str:
    admin = cluster.admin()
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, TOPIC, {"min.insync.replicas": None})
        entries = (await admin.describe_configs([resource]))[0].to_object()["resources"][0]["config_entries"]
    finally:
        await admin.close()
    return next(e["config_value"] for e in entries if e["config_names"] == "min.insync.replicas")


async def test_no_acknowledged_record_is_lost_when_the_leader_is_killed(tmp_path: Path):
    began = time.monotonic()

    def phase(what: str) -> None:  # shown with -s or on failure
        print(f"{time.monotonic() - began:6.1f} s  {what}")

    with running_cluster(tmp_path / "cluster", nodes=3) as cluster:
        phase(f"cluster of 3 started: {cluster.bootstrap}")
        assert all(cluster.pids().values()) and len(cluster.bootstrap.split(",")) == 3
        await cluster.create_topic(TOPIC, partitions=PARTITIONS)
        state = await cluster.partition_state(TOPIC, 0)
        assert state is not None and sorted(state.replicas) == [1, 2, 3] and sorted(state.isr) == [1, 2, 3]
        assert await min_insync_replicas(cluster) == "2"

        phase("topic created, all replicas in sync")
        writer = Writer(cluster.bootstrap)
        writing = asyncio.create_task(writer.run())
        try:
            await writer.until_acked(3000)
            victim = await cluster.leader_of(TOPIC, 0)
            assert victim is not None
            killed_pid = cluster.kill(victim)  # SIGKILL mid-stream: no clean shutdown
            phase(f"leader {victim} of partition 0 killed after {len(writer.acked)} acknowledged")
            assert cluster.pid(victim) is None and cluster.process(victim).returncode is not None
            assert killed_pid not in cluster.pids().values()

            successor = await cluster.wait_for_leader(TOPIC, 0, exclude={victim})
            phase(f"node {successor} leads partition 0")
            # Two replicas left, min.insync.replicas=2: acks=all writes go on.
            await writer.until_acked(len(writer.acked) + 2000)
            assert (await cluster.partition_state(TOPIC, 0)).leader == successor

            phase(f"{len(writer.acked)} acknowledged with node {victim} down")
            await cluster.start_async(victim)  # the same node with its data
            phase(f"node {victim} started again")
            for partition in range(PARTITIONS):
                await cluster.wait_in_sync(TOPIC, partition)
            phase(f"node {victim} in sync again")
            await writer.until_acked(len(writer.acked) + 1000)
        finally:
            writer.stopping.set()
            await writing

        assert not writer.failed, f"{len(writer.failed)} sends failed, e.g. {next(iter(writer.failed.values()))!r}"
        assert len(writer.acked) == writer.sent

        phase(f"{writer.sent} sent, {len(writer.acked)} acknowledged")
        records = await read_log(cluster.bootstrap)
        phase(f"{len(records)} records read")
        numbers = Counter(int(value) for _, value in records.values())
        assert [n for n, times in numbers.items() if times > 1] == [], "records written twice"
        lost = [n for n, at in writer.acked.items()
                if records.get(at) != (f"k{n % 97}".encode(), str(n).encode())]
        assert lost == [], f"{len(lost)} acknowledged records missing or elsewhere, e.g. {lost[:5]}"

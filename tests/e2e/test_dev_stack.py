"""`dphp dev up / down / status` as a user runs them, on free ports in a folder of its own."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from services.devstack.process import free_port

pytestmark = pytest.mark.e2e

DPHP = [sys.executable, "-m", "services.cli"]


def run(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(DPHP + list(args), env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    kafka_port, pg_port = free_port(), free_port()
    return dict(
        os.environ,
        DPHP_STATE_DIR=str(tmp_path / "state"),
        DPHP_KAFKA_BOOTSTRAP=f"127.0.0.1:{kafka_port}",
        DPHP_DATABASE_URL=f"postgresql://dphp@127.0.0.1:{pg_port}/dphp",
        DPHP_WEB_PORT=str(free_port()),
    )


def status(env) -> dict[str, dict]:
    result = run(env, "dev", "status", "--format", "json")
    assert result.returncode == 0, result.stderr
    return {row["component"]: row for row in json.loads(result.stdout)}


def test_up_twice_status_down(env, tmp_path):
    # A jar cache of its own: the first `up` fetches the broker, the second does not.
    cache = tmp_path / "jars"
    env["DPHP_KAFKA_JARS_DIR"] = str(cache)
    first = run(env, "dev", "up", "--no-services")
    assert first.returncode == 0, first.stderr
    assert "fetching Kafka" in first.stderr
    up = status(env)
    assert up["kafka"]["up"] and up["postgres"]["up"]
    assert up["kafka"]["address"] == env["DPHP_KAFKA_BOOTSTRAP"]
    pids = {up["kafka"]["pid"], up["postgres"]["pid"]}
    assert None not in pids

    # The second `up` also starts the services; the broker and database are left alone.
    second = run(env, "dev", "up")
    assert second.returncode == 0, second.stderr
    assert "fetching Kafka" not in second.stderr
    assert "already running" in second.stderr
    now = status(env)
    assert {now["kafka"]["pid"], now["postgres"]["pid"]} == pids
    for service in ("registrations", "movements", "meetings", "report", "web"):
        assert now[service]["up"] and now[service]["pid"], now[service]
        pids.add(now[service]["pid"])
    third = run(env, "dev", "up")
    assert third.returncode == 0, third.stderr
    assert {row["pid"] for row in status(env).values() if row["pid"]} == pids

    down = run(env, "dev", "down")
    assert down.returncode == 0, down.stderr
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    after = status(env)
    assert not any(row["up"] for row in after.values()), after

    # After a stop, a start reuses the cached jars and the formatted storage.
    again = run(env, "dev", "up", "--no-services")
    assert again.returncode == 0, again.stderr
    assert "fetching Kafka" not in again.stderr
    assert run(env, "dev", "down").returncode == 0


def test_port_taken_gives_one_clear_line(env):
    port = int(env["DPHP_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = run(env, "dev", "up", "--no-services", timeout=60)
    try:
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert any(f"port 127.0.0.1:{port} is taken" in line for line in lines)
        assert "Traceback" not in result.stderr
    finally:
        run(env, "dev", "down")


def test_missing_java_gives_one_clear_line(env, tmp_path):
    # A PATH with python's folder but no java.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mvn",):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    env["PATH"] = f"{bin_dir}:{Path(sys.executable).parent}"
    result = run(env, "dev", "up", "--no-services", timeout=60)
    assert result.returncode == 1
    assert "java not found" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cluster_of_three_up_twice_status_down(env):
    # Three nodes on free port pairs, listed in DPHP_KAFKA_BOOTSTRAP as the README says.
    ports = [free_port() for _ in range(3)]
    env["DPHP_KAFKA_BROKERS"] = "3"
    env["DPHP_KAFKA_BOOTSTRAP"] = ",".join(f"127.0.0.1:{p}" for p in ports)
    try:
        first = run(env, "dev", "up", "--no-services")
        assert first.returncode == 0, first.stderr
        up = status(env)
        nodes = [f"kafka-{i}" for i in (1, 2, 3)]
        assert "kafka" not in up
        assert [up[n]["address"] for n in nodes] == [f"127.0.0.1:{p}" for p in ports]
        assert all(up[n]["up"] and up[n]["pid"] for n in nodes), up
        pids = {up[n]["pid"] for n in nodes}
        assert len(pids) == 3

        # The DPHP topics are replicated three times, at least two in sync for a write.
        check = subprocess.run([sys.executable, "-c", REPLICATION_CHECK], env=env, capture_output=True, text=True,
                               timeout=60)
        assert check.returncode == 0, check.stderr
        assert json.loads(check.stdout) == {"replicas": 3, "min_isr": "2"}

        second = run(env, "dev", "up", "--no-services")
        assert second.returncode == 0, second.stderr
        assert second.stderr.count("already running") >= 3
        assert {status(env)[n]["pid"] for n in nodes} == pids
    finally:
        down = run(env, "dev", "down")
    assert down.returncode == 0, down.stderr
    assert all(f"kafka-{i} stopped" in down.stderr for i in (1, 2, 3)), down.stderr
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not any(row["up"] for row in status(env).values())


REPLICATION_CHECK = """
import asyncio, json
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from services.common.settings import Settings
from services.common.topics import admin_client

async def main():
    s = Settings()
    admin = admin_client(s)
    await admin.start()
    try:
        [topic] = await admin.describe_topics([s.topic_registered])
        replicas = {len(p["replicas"]) for p in topic["partitions"]}
        res = ConfigResource(ConfigResourceType.TOPIC, s.topic_registered, {"min.insync.replicas": None})
        entries = (await admin.describe_configs([res]))[0].to_object()["resources"][0]["config_entries"]
    finally:
        await admin.close()
    print(json.dumps({"replicas": replicas.pop() if len(replicas) == 1 else sorted(replicas),
                      "min_isr": entries[0]["config_value"]}))

asyncio.run(main())
"""

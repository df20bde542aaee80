"""The local Kafka broker: jars from Maven Central, KRaft single node, started by PID."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from services.devstack.process import ManagedProcess, StackError, port_open, wait_until

INFRA_KAFKA = Path(__file__).resolve().parents[2] / "infra" / "kafka"
# Pinned so that a fresh cache gets the same plugin (an unpinned one may be ancient).
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


@dataclass(frozen=True)
class KafkaLayout:
    state: Path  # the stack's state folder
    jars_root: Path
    version: str
    host: str
    port: int
    controller_port: int

    @property
    def jars(self) -> Path:
        return self.jars_root / self.version

    @property
    def data(self) -> Path:
        return self.state / "kafka" / "data"

    @property
    def config(self) -> Path:
        return self.state / "kafka" / "server.properties"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name="kafka",
            pid_file=self.state / "pids" / "kafka.pid",
            log_file=self.state / "logs" / "kafka.log",
            cmdline_marker="kafka.Kafka",
        )


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise StackError(
            f"{', '.join(missing)} not found on PATH: the local Kafka broker needs Java 17+ and Maven "
            "(Debian: apt-get install openjdk-17-jre-headless maven)"
        )


def ensure_jars(layout: KafkaLayout, log=print) -> bool:
    """Fetches the broker's jars once into the cache; returns True if it fetched."""
    marker = layout.jars / ".complete"
    # The marker holds a digest of the POM: a changed dependency list fetches again.
    digest = hashlib.sha256((INFRA_KAFKA / "pom.xml").read_bytes()).hexdigest()[:16]
    if marker.exists() and marker.read_text().split() == [layout.version, digest]:
        return False
    require_tools("mvn")
    log(f"fetching Kafka {layout.version} jars from Maven Central into {layout.jars} (once)")
    layout.jars.mkdir(parents=True, exist_ok=True)
    cmd = [
        "mvn", "-q", "-B", "-f", str(INFRA_KAFKA / "pom.xml"),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime",
        f"-Dkafka.version={layout.version}",
        f"-DoutputDirectory={layout.jars}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise StackError(f"maven could not fetch kafka_2.13:{layout.version}: {' | '.join(tail)}")
    if not list(layout.jars.glob(f"kafka_2.13-{layout.version}.jar")):
        raise StackError(f"maven finished but kafka_2.13-{layout.version}.jar is missing in {layout.jars}")
    marker.write_text(f"{layout.version} {digest}\n")
    return True


def _cluster_id() -> str:
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def write_config(layout: KafkaLayout) -> None:
    layout.data.mkdir(parents=True, exist_ok=True)
    h, p, c = layout.host, layout.port, layout.controller_port
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{h}:{c}",
        "listeners": f"PLAINTEXT://{h}:{p},CONTROLLER://{h}:{c}",
        "advertised.listeners": f"PLAINTEXT://{h}:{p}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(layout.data),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "log.retention.hours": "-1",
        "log.segment.bytes": str(256 * 1024 * 1024),
        "log.cleaner.min.cleanable.ratio": "0.1",
    }
    layout.config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))


def _java_env(layout: KafkaLayout) -> dict[str, str]:
    env = dict(os.environ)
    env["KAFKA_LOG4J_OPTS"] = ""
    return env


def _classpath(layout: KafkaLayout) -> str:
    return str(layout.jars / "*")


def format_storage(layout: KafkaLayout) -> None:
    if (layout.data / "meta.properties").exists():
        return
    cmd = [
        "java", "-cp", _classpath(layout),
        f"-Dlog4j2.configurationFile={INFRA_KAFKA / 'log4j2.properties'}",
        "kafka.tools.StorageTool", "format", "--ignore-formatted",
        "-t", _cluster_id(), "-c", str(layout.config),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stdout + result.stderr).strip().splitlines()
        raise StackError(f"formatting Kafka storage failed: {lines[-1] if lines else result.returncode}")


def start(layout: KafkaLayout, log=print) -> str:
    """Starts the broker unless it runs; returns a one-line status."""
    proc = layout.process
    if proc.running():
        return f"kafka already running (pid {proc.pid()}) on {layout.host}:{layout.port}"
    require_tools("java")
    for port in (layout.port, layout.controller_port):
        if port_open(layout.host, port):
            raise StackError(
                f"port {layout.host}:{port} is taken by another process; stop it or point "
                "DPHP_KAFKA_BOOTSTRAP at a free port (or at that broker, to use it)"
            )
    ensure_jars(layout, log=log)
    write_config(layout)
    format_storage(layout)
    argv = [
        "java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={INFRA_KAFKA / 'log4j2.properties'}",
        "-cp", _classpath(layout), "kafka.Kafka", str(layout.config),
    ]
    child = proc.start(argv, env=_java_env(layout))
    pid = child.pid
    log_file = proc.log_file
    offset = log_file.stat().st_size if log_file.exists() else 0

    def started() -> bool:
        # The log line says the broker finished start-up; the port alone may open earlier.
        try:
            with open(log_file, "rb") as f:
                f.seek(max(0, offset - 1))
                return b"Kafka Server started" in f.read() and port_open(layout.host, layout.port)
        except OSError:
            return False

    # Our own child: poll() tells whether it died (its command line can be empty while the
    # java launcher re-executes itself, so the PID-file check is not used here).
    took = wait_until(started, timeout=120, alive=lambda: child.poll() is None, what="Kafka broker",
                      log_file=log_file)
    return f"kafka {layout.version} started (pid {pid}) on {layout.host}:{layout.port} in {took:.1f} s"


def stop(layout: KafkaLayout) -> str:
    if layout.process.stop():
        return "kafka stopped"
    return "kafka was not running"


if __name__ == "__main__":  # pragma: no cover - manual use
    sys.exit("use `dphp dev up`")

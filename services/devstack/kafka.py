"""The local Kafka broker: jars from Maven Central, KRaft (one node, or a cluster of combined
broker+controller nodes), started by PID."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

from services.devstack.private import write_private
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
    # A node of a cluster: its id and every voter's (node id, host, controller port). Empty
    # voters: the single node of the plain stack, in the folder `kafka` as always.
    node_id: int = 1
    voters: tuple[tuple[int, str, int], ...] = ()

    @property
    def clustered(self) -> bool:
        return bool(self.voters)

    @property
    def name(self) -> str:
        return f"kafka-{self.node_id}" if self.clustered else "kafka"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def jars(self) -> Path:
        return self.jars_root / self.version

    @property
    def data(self) -> Path:
        return self.state / self.name / "data"

    @property
    def config(self) -> Path:
        return self.state / self.name / "server.properties"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name=self.name,
            pid_file=self.state / "pids" / f"{self.name}.pid",
            log_file=self.state / "logs" / f"{self.name}.log",
            # A node of a cluster is told from its siblings by its own configuration file.
            cmdline_marker=str(self.config) if self.clustered else "kafka.Kafka",
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


def replication(nodes: int) -> tuple[int, int]:
    """Replication factor and min.insync.replicas for a cluster of `nodes` brokers: 3 and 2 from
    three brokers on (one may be down and writes with acks=all go on), else every broker and 1."""
    factor = min(3, nodes)
    return factor, 2 if factor >= 3 else 1


def write_config(layout: KafkaLayout, overrides: dict[str, str] | None = None) -> None:
    """Writes server.properties; `overrides` replace or add properties (the secure stack's listeners)."""
    layout.data.mkdir(parents=True, exist_ok=True)
    h, p, c = layout.host, layout.port, layout.controller_port
    nodes = len(layout.voters) or 1
    factor, min_isr = replication(nodes)
    voters = ",".join(f"{i}@{vh}:{vc}" for i, vh, vc in layout.voters) or f"1@{h}:{c}"
    props = {
        "process.roles": "broker,controller",
        "node.id": str(layout.node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{h}:{p},CONTROLLER://{h}:{c}",
        "advertised.listeners": f"PLAINTEXT://{h}:{p}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(layout.data),
        "num.partitions": "1",
        "offsets.topic.replication.factor": str(factor),
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.replication.factor": str(factor),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.replication.factor": str(factor),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "log.retention.hours": "-1",
        "log.segment.bytes": str(256 * 1024 * 1024),
        "log.cleaner.min.cleanable.ratio": "0.1",
    }
    if layout.clustered:
        props.update({
            # Topics created without explicit settings are replicated like the internal ones.
            "default.replication.factor": str(factor),
            "min.insync.replicas": str(min_isr),
            # A killed node is fenced, and its partitions get new leaders, after 6 s (default 9 s).
            "broker.heartbeat.interval.ms": "1000",
            "broker.session.timeout.ms": "6000",
        })
    props.update(overrides or {})
    text = "".join(f"{k}={v}\n" for k, v in props.items())
    if overrides:  # may hold passwords (JAAS, keystore): the owner's only, from its creation
        write_private(layout.config, text)
    else:
        layout.config.write_text(text)


def _java_env(layout: KafkaLayout) -> dict[str, str]:
    env = dict(os.environ)
    env["KAFKA_LOG4J_OPTS"] = ""
    return env


def _classpath(layout: KafkaLayout) -> str:
    return str(layout.jars / "*")


def format_storage(layout: KafkaLayout, cluster_id: str | None = None, args_file: Path | None = None) -> None:
    """Formats the node's storage once; `args_file`: more arguments of the formatter, one a line,
    read by the tool itself (`@file`: the SCRAM users' salted passwords never on a command line)."""
    if (layout.data / "meta.properties").exists():
        return
    cmd = [
        "java", "-cp", _classpath(layout),
        f"-Dlog4j2.configurationFile={INFRA_KAFKA / 'log4j2.properties'}",
        "kafka.tools.StorageTool", "format", "--ignore-formatted",
        "-t", cluster_id or _cluster_id(), "-c", str(layout.config), *([f"@{args_file}"] if args_file else []),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stdout + result.stderr).strip().splitlines()
        raise StackError(f"formatting Kafka storage failed: {lines[-1] if lines else result.returncode}")


def _check_ports_free(layout: KafkaLayout) -> None:
    for port in (layout.port, layout.controller_port):
        if port_open(layout.host, port):
            raise StackError(
                f"port {layout.host}:{port} is taken by another process; stop it or point "
                "DPHP_KAFKA_BOOTSTRAP at a free port (or at that broker, to use it)"
            )


@dataclass
class Launch:
    """A node's JVM just started: the child and where its log stood, to wait for it."""

    layout: KafkaLayout
    child: subprocess.Popen
    log_offset: int


def launch(layout: KafkaLayout, heap: str = "768m") -> Launch:
    """Starts the node's JVM (its configuration and storage in place) without waiting."""
    proc = layout.process
    log_file = proc.log_file
    offset = log_file.stat().st_size if log_file.exists() else 0
    argv = [
        "java", "-Xms256m", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={INFRA_KAFKA / 'log4j2.properties'}",
        "-cp", _classpath(layout), "kafka.Kafka", str(layout.config),
    ]
    return Launch(layout, proc.start(argv, env=_java_env(layout)), offset)


def wait_started(started: Launch, timeout: float = 120) -> float:
    """Waits for the node's "Kafka Server started" (after its launch) and its port; returns seconds."""
    layout, child, offset = started.layout, started.child, started.log_offset
    log_file = layout.process.log_file

    def ready() -> bool:
        # The log line says the broker finished start-up; the port alone may open earlier.
        try:
            with open(log_file, "rb") as f:
                f.seek(max(0, offset - 1))
                return b"Kafka Server started" in f.read() and port_open(layout.host, layout.port)
        except OSError:
            return False

    # Our own child: poll() tells whether it died (its command line can be empty while the
    # java launcher re-executes itself, so the PID-file check is not used here).
    what = "Kafka broker" if not layout.clustered else f"Kafka node {layout.node_id}"
    return wait_until(ready, timeout=timeout, alive=lambda: child.poll() is None, what=what, log_file=log_file)


def start(layout: KafkaLayout, log=print, overrides: dict[str, str] | None = None,
          format_args: Path | None = None) -> str:
    """Starts the broker unless it runs; returns a one-line status. `overrides` go into its
    server.properties, `format_args` is a file of the storage formatter's further arguments (the
    secure stack's SCRAM users)."""
    proc = layout.process
    if proc.running():
        return f"kafka already running (pid {proc.pid()}) on {layout.host}:{layout.port}"
    require_tools("java")
    _check_ports_free(layout)
    ensure_jars(layout, log=log)
    write_config(layout, overrides)
    format_storage(layout, args_file=format_args)
    started = launch(layout)
    took = wait_started(started)
    return f"kafka {layout.version} started (pid {started.child.pid}) on {layout.host}:{layout.port} in {took:.1f} s"


def cluster_id_of(layouts: list[KafkaLayout]) -> str:
    """The cluster id the nodes' storage was formatted with, or a new one if none was."""
    for layout in layouts:
        try:
            for line in (layout.data / "meta.properties").read_text().splitlines():
                if line.startswith("cluster.id="):
                    return line.split("=", 1)[1].strip()
        except OSError:
            continue
    return _cluster_id()


def launch_nodes(layouts: list[KafkaLayout], log=print, heap: str = "512m") -> list[Launch]:
    """Launches the nodes of a cluster that do not run, all at once (a node finishes start-up only
    when a majority of the voters is up), after writing their configuration and formatting their
    storage with the cluster's one id; returns the launches to wait for."""
    missing = [layout for layout in layouts if not layout.process.running()]
    if not missing:
        return []
    require_tools("java")
    for layout in missing:
        _check_ports_free(layout)
    ensure_jars(missing[0], log=log)
    cluster_id = cluster_id_of(layouts)
    for layout in missing:
        write_config(layout)
        format_storage(layout, cluster_id)
    return [launch(layout, heap=heap) for layout in missing]


def start_nodes(layouts: list[KafkaLayout], log=print, heap: str = "512m", timeout: float = 120) -> list[str]:
    """Starts the nodes of a cluster that do not run and waits for them; one status line per node."""
    lines = {
        layout.node_id: f"{layout.name} already running (pid {layout.process.pid()}) on {layout.address}"
        for layout in layouts if layout.process.running()
    }
    for started in launch_nodes(layouts, log=log, heap=heap):
        took = wait_started(started, timeout=timeout)
        lines[started.layout.node_id] = (
            f"{started.layout.name} (kafka {started.layout.version}) started (pid {started.child.pid}) "
            f"on {started.layout.address} in {took:.1f} s"
        )
    return [lines[layout.node_id] for layout in layouts]


def stop_nodes(layouts: list[KafkaLayout], timeout: float = 30.0) -> list[str]:
    """Stops the nodes by PID, all at once (one by one, the last ones would wait for a controller
    quorum that is gone); returns one line per node."""
    procs: dict[str, psutil.Process] = {}
    lines = {}
    for layout in layouts:
        pid = layout.process.pid()
        if pid is None:
            lines[layout.name] = f"{layout.name} was not running"
            layout.process.pid_file.unlink(missing_ok=True)
            continue
        try:
            proc = psutil.Process(pid)
            os.kill(pid, signal.SIGTERM)
            procs[layout.name] = proc
        except (psutil.NoSuchProcess, ProcessLookupError):
            lines[layout.name] = f"{layout.name} was not running"
    _, alive = psutil.wait_procs(list(procs.values()), timeout=timeout)
    for proc in alive:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    psutil.wait_procs(alive, timeout=10)
    for layout in layouts:
        if layout.name in procs:
            layout.process.pid_file.unlink(missing_ok=True)
            lines[layout.name] = f"{layout.name} stopped"
    return [lines[layout.name] for layout in layouts]


def stop(layout: KafkaLayout) -> str:
    if layout.process.stop():
        return "kafka stopped"
    return "kafka was not running"


if __name__ == "__main__":  # pragma: no cover - manual use
    sys.exit("use `dphp dev up`")

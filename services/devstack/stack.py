"""`dphp dev up / down / status`: the local broker, database and services as background processes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from services.common.settings import Settings, mask_url
from services.devstack import kafka, postgres
from services.devstack.process import ManagedProcess, StackError, port_open
from services.devstack.services import (SERVICE_NAMES, http_address, service_process, start_services,  # noqa: F401
                                       stop_services)

CONTROLLER_PORT_OFFSET = 1  # the KRaft controller listens next to the broker


@dataclass(frozen=True)
class Component:
    name: str
    address: str
    managed: bool  # started by this project (False: settings point elsewhere)
    pid: int | None
    up: bool
    http: str | None = None  # a service's /metrics and /health/* address


def kafka_addresses(settings: Settings) -> list[tuple[str, int]]:
    """The broker addresses of the local stack: DPHP_KAFKA_BOOTSTRAP's, in order, for the first
    nodes; with DPHP_KAFKA_BROKERS above the number listed, the others follow the last one listed
    (its port + 2, + 4, ...: each node's controller listens on its broker port + 1)."""
    listed = []
    for item in settings.kafka_bootstrap.split(","):
        host, port = item.strip().rsplit(":", 1)
        listed.append((host, int(port)))
    while len(listed) < settings.kafka_brokers:
        host, port = listed[-1]
        listed.append((host, port + 2))
    return listed


def kafka_layout(settings: Settings) -> kafka.KafkaLayout:
    """The single broker of the plain stack; with a cluster, its first node."""
    if settings.kafka_brokers > 1:
        return kafka_layouts(settings)[0]
    host, port = kafka_addresses(settings)[0]
    return kafka.KafkaLayout(
        state=settings.state_dir.resolve(), jars_root=settings.kafka_jars_dir.expanduser(),
        version=settings.kafka_version, host=host, port=port,
        controller_port=port + CONTROLLER_PORT_OFFSET,
    )


def kafka_layouts(settings: Settings) -> list[kafka.KafkaLayout]:
    """Every Kafka node of the local stack (one for the plain stack)."""
    if settings.kafka_brokers == 1:
        return [kafka_layout(settings)]
    addresses = kafka_addresses(settings)[: settings.kafka_brokers]
    voters = tuple((i, host, port + CONTROLLER_PORT_OFFSET) for i, (host, port) in enumerate(addresses, 1))
    return [
        kafka.KafkaLayout(
            state=settings.state_dir.resolve(), jars_root=settings.kafka_jars_dir.expanduser(),
            version=settings.kafka_version, host=host, port=port,
            controller_port=port + CONTROLLER_PORT_OFFSET, node_id=i, voters=voters,
        )
        for i, (host, port) in enumerate(addresses, 1)
    ]


def _cluster_nodes_started(settings: Settings) -> list[kafka.KafkaLayout]:
    """The cluster nodes this state folder has PID files of, whatever DPHP_KAFKA_BROKERS says now,
    so that `down` stops what any `up` started. (A node's PID check needs only its folder.)"""
    found = sorted(
        int(p.stem.split("-", 1)[1]) for p in (settings.state_dir.resolve() / "pids").glob("kafka-*.pid")
        if p.stem.split("-", 1)[1].isdigit()
    )
    return [
        kafka.KafkaLayout(state=settings.state_dir.resolve(), jars_root=Path("."), version="", host="", port=0,
                          controller_port=0, node_id=i, voters=((i, "", 0),))
        for i in found
    ]


def postgres_layout(settings: Settings) -> postgres.PostgresLayout:
    url = urlparse(settings.database_url)
    return postgres.PostgresLayout(
        state=settings.state_dir.resolve(), host=url.hostname or "127.0.0.1", port=url.port or 5432,
        database=(url.path or "/dphp").lstrip("/") or "dphp", user=url.username or "dphp",
    )


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def manages_kafka(settings: Settings) -> bool:
    # Only an address on this machine can be ours to start; the broker's own PID file says
    # whether this state folder started it.
    return kafka_layout(settings).host in LOOPBACK


def manages_postgres(settings: Settings) -> bool:
    return postgres_layout(settings).host in LOOPBACK


def _kafka_answers(settings: Settings) -> bool:
    from services.common.topics import admin_client

    async def probe() -> bool:
        admin = admin_client(settings)
        try:
            await asyncio.wait_for(admin.start(), 5)
            await admin.close()
            return True
        except Exception:
            return False

    return asyncio.run(probe())


def up(settings: Settings, log=print, with_services: bool = True, with_monitoring: bool = False) -> None:
    from services.common.db import migrate
    from services.common.topics import ensure_topics
    from services.devstack import monitoring

    if with_monitoring:
        monitoring.check_installed()  # before anything starts

    kl, pl = kafka_layout(settings), postgres_layout(settings)
    if not manages_kafka(settings):
        log(f"kafka: using {settings.kafka_bootstrap} (not on this machine; nothing started)")
    elif settings.kafka_brokers > 1:
        _cluster_up(settings, log)
    elif not kl.process.running() and port_open(kl.host, kl.port) and _kafka_answers(settings):
        log(f"kafka: using the broker already at {settings.kafka_bootstrap} (nothing started)")
    else:
        log(kafka.start(kl, log=log))
    if not manages_postgres(settings):
        log(f"postgres: using {mask_url(settings.database_url)} (not on this machine; nothing started)")
    elif not pl.process.running() and port_open(pl.host, pl.port) and postgres.answers(pl):
        log(f"postgres: using the server already at {mask_url(settings.database_url)} (nothing started)")
    else:
        log(postgres.start(pl, log=log))
    created = asyncio.run(ensure_topics(settings))
    log(f"topics: created {', '.join(created)}" if created else "topics: all present")
    applied = asyncio.run(migrate(settings))
    log(f"migrations: applied {', '.join(applied)}" if applied else "migrations: up to date")
    if with_services:

        for line in start_services(settings):
            log(line)
    if with_monitoring:
        monitoring.up(settings, log)
    else:
        monitoring.refresh(settings)


def _cluster_up(settings: Settings, log) -> None:
    layouts = kafka_layouts(settings)
    single = kafka_layout(settings.model_copy(update={"kafka_brokers": 1})).process
    if single.running():
        raise StackError(f"a single Kafka broker of this state folder runs (pid {single.pid()}); "
                         "stop it with `dphp dev down` before starting a cluster")
    ours = any(layout.process.running() for layout in layouts)
    if not ours and port_open(layouts[0].host, layouts[0].port) and _kafka_answers(settings):
        log(f"kafka: using the broker already at {settings.kafka_bootstrap} (nothing started)")
        return
    for line in kafka.start_nodes(layouts, log=log):
        log(line)


def down(settings: Settings, log=print) -> None:
    from services.devstack import monitoring

    stopped = monitoring.down(settings)
    if stopped:
        log(stopped)

    for line in stop_services(settings):
        log(line)
    log(postgres.stop(postgres_layout(settings)))
    # Every broker this state folder started: the single one, cluster nodes, or both.
    single = kafka_layout(settings.model_copy(update={"kafka_brokers": 1}))
    if settings.kafka_brokers == 1 or single.process.running():
        log(kafka.stop(single))
    nodes = _cluster_nodes_started(settings)
    if nodes:
        for line in kafka.stop_nodes(nodes):
            log(line)
    from services.devstack import secure

    if secure.started(settings):  # `dphp dev up --secure` of this state folder
        secure.down(settings, log=log)


def status(settings: Settings) -> list[Component]:

    pl = postgres_layout(settings)
    ppid = pl.process.pid()
    comps = []
    for kl in kafka_layouts(settings):
        kpid = kl.process.pid()
        # The plain stack shows its broker as DPHP_KAFKA_BOOTSTRAP says it; a cluster each node's address.
        address = kl.address if kl.clustered else settings.kafka_bootstrap
        comps.append(Component(kl.name, address, kpid is not None, kpid, port_open(kl.host, kl.port)))
    comps.append(
        Component("postgres", mask_url(settings.database_url), ppid is not None, ppid, port_open(pl.host, pl.port))
    )
    for name in SERVICE_NAMES:
        proc = service_process(settings, name)
        pid = proc.pid()
        where = f"topic {settings.topic_recap}" if name == "report" else f"group {settings.group_id(name)}"
        http = http_address(settings, name)
        if name == "web":
            where = f"http://{settings.web_host}:{settings.web_port}/"
        comps.append(Component(name, where, True, pid, pid is not None, http))
    from services.devstack import monitoring

    prometheus = monitoring.process(settings).pid()
    if prometheus is not None:
        comps.append(Component("prometheus", monitoring.url(settings), True, prometheus, True,
                               monitoring.url(settings)))
    return comps


def state_path(settings: Settings) -> Path:
    return settings.state_dir.resolve()

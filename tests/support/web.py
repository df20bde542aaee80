"""A published sample with the services and the web service running, for the web tests."""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from services.common.settings import Settings
from services.common.topics import ensure_topics
from services.devstack.process import free_port
from services.devstack.services import READER_ROLE, url_with_user
from tests.conftest import unique_settings
from tests.eventsets import event_set
from tests.support.kafka import produce
from tests.support.services import ServiceProcess, start_services, wait_converged

SERVICES = ("registrations", "movements", "meetings", "report")


@dataclass
class WebStack:
    settings: Settings
    url: str
    events: list
    processes: list[ServiceProcess]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def start_web_stack(stack, log_dir: Path, seed: int = 14, voters: int = 400) -> WebStack:
    settings = unique_settings(stack, report_interval_s=0.3, batch_max_records=500, web_port=free_port())
    await ensure_topics(settings)
    events = event_set(seed, voters=voters)
    await produce(settings, events)
    processes = start_services(settings, log_dir, SERVICES)
    # The web service logs in as the reader role, as `dphp dev up` starts it: its views suffice.
    as_reader = settings.model_copy(update={"database_url": url_with_user(settings.database_url, READER_ROLE)})
    processes.append(ServiceProcess(as_reader, "web", log_dir).start())
    await wait_converged(settings, processes=processes)
    url = f"http://127.0.0.1:{settings.web_port}"
    wait_http(url + "/api/freshness")
    return WebStack(settings, url, events, processes)


def stop_web_stack(web: WebStack) -> None:
    for p in web.processes:
        p.stop()

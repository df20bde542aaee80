"""A service started while the broker is down waits for it instead of exiting (the fault campaign's
replay runs restarted services during a broker outage: they exited with "Unable to bootstrap")."""

from __future__ import annotations

import time

import pytest

from services.devstack.process import free_port
from tests.conftest import unique_settings
from tests.support.services import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.mark.parametrize("service", ["registrations", "report"])
def test_a_service_started_without_a_broker_waits_for_it(stack, tmp_path, service):
    settings = unique_settings(stack, kafka_bootstrap=f"127.0.0.1:{free_port()}")  # nothing listens there
    proc = ServiceProcess(settings, service, tmp_path).start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.proc.poll() is None:
            time.sleep(0.5)
        assert proc.proc.poll() is None, f"{service} exited:\n{proc.output()[-3000:]}"
        out = proc.output()
        assert "Kafka unavailable" in out and "Traceback" not in out, out[-3000:]
    finally:
        proc.stop()

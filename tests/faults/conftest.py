"""The fault campaign's fixtures: its own stack (never the development one), the event set, and
the table printed at the end of the session and written to a file."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults import campaign
from tests.faults.eventset import CampaignEvents, build
from tests.faults.harness import OwnStack, Outcome, own_stack, table

OUTCOMES: list[Outcome] = []
_STARTED = time.monotonic()


def _state_dir(what: str) -> Path:
    # Not below pytest's temporary folder: any pytest session of root resets /tmp/pytest-of-root
    # to mode 700, and PostgreSQL (run as `postgres`) then cannot reach its data directory after a
    # crash restart ("could not stat data directory: Permission denied").
    state = Path(tempfile.mkdtemp(prefix=f"dphp-faults-{what}-"))
    state.chmod(0o755)
    return state


def _remove(state: Path) -> None:
    if os.environ.get("DPHP_FAULTS_KEEP", "") in ("", "0"):
        shutil.rmtree(state, ignore_errors=True)
    else:
        print(f"kept {state}")


@pytest.fixture(scope="session")
def faults_stack() -> Iterator[OwnStack]:
    # Always a stack of the campaign's own: its faults kill brokers and databases.
    state = _state_dir("stack")
    stack = own_stack(state)
    try:
        yield stack
    finally:
        stack.stop()
        _remove(state)


@pytest.fixture(scope="session")
def faults_cluster():
    """A three-broker KRaft cluster of the campaign's own (started only if a scenario needs it)."""
    from services.devstack.cluster import start_cluster

    state = _state_dir("cluster")
    cluster = start_cluster(state, 3)
    try:
        yield cluster
    finally:
        cluster.stop()
        _remove(state)


@pytest.fixture(scope="session")
def campaign_events() -> CampaignEvents:
    t = time.monotonic()
    ce = build(campaign.SEED, campaign.EVENTS, tps_capacity=campaign.TPS_CAPACITY)
    print(f"\nevent set: {len(ce.deliveries):,} records ({len(ce.valid):,} distinct valid, "
          f"{len(ce.invalid):,} invalid), built and folded in {time.monotonic() - t:.1f} s", flush=True)
    return ce


def write_report() -> str:
    text = (f"# Fault campaign, {'short' if campaign.SHORT else 'full'} version\n\n"
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; seed {campaign.SEED}; "
            f"{campaign.EVENTS:,} events a run (target); {time.monotonic() - _STARTED:.0f} s so far.\n\n"
            f"{campaign.DEFINITIONS}\n\n{table(OUTCOMES)}\n")
    path = Path(campaign.REPORT)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not OUTCOMES:
        return
    text = write_report()
    terminalreporter.write_sep("=", "fault campaign")
    terminalreporter.write_line(text)
    terminalreporter.write_line(f"(written to {campaign.REPORT})")

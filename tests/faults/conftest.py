"""The fault campaign's fixtures: its own stack (never the development one), the event set, and
the table printed at the end of the session and written to a file."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults import campaign
from tests.faults.eventset import CampaignEvents, build
from tests.faults.harness import OwnStack, Outcome, own_stack, table

OUTCOMES: list[Outcome] = []
_STARTED = time.monotonic()


@pytest.fixture(scope="session")
def faults_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnStack]:
    # Always a stack of the campaign's own: its faults kill brokers and databases.
    stack = own_stack(Path(tmp_path_factory.mktemp("faults-stack")))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def faults_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A three-broker KRaft cluster of the campaign's own (started only if a scenario needs it)."""
    from services.devstack.cluster import start_cluster

    cluster = start_cluster(Path(tmp_path_factory.mktemp("faults-cluster")), 3)
    try:
        yield cluster
    finally:
        cluster.stop()


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

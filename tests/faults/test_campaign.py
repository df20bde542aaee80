"""The fault campaign (`make faults`; `make faults-short` for CI): see tests/faults/campaign.py."""

from __future__ import annotations

import pytest

from tests.faults import campaign
from tests.faults.conftest import OUTCOMES, write_report

pytestmark = [pytest.mark.faults, pytest.mark.timeout(3600)]


@pytest.mark.parametrize(("scenario", "rep"), campaign.selected(),
                         ids=[f"{s.name}-{r}" for s, r in campaign.selected()])
async def test_scenario(faults_stack, campaign_events, scenario, rep, tmp_path, request):
    print(f"\n{scenario.name} #{rep}", flush=True)
    cluster = request.getfixturevalue("faults_cluster") if scenario.cluster else None
    outcome = await campaign.run(faults_stack, campaign_events, scenario, rep, tmp_path, cluster)
    OUTCOMES.append(outcome)
    write_report()
    print(f"{scenario.name} #{rep}: {outcome.problems() or 'ok'} in {outcome.seconds:.0f} s; logs in {tmp_path}",
          flush=True)
    assert outcome.ok, (f"{scenario.name} #{rep}: {outcome.problems()} "
                        f"(faults: {', '.join(outcome.faults)}; logs in {tmp_path})")

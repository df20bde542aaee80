"""bench/scale.py's arithmetic: percentiles, the line of the issue's format, the estimate."""

from __future__ import annotations

import pytest

from bench.scale import SizeFigures, estimate, percentiles

pytestmark = pytest.mark.unit


def test_percentiles_in_ms() -> None:
    samples = [i / 1000 for i in range(1, 101)]  # 1 .. 100 ms
    p50, p99 = percentiles(samples)
    assert p50 == pytest.approx(50.5) and p99 == pytest.approx(99)
    assert percentiles([0.002]) == (pytest.approx(2), pytest.approx(2))


def _fig(events: int, db_mb: float) -> SizeFigures:
    f = SizeFigures(events, events=events, sample_mb=events * 0.0006, generate_s=events / 60_000,
                    publish=50_000, e2e=40_000, replay=20_000, db_mb=db_mb, kafka_mb=events * 0.00063)
    f.rss_mb = {"registrations": 180.4, "movements": 120.0}
    f.report_ms = {"provinsi": (3.0, 9.5), "tps": (4.0, 12.25)}
    f.look_ms = 800.4
    return f


def test_line_has_the_issue_format() -> None:
    line = _fig(100_000, 65).line()
    assert line == ("size=100000 publish=50000 e2e=40000 replay=20000 db_mb=65 kafka_mb=63 rss_max_mb=180 "
                    "report_p99_ms=12.2 look_ms=800")


def test_estimate_extrapolates_growth_not_fixed_costs() -> None:
    text = estimate([_fig(20_000, 20), _fig(100_000, 65)])
    # 45 MB per 80,000 events beyond the fixed part: 65 + 45 / 80,000 x 28.3 M = 15.6 GB
    assert "projection 16 GB" in text
    assert "replay 24 min" in text  # 28.4 M / 20,000 per s

"""bench/run.py's figure of e2e/sink: the median of alternated pairs, reported consistently."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from bench.run import Figures, Pair, headline, last_line, parse_args

pytestmark = pytest.mark.unit


def _fig(*pairs: tuple[float, float]) -> Figures:
    fig = Figures(started=dt.datetime(2026, 12, 4, tzinfo=dt.timezone.utc), command="")
    fig.pairs = [Pair(i + 1, catchup_first=i % 2 == 0, e2e=e2e, sink=sink) for i, (e2e, sink) in enumerate(pairs)]
    return fig


def test_the_median_pair_is_the_middle_ratio_not_the_middle_rates() -> None:
    # Ratios 0.60, 0.80, 0.70: the median pair is the third, although its e2e is the lowest.
    fig = _fig((60_000, 100_000), (64_000, 80_000), (56_000, 80_000))
    assert fig.median_pair is fig.pairs[2]
    assert headline(fig) == (56_000, 80_000)


def test_an_even_number_of_pairs_takes_the_lower_middle() -> None:
    fig = _fig((70_000, 100_000), (60_000, 100_000), (80_000, 100_000), (90_000, 100_000))
    assert fig.median_pair.ratio == pytest.approx(0.7)


def test_the_last_line_is_consistent_with_itself() -> None:
    fig = _fig((60_000, 100_000), (64_000, 80_000), (56_000, 80_000))
    line = dict(item.split("=") for item in last_line(fig).split())
    assert float(line["e2e/sink"]) == pytest.approx(float(line["e2e"]) / float(line["sink"]), abs=0.005)
    assert line["e2e/sink"] == "0.70"
    assert math.isnan(float(line["e2e/naive"]))  # no naive baseline measured


def test_three_pairs_by_default_and_at_least_one() -> None:
    assert parse_args([]).pairs == 3
    with pytest.raises(SystemExit):
        parse_args(["--pairs", "0"])

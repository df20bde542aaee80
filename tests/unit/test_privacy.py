"""The privacy threshold (CONTRACT 5): a pure function over the fold's recap rows."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.settings import Settings
from services.projection.fold import Projection
from services.projection.privacy import WITHHELD_FIELDS, public_row, public_rows, withheld
from services.projection.recap import LEVELS, comparable_report, report_json
from tests.strategies import event_sets

pytestmark = pytest.mark.unit


def _rows(events) -> list[dict]:
    p = Projection()
    p.apply(events)
    return report_json(p.recap())


@settings(max_examples=150, deadline=None)
@given(event_sets(max_people=12), st.integers(min_value=0, max_value=15))
def test_only_small_tps_lose_their_disability_figures(events, n) -> None:
    exact = _rows(events)
    public = public_rows(exact, n)
    assert len(public) == len(exact)
    for before, after in zip(exact, public, strict=True):
        small = before["level"] == "tps" and before["male"] + before["female"] < n
        for field, value in before.items():
            if small and field in ("disabled", "disability_by_type"):
                assert after[field] is None
            else:
                assert after[field] == value, (before["level"], field)
    # Nothing above TPS changes, and the desa rows are still the sums of their exact TPS rows.
    above = [r for r in public if r["level"] != "tps"]
    assert above == [r for r in exact if r["level"] != "tps"]
    for desa in (r for r in public if r["level"] == "desa"):
        tps = [r for r in exact if r["level"] == "tps" and r["region_code"].startswith(desa["region_code"] + "/")]
        assert desa["disabled"] == sum(r["disabled"] for r in tps)
        assert desa["total"] == sum(r["total"] for r in tps)


@settings(max_examples=100, deadline=None)
@given(event_sets(max_people=12))
def test_a_threshold_of_zero_withholds_nothing(events) -> None:
    exact = _rows(events)
    assert public_rows(exact, 0) == exact
    assert comparable_report(public_rows(exact, 0)) == comparable_report(exact)


def _tps(male: int, female: int) -> dict:
    return {"level": "tps", "region_code": "33.16.01.2001/001", "male": male, "female": female,
            "total": male + female, "disabled": 2, "disability_by_type": {"1": 2}, "under_age": 3}


@pytest.mark.parametrize("male,female,hidden", [(4, 5, True), (5, 5, False), (0, 0, True), (10, 0, False)])
def test_the_boundary_counts_eligible_voters_only(male, female, hidden) -> None:
    row = public_row(_tps(male, female), 10)
    assert (row["disabled"] is None) is hidden
    assert (row["disability_by_type"] is None) is hidden
    assert row["under_age"] == 3 and row["total"] == male + female  # under-age voters do not count


def test_flat_figures_and_every_level() -> None:
    flat = {"male": 1, "female": 1, "disabled": 1, **{f"d{k}": 0 for k in range(1, 7)}}
    assert all(public_row(flat, 10, level="tps")[f] is None for f in WITHHELD_FIELDS if f in flat)
    assert public_row(flat, 10, level="desa") == flat
    assert [lvl for lvl in LEVELS if withheld(lvl, 0, 1)] == ["tps"]


def test_the_setting_defaults_to_ten(monkeypatch) -> None:
    assert Settings().privacy_min_voters == 10
    monkeypatch.setenv("DPHP_PRIVACY_MIN_VOTERS", "25")
    assert Settings().privacy_min_voters == 25


def _message(level: str, code: str, **changes) -> dict:
    doc = {"level": level, "region_code": code, "name": "x", "male": 1, "female": 2, "total": 3, "tps_count": 1,
           "tps_loksus_count": 0, "new_voters": 0, "disabled": None, "disability_by_type": None, "under_age": 0,
           "over_capacity_tps": 0, "as_of": None, "published_at": "2024-08-01T17:00:01+07:00"}
    return {**doc, **changes}


def test_the_recap_message_allows_null_disability_figures_at_tps_only() -> None:
    import json

    import jsonschema
    from pydantic import ValidationError

    from schemas.generate import JSON_DIR
    from schemas.recap import Recap

    schema = json.loads((JSON_DIR / "recap.v1.json").read_text())
    check = jsonschema.Draft202012Validator(schema)
    tps = _message("tps", "33.16.01.2001/001")
    assert Recap.model_validate_json(json.dumps(tps)).disability_by_type is None
    assert list(check.iter_errors(tps)) == []
    for bad in (_message("desa", "33.16.01.2001"), _message("tps", "33.16.01.2001/001", disabled=0)):
        with pytest.raises(ValidationError):
            Recap.model_validate_json(json.dumps(bad))
    assert list(check.iter_errors(_message("desa", "33.16.01.2001")))  # the JSON Schema says so too

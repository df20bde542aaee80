"""The report service's choice of recaps to publish, and their messages (no I/O)."""

from __future__ import annotations

import datetime as dt

import pytest

from schemas.recap import Recap
from services.report.publisher import FIGURE_COLUMNS, changed_regions, recap_message

pytestmark = pytest.mark.unit


def figures(total: int) -> dict[str, int]:
    f = dict.fromkeys(FIGURE_COLUMNS, 0)
    f.update(male=total, total=total, tps_count=1, d3=total)
    return f


def test_only_changed_new_and_emptied_regions_are_published():
    published = {"33.16": ("kabupaten", figures(5)), "33.16.01": ("kecamatan", figures(5)),
                 "33.16.02": ("kecamatan", figures(0) | {"tps_count": 0, "male": 0, "d3": 0}),
                 "33.16.03": ("kecamatan", figures(2))}
    current = {"33.16": ("kabupaten", figures(6)), "33.16.01": ("kecamatan", figures(5)),
               "33.16.04": ("kecamatan", figures(1))}
    out = changed_regions(current, published, min_voters=0)
    assert [code for _, code, _ in out] == ["33.16", "33.16.03", "33.16.04"]
    assert dict((code, f) for _, code, f in out)["33.16.03"] == dict.fromkeys(FIGURE_COLUMNS, 0)
    assert changed_regions(current, {**published, **{c: v for c, v in current.items()}}, min_voters=0)[0][1] == "33.16.03"
    assert changed_regions({}, {}, min_voters=0) == []


def test_recap_message_is_a_valid_recap_with_the_region_name():
    now = dt.datetime(2024, 8, 1, 10, 0, tzinfo=dt.timezone.utc)
    msg = recap_message("tps", "33.16.01.2001/007", figures(4), None, now)
    assert msg.name.startswith("TPS 007 ") and msg.total == 4 and msg.disability_by_type.mental == 4
    assert Recap.from_json(msg.to_json()) == msg
    assert recap_message("nasional", "ID", figures(4), now, now).name == "Indonesia"


def test_small_tps_are_published_withheld_and_a_withheld_change_alone_publishes_nothing():
    tps = "33.16.01.2001/001"
    current = {tps: ("tps", figures(9)), "33.16.01.2001": ("desa", figures(9))}
    out = {code: f for _, code, f in changed_regions(current, {}, min_voters=10)}
    assert out[tps]["disabled"] is None and out[tps]["d3"] is None and out[tps]["male"] == 9
    assert out["33.16.01.2001"]["d3"] == 9  # desa level stays exact
    now = dt.datetime(2024, 8, 1, 10, 0, tzinfo=dt.timezone.utc)
    msg = recap_message("tps", tps, out[tps], None, now)
    assert msg.disabled is None and msg.disability_by_type is None and Recap.from_json(msg.to_json()) == msg
    # Recorded as published; then only the hidden figure changes at the TPS (and the exact desa).
    published = {code: (level, out[code]) for code, (level, _) in current.items()}
    changed = {"tps": figures(9) | {"d3": 8, "d1": 1}, "desa": figures(9) | {"d3": 8, "d1": 1}}
    later = {code: (level, changed[level]) for code, (level, _) in current.items()}
    assert [code for _, code, _ in changed_regions(later, published, min_voters=10)] == ["33.16.01.2001"]
    # Ten voters: exact; the TPS losing its voters gets a zero recap, withheld like any small TPS.
    assert changed_regions({tps: ("tps", figures(10))}, {}, min_voters=10)[0][2]["d3"] == 10
    emptied = changed_regions({}, {tps: ("tps", figures(10))}, min_voters=10)
    assert emptied[0][2]["total"] == 0 and emptied[0][2]["disabled"] is None

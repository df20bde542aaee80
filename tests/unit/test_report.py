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
    out = changed_regions(current, published)
    assert [code for _, code, _ in out] == ["33.16", "33.16.03", "33.16.04"]
    assert dict((code, f) for _, code, f in out)["33.16.03"] == dict.fromkeys(FIGURE_COLUMNS, 0)
    assert changed_regions(current, {**published, **{c: v for c, v in current.items()}})[0][1] == "33.16.03"
    assert changed_regions({}, {}) == []


def test_recap_message_is_a_valid_recap_with_the_region_name():
    now = dt.datetime(2024, 8, 1, 10, 0, tzinfo=dt.timezone.utc)
    msg = recap_message("tps", "33.16.01.2001/007", figures(4), None, now)
    assert msg.name.startswith("TPS 007 ") and msg.total == 4 and msg.disability_by_type.mental == 4
    assert Recap.from_json(msg.to_json()) == msg
    assert recap_message("nasional", "ID", figures(4), now, now).name == "Indonesia"

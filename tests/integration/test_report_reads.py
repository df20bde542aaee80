"""`dphp report`'s reads of a region (issue #15: reads at a province's size): a kabupaten or a
smaller region is grouped from its own TPS rows (`recap_as_of` at the end of time) and gives the
rows of the recap views over every TPS, and the fold's, at every level, exact and public."""

from __future__ import annotations

import pytest

from services.projection import queries
from services.projection.privacy import public_rows
from services.projection.recap import LEVELS, comparable_report, level_of, region_contains, report_json
from tests.integration.test_privacy import MIN_VOTERS, projection, stored_and_folded  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


async def test_a_regions_report_is_the_views_rows_and_the_folds_at_every_level(projection, settings):  # noqa: F811
    store, reader = projection
    s = settings.db_schema
    _, fold = await stored_and_folded(store, settings, 37)
    exact = comparable_report(report_json(fold.recap()))
    public = comparable_report(public_rows(report_json(fold.recap()), MIN_VOTERS))
    regions = sorted({code for level, code in exact if level != "tps"} | {next(c for lv, c in exact if lv == "tps")})
    assert {level_of(r) for r in regions} == set(LEVELS)  # a region of every level, a TPS among them
    checked = 0
    for conn, view, want in ((store.conn, "recap_full", exact), (reader, "recap_public", public)):
        for region in regions:
            for level in LEVELS[: LEVELS.index(level_of(region)) + 1]:  # the region's level and those below
                got = comparable_report(await queries.report(conn, s, region, level, public=view == "recap_public"))
                rows = await conn.fetch(f"SELECT * FROM {s}.{view} WHERE level = $1", level)
                views = {k: v for k, v in comparable_report([queries._row(r) for r in rows]).items()
                         if region_contains(region, k[1])}
                assert got == views, (view, region, level)
                assert got == {k: v for k, v in want.items() if k[0] == level and region_contains(region, k[1])}
                checked += len(got)
    assert checked > 2 * len(regions)  # rows compared, not only empty answers

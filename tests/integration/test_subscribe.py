"""`dphp subscribe` on a recap topic that holds records no report service wrote (found by review):
a tombstone and another producer's bytes are skipped with a warning, the recaps are shown."""

from __future__ import annotations

import json

import pytest

from schemas.recap import DisabilityByType, Recap
from services.common.topics import ensure_topics
from tests.conftest import unique_settings
from tests.support.kafka import produce
from tests.support.services import dphp

pytestmark = pytest.mark.integration


def recap(code: str, total: int) -> Recap:
    return Recap.model_validate({
        "level": "desa", "region_code": code, "name": "", "male": total, "female": 0, "total": total,
        "tps_count": 1, "tps_loksus_count": 0, "new_voters": 0, "disabled": 0,
        "disability_by_type": DisabilityByType.zero().as_dict(), "under_age": 0, "over_capacity_tps": 0,
        "as_of": None, "published_at": "2024-08-01T10:00:00+07:00"})


async def test_records_that_are_not_recaps_are_skipped_with_a_warning(stack):
    settings = unique_settings(stack)
    await ensure_topics(settings)
    first, second = recap("33.16.01.2001", 7), recap("33.16.01.2002", 9)
    t = settings.topic_recap
    await produce(settings, [
        (t, first.key, first.model_dump_json().encode()),
        (t, b"33.16.01.2003", None),  # a tombstone
        (t, b"x", b"\xff not json"),
        (t, b"y", b'{"level": "desa"}'),
        (t, second.key, second.model_dump_json().encode()),
    ])
    result = dphp(settings, "subscribe", "--from-beginning", "--exit-at-end", "--format", "json", "--level", "all")
    assert result.returncode == 0, result.stderr
    shown = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["region_code"], r["total"]) for r in shown] == [("33.16.01.2001", 7), ("33.16.01.2002", 9)]
    assert result.stderr.count("skipped a record that is not a recap message") == 3, result.stderr
    assert "Traceback" not in result.stderr

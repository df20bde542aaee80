"""`dphp publish` and the 1 MiB bound of contract 1.1: a record value of exactly 1 MiB is valid,
one byte more is rejected (with the line number and the size)."""

from __future__ import annotations

import json

import orjson
import pytest

from schemas.events import MAX_RECORD_BYTES
from services.common.topics import ensure_topics
from tests.conftest import unique_settings
from tests.conftest_schemas_helpers import moved, with_changes
from tests.integration.test_publish import publish

pytestmark = pytest.mark.integration


def _line(size: int) -> bytes:
    base = orjson.dumps(with_changes(moved(), "xpad", ""))
    out = base.replace(b'"xpad":""', b'"xpad":"' + b"a" * (size - len(base)) + b'"')
    assert len(out) == size
    return out


async def test_publish_rejects_a_line_of_more_than_1_mib_with_its_size(stack, tmp_path):
    settings = unique_settings(stack)
    await ensure_topics(settings)
    path = tmp_path / "big.jsonl"
    path.write_bytes(_line(MAX_RECORD_BYTES + 1) + b"\n")
    result = publish(settings, path)
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["accepted"] == 0
    assert doc["rejected"] == [{"file": str(path), "line": 1,
                                "reason": "the record value has 1,048,577 bytes, more than 1 MiB (1,048,576)"}]


async def test_publish_accepts_a_line_of_exactly_1_mib(stack, tmp_path):
    settings = unique_settings(stack)
    await ensure_topics(settings)
    path = tmp_path / "edge.jsonl"
    path.write_bytes(_line(MAX_RECORD_BYTES) + b"\n")
    result = publish(settings, path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["accepted"] == 1

"""`dphp dlq list` and `dphp dlq retry` against the real broker, with dead letters the consumer wrote."""

from __future__ import annotations

import json
import pytest

from services.common.deadletter import read_dead_letters, republish
from services.common.topics import ensure_topics
from services.projection.consumer import ProjectionConsumer
from tests.eventsets import event_set
from tests.support.records import Record
from tests.support.kafka import read_all
from tests.support.services import dphp, dphp_json

pytestmark = pytest.mark.integration


async def test_dead_letters_are_listed_with_reasons_and_retried_unchanged(settings):
    await ensure_topics(settings)
    reg = next(e for e in event_set(31, voters=5) if e.type.endswith("voter-registered.v1"))
    doc = reg.model_dump(mode="json")
    bad_nik = "3316017713900001"  # day 77 - 40 = 37: impossible
    doc["subject"] = doc["data"]["nik"] = bad_nik
    bad_rule = json.dumps(doc).encode()
    records = [
        Record(settings.topic_registered, 0, 0, reg.data.nik.encode(), reg.model_dump_json().encode()),
        Record(settings.topic_registered, 0, 1, bad_nik.encode(), bad_rule),
        Record(settings.topic_registered, 0, 2, b"k2", b"{not json"),
    ]
    consumer = ProjectionConsumer(settings, "registrations")
    await consumer.start()
    try:
        await consumer.handle(records)
    finally:
        await consumer.stop()

    letters = await read_dead_letters(settings)
    assert [d.value for d in letters] == [bad_rule, b"{not json"]
    rows = [d.row() for d in letters]
    assert [r["error_class"] for r in rows] == ["rule", "malformed"]
    assert [r["original_offset"] for r in rows] == [1, 2]
    assert rows[0]["key"] == "3316**********01"  # a NIK key is masked
    assert all(bad_nik not in json.dumps(r) for r in rows)
    assert [d.id for d in await read_dead_letters(settings, lambda d: d.error_class == "malformed")] == [rows[1]["id"]]

    # The command line shows the same, as one JSON document.
    assert dphp_json(settings, "dlq", "list") == rows
    assert dphp_json(settings, "dlq", "list", "--error-class", "rule") == rows[:1]

    # Retry by id: the original bytes and key go back to the original topic.
    result = dphp(settings, "dlq", "retry", "--id", rows[1]["id"])
    assert result.returncode == 0, result.stderr
    back = await read_all(settings, settings.topic_registered, expected=1)
    assert [(r.key, r.value) for r in back] == [(b"k2", b"{not json")]
    assert dict(back[0].headers)["dphp.retried.from"] == rows[1]["id"].encode()
    assert await republish(settings, letters[:1]) == 1

    unknown = dphp(settings, "dlq", "retry", "--id", "0:999")
    assert unknown.returncode == 1 and "0:999" in unknown.stderr
    assert dphp(settings, "dlq", "retry").returncode == 2  # nothing chosen
    assert dphp(settings, "dlq", "retry", "--id", "x").returncode == 2

    # Broker down: one line on stderr, exit 1.
    from services.common.settings import Settings

    down = dphp(Settings(**{**settings.model_dump(), "kafka_bootstrap": "127.0.0.1:1"}), "dlq", "list")
    assert down.returncode == 1
    assert down.stderr.strip().count("\n") == 0 and "Kafka" in down.stderr, down.stderr

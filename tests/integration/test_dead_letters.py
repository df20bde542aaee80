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


async def _forge_dead_letters(settings, originals: list[str]) -> None:
    """Records in the test's dead-letter topic as any writer could leave them, each naming a topic."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i, topic in enumerate(originals):
            await producer.send_and_wait(settings.topic_dead_letter, partition=0, key=f"k{i}".encode(),
                                         value=b'{"forged": true}', headers=[
                                             ("dphp.original.topic", topic.encode()),
                                             ("dphp.original.partition", b"0"), ("dphp.original.offset", str(i).encode()),
                                             ("dphp.error.class", b"rule"), ("dphp.error.reason", b"forged")])
    finally:
        await producer.stop()


async def _end_offsets(settings, topics: list[str]) -> dict[str, int]:
    """Records in each topic (0 for a topic that does not exist)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from services.common.topics import partitions_of

    parts = await partitions_of(settings, topics)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in parts[t]]
        ends = await consumer.end_offsets(tps) if tps else {}
    finally:
        await consumer.stop()
    return {t: sum(n for tp, n in ends.items() if tp.topic == t) for t in topics}


async def test_retry_republishes_only_to_the_three_input_topics(settings):
    """Issue #10: `dlq retry` sent a dead letter wherever its dphp.original.topic header said,
    the recap topic included. A selection naming any other topic is refused whole, in one line."""
    from services.common.errors import OperatorError

    await ensure_topics(settings)
    elsewhere = f"{settings.topic_dead_letter}.elsewhere"
    # 0:0 recap, 0:1 an arbitrary topic, 0:2 the dead-letter topic itself, 0:3 no header value, 0:4 valid
    await _forge_dead_letters(settings, [settings.topic_recap, elsewhere, settings.topic_dead_letter, "",
                                         settings.topic_registered])
    watched = [settings.topic_recap, elsewhere, settings.topic_dead_letter, settings.topic_registered]
    before = await _end_offsets(settings, watched)
    assert before == {settings.topic_recap: 0, elsewhere: 0, settings.topic_dead_letter: 5,
                      settings.topic_registered: 0}

    for args in (("--all",), ("--all", "--dry-run"), ("--id", "0:0"), ("--id", "0:1"), ("--id", "0:4", "--id", "0:2"),
                 ("--id", "0:3"), ("--all", "--error-class", "rule")):
        result = dphp(settings, "dlq", "retry", *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert "refusing to re-publish" in lines[0] and "nothing was sent" in lines[0], lines[0]
        assert result.stdout == ""
    line = dphp(settings, "dlq", "retry", "--all").stderr
    assert all(f"{i} (to " in line for i in ("0:0", "0:1", "0:2", "0:3")) and "0:4 (to" not in line, line
    assert settings.topic_recap in line and elsewhere in line

    letters = await read_dead_letters(settings)
    with pytest.raises(OperatorError):
        await republish(settings, letters)
    with pytest.raises(OperatorError):
        await republish(settings, [letters[4], letters[0]])
    assert await _end_offsets(settings, watched) == before  # nothing arrived anywhere

    # The valid one alone goes back to its input topic.
    ok = dphp(settings, "dlq", "retry", "--id", "0:4")
    assert ok.returncode == 0, ok.stderr
    assert await _end_offsets(settings, watched) == {**before, settings.topic_registered: 1}

"""Lean fetched records (`services.common.kafka_records`): aiokafka's fetcher, given a real record
batch, yields records with every value DPHP's consumers read, and leaves other consumers alone."""

from __future__ import annotations

import pytest
from aiokafka.consumer.fetcher import READ_UNCOMMITTED, PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord, TopicPartition

from services.common.kafka_records import LeanRecord, lean_consumer_record, use_lean_records

pytestmark = pytest.mark.unit

FIELDS = ("topic", "partition", "offset", "timestamp", "timestamp_type", "key", "value", "headers")
NIK = b"3316012010830001"


def fetched(value_deserializer=None) -> list:
    """The records aiokafka's fetcher yields from one real record batch of partition 4."""
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    builder.append(0, timestamp=1_700_000_000_000, key=NIK, value=b'{"nik":"' + NIK + b'"}', headers=[])
    builder.append(1, timestamp=1_700_000_000_001, key=None, value=None, headers=[("x-h", b"\xff\x00")])
    builder.append(2, timestamp=1_700_000_000_002, key=b"", value=b"", headers=[("a", b"1"), ("b", b"2")])
    records = MemoryRecords(bytes(builder.build()))
    return list(PartitionRecords(TopicPartition("t", 4), records, [], 0, None, value_deserializer, True,
                                 READ_UNCOMMITTED))


@pytest.fixture
def lean(monkeypatch):
    monkeypatch.setattr(PartitionRecords, "_consumer_record",
                        lean_consumer_record(PartitionRecords._consumer_record))


def test_lean_records_carry_what_aiokafka_records_carry(monkeypatch):
    plain = fetched()
    monkeypatch.setattr(PartitionRecords, "_consumer_record",
                        lean_consumer_record(PartitionRecords._consumer_record))
    lean = fetched()
    assert all(type(r) is ConsumerRecord for r in plain)
    assert all(type(r) is LeanRecord for r in lean)
    assert [[getattr(r, f) for f in FIELDS] for r in lean] == [[getattr(r, f) for f in FIELDS] for r in plain]
    assert lean[1].headers == (("x-h", b"\xff\x00"),) and lean[1].key is None and lean[1].value is None


def test_a_consumer_with_a_deserializer_keeps_aiokafkas_records(lean):
    records = fetched(value_deserializer=lambda v: v and v.upper())
    assert all(type(r) is ConsumerRecord for r in records)
    assert records[0].value == b'{"NIK":"' + NIK + b'"}'


def test_the_repr_of_a_lean_record_shows_no_key_or_value(lean):
    text = repr(fetched()[0])
    assert "offset=0" in text and NIK.decode() not in text


def test_use_lean_records_patches_once_and_only_the_method_it_knows(monkeypatch):
    original = PartitionRecords._consumer_record
    monkeypatch.setattr(PartitionRecords, "_consumer_record", original)
    assert use_lean_records()
    patched = PartitionRecords._consumer_record
    assert patched is not original and use_lean_records() and PartitionRecords._consumer_record is patched
    assert type(fetched()[0]) is LeanRecord

    def other(self, tp, record, extra=None):  # an aiokafka whose fetcher changed
        return original(self, tp, record)

    monkeypatch.setattr(PartitionRecords, "_consumer_record", other)
    assert not use_lean_records()
    assert PartitionRecords._consumer_record is other


def test_use_lean_records_leaves_a_fetcher_without_the_known_deserializer_fields(monkeypatch):
    original_init = PartitionRecords.__init__

    def init(self, tp, records, *args):  # an aiokafka that renamed the fields the patch reads
        original_init(self, tp, records, *args)

    monkeypatch.setattr(PartitionRecords, "_consumer_record", PartitionRecords._consumer_record)
    monkeypatch.setattr(PartitionRecords, "__init__", init)
    assert not use_lean_records()
    monkeypatch.undo()
    assert type(fetched()[0]) is ConsumerRecord

"""The projection services' batch parser: FastStream's parser of the first record only, whatever
that record's headers hold (hostile input, issue #10)."""

from __future__ import annotations

import pytest
from aiokafka.structs import ConsumerRecord
from faststream.kafka.message import KafkaMessage
from faststream.kafka.parser import AioKafkaBatchParser
from faststream.kafka.prometheus.provider import BatchKafkaMetricsSettingsProvider

from services.common.kafka_records import LeanRecord
from services.projection.app_factory import _parse_batch

pytestmark = pytest.mark.unit


def record(offset: int, headers) -> ConsumerRecord:
    return ConsumerRecord("t", 0, offset, 0, 0, b"k", b"{}", None, 1, 2, headers)


async def test_a_batch_beginning_with_binary_header_values_is_parsed():
    parser = AioKafkaBatchParser(msg_class=KafkaMessage, regex=None)
    records = (record(5, [("x-1\x1b[31m", bytes([1, 0, 255])), ("content-type", b"\xff\xfe")]),
               record(6, [("content-type", b"application/cloudevents+json")]))
    message = await _parse_batch(records, parser.parse_batch)
    assert message.raw_message is records  # the handler gets every record, headers untouched
    assert records[0].headers[0][1] == bytes([1, 0, 255])


async def test_a_batch_of_lean_records_is_parsed():
    # The services fetch `LeanRecord`s (services.common.kafka_records), which are no dataclass.
    parser = AioKafkaBatchParser(msg_class=KafkaMessage, regex=None)
    records = (LeanRecord("t", 0, 5, 0, 0, b"k", b"{}", (("content-type", b"\xff"),)),
               LeanRecord("t", 0, 6, 0, 0, b"k", b"{}", ()))
    message = await _parse_batch(records, parser.parse_batch)
    assert message.raw_message is records
    assert message.headers == {}  # the first record's headers are not decoded
    # FastStream's metrics of a batch read the records (the services run with them on).
    attrs = BatchKafkaMetricsSettingsProvider().get_consume_attrs_from_message(message)
    assert attrs["destination_name"] == "t" and attrs["messages_count"] == 2

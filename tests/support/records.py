"""A Kafka record as the projection consumer reads it, for feeding `ProjectionConsumer.handle`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes

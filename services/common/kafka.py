"""Kafka clients built from the settings, in one place (addresses, security, producer guarantees)."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from services.common.settings import Settings


def kafka_producer(settings: Settings, **overrides) -> AIOKafkaProducer:
    """An idempotent producer that waits for all in-sync replicas (acks=all)."""
    kwargs = dict(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all",
                  **settings.kafka_security_kwargs())
    kwargs.update(overrides)
    return AIOKafkaProducer(**kwargs)

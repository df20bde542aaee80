"""Wiring of a projection service into a FastStream app (one app per service)."""

from __future__ import annotations

import logging

from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.common.settings import Settings
from services.projection.consumer import ProjectionConsumer


async def _no_decode(message, original_decoder=None):
    # The handler validates the raw bytes itself (pydantic from bytes); skip FastStream's decoding.
    return None


def build_app(settings: Settings, service: str) -> FastStream:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    projection = ProjectionConsumer(settings, service)
    broker = KafkaBroker(settings.kafka_bootstrap, **settings.kafka_security_kwargs(),
                         logger=logging.getLogger(f"dphp.{service}"), log_level=logging.DEBUG)
    subscriber = broker.subscriber(
        projection.topic,
        group_id=projection.group_id,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,  # never auto-commit: positions are stored with the batch
        max_poll_interval_ms=15 * 60 * 1000,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        listener=projection.listener(),
        decoder=_no_decode,
        title=f"{service} projection",
        description=f"Applies {projection.kind.event_type} events to the DPHP projection.",
    )

    projection.consumer_ref = lambda: subscriber.consumer

    @subscriber
    async def handle(message: KafkaMessage) -> None:
        await projection.handle(message.raw_message)

    app = FastStream(broker, logger=logging.getLogger(f"dphp.{service}"))

    @app.on_startup
    async def start_projection() -> None:
        await projection.start()

    @app.on_shutdown
    async def stop_projection() -> None:
        await projection.stop()

    app.projection = projection  # for tests and the benchmark
    return app

"""Wiring of a projection service into a FastStream app (one app per service)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging

from aiokafka.structs import ConsumerRecord
from faststream import AckPolicy, FastStream
from faststream.kafka.annotations import KafkaMessage

from services.common.failures import Health
from services.common.kafka import faststream_broker, wait_for_broker
from services.common.kafka_records import use_lean_records
from services.common.logs import setup_logging
from services.common.metrics import ServiceMetrics, prometheus_middlewares
from services.common.settings import Settings
from services.operations.monitor import ServiceOperations
from services.projection.consumer import ProjectionConsumer
from services.projection.health import consumer_problem, database_problem, owned_partitions


async def _no_decode(message, original_decoder=None):
    # The handler validates the raw bytes itself (pydantic from bytes); skip FastStream's decoding.
    return None


async def _parse_batch(records, original_parser):
    # FastStream's batch parser builds a dict of headers for every record (about 3% of the
    # service's time); the handler reads none of them. Parse the first record only, without its
    # headers (header values need not be UTF-8 and FastStream decodes them as UTF-8: a batch that
    # began with such a record stopped its partition), and hand the handler the whole batch.
    # The records may be `LeanRecord`s (`use_lean_records`): FastStream gets a `ConsumerRecord`.
    r = records[0]
    first = ConsumerRecord(r.topic, r.partition, r.offset, r.timestamp, r.timestamp_type, r.key, r.value,
                           None, -1, -1, ())
    message = await original_parser((first,))
    message.raw_message = records
    return message


def build_app(settings: Settings, service: str) -> FastStream:
    setup_logging(fmt=settings.log_format, service=service)
    use_lean_records()
    metrics = ServiceMetrics(service)
    projection = ProjectionConsumer(settings, service, metrics=metrics)
    broker = faststream_broker(settings, logger=logging.getLogger(f"dphp.{service}"), log_level=logging.DEBUG,
                               middlewares=prometheus_middlewares(settings, metrics))
    subscriber = broker.subscriber(
        projection.topic,
        group_id=projection.group_id,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,  # never auto-commit: positions are stored with the batch
        max_poll_interval_ms=15 * 60 * 1000,
        # 2 MB a partition (six: about 20,000 records a fetch); 8 MB held up to ~100 MB of fetched data.
        max_partition_fetch_bytes=2 * 1024 * 1024,
        listener=projection.listener(),
        parser=_parse_batch,
        decoder=_no_decode,
        title=f"{service} projection",
        description=f"Applies {projection.kind.event_type} events to the DPHP projection.",
    )

    projection.consumer_ref = lambda: subscriber.consumer
    operations = ServiceOperations(settings, metrics, (service,), owned=lambda: owned_partitions(projection),
                                   checks=(lambda: consumer_problem(projection, settings.stall_after_s),
                                           lambda: database_problem(projection)))

    @subscriber
    async def handle(message: KafkaMessage) -> None:
        # The batch is handled in a task with an empty context. FastStream's context holds the
        # message (the whole batch), and every timer created while handling (asyncpg's statement
        # cache, aiokafka's request timeouts) keeps a copy of the current context; cancelled
        # timers stay in the event loop's heap until purged, so each batch stayed in memory for
        # minutes (RSS grew by about 16 MB per 20,000 records).
        # `submit` returns once the batch's transaction is under way: the next batch is fetched and
        # validated while PostgreSQL applies this one.
        await asyncio.get_running_loop().create_task(projection.submit(message.raw_message),
                                                     context=contextvars.Context())

    app = FastStream(broker, logger=logging.getLogger(f"dphp.{service}"))

    @app.on_startup
    async def start_projection() -> None:
        await operations.start()  # /health/live answers while the broker is awaited
        # Runs before FastStream connects its broker, which would exit the process if it cannot.
        await wait_for_broker(settings, Health("Kafka", logging.getLogger(f"dphp.{service}")))
        await projection.start()
        # The objects of start-up (modules, the region tree) live as long as the process: keep
        # them out of the garbage collector's full collections, which otherwise scan them again
        # and again while batches of tens of thousands of events come and go.
        gc.freeze()
        # Each event allocates a handful of containers (record, dicts, row) that reference
        # counting frees; a young-generation collection every 700 allocations found nothing to
        # collect and cost about 3% of the service's CPU (catch-up of the full-size sample).
        gc.set_threshold(50_000, 10, 10)

    @app.on_shutdown
    async def stop_projection() -> None:
        await projection.stop()
        await operations.stop()

    app.projection = projection  # for tests and the benchmark
    app.operations = operations
    return app

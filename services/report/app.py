"""The report service: publishes each region's recap to the recap topic when it changes.

`dphp run report` or `faststream run --factory services.report.app:create_app`. One instance
publishes at a time (a PostgreSQL advisory lock per projection); another one waits as a standby.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import asyncpg
from aiokafka.errors import KafkaError
from faststream import FastStream

from schemas.recap import Recap
from services.common.db import migrate
from services.common.failures import Backoff, Failure, Health, classify
from services.common.kafka import faststream_broker, wait_for_broker
from services.common.logs import setup_logging
from services.common.metrics import ServiceMetrics, prometheus_middlewares
from services.common.settings import Settings
from services.operations.monitor import ServiceOperations
from services.operations.status import PROJECTION_SERVICES
from services.report.publisher import RecapPublisher

log = logging.getLogger("dphp.report")


def create_app(settings: Settings | None = None) -> FastStream:
    settings = settings or Settings()
    setup_logging(fmt=settings.log_format, service="report")
    metrics = ServiceMetrics("report")
    broker = faststream_broker(settings, acks="all", enable_idempotence=True, logger=log, log_level=logging.DEBUG,
                               middlewares=prometheus_middlewares(settings, metrics))
    publisher = broker.publisher(
        settings.topic_recap, schema=Recap, title="recaps",
        description="The latest recap of every region (compacted, key: the region code).",
    )

    async def send(recaps: Sequence[Recap]) -> None:
        futures = [await publisher.publish(r.to_json(), key=r.key, headers={"content-type": "application/json"},
                                           no_confirm=True) for r in recaps]
        await asyncio.gather(*futures)  # every recap acknowledged before it is recorded as published

    app = FastStream(broker, logger=log)
    report = RecapPublisher(settings.db_schema, send, metrics.report)
    task: asyncio.Task | None = None
    health = {"db": Health("PostgreSQL", log), "kafka": Health("Kafka (recap topic)", log)}
    # The report service exports the lag of all three groups: a frozen service's lag is still seen.
    operations = ServiceOperations(settings, metrics, PROJECTION_SERVICES, checks=(
        lambda: f"cannot publish recaps ({health['kafka'].last_error})" if health["kafka"].failing else None,))

    async def run() -> None:
        backoff = Backoff()
        while True:
            conn = None
            try:
                await migrate(settings)
                conn = await asyncpg.connect(settings.database_dsn, timeout=10)
                await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"dphp-report:{settings.db_schema}")
                health["db"].ok()
                log.info("publishing recaps of %s to %s every %.1f s", settings.db_schema, settings.topic_recap,
                         settings.report_interval_s)
                backoff.reset()
                while True:
                    await report.publish_changes(conn)
                    health["kafka"].ok()
                    await asyncio.sleep(settings.report_interval_s)
            except asyncpg.UndefinedTableError as exc:  # a replay switched the projection mid-look
                log.warning("the projection changed under the report (%s); looking again", type(exc).__name__)
            except Exception as exc:  # noqa: BLE001 - keep reporting; the next look starts afresh
                # One classification for every service (services/common/failures.py): a transient
                # failure logs one line when it starts and one when it ends; anything else is loud.
                if classify(exc) is Failure.TRANSIENT:
                    health["kafka" if isinstance(exc, KafkaError) else "db"].failed(exc)
                else:
                    log.exception("a look at the projection failed; nothing recorded, looking again with backoff")
            finally:
                if conn is not None:
                    conn.terminate()
            await backoff.wait()

    @app.on_startup
    async def broker_answers() -> None:
        await operations.start()
        # Before FastStream connects its broker, which would exit the process if it cannot.
        await wait_for_broker(settings, Health("Kafka", log))

    @app.after_startup
    async def start_reporting() -> None:
        nonlocal task
        task = asyncio.create_task(run())

    @app.on_shutdown
    async def stop_reporting() -> None:
        if task is not None:
            task.cancel()
        await operations.stop()

    app.report = report  # for tests
    app.operations = operations
    return app


if __name__ == "__main__":
    asyncio.run(create_app().run())

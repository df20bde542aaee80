"""Kafka clients built from the settings, in one place (addresses, security, producer guarantees).

Every aiokafka producer, consumer and admin client and every FastStream broker of DPHP is built
here, so that the broker addresses and the security settings (TLS, SASL) reach each of them.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from services.common.settings import Settings


def client_kwargs(settings: Settings | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """The settings' address and security, then the caller's keyword arguments over them.

    `settings=None` is a plain client of a local broker without security (the fault tests' own
    cluster); the caller then passes `bootstrap_servers`."""
    kwargs: dict[str, Any] = {}
    if settings is not None:
        kwargs = dict(bootstrap_servers=settings.kafka_bootstrap, **security_kwargs(settings))
    kwargs.update(overrides)
    return kwargs


def security_kwargs(settings: Settings) -> dict[str, Any]:
    """The security part of every client's keyword arguments (aiokafka's names): TLS with the
    settings' CA (hostname checked), SASL with its mechanism and credentials; empty for PLAINTEXT.
    (Settings refuse SASL without TLS unless DPHP_KAFKA_ALLOW_PLAINTEXT_SASL says otherwise.)"""
    kwargs: dict[str, Any] = {}
    if settings.kafka_tls_ca_file is not None:
        import ssl

        kwargs["ssl_context"] = ssl.create_default_context(cafile=str(settings.kafka_tls_ca_file))
    if settings.kafka_sasl_mechanism:
        kwargs["security_protocol"] = "SASL_SSL" if settings.kafka_tls_ca_file else "SASL_PLAINTEXT"
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    elif settings.kafka_tls_ca_file is not None:
        kwargs["security_protocol"] = "SSL"
    return kwargs


def kafka_producer(settings: Settings, **overrides) -> AIOKafkaProducer:
    """An idempotent producer that waits for all in-sync replicas (acks=all)."""
    return AIOKafkaProducer(**client_kwargs(settings, {"enable_idempotence": True, "acks": "all", **overrides}))


def kafka_consumer(settings: Settings, *topics: str, **overrides) -> AIOKafkaConsumer:
    """A consumer of `topics` (none: assign partitions later), aiokafka's defaults otherwise."""
    return AIOKafkaConsumer(*topics, **client_kwargs(settings, overrides))


def kafka_admin(settings: Settings | None, **overrides) -> AIOKafkaAdminClient:
    """An admin client; requests time out after 15 s unless `request_timeout_ms` says otherwise."""
    return AIOKafkaAdminClient(**client_kwargs(settings, {"request_timeout_ms": 15000, **overrides}))


def faststream_broker(settings: Settings, **kwargs):
    """A FastStream KafkaBroker with the settings' address and security."""
    from faststream.kafka import KafkaBroker

    # A comma-separated bootstrap (a cluster) as a list: FastStream takes one string as one address.
    return KafkaBroker(settings.kafka_bootstrap.split(","), security=faststream_security(settings), **kwargs)


def faststream_security(settings: Settings):
    """The settings' security as FastStream's object (its KafkaBroker takes no aiokafka security
    arguments): the same TLS context and SASL mechanism and credentials; None without security."""
    from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

    kwargs = security_kwargs(settings)
    if not kwargs:
        return None
    ssl_context = kwargs.get("ssl_context")
    mechanism = kwargs.get("sasl_mechanism")
    if mechanism is None:
        return BaseSecurity(ssl_context=ssl_context, use_ssl=True)
    sasl = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}[mechanism]
    return sasl(kwargs["sasl_plain_username"], kwargs["sasl_plain_password"], ssl_context=ssl_context,
                use_ssl=ssl_context is not None)


async def wait_for_broker(settings: Settings, health) -> None:
    """Returns once the broker answers (its metadata), retrying with backoff meanwhile: a service
    started while the broker is down waits for it instead of exiting."""
    from services.common.failures import retry_transient

    async def probe() -> None:
        admin = kafka_admin(settings, request_timeout_ms=5000)
        try:
            await admin.start()
        finally:
            await admin.close()

    await retry_transient(probe, health)

"""Every Kafka client of DPHP is built by services/common/kafka.py from the settings: the broker
address and the security settings reach producers, consumers, admin clients and FastStream brokers."""

from __future__ import annotations

import pytest

from services.common.kafka import client_kwargs, faststream_broker, kafka_admin, kafka_consumer, kafka_producer
from services.common.settings import Settings

pytestmark = pytest.mark.unit

SECURE = dict(kafka_bootstrap="broker.example:9093", kafka_sasl_mechanism="SCRAM-SHA-512",
              kafka_sasl_username="dphp", kafka_sasl_password="secret", kafka_allow_plaintext_sasl=True)


def test_the_settings_address_and_security_come_first_and_the_callers_arguments_over_them() -> None:
    kwargs = client_kwargs(Settings(**SECURE), {"request_timeout_ms": 1000})
    assert kwargs == {"bootstrap_servers": "broker.example:9093", "security_protocol": "SASL_PLAINTEXT",
                      "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "dphp",
                      "sasl_plain_password": "secret", "request_timeout_ms": 1000}
    assert client_kwargs(None, {"bootstrap_servers": "127.0.0.1:1"}) == {"bootstrap_servers": "127.0.0.1:1"}


async def test_every_client_carries_the_security_settings() -> None:
    settings = Settings(**SECURE)
    producer = kafka_producer(settings)
    consumer = kafka_consumer(settings, "some-topic", group_id=None)
    admin = kafka_admin(settings)
    for client in (producer.client, consumer._client, admin._client):
        assert client._bootstrap_servers == "broker.example:9093"
        assert client._security_protocol == "SASL_PLAINTEXT"
        assert client._sasl_mechanism == "SCRAM-SHA-512"
        assert client._sasl_plain_username == "dphp"
    assert admin._client._request_timeout_ms == 15000  # the admin client's default here
    assert kafka_admin(settings, request_timeout_ms=5000)._client._request_timeout_ms == 5000
    await producer.stop()  # never started: only closes (else aiokafka warns at exit)
    await consumer.stop()
    broker = faststream_broker(settings)
    consumer_kwargs = broker.config.broker_config.builder.keywords  # what its consumers are built with
    assert consumer_kwargs["bootstrap_servers"] == ["broker.example:9093"]
    assert (consumer_kwargs["sasl_mechanism"], consumer_kwargs["sasl_plain_username"]) == ("SCRAM-SHA-512", "dphp")


@pytest.mark.parametrize("security", [
    {},
    {"kafka_tls_ca_file": "CA"},
    *({"kafka_sasl_mechanism": m, "kafka_sasl_username": "dphp", "kafka_sasl_password": "secret",
       "kafka_allow_plaintext_sasl": True, **tls}
      for m in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512") for tls in ({}, {"kafka_tls_ca_file": "CA"})),
])
def test_faststream_brokers_get_the_same_security_as_the_aiokafka_clients(security, tmp_path, monkeypatch) -> None:
    import ssl

    from faststream.kafka.security import parse_security

    from services.common.kafka import faststream_security, security_kwargs

    (tmp_path / "CA").write_text("a CA file\n")
    monkeypatch.setattr(ssl, "create_default_context", lambda cafile=None: ("context of", cafile))
    settings = Settings(**{k: (tmp_path / v if k == "kafka_tls_ca_file" else v) for k, v in security.items()})
    expected = security_kwargs(settings)
    got = {k: v for k, v in parse_security(faststream_security(settings)).items()
           if not (k == "ssl_context" and v is None)}  # aiokafka's default
    assert got == expected

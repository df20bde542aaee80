"""The security rules of the settings: secrets as secret types, from a variable or a file, SASL
without TLS refused unless allowed, and no password in any shown URL or settings error."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr, ValidationError

from services.common.kafka import faststream_security, security_kwargs
from services.common.settings import Settings, mask_url

pytestmark = pytest.mark.unit

PASSWORD = "s3cr3t-Pa55"


@pytest.fixture
def ca(tmp_path):
    path = tmp_path / "ca.pem"
    path.write_text("not parsed by these tests\n")
    return path


def scram(**extra) -> dict:
    return {"kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": "dphp-operator", **extra}


def test_the_kafka_password_is_a_secret_type_and_not_in_the_settings_repr(ca) -> None:
    s = Settings(**scram(kafka_sasl_password=PASSWORD, kafka_tls_ca_file=ca))
    assert isinstance(s.kafka_sasl_password, SecretStr)
    assert PASSWORD not in repr(s) and PASSWORD not in str(s)
    assert s.kafka_sasl_password.get_secret_value() == PASSWORD


def test_the_kafka_password_is_read_from_a_file_without_its_newline(ca, tmp_path) -> None:
    f = tmp_path / "pw"
    f.write_text(PASSWORD + "\n")
    s = Settings(**scram(kafka_sasl_password_file=f, kafka_tls_ca_file=ca))
    assert s.kafka_sasl_password.get_secret_value() == PASSWORD


def test_a_missing_password_file_or_both_sources_are_refused_with_the_variable_named(ca, tmp_path) -> None:
    with pytest.raises(ValidationError, match="DPHP_KAFKA_SASL_PASSWORD_FILE: cannot read"):
        Settings(**scram(kafka_sasl_password_file=tmp_path / "absent", kafka_tls_ca_file=ca))
    f = tmp_path / "pw"
    f.write_text(PASSWORD)
    with pytest.raises(ValidationError, match="not both") as info:
        Settings(**scram(kafka_sasl_password="other", kafka_sasl_password_file=f, kafka_tls_ca_file=ca))
    assert "other" not in str(info.value)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_without_tls_is_refused_and_the_error_shows_no_password(mechanism) -> None:
    with pytest.raises(ValidationError, match="without TLS is refused") as info:
        Settings(kafka_sasl_mechanism=mechanism, kafka_sasl_username="u", kafka_sasl_password=PASSWORD)
    assert PASSWORD not in str(info.value)


def test_sasl_without_tls_explicitly_allowed_warns(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="dphp.settings"):
        s = Settings(**scram(kafka_sasl_password=PASSWORD, kafka_allow_plaintext_sasl=True))
    assert security_kwargs(s)["security_protocol"] == "SASL_PLAINTEXT"
    assert "not encrypted" in caplog.text and PASSWORD not in caplog.text


def test_sasl_needs_a_username_and_a_password_and_credentials_need_a_mechanism(ca) -> None:
    with pytest.raises(ValidationError, match="needs DPHP_KAFKA_SASL_USERNAME"):
        Settings(kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="u", kafka_tls_ca_file=ca)
    with pytest.raises(ValidationError, match="without DPHP_KAFKA_SASL_MECHANISM"):
        Settings(kafka_sasl_username="u", kafka_sasl_password=PASSWORD)


def test_a_ca_file_that_does_not_exist_is_refused(tmp_path) -> None:
    with pytest.raises(ValidationError, match="DPHP_KAFKA_TLS_CA_FILE: no such file"):
        Settings(kafka_tls_ca_file=tmp_path / "absent.pem")


def test_scram_over_tls_gives_sasl_ssl_with_a_hostname_checking_context(ca, monkeypatch) -> None:
    import ssl

    made = []
    monkeypatch.setattr(ssl, "create_default_context", lambda cafile=None: made.append(cafile) or "ctx")
    s = Settings(**scram(kafka_sasl_password=PASSWORD, kafka_tls_ca_file=ca))
    kwargs = security_kwargs(s)
    assert kwargs == {"ssl_context": "ctx", "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                      "sasl_plain_username": "dphp-operator", "sasl_plain_password": PASSWORD}
    assert made[0] == str(ca)
    assert faststream_security(s).__class__.__name__ == "SASLScram512"


def test_a_real_ca_context_checks_hostnames(ca) -> None:
    import ssl

    from services.devstack.certs import make_ca

    ca.write_bytes(make_ca("test CA")[1])
    context = security_kwargs(Settings(kafka_tls_ca_file=ca))["ssl_context"]
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_settings_errors_never_echo_the_values() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(kafka_sasl_password=PASSWORD, tps_capacity="not a number")
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize("url,shown", [
    ("postgresql://dphp_reader:pa%40ss@127.0.0.1:5433/dphp", "postgresql://dphp_reader:***@127.0.0.1:5433/dphp"),
    ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
    ("postgresql://dphp@127.0.0.1:5432/dphp", "postgresql://dphp@127.0.0.1:5432/dphp"),
    # A password as libpq's parameter (found by review: shown as it was).
    ("postgresql://u@h:5432/d?password=s3cret&sslmode=require", "postgresql://u@h:5432/d?password=***&sslmode=require"),
    ("postgresql://u:p@h/d?sslpassword=k", "postgresql://u:***@h/d?sslpassword=***"),
])
def test_a_shown_database_url_has_its_password_masked(url, shown) -> None:
    assert mask_url(url) == shown


def test_the_database_password_from_a_file_goes_into_the_dsn_only(tmp_path) -> None:
    f = tmp_path / "db"
    f.write_text("p@ss/word\n")
    s = Settings(database_url="postgresql://dphp_owner@127.0.0.1:5433/dphp", database_password_file=f)
    assert s.database_url == "postgresql://dphp_owner@127.0.0.1:5433/dphp"
    assert s.database_dsn == "postgresql://dphp_owner:p%40ss%2Fword@127.0.0.1:5433/dphp"
    from urllib.parse import unquote, urlsplit

    assert unquote(urlsplit(s.database_dsn).password) == "p@ss/word"
    assert Settings(database_url="postgresql://a:b@h:1/d").database_dsn == "postgresql://a:b@h:1/d"

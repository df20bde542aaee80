"""The one typed settings object of DPHP (environment variables with prefix ``DPHP_``)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_PG_PORT = 5432
DEFAULT_DATABASE_URL = f"postgresql://dphp@127.0.0.1:{DEFAULT_PG_PORT}/dphp"


class Settings(BaseSettings):
    """Settings of every DPHP process; see README "Configuration"."""

    # hide_input_in_errors: a refused setting's error never echoes the values (passwords among them).
    model_config = SettingsConfigDict(env_prefix="DPHP_", extra="ignore", frozen=True, hide_input_in_errors=True)

    kafka_bootstrap: str = DEFAULT_KAFKA_BOOTSTRAP
    database_url: str = DEFAULT_DATABASE_URL
    voting_day: dt.date = dt.date(2024, 11, 27)
    tps_capacity: int = Field(600, ge=1)

    # Kafka security (all optional; PLAINTEXT when unset; README "Security"). The password from the
    # variable or from a file (`..._PASSWORD_FILE`); SASL without TLS only when explicitly allowed.
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_tls_ca_file: Path | None = None
    kafka_allow_plaintext_sasl: bool = False
    # The database password, when not in DPHP_DATABASE_URL (it then replaces the URL's).
    database_password: SecretStr | None = None
    database_password_file: Path | None = None

    # Topics (CONTRACT section 1)
    topic_registered: str = "dphp.voter-registered"
    topic_moved: str = "dphp.voter-moved"
    topic_meetings: str = "dphp.meeting-held"
    topic_dead_letter: str = "dphp.dead-letter"
    topic_recap: str = "dphp.recap"
    partitions_registered: int = Field(6, ge=1)
    partitions_moved: int = Field(6, ge=1)
    partitions_meetings: int = Field(1, ge=1)
    partitions_dead_letter: int = Field(1, ge=1)
    partitions_recap: int = Field(1, ge=1)

    # Consumer groups, one per service
    group_prefix: str = "dphp"

    # Database schema holding the projection (tests use one schema each)
    db_schema: str = Field("dphp", pattern=r"^[a-z_][a-z0-9_]{0,62}$")

    # Batching of the projection services
    batch_max_records: int = Field(10000, ge=1)
    batch_timeout_ms: int = Field(200, ge=1)
    # Connections a service applies each batch with, its partitions spread over them.
    db_lanes: int = Field(2, ge=1, le=16)
    # Batches a service may have being stored while it validates the next one.
    batches_in_flight: int = Field(2, ge=1, le=8)
    # Writer connections (services/projection/store.py `writer_server_settings`): durability of a
    # commit, and the timeouts that cut off a frozen or vanished instance.
    db_synchronous_commit: bool = True
    db_idle_in_transaction_timeout_s: float = Field(30.0, gt=0)
    db_lock_timeout_s: float = Field(10.0, gt=0)
    db_statement_timeout_s: float = Field(300.0, gt=0)
    # The report service: seconds between looks at the projection for changed recaps.
    report_interval_s: float = Field(5.0, gt=0)
    # dphp replay: bound of the switch-over's wait for its lock and of each catch-up to a fixed target.
    replay_switch_timeout_s: float = Field(60.0, gt=0)
    # Privacy threshold (CONTRACT 5): what readers and the recap topic see of a TPS with fewer
    # eligible voters than this withholds its `disabled` and `disability_by_type` (null).
    privacy_min_voters: int = Field(10, ge=0)

    # Operations (README "Monitoring"): each service's HTTP server with /metrics and /health/*.
    metrics_enabled: bool = True  # false: no HTTP server, no lag monitor, no FastStream middleware
    http_host: str = "127.0.0.1"
    http_port: int = Field(0, ge=0, le=65535)  # 0: a free port, logged and written to http_address_file
    http_address_file: Path | None = None  # where the bound address is written (`dphp dev up` sets it)
    # Seconds between looks at positions and end offsets (lag, database and broker up).
    metrics_interval_s: float = Field(5.0, gt=0)
    # A partition whose lag has not moved its stored position for this long makes a service not ready.
    stall_after_s: float = Field(60.0, gt=0)
    log_format: Literal["text", "json"] = "text"
    # `dphp dev up --monitoring`: the port of the local Prometheus server (Debian's `prometheus`).
    prometheus_port: int = Field(9090, ge=1, le=65535)

    # The web service (`dphp run web`): address it listens on.
    web_host: str = "127.0.0.1"
    web_port: int = Field(8000, ge=1, le=65535)
    # Headless Chromium for `--format pdf` (Debian's `chromium`): a command name or a path.
    chromium: str = "chromium"

    # dphp publish: validating processes (0: one per CPU; 1: validate in the publishing process) and
    # the producer's record batches (bytes, linger, compression: none, lz4, zstd, snappy or gzip).
    publish_workers: int = Field(0, ge=0, le=64)
    publish_batch_bytes: int = Field(1 << 20, ge=16384, le=1 << 20)  # the input topics take 1 MiB + 64 KiB
    publish_linger_ms: int = Field(20, ge=0)
    publish_compression: str | None = Field(None, pattern=r"^(lz4|zstd|snappy|gzip)$")

    # Local stack (dphp dev up): state, logs and PID files; jar cache
    state_dir: Path = Path(".dphp")
    kafka_version: str = "4.4.0"
    # KRaft nodes `dphp dev up` starts: 1, or 3 for a cluster (topics then get replication factor 3).
    kafka_brokers: int = Field(1, ge=1, le=5)
    kafka_jars_dir: Path = Path.home() / ".cache" / "dphp" / "kafka"

    # `dphp dev up --secure`: the second, authenticated and encrypted local stack (README "Security").
    secure_kafka_bootstrap: str = "127.0.0.1:9192"
    secure_database_port: int = Field(5433, ge=1, le=65535)
    secure_web_port: int = Field(8100, ge=1, le=65535)  # the secure stack's web service (the plain one: web_port)

    @model_validator(mode="after")
    def _security_rules(self) -> Settings:
        _read_secret_file(self, "kafka_sasl_password")
        _read_secret_file(self, "database_password")
        if self.kafka_tls_ca_file is not None and not self.kafka_tls_ca_file.is_file():
            raise ValueError(f"DPHP_KAFKA_TLS_CA_FILE: no such file {self.kafka_tls_ca_file}")
        if self.kafka_sasl_mechanism is None:
            if self.kafka_sasl_username or self.kafka_sasl_password:
                raise ValueError("a Kafka SASL username or password is set without DPHP_KAFKA_SASL_MECHANISM")
            return self
        if not self.kafka_sasl_username or not self.kafka_sasl_password:
            raise ValueError(f"DPHP_KAFKA_SASL_MECHANISM={self.kafka_sasl_mechanism} needs DPHP_KAFKA_SASL_USERNAME "
                             "and DPHP_KAFKA_SASL_PASSWORD (or DPHP_KAFKA_SASL_PASSWORD_FILE)")
        if self.kafka_tls_ca_file is None:
            if not self.kafka_allow_plaintext_sasl:
                raise ValueError(f"SASL {self.kafka_sasl_mechanism} without TLS is refused (credentials and data "
                                 "would cross the network unencrypted): set DPHP_KAFKA_TLS_CA_FILE, or "
                                 "DPHP_KAFKA_ALLOW_PLAINTEXT_SASL=true to accept it")
            logging.getLogger("dphp.settings").warning(
                "Kafka SASL %s without TLS (DPHP_KAFKA_ALLOW_PLAINTEXT_SASL=true): credentials and data "
                "are not encrypted", self.kafka_sasl_mechanism)
        return self

    @property
    def database_dsn(self) -> str:
        """The database URL to connect with: DPHP_DATABASE_URL with DPHP_DATABASE_PASSWORD(_FILE)
        in it when set. Never shown: show `mask_url(settings.database_url)`."""
        if self.database_password is None:
            return self.database_url
        parts = urlsplit(self.database_url)
        user = quote(parts.username or "", safe="")
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        netloc = f"{user}:{quote(self.database_password.get_secret_value(), safe='')}@{host}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def group_id(self, service: str) -> str:
        return f"{self.group_prefix}.{service}"

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])  # the first address


def _read_secret_file(settings: Settings, field: str) -> None:
    """Fills the secret `field` from the file named by `<field>_file` (trailing newline dropped)."""
    path = getattr(settings, f"{field}_file")
    if path is None:
        return
    variable = f"DPHP_{field.upper()}"
    try:
        value = Path(path).read_text().rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"{variable}_FILE: cannot read {path}: {exc.strerror or exc}") from None
    if not value:
        raise ValueError(f"{variable}_FILE: {path} is empty")
    given = getattr(settings, field)
    if given is not None and given.get_secret_value() != value:  # (equal: settings copied whole)
        raise ValueError(f"set {variable} or {variable}_FILE, not both")
    object.__setattr__(settings, field, SecretStr(value))  # the model is frozen once validated


def mask_url(url: str) -> str:
    """The URL as it may be shown: its password, if any, replaced by `***`."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if password:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        parts = parts._replace(netloc=f"{user}:***@{hostport}")
    # libpq takes a password as a parameter too (`?password=...`), and a file's name says nothing.
    query = "&".join(f"{k}=***" if k.lower() in ("password", "sslpassword") else item
                     for item in parts.query.split("&") if item for k in (item.split("=", 1)[0],))
    return urlunsplit(parts._replace(query=query))

"""The one typed settings object of DPHP (environment variables with prefix ``DPHP_``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_PG_PORT = 5432
DEFAULT_DATABASE_URL = f"postgresql://dphp@127.0.0.1:{DEFAULT_PG_PORT}/dphp"


class Settings(BaseSettings):
    """Settings of every DPHP process; see README "Configuration"."""

    model_config = SettingsConfigDict(env_prefix="DPHP_", extra="ignore", frozen=True)

    kafka_bootstrap: str = DEFAULT_KAFKA_BOOTSTRAP
    database_url: str = DEFAULT_DATABASE_URL
    voting_day: dt.date = dt.date(2024, 11, 27)
    tps_capacity: int = Field(600, ge=1)

    # Kafka security (all optional; PLAINTEXT when unset)
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_tls_ca_file: Path | None = None

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
    db_synchronous_commit: bool = False
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

    def group_id(self, service: str) -> str:
        return f"{self.group_prefix}.{service}"

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])  # the first address

    def kafka_security_kwargs(self) -> dict[str, object]:
        """Keyword arguments for aiokafka clients (security part)."""
        kwargs: dict[str, object] = {}
        if self.kafka_tls_ca_file is not None:
            import ssl

            kwargs["ssl_context"] = ssl.create_default_context(cafile=str(self.kafka_tls_ca_file))
        if self.kafka_sasl_mechanism:
            kwargs["security_protocol"] = "SASL_SSL" if self.kafka_tls_ca_file else "SASL_PLAINTEXT"
            kwargs["sasl_mechanism"] = self.kafka_sasl_mechanism
            kwargs["sasl_plain_username"] = self.kafka_sasl_username
            kwargs["sasl_plain_password"] = self.kafka_sasl_password
        elif self.kafka_tls_ca_file is not None:
            kwargs["security_protocol"] = "SSL"
        return kwargs

"""The Prometheus metrics of a DPHP service, with fixed names (dashboards and alerts rely on them).

Each process has its own registry (`ServiceMetrics.registry`), served at `/metrics` by
`services.common.http`. Labels never carry a NIK: only service names, groups, topics,
partitions and error classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: Seconds a batch takes to store: milliseconds for a few events, seconds for 20,000.
STORE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    stored_position: int
    end_offset: int
    stalled_seconds: float  # how long the lag has not moved the stored position (0 without lag)

    @property
    def lag(self) -> int:
        return self.end_offset - self.stored_position


class _LagCollector(Collector):
    """The lag monitor's latest look, exported as it is (partitions of a deleted topic vanish)."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[GaugeMetricFamily]:
        labels = ["group", "topic", "partition"]
        lag = GaugeMetricFamily("dphp_consumer_lag_records",
                                "End offset minus the position stored with the projection", labels=labels)
        position = GaugeMetricFamily("dphp_consumer_position",
                                     "The next offset the projection applies (stored in PostgreSQL)", labels=labels)
        stalled = GaugeMetricFamily("dphp_consumer_stalled_seconds",
                                    "Seconds a lagging partition's stored position has not moved", labels=labels)
        for p in self.metrics.lags:
            key = [p.group, p.topic, str(p.partition)]
            lag.add_metric(key, p.lag)
            position.add_metric(key, p.stored_position)
            stalled.add_metric(key, p.stalled_seconds)
        return [lag, position, stalled]


class ServiceMetrics:
    """The metrics of one service process (`service`: registrations, movements, meetings, report, web)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry
        self.applied = Counter("dphp_events_applied_total", "Events stored in the projection",
                               ["service"], registry=r).labels(service)
        self._dead_letters = Counter("dphp_dead_letters_total", "Events sent to the dead-letter topic",
                                     ["service", "error_class"], registry=r)
        self.batch_store = Histogram("dphp_batch_store_seconds", "Seconds to store a batch's part (one transaction)",
                                     ["service"], buckets=STORE_BUCKETS, registry=r).labels(service)
        self.newest_event = Gauge("dphp_newest_event_timestamp_seconds",
                                  "Time (the event's own `time`) of the newest voter event in the projection",
                                  registry=r)
        self.database_up = Gauge("dphp_database_up", "1 when the last look at PostgreSQL succeeded", registry=r)
        self.kafka_up = Gauge("dphp_kafka_up", "1 when the last look at the broker succeeded", registry=r)
        self.ready = Gauge("dphp_ready", "1 when /health/ready answers ready", registry=r)
        self.lags: list[PartitionLag] = []
        r.register(_LagCollector(self))
        self._report: ReportMetrics | None = None

    def dead_lettered(self, error_class: str, count: int = 1) -> None:
        self._dead_letters.labels(self.service, error_class).inc(count)

    @property
    def report(self) -> ReportMetrics:
        """The report service's own metrics (registered on first use)."""
        if self._report is None:
            self._report = ReportMetrics(self.registry)
        return self._report


class ReportMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter("dphp_recaps_published_total", "Recaps published to the recap topic",
                                 registry=registry)
        self.look = Histogram("dphp_recap_look_seconds", "Seconds of one look at the projection (and publishing)",
                              buckets=STORE_BUCKETS, registry=registry)
        self.last_look = Gauge("dphp_recap_last_look_timestamp_seconds",
                               "Wall-clock time of the last completed look at the projection", registry=registry)
        self.as_of = Gauge("dphp_recap_as_of_timestamp_seconds",
                           "Time of the newest event included in the recaps published", registry=registry)


def prometheus_middlewares(settings, metrics: ServiceMetrics) -> tuple:
    """FastStream's own `faststream_*` metrics (received, processed, duration, published) in the
    service's registry, as broker middleware; none with `DPHP_METRICS_ENABLED=false`."""
    if not settings.metrics_enabled:
        return ()
    from faststream.kafka.prometheus import KafkaPrometheusMiddleware

    return (KafkaPrometheusMiddleware(registry=metrics.registry, app_name=metrics.service),)

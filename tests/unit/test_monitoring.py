"""Issue #13, the parts without I/O: stall tracking, status thresholds, JSON logs, metric names,
readiness over HTTP (ASGI called directly), and the alert rules under promtool."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.common.http import operations_routes, router
from services.common.logs import json_formatter
from services.common.metrics import PartitionLag, ServiceMetrics
from services.operations.monitor import StallTracker
from services.operations.status import breaches

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def group(lag: int, position: int, applied_at: str | None = "2026-01-01T00:00:00+00:00") -> dict:
    return {"group": "dphp.movements", "topic": "dphp.voter-moved", "lag": lag, "last_applied_at": applied_at,
            "partitions": [{"partition": 0, "stored_position": position, "end_offset": position + lag, "lag": lag}]}


def test_a_lagging_partition_stalls_while_its_position_stays_and_recovers_when_it_moves():
    tracker = StallTracker()
    assert tracker.look([group(0, 10)], now=100.0)[0].stalled_seconds == 0
    assert tracker.look([group(5, 10)], now=101.0)[0].stalled_seconds == 1.0  # since the last look without lag
    assert tracker.look([group(9, 10)], now=171.0)[0].stalled_seconds == 71.0  # lag grows, position stays
    moved = tracker.look([group(4, 15)], now=172.0)[0]
    assert moved.stalled_seconds == 0 and moved.lag == 4
    assert tracker.look([], now=173.0) == []  # a partition gone is forgotten
    assert tracker.look([group(3, 15)], now=180.0)[0].stalled_seconds == 0


def test_status_thresholds_name_the_group_and_ignore_an_idle_converged_one():
    now = dt.datetime(2026, 1, 1, 0, 10, tzinfo=dt.timezone.utc)
    status = {"groups": [group(7, 10)]}
    assert breaches(status, fail_on_lag=7, now=now) == []
    assert breaches(status, fail_on_lag=6, now=now) == ["dphp.movements lags 7 records (more than 6)"]
    assert breaches(status, max_staleness_s=600, now=now) == []
    [stale] = breaches(status, max_staleness_s=599, now=now)
    assert "dphp.movements" in stale and "600 s ago" in stale
    assert breaches({"groups": [group(0, 10)]}, fail_on_lag=0, max_staleness_s=1, now=now) == []
    assert "never" in breaches({"groups": [group(2, 0, None)]}, max_staleness_s=1, now=now)[0]


def test_json_logs_are_one_object_per_line_with_fields():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter("movements"))
    logger = logging.getLogger("dphp.test-json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("partition %d stalled", 3, extra={"partition": 3})
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert line.count("\n") == 1
    doc = json.loads(line)
    assert doc["level"] == "WARNING" and doc["service"] == "movements" and doc["message"] == "partition 3 stalled"
    assert doc["fields"] == {"partition": 3}
    assert dt.datetime.fromisoformat(doc["time"]).tzinfo is not None


async def call(app, path: str) -> tuple[int, bytes]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app({"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def test_routes_serve_metrics_with_fixed_names_and_readiness_with_reasons():
    metrics = ServiceMetrics("movements")
    metrics.applied.inc(5)
    metrics.dead_lettered("schema", 2)
    metrics.batch_store.observe(0.02)
    metrics.lags = [PartitionLag("dphp.movements", "dphp.voter-moved", 0, 10, 15, 70.0)]
    metrics.report.published.inc(3)
    state = {"ready": (False, ["stalled: dphp.movements dphp.voter-moved[0]"])}
    app = router(operations_routes(metrics.registry, lambda: state["ready"]))

    status, body = await call(app, "/metrics")
    assert status == 200
    found = {s.name: s for f in text_string_to_metric_families(body.decode()) for s in f.samples}
    assert found["dphp_consumer_lag_records"].labels == {"group": "dphp.movements", "topic": "dphp.voter-moved",
                                                         "partition": "0"}
    assert found["dphp_consumer_lag_records"].value == 5
    assert found["dphp_consumer_stalled_seconds"].value == 70
    assert found["dphp_events_applied_total"].value == 5
    assert found["dphp_dead_letters_total"].labels == {"service": "movements", "error_class": "schema"}
    assert found["dphp_batch_store_seconds_count"].value == 1
    assert found["dphp_recaps_published_total"].value == 3

    assert await call(app, "/health/live") == (200, b'{"status": "live"}')
    status, body = await call(app, "/health/ready")
    assert status == 503 and json.loads(body)["reasons"] == ["stalled: dphp.movements dphp.voter-moved[0]"]
    state["ready"] = (True, [])
    assert (await call(app, "/health/ready"))[0] == 200
    assert (await call(app, "/nothing"))[0] == 404


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool missing: `apt-get install prometheus` (README Monitoring)")
def test_alert_rules_pass_promtool():
    result = subprocess.run(["promtool", "check", "rules", *map(str, (ROOT / "infra/prometheus/rules").glob("*.yml"))],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool missing: `apt-get install prometheus` (README Monitoring)")
def test_the_stalled_alert_fires_on_a_partition_stalled_for_a_minute(tmp_path):
    test = {
        "rule_files": [str(ROOT / "infra/prometheus/rules/dphp.yml")],
        "evaluation_interval": "15s",
        "tests": [{
            "interval": "15s",
            "input_series": [{"series": 'dphp_consumer_stalled_seconds{group="dphp.movements",topic="t",partition="0",'
                                        'instance="report:8000",job="dphp"}', "values": "0+15x8"}],
            "alert_rule_test": [
                {"eval_time": "30s", "alertname": "DphpConsumerStalled", "exp_alerts": []},
                {"eval_time": "90s", "alertname": "DphpConsumerStalled", "exp_alerts": [{
                    "exp_labels": {"severity": "critical", "group": "dphp.movements", "topic": "t", "partition": "0"},
                    "exp_annotations": {
                        "summary": "dphp.movements t[0] has lag and has not advanced for 1m 30s",
                        "description": "A frozen or failing instance owns the partition, or every batch fails; "
                                       "see its log and /health/ready."}}]},
            ],
        }],
    }
    path = tmp_path / "stalled.test.yml"
    path.write_text(json.dumps(test))
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_grafana_dashboard_queries_the_fixed_metric_names():
    dashboard = json.loads((ROOT / "infra/grafana/dashboards/dphp.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for name in ("dphp_consumer_lag_records", "dphp_events_applied_total", "dphp_dead_letters_total",
                 "dphp_batch_store_seconds_bucket", "dphp_newest_event_timestamp_seconds"):
        assert name in exprs



async def test_a_look_that_shows_a_group_caught_up_shows_its_newest_event(monkeypatch):
    """A batch stored while the monitor reads the positions: the look's lag 0 comes with that
    batch's newest event (the newest time was read first once, and stayed 0 beside lag 0)."""
    from services.common.settings import Settings
    from services.operations import monitor, status

    stored = dt.datetime(2024, 8, 1, 12, tzinfo=dt.timezone.utc)
    database = {"newest": None}

    async def group_lags(consumer, conn, settings, services):
        database["newest"] = stored  # the batch (rows and positions) commits during this read
        return [group(0, 10)]

    async def newest_event(conn, schema):
        return database["newest"]

    async def connected(self):
        return object()

    monkeypatch.setattr(status, "group_lags", group_lags)
    monkeypatch.setattr(status, "newest_event", newest_event)
    monkeypatch.setattr(monitor.LagMonitor, "_connection", connected)
    monkeypatch.setattr(monitor.LagMonitor, "_kafka", connected)
    metrics = ServiceMetrics("movements")
    look = monitor.LagMonitor(Settings(), metrics, ("movements",))
    await look.look()
    assert [p.lag for p in metrics.lags] == [0]
    assert metrics.newest_event._value.get() == stored.timestamp()

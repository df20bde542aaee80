"""Reading a service's /metrics and /health/* as Prometheus and a probe would."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families


def wait_address(path: Path, timeout: float = 60, process=None) -> str:
    """The HTTP address a service wrote to its address file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        if process is not None and process.proc.poll() is not None:
            raise AssertionError(f"{process.service} exited:\n{process.output()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"no HTTP address in {path} after {timeout} s")


def get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def samples(address: str) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics: (name, sorted labels) -> value, parsed with prometheus_client's parser."""
    status, body = get(f"{address}/metrics")
    assert status == 200, body
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def named(metrics: dict, name: str) -> dict[tuple, float]:
    return {labels: v for (n, labels), v in metrics.items() if n == name}


def ready(address: str) -> tuple[bool, dict]:
    status, body = get(f"{address}/health/ready")
    return status == 200, json.loads(body)


async def eventually(check, timeout: float, what: str, interval: float = 0.5):
    """Calls `check()` (in a thread) until it returns a true value; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not seen within {timeout} s (last: {last!r})")

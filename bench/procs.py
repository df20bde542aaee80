"""The projection services as separate processes, sampled with psutil (RSS, CPU seconds)."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from pydantic import SecretStr

from services.common.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("registrations", "movements", "meetings")


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a service process: every setting as DPHP_*, like a user would set."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()  # str() of a secret is its mask
        if value is not None:
            env[f"DPHP_{name.upper()}"] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# "2026-11-28 01:00:00,123 INFO dphp.projection: resuming partitions ..." (logged on the first batch)
_FIRST_BATCH = re.compile(rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO dphp\.projection: resuming partitions",
                          re.MULTILINE)


@dataclass
class Usage:
    rss_peak: int = 0  # bytes
    cpu_seconds: float = 0.0  # user + system, last sample
    samples: int = 0


@dataclass
class ServiceProcess:
    service: str
    settings: Settings
    log_dir: Path
    popen: subprocess.Popen | None = None
    launched_at: float = 0.0  # time.time()
    usage: Usage = field(default_factory=Usage)
    instance: int = 1  # of the same service

    @property
    def name(self) -> str:
        return self.service if self.instance == 1 else f"{self.service} #{self.instance}"

    @property
    def log(self) -> Path:
        return self.log_dir / (f"{self.service}.log" if self.instance == 1 else f"{self.service}-{self.instance}.log")

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> ServiceProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.launched_at = time.time()
            self.popen = subprocess.Popen([sys.executable, "-m", f"services.{self.service}.app"],
                                          env=settings_env(self.settings), stdout=log, stderr=subprocess.STDOUT,
                                          cwd=ROOT)
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def first_batch_at(self) -> float | None:
        """Wall-clock time of the service's first fetched batch, from its log (ms resolution)."""
        if not self.log.exists():
            return None
        m = _FIRST_BATCH.search(self.log.read_bytes())
        if m is None:
            return None
        return dt.datetime.strptime(m.group(1).decode(), "%Y-%m-%d %H:%M:%S,%f").timestamp()

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL; only this process, by its PID."""
        if not self.alive():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(20)
        except subprocess.TimeoutExpired:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)


class Sampler:
    """Samples RSS and CPU seconds of the given processes every `interval` seconds (a thread)."""

    def __init__(self, procs: list[ServiceProcess], interval: float = 0.1) -> None:
        self.procs = procs
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._handles: dict[int, psutil.Process] = {}

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def sample(self) -> None:
        for p in self.procs:
            if p.popen is None:
                continue
            try:
                h = self._handles.get(p.pid) or self._handles.setdefault(p.pid, psutil.Process(p.pid))
                with h.oneshot():
                    rss = h.memory_info().rss
                    cpu = h.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            p.usage.rss_peak = max(p.usage.rss_peak, rss)
            p.usage.cpu_seconds = cpu.user + cpu.system
            p.usage.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sample()


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL server process on this machine (the server is shared)."""
    out = {}
    for p in psutil.process_iter(["name", "cpu_times"]):
        if p.info["name"] in ("postgres",) and p.info["cpu_times"] is not None:
            t = p.info["cpu_times"]
            out[p.pid] = t.user + t.system
    return out


def listener_pid(port: int) -> int | None:
    """PID of the process listening on a local TCP port (the Kafka broker), if visible."""
    try:
        for c in psutil.net_connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
                return c.pid
    except (psutil.AccessDenied, OSError):
        pass
    return None


def process_cpu(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        t = psutil.Process(pid).cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return t.user + t.system


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def machine_busy_pct(before, after) -> float:
    """How busy the machine's CPUs were between two `psutil.cpu_times()` (100: every core, always)."""
    busy = lambda t: t.user + t.system + getattr(t, "nice", 0) + getattr(t, "irq", 0) + getattr(t, "softirq", 0)  # noqa: E731
    total = sum(after) - sum(before)
    return 100.0 * (busy(after) - busy(before)) / total if total > 0 else 0.0

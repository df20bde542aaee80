"""Background processes with PID files: start detached, check, stop by PID only."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from services.common.errors import StackError  # noqa: F401 - raised here, defined with the other expected errors


@dataclass(frozen=True)
class ManagedProcess:
    """A process of the local stack, identified by its PID file."""

    name: str
    pid_file: Path
    log_file: Path
    # A word that must appear in the process's command line, so that a PID reused by
    # an unrelated process is never signalled.
    cmdline_marker: str

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            if self.cmdline_marker not in " ".join(proc.cmdline()):
                return None
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,  # survives the CLI; own process group
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> bool:
        """Stops the process by its PID; returns False if it was not running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        try:
            proc = psutil.Process(pid)
            os.kill(pid, sig)
            try:
                proc.wait(timeout)
            except psutil.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                proc.wait(10)
        except psutil.NoSuchProcess:
            pass
        self.pid_file.unlink(missing_ok=True)
        return True


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _ephemeral_ports() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


_GIVEN: set[int] = set()


def free_port(neighbours: int = 1) -> int:
    """A loopback port that is free now, with the `neighbours` ports after it (a broker's controller
    listens on the next one). Chosen below the kernel's ephemeral range: a port from that range,
    free when asked, can be taken by any outgoing connection before the server binds it."""
    low, _ = _ephemeral_ports()
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low - neighbours - 1)
        if any(p in _GIVEN for p in range(port - 1, port + neighbours + 2)):
            continue  # handed out before: its broker's controller may not have bound it yet
        try:
            for p in range(port, port + neighbours + 1):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        _GIVEN.update(range(port, port + neighbours + 1))
        return port
    with socket.socket() as s:  # a crowded machine: any free port
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    alive: Callable[[], bool],
    what: str,
    log_file: Path,
) -> float:
    """Polls `ready` until true; fails early when the process died. Returns seconds taken."""
    start = time.monotonic()
    while True:
        if ready():
            return time.monotonic() - start
        if not alive():
            raise StackError(f"{what} exited during start-up: {last_error_line(log_file)} (log: {log_file})")
        if time.monotonic() - start > timeout:
            raise StackError(f"{what} not ready after {timeout:.0f} s (log: {log_file})")
        time.sleep(0.1)


def last_error_line(log_file: Path) -> str:
    try:
        lines = log_file.read_text(errors="replace").splitlines()[-200:]
    except OSError:
        return "no log"
    for needle in ("Address already in use", "BindException", "FATAL", "ERROR", "Exception", "Error"):
        for line in reversed(lines):
            if needle in line:
                return line.strip()[:300]
    return lines[-1].strip()[:300] if lines else "no output"

"""Running the services as separate processes, as users run them, with a test's own settings."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def settings_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[f"DPHP_{name.upper()}"] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ServiceProcess:
    def __init__(self, settings: Settings, service: str, log_dir: Path, instance: int = 0) -> None:
        self.settings, self.service = settings, service
        self.log = log_dir / f"{service}-{instance}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServiceProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", f"services.{self.service}.app"],
                                         env=settings_env(self.settings), stdout=log, stderr=subprocess.STDOUT,
                                         cwd=ROOT)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_services(settings: Settings, log_dir: Path, names=("registrations", "movements", "meetings")):
    return [ServiceProcess(settings, name, log_dir).start() for name in names]


async def wait_converged(settings: Settings, timeout: float = 180, processes=()) -> dict:
    from services.operations.status import gather_status

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = await gather_status(settings)
            if last["converged"]:
                return last
        except Exception as exc:  # the stack may be restarting
            last = {"error": repr(exc)}
        for p in processes:
            if p.proc is not None and p.proc.poll() is not None and p.proc.returncode not in (0, -9, -15):
                raise AssertionError(f"{p.service} exited with {p.proc.returncode}:\n{p.output()[-3000:]}")
        await asyncio.sleep(0.5)
    logs = "\n".join(p.output()[-2000:] for p in processes)
    raise AssertionError(f"not converged after {timeout} s: {json.dumps(last, default=str)[:2000]}\n{logs}")


def dphp(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "services.cli", *args], env=settings_env(settings),
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    return result


def dphp_json(settings: Settings, *args: str):
    result = dphp(settings, *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)

"""The consumer and report services as background processes of the local stack."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from services.common.settings import Settings
from services.devstack.process import ManagedProcess

SERVICE_NAMES = ("registrations", "movements", "meetings", "report")


def service_process(settings: Settings, name: str, instance: int = 0) -> ManagedProcess:
    state = settings.state_dir.resolve()
    return ManagedProcess(
        name=f"{name}-{instance}",
        pid_file=state / "pids" / f"{name}-{instance}.pid",
        log_file=state / "logs" / f"{name}-{instance}.log",
        cmdline_marker=f"services.{name}.app",
    )


def _available(name: str) -> bool:
    # A service exists once its package has an app module.
    return (Path(__file__).resolve().parents[1] / name / "app.py").exists()


def start_services(settings: Settings, env_for: Callable[[str], dict[str, str]] | None = None) -> list[str]:
    """Starts the services that do not run; `env_for(name)`: a service's environment (the secure
    stack's principals), else this process's."""
    lines = []
    for name in SERVICE_NAMES:
        if not _available(name):
            continue
        proc = service_process(settings, name)
        if proc.running():
            lines.append(f"{name}: already running (pid {proc.pid()})")
            continue
        pid = proc.start([sys.executable, "-m", f"services.{name}.app"], env=env_for(name) if env_for else None).pid
        lines.append(f"{name}: started (pid {pid}), log {proc.log_file}")
    return lines


def stop_services(settings: Settings) -> list[str]:
    lines = []
    for name in SERVICE_NAMES:
        proc = service_process(settings, name)
        if proc.stop():
            lines.append(f"{name}: stopped")
    return lines

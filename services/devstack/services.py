"""The consumer and report services as background processes of the local stack."""

from __future__ import annotations

import sys
from pathlib import Path

from services.common.settings import Settings

SERVICE_NAMES = ("registrations", "movements", "meetings", "report")


def _available(name: str) -> bool:
    # A service exists once its package has an app module.
    return (Path(__file__).resolve().parents[1] / name / "app.py").exists()


def start_services(settings: Settings) -> list[str]:
    from services.devstack.stack import service_process

    lines = []
    for name in SERVICE_NAMES:
        if not _available(name):
            continue
        proc = service_process(settings, name)
        if proc.running():
            lines.append(f"{name}: already running (pid {proc.pid()})")
            continue
        pid = proc.start([sys.executable, "-m", f"services.{name}.app"]).pid
        lines.append(f"{name}: started (pid {pid}), log {proc.log_file}")
    return lines


def stop_services(settings: Settings) -> list[str]:
    from services.devstack.stack import service_process

    lines = []
    for name in SERVICE_NAMES:
        proc = service_process(settings, name)
        if proc.stop():
            lines.append(f"{name}: stopped")
    return lines

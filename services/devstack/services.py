"""The consumer and report services as background processes of the local stack."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from services.common.settings import Settings
from services.devstack.process import ManagedProcess

SERVICE_NAMES = ("registrations", "movements", "meetings", "report", "web")


def service_process(settings: Settings, name: str, instance: int = 0) -> ManagedProcess:
    state = settings.state_dir.resolve()
    return ManagedProcess(
        name=f"{name}-{instance}",
        pid_file=state / "pids" / f"{name}-{instance}.pid",
        log_file=state / "logs" / f"{name}-{instance}.log",
        cmdline_marker=f"services.{name}.app",
    )


def http_address_file(settings: Settings, name: str, instance: int = 0) -> Path:
    return settings.state_dir.resolve() / "pids" / f"{name}-{instance}.http"


def http_address(settings: Settings, name: str, instance: int = 0) -> str | None:
    """The HTTP address (/metrics, /health/*) of a running service of the local stack, if known."""
    if not service_process(settings, name, instance).running():
        return None
    try:
        return http_address_file(settings, name, instance).read_text().strip() or None
    except OSError:
        return None


def _available(name: str) -> bool:
    # A service exists once its package has an app module.
    return (Path(__file__).resolve().parents[1] / name / "app.py").exists()


#: The database role of readers: the recap and meeting views, never the voters' tables.
READER_ROLE = "dphp_reader"


def url_with_user(url: str, user: str) -> str:
    """`url` logging in as `user` (no password: the plain local stack trusts local logins)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{user}@{'[' + host + ']' if ':' in host else host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


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
        address_file = http_address_file(settings, name)
        address_file.unlink(missing_ok=True)
        # Each service its own free port, written next to its PID file (`dphp dev status` shows it).
        env = {**(env_for(name) if env_for else os.environ),
               "DPHP_HTTP_PORT": "0", "DPHP_HTTP_ADDRESS_FILE": str(address_file)}
        if name == "web" and env_for is None:  # the web service reads as the reader role only (CONTRACT 5)
            env["DPHP_DATABASE_URL"] = url_with_user(settings.database_url, READER_ROLE)
        pid = proc.start([sys.executable, "-m", f"services.{name}.app"], env=env).pid
        lines.append(f"{name}: started (pid {pid}), log {proc.log_file}"
                     + (f", http://{settings.web_host}:{settings.web_port}/" if name == "web" else ""))
    return lines


def stop_services(settings: Settings) -> list[str]:
    lines = []
    for name in SERVICE_NAMES:
        proc = service_process(settings, name)
        if proc.stop():
            lines.append(f"{name}: stopped")
    return lines

"""`dphp dev up --monitoring`: Debian's `prometheus` binary scraping the local stack.

Its configuration lives in the state folder (`.dphp/prometheus/`): the alert rules of
`infra/prometheus/rules/`, and a file-based target list (`targets.json`) that `dphp dev up`
rewrites with each service's HTTP address (Prometheus notices the change by itself).
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from pathlib import Path

from services.common.errors import StackError
from services.common.settings import Settings
from services.devstack.process import ManagedProcess, wait_until
from services.devstack.services import SERVICE_NAMES, http_address, service_process

RULES = Path(__file__).resolve().parents[2] / "infra" / "prometheus" / "rules"
MISSING = "prometheus not found on PATH: install it (Debian: `apt-get install prometheus`) for `dphp dev up --monitoring`"


def folder(settings: Settings) -> Path:
    return settings.state_dir.resolve() / "prometheus"


def process(settings: Settings) -> ManagedProcess:
    state = settings.state_dir.resolve()
    return ManagedProcess(name="prometheus", pid_file=state / "pids" / "prometheus.pid",
                          log_file=state / "logs" / "prometheus.log", cmdline_marker=str(folder(settings) / "data"))


def url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.prometheus_port}"


def check_installed() -> None:
    if shutil.which("prometheus") is None:
        raise StackError(MISSING)


def targets(settings: Settings) -> list[dict]:
    """file_sd entries: every running service of the local stack with a known HTTP address."""
    out = []
    for name in SERVICE_NAMES:
        address = http_address(settings, name)
        if address:
            out.append({"targets": [address.split("://", 1)[1]], "labels": {"service": name}})
    return out


def write_targets(settings: Settings, wait_s: float = 0.0) -> list[dict]:
    """Rewrites the target list (atomically: Prometheus may read it meanwhile), after waiting up to
    `wait_s` for the running services to publish their addresses."""
    deadline = time.monotonic() + wait_s
    while True:
        found = targets(settings)
        running = [n for n in SERVICE_NAMES if service_process(settings, n).running()]
        if len(found) >= len(running) or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    folder(settings).mkdir(parents=True, exist_ok=True)
    tmp = folder(settings) / "targets.json.tmp"
    tmp.write_text(json.dumps(found, indent=1) + "\n")
    tmp.replace(folder(settings) / "targets.json")
    return found


def write_config(settings: Settings) -> Path:
    config = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [str(RULES / "*.yml")],
        "scrape_configs": [{
            "job_name": "dphp",
            "file_sd_configs": [{"files": [str(folder(settings) / "targets.json")], "refresh_interval": "5s"}],
        }],
    }
    path = folder(settings) / "prometheus.yml"
    path.write_text(json.dumps(config, indent=1) + "\n")  # JSON is YAML
    return path


def _ready(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(f"{url(settings)}/-/ready", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def up(settings: Settings, log=print) -> None:
    check_installed()
    found = write_targets(settings, wait_s=30)
    proc = process(settings)
    if proc.running():
        log(f"prometheus: already running (pid {proc.pid()}) at {url(settings)}; {len(found)} targets")
        return
    config = write_config(settings)
    popen = proc.start(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={folder(settings) / 'data'}",
                        f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
                        "--storage.tsdb.retention.time=7d"])
    wait_until(lambda: _ready(settings), timeout=60, alive=lambda: popen.poll() is None, what="prometheus",
               log_file=proc.log_file)
    log(f"prometheus: started (pid {popen.pid}) at {url(settings)}, scraping {len(found)} services; "
        f"log {proc.log_file}")


def refresh(settings: Settings) -> None:
    """Keeps a running Prometheus's targets current (after services were started again)."""
    if process(settings).running():
        write_targets(settings, wait_s=30)


def down(settings: Settings) -> str | None:
    return "prometheus: stopped" if process(settings).stop() else None

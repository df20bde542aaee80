"""Secret files are private from their creation (never the umask's mode, even for a moment), and
the SCRAM users' salted passwords reach Kafka's storage formatter in a file, not its command line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from services.common.settings import Settings
from services.devstack import kafka, postgres, secure

pytestmark = pytest.mark.unit


@pytest.fixture
def no_chmod(monkeypatch):
    """A file's mode is what it was created with: a later chmod (a window of the umask's mode) is
    not counted."""
    monkeypatch.setattr(Path, "chmod", lambda self, mode, **kw: None)
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_the_secure_brokers_configuration_is_created_private(tmp_path, no_chmod) -> None:
    layout = kafka.KafkaLayout(state=tmp_path, jars_root=tmp_path, version="x", host="127.0.0.1", port=1, controller_port=2)
    kafka.write_config(layout, {"ssl.keystore.password": "secret"})
    assert layout.config.stat().st_mode & 0o777 == 0o600


def test_the_initdb_password_file_is_created_private(tmp_path, no_chmod, monkeypatch) -> None:
    seen = {}

    def run(cmd, what, env=None):
        pwfile = Path(next(a for a in cmd if a.startswith("--pwfile=")).split("=", 1)[1])
        seen["mode"] = pwfile.stat().st_mode & 0o777
        seen["text"] = pwfile.read_text()

    monkeypatch.setattr(postgres, "_run", run)
    monkeypatch.setattr(postgres, "_server_user_ids", lambda: (os.getuid(), os.getgid()))
    layout = postgres.PostgresLayout(state=tmp_path, host="127.0.0.1", port=1, superuser_password="pw-123")
    layout.data.mkdir(parents=True)
    postgres._initdb([], tmp_path, layout)
    assert seen == {"mode": 0o600, "text": "pw-123\n"}
    assert not (layout.data.parent / ".initdb-pw").exists()


def test_the_scram_users_go_to_the_formatter_in_a_private_file(tmp_path, monkeypatch) -> None:
    lay = secure.layout_of(Settings(state_dir=tmp_path))
    store = secure.passwords(lay)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0, "", ""))
    layout = kafka.KafkaLayout(state=tmp_path, jars_root=tmp_path, version="x", host="127.0.0.1", port=1, controller_port=2)
    args = secure.write_scram_args(tmp_path / "format.args", store)
    kafka.format_storage(layout, args_file=args)
    (cmd,) = calls
    assert cmd[-1] == f"@{args}" and not any("add-scram" in a or "saltedpassword" in a for a in cmd)
    assert args.stat().st_mode & 0o777 == 0o600
    lines = args.read_text().splitlines()
    assert lines[0::2] == ["--add-scram"] * len(store["kafka"])  # one argument a line, as the tool reads them
    assert all("saltedpassword=" in line and all(p not in line for p in store["kafka"].values()) for line in lines[1::2])

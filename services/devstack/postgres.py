"""The local PostgreSQL server: Debian's server binaries, a cluster in the state folder."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from services.devstack.private import write_private
from services.devstack.process import ManagedProcess, StackError, port_open, wait_until

SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "shared_buffers": "256MB",
    "max_wal_size": "2GB",
    "checkpoint_timeout": "15min",
    "max_connections": "200",
    "log_min_messages": "warning",
    # An error's DETAIL ("Failing row contains (3316...)", "Key (nik)=(...)") and the failing
    # statement would put full NIKs in the server log; log the error's message alone.
    "log_error_verbosity": "terse",
    "log_min_error_statement": "panic",
}


@dataclass(frozen=True)
class PostgresLayout:
    state: Path
    host: str
    port: int
    database: str = "dphp"
    user: str = "dphp"
    # The secure stack: the cluster is made with scram-sha-256 for every connection (no trust
    # line) and this password for `postgres`; its roles are made by services/devstack/secure.py.
    superuser_password: str | None = field(default=None, repr=False)

    @property
    def data(self) -> Path:
        return self.state / "postgres" / "data"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name="postgres",
            pid_file=self.state / "pids" / "postgres.pid",
            log_file=self.state / "logs" / "postgres.log",
            cmdline_marker=str(self.data),
        )

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


def find_bin_dir() -> Path:
    override = os.environ.get("DPHP_PG_BIN")
    candidates = [override] if override else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]), reverse=True)
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    raise StackError(
        "PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin and DPHP_PG_BIN); "
        "Debian: apt-get install postgresql-15"
    )


def _as_server_user() -> list[str]:
    # initdb and postgres refuse to run as root: run them as the `postgres` system user.
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    return ["runuser", "-u", "postgres", "--"]


def _prepare_dirs(layout: PostgresLayout) -> None:
    layout.data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        layout.data.chmod(0o700)
        return
    entry = pwd.getpwnam("postgres")
    os.chown(layout.data, entry.pw_uid, entry.pw_gid)
    layout.data.chmod(0o700)
    # The server user must traverse the folders above its data directory.
    p = layout.data.parent
    while p != p.parent:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            p.chmod(mode | stat.S_IXOTH)
        p = p.parent


def give_to_server_user(*paths: Path) -> None:
    """Files the server reads (its TLS key and certificate) owned by the server's user: PostgreSQL
    refuses a key file others can read, and runs as `postgres` when started by root."""
    if os.geteuid() != 0:
        return
    _as_server_user()
    entry = pwd.getpwnam("postgres")
    for path in paths:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        lines = (result.stdout + result.stderr).strip().splitlines()
        raise StackError(f"{what} failed: {lines[-1] if lines else result.returncode}")


def start(layout: PostgresLayout, log=print, options: dict[str, str] | None = None) -> str:
    """Starts the server unless it runs; `options` add to or override SERVER_OPTIONS (tests)."""
    proc = layout.process
    if proc.running():
        return f"postgres already running (pid {proc.pid()}) at {layout.url}"
    if port_open(layout.host, layout.port):
        raise StackError(
            f"port {layout.host}:{layout.port} is taken by another process; stop it or point "
            "DPHP_DATABASE_URL at a free port (or at that server, to use it)"
        )
    bin_dir = find_bin_dir()
    runas = _as_server_user()
    _prepare_dirs(layout)
    if not (layout.data / "PG_VERSION").exists():
        log(f"initialising a PostgreSQL cluster in {layout.data}")
        _initdb(runas, bin_dir, layout)
    layout.process.log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file = layout.process.log_file
    if os.geteuid() == 0 and not log_file.exists():
        log_file.touch()
        entry = pwd.getpwnam("postgres")
        os.chown(log_file, entry.pw_uid, entry.pw_gid)
    opts = " ".join(f"-c {k}={v}" if v else f"-c {k}=''" for k, v in {**SERVER_OPTIONS, **(options or {})}.items())
    argv = runas + [str(bin_dir / "postgres"), "-D", str(layout.data), "-p", str(layout.port)] + opts.split()
    argv = [a.replace("''", "") for a in argv]
    child = proc.start(argv)
    pid = child.pid
    took = wait_until(
        lambda: port_open(layout.host, layout.port) and _accepts(bin_dir, layout),
        timeout=60, alive=lambda: child.poll() is None, what="PostgreSQL", log_file=log_file,
    )
    # runuser forks the server as a child: record the postmaster's own PID.
    postmaster = _postmaster_pid(layout)
    if postmaster:
        proc.pid_file.write_text(f"{postmaster}\n")
        pid = postmaster
    if layout.superuser_password is None:
        _bootstrap_roles(bin_dir, layout)
    return f"postgres started (pid {pid}) at {layout.url} in {took:.1f} s"


def _initdb(runas: list[str], bin_dir: Path, layout: PostgresLayout) -> None:
    argv = runas + [str(bin_dir / "initdb"), "-D", str(layout.data), "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"]
    if layout.superuser_password is None:
        _run(argv + ["--auth=trust"], "initdb")
        return
    # The password through a file readable by the server user only, removed right after.
    pwfile = layout.data.parent / ".initdb-pw"
    write_private(pwfile, layout.superuser_password + "\n",
                  owner=_server_user_ids() if os.geteuid() == 0 else None)
    try:
        _run(argv + ["--auth=scram-sha-256", f"--pwfile={pwfile}"], "initdb")
    finally:
        pwfile.unlink(missing_ok=True)


def _server_user_ids() -> tuple[int, int]:
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def _postmaster_pid(layout: PostgresLayout) -> int | None:
    try:
        return int((layout.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def answers(layout: PostgresLayout) -> bool:
    """True when a PostgreSQL server accepts connections at the layout's address."""
    try:
        return _accepts(find_bin_dir(), layout)
    except StackError:
        return False


def _accepts(bin_dir: Path, layout: PostgresLayout) -> bool:
    r = subprocess.run([str(bin_dir / "pg_isready"), "-h", layout.host, "-p", str(layout.port), "-q"])
    return r.returncode == 0


def _psql(layout: PostgresLayout, sql: str, db: str = "postgres") -> None:
    psql = shutil.which("psql") or str(find_bin_dir() / "psql")
    env = None
    if layout.superuser_password is not None:  # never on the command line
        env = {**os.environ, "PGPASSWORD": layout.superuser_password}
    _run([psql, "-h", layout.host, "-p", str(layout.port), "-U", "postgres", "-d", db,
          "-v", "ON_ERROR_STOP=1", "-qAtc", sql], "psql", env=env)


def _bootstrap_roles(bin_dir: Path, layout: PostgresLayout) -> None:
    _psql(layout, f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{layout.user}') THEN
    CREATE ROLE {layout.user} LOGIN SUPERUSER;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dphp_reader') THEN
    CREATE ROLE dphp_reader LOGIN;
  END IF;
END $$;""")
    psql = shutil.which("psql") or str(bin_dir / "psql")
    exists = subprocess.run(
        [psql, "-h", layout.host, "-p", str(layout.port), "-U", "postgres", "-qAtc",
         f"SELECT 1 FROM pg_database WHERE datname = '{layout.database}'"],
        capture_output=True, text=True,
    ).stdout.strip()
    if exists != "1":
        _psql(layout, f"CREATE DATABASE {layout.database} OWNER {layout.user}")


def stop(layout: PostgresLayout) -> str:
    # SIGINT is PostgreSQL's "fast" shutdown: abort transactions, checkpoint, exit.
    if layout.process.stop(sig=signal.SIGINT, timeout=60):
        return "postgres stopped"
    return "postgres was not running"

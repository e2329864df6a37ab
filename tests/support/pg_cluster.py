"""A private PostgreSQL cluster for fault tests, which must stop and restart PostgreSQL without
touching the shared cluster `make services` runs.

PostgreSQL refuses to run as root, so when the tests run as root its binaries run as the
`postgres` OS user (`as_postgres_user`, which pgbouncer uses too) in a temporary directory that
user owns.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.servers import free_port, wait_for

PG_LIB = Path("/usr/lib/postgresql")


def as_postgres_user(*owned: Path) -> list[str]:
    """The prefix that runs a command as the `postgres` OS user when the tests run as root
    (PostgreSQL and pgbouncer both refuse root), after giving that user `owned`; [] otherwise.

    `setpriv` execs the command rather than waiting on it as `runuser` does, so the pid of a
    Popen is the command's own and a signal sent to it (a SIGKILL, a timeout's kill) reaches it.
    """
    if os.geteuid() != 0:
        return []
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running the tests as root needs a `postgres` OS user") from None
    for path in owned:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--"]


def pg_bindir() -> Path:
    """The bin directory of the newest PostgreSQL installed under /usr/lib/postgresql (or the
    directory of `pg_ctl` on PATH)."""
    if PG_LIB.is_dir():
        versions = [
            p for p in PG_LIB.iterdir() if re.fullmatch(r"\d+", p.name) and (p / "bin").is_dir()
        ]
        if versions:
            return max(versions, key=lambda p: int(p.name)) / "bin"
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries not found: run `make services`")


class PostgresCluster:
    """initdb + pg_ctl on a free loopback port; trust auth on loopback; socket in the data dir's
    parent. `start()`, `stop()`, `restart()`, `create_database()`, `.url`."""

    def __init__(self, role: str = "contactsync", database: str = "contactsync"):
        self.bindir = pg_bindir()
        self.port = free_port()
        self.role = role
        self.database = database
        self.base = Path(tempfile.mkdtemp(prefix="cs-test-pg-"))
        self.datadir = self.base / "data"
        self.socketdir = self.base / "sock"
        self.logfile = self.base / "postgres.log"
        self.socketdir.mkdir(parents=True, exist_ok=True)
        self._as_user = as_postgres_user(self.base, self.socketdir)
        self.initialized = False

    # --- running the binaries -------------------------------------------------------------

    def _run(self, binary: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self._as_user, str(self.bindir / binary), *args],
            check=check,
            capture_output=True,
            text=True,
            cwd=self.base,
            timeout=120,
        )

    def _ctl(self, action: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self._run(
            "pg_ctl", action, "-D", str(self.datadir), "-l", str(self.logfile), *args, check=check
        )

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"postgresql://{self.role}@127.0.0.1:{self.port}/{self.database}"

    def url_for(self, database: str) -> str:
        return f"postgresql://{self.role}@127.0.0.1:{self.port}/{database}"

    def init(self) -> PostgresCluster:
        self.socketdir.mkdir(parents=True, exist_ok=True)
        self._run(
            "initdb",
            "-D", str(self.datadir),
            "-U", "postgres",
            "--auth-local=trust",
            "--auth-host=trust",
            "-E", "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )  # fmt: skip
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# private test cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.socketdir}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "max_connections = 100\n"
                "shared_buffers = 32MB\n"
            )
        self.initialized = True
        return self

    def start(self) -> PostgresCluster:
        if not self.initialized:
            self.init()
        self._ctl("start", "-w", "-t", "60")
        wait_for(self.ready, timeout=30, what=f"postgres on port {self.port}")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-w", "-m", mode, "-t", "60", check=False)

    def restart(self, mode: str = "fast") -> None:
        self._ctl("restart", "-w", "-m", mode, "-t", "60")
        wait_for(self.ready, timeout=30, what=f"postgres on port {self.port}")

    def running(self) -> bool:
        return self._ctl("status", check=False).returncode == 0

    def ready(self) -> bool:
        result = self._run(
            "pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-t", "2", check=False
        )
        return result.returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = self._run(
            "psql",
            "-h", str(self.socketdir),
            "-p", str(self.port),
            "-U", "postgres",
            "-d", database,
            "-v", "ON_ERROR_STOP=1",
            "-At",
            "-c", sql,
        )  # fmt: skip
        return result.stdout.strip()

    def create_database(self, name: str | None = None) -> str:
        """Create the role (once) and a database it owns; returns the database URL."""
        name = name or self.database
        exists = self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{self.role}'")  # noqa: S608
        if not exists:
            self.psql(f'CREATE ROLE "{self.role}" LOGIN')
        self.psql(f'CREATE DATABASE "{name}" OWNER "{self.role}"')
        return self.url_for(name)

    def close(self) -> None:
        """Stop the cluster (immediately) and delete its files."""
        if self.initialized:
            self._ctl("stop", "-w", "-m", "immediate", "-t", "30", check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

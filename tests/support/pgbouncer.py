"""A real `pgbouncer` in transaction pooling mode in front of a test database.

`PgBouncer(database_url).start()` runs the Debian package's binary (scripts/services.sh
installs it) in the foreground on a free loopback port, with a generated pgbouncer.ini and
auth_file in a temporary directory. `.url_for(database)` is what the Contacts service gets as
CONTACTS_DATABASE_URL; `.show("POOLS")` reads the admin console; `stop()` / `start()` keep the
port, `kill()` is a crash.

pgbouncer refuses to run as root, so as root it runs as the `postgres` OS user
(`as_postgres_user`, which execs: the Popen pid is pgbouncer's own, so a SIGKILL reaches it),
and its directory is that user's.

Clients authenticate to pgbouncer with SCRAM against the auth_file, which holds the role's
password in clear text, because pgbouncer logs in to PostgreSQL with that same password (SCRAM
on the shared cluster; the private fault cluster trusts loopback and ignores it). A database URL
without a password gets a generated one: the client side must still authenticate.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

from tests.support.pg_cluster import as_postgres_user
from tests.support.servers import free_port, wait_for


def pgbouncer_binary() -> str:
    # Debian installs it in /usr/sbin, which a non-root PATH may lack.
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")
    if not found:
        raise RuntimeError("pgbouncer is not installed: run `make services`")
    return found


class PgBouncer:
    """pgbouncer (pool_mode = transaction) for every database of the server of `database_url`,
    as that URL's role. Small pools on purpose (`pool_size` server connections per database),
    so more clients than server connections really share them."""

    def __init__(
        self,
        database_url: str,
        pool_size: int = 5,
        max_client_conn: int = 100,
        query_wait_timeout: int = 5,
        ignore_startup_parameters: str = "",
    ):
        parts = urllib.parse.urlsplit(database_url)
        self.server_host = parts.hostname or "127.0.0.1"
        self.server_port = parts.port or 5432
        self.database = parts.path.lstrip("/")
        self.user = urllib.parse.unquote(parts.username or "postgres")
        self.password = urllib.parse.unquote(parts.password or "") or secrets.token_urlsafe(16)
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.query_wait_timeout = query_wait_timeout
        self.ignore_startup_parameters = ignore_startup_parameters
        self.binary = pgbouncer_binary()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="cs-test-pgbouncer-"))
        self.ini = self.dir / "pgbouncer.ini"
        self.logfile = self.dir / "pgbouncer.log"
        self.process: subprocess.Popen | None = None
        self._write_config()
        self._as_user = as_postgres_user(self.dir, *self.dir.iterdir())
        if self._as_user:
            for path in self.dir.iterdir():
                path.chmod(0o600)

    # --- configuration ------------------------------------------------------------------------

    def _write_config(self) -> None:
        quoted_password = self.password.replace('"', '""')
        (self.dir / "userlist.txt").write_text(f'"{self.user}" "{quoted_password}"\n')
        self.ini.write_text(
            "[databases]\n"
            # Any database name maps to the same name on the server.
            f"* = host={self.server_host} port={self.server_port}\n"
            "\n[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {self.dir / 'userlist.txt'}\n"
            f"admin_users = {self.user}\n"
            "pool_mode = transaction\n"
            f"max_client_conn = {self.max_client_conn}\n"
            f"default_pool_size = {self.pool_size}\n"
            "min_pool_size = 0\n"
            "reserve_pool_size = 0\n"
            # Transaction pooling: nothing of a session survives a transaction, so there is
            # nothing to reset between clients (DISCARD ALL would only cost a round trip).
            "server_reset_query =\n"
            # None by default: psycopg2 sends only user, database and application_name (which
            # pgbouncer tracks). A startup `options` (e.g. -c statement_timeout) must fail
            # loudly here rather than be dropped; with CONTACTS_DB_TRANSACTION_POOLING the
            # service sets it with SET LOCAL instead.
            f"ignore_startup_parameters = {self.ignore_startup_parameters}\n"
            # A client queued for a server connection gets an error after this many seconds
            # (default 120), so an outage behind pgbouncer shows as a 503 within seconds.
            f"query_wait_timeout = {self.query_wait_timeout}\n"
            "server_connect_timeout = 3\n"
            # Retry a failed server login after 1 s (default 15), so recovery after a
            # PostgreSQL restart is quick.
            "server_login_retry = 1\n"
            "log_connections = 0\n"
            "log_disconnections = 0\n"
        )

    # --- URLs -----------------------------------------------------------------------------------

    def url_for(self, database: str | None = None) -> str:
        """The URL of `database` (default: the one of the given URL) through pgbouncer."""
        user = urllib.parse.quote(self.user, safe="")
        password = urllib.parse.quote(self.password, safe="")
        name = database or self.database
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{name}"

    @property
    def url(self) -> str:
        return self.url_for()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> PgBouncer:
        # Its log goes to stderr in the foreground, into a file this process opened.
        log = self.logfile.open("ab")
        self.process = subprocess.Popen(
            [*self._as_user, self.binary, str(self.ini)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
        )
        log.close()

        def answers() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited:\n{self.log()}")
            return bool(self.show("VERSION"))

        try:
            wait_for(answers, timeout=15, what=f"pgbouncer on port {self.port}")
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"pgbouncer did not start:\n{self.log()}") from None
        return self

    def stop(self) -> None:
        """SIGTERM (pgbouncer closes every connection and exits) and wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: a crash; clients see their connections reset."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

    # --- the admin console --------------------------------------------------------------------

    def show(self, what: str) -> list[dict]:
        """`SHOW <what>` on the admin console (`POOLS`, `CLIENTS`, `SERVERS`, `STATS`, ...)."""
        import psycopg2

        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            pass  # fail fast while nothing listens
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            dbname="pgbouncer",
            user=self.user,
            password=self.password,
            connect_timeout=3,
        )
        # The console knows no BEGIN.
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"SHOW {what}")
                names = [column.name for column in cursor.description]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def pool(self, database: str | None = None) -> dict:
        """The SHOW POOLS row of `database` for this role."""
        name = database or self.database
        for row in self.show("POOLS"):
            if row["database"] == name and row["user"] == self.user:
                return row
        return {}

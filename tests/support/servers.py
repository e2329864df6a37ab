"""Start real dependencies for tests.

Each test session gets its own redis-server (so a test may stop and restart it without
disturbing anyone) and its own PostgreSQL database in the cluster `make services` runs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
ADMIN_DATABASE_URL = os.environ.get(
    "CONTACTS_TEST_DATABASE_URL",
    os.environ.get(
        "CONTACTS_DATABASE_URL", "postgresql://contactsync:contactsync@127.0.0.1:5432/contactsync"
    ),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


def stop_process(process: subprocess.Popen | None) -> None:
    """SIGTERM a running process and wait for it; SIGKILL it if it takes over 15 s."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class RedisServer:
    """A private redis-server on a free loopback port; stop() and start() keep the port."""

    def __init__(self):
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is not installed: run `make services`")
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="cs-test-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.ping, what=f"redis on port {self.port}")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresDatabase:
    """A throwaway database, created in the cluster of ADMIN_DATABASE_URL and dropped after."""

    def __init__(self, admin_url: str = ADMIN_DATABASE_URL):
        self.admin_url = admin_url
        self.name = f"cs_test_{os.getpid()}_{secrets.token_hex(3)}"
        parts = urllib.parse.urlsplit(admin_url)
        self.url = urllib.parse.urlunsplit(parts._replace(path="/" + self.name))

    def _admin(self, sql: str, params: tuple = ()) -> None:
        import psycopg2

        conn = psycopg2.connect(self.admin_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params or None)
        finally:
            conn.close()

    def create(self, encoding: str | None = None) -> PostgresDatabase:
        """`encoding`: another server encoding than the cluster's default (UTF8)."""
        with_encoding = (
            f" ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
            if encoding
            else ""
        )
        self._admin(f'CREATE DATABASE "{self.name}"{with_encoding}')
        return self

    def drop(self) -> None:
        import psycopg2.errors

        try:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        except psycopg2.errors.InsufficientPrivilege:
            # FORCE may not end an autovacuum worker (busy after a large test) for a role
            # without pg_signal_backend; a plain DROP ends those itself once ours are gone.
            def dropped() -> bool:
                self._admin(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                    " AND usename = current_user AND pid <> pg_backend_pid()",
                    (self.name,),
                )
                self._admin(f'DROP DATABASE IF EXISTS "{self.name}"')
                return True

            wait_for(dropped, timeout=30, interval=0.5, what=f"database {self.name} dropped")


class ServiceProcess:
    """`python -m <package> serve` as a real gunicorn process, with its log kept in a file."""

    def __init__(self, package: str, env: dict[str, str], workers: int = 2, extra_args=()):
        self.package = package
        self.port = free_port()
        self.env = env
        self.workers = workers
        self.extra_args = list(extra_args)
        self.log_path = Path(tempfile.mkstemp(prefix=f"cs-{package}-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None
        self.scheme = "https" if "--certfile" in self.extra_args else "http"
        self.verify: bool | str = True
        # What precedes `serve`; the binary tests put dist/<name> here.
        self.command = [sys.executable, "-m", package]

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServiceProcess:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                *self.command, "serve",
                "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(self.workers),
                *self.extra_args,
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()

        def healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.package} exited:\n{self.log()}")
            return requests.get(self.url + "/healthz", timeout=1, verify=self.verify).ok

        try:
            wait_for(healthy, timeout=timeout, what=f"{self.package} /healthz")
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{self.package} did not start:\n{self.log()}") from None
        return self

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

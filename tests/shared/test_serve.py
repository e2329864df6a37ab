"""gunicorn's own refusals (before the app sees a request) still use the one error shape."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import urllib.parse

import pytest
import requests

from tests.support.clients import process_tree
from tests.support.servers import ServiceProcess, wait_for
from tests.support.stack import sso_env


def raw_request(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "error"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n", 431, None),
        (b"NOT A REQUEST LINE\r\n\r\n", 400, "invalid_request"),
    ],
)
def test_gunicorn_refusals_use_the_error_shape(sso_server, request_bytes, status, error):
    got_status, headers, body = raw_request(sso_server.url, request_bytes)
    assert got_status == status
    assert headers["Content-Type"] == "application/json"
    answer = json.loads(body)
    assert set(answer) == {"error", "message"}
    if error:
        assert answer["error"] == error


def _workers(server) -> list[int]:
    # process_tree lists the descendants first and the master last.
    return process_tree(server.process.pid)[:-1]


def _end_worker(server, pid: int) -> None:
    # A worker forked moments ago still runs the master's signal handlers until it installs
    # its own, and those swallow a TERM: send it until the master no longer lists the worker,
    # as an operator whose first TERM did nothing would.
    def ended() -> bool:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        return pid not in _workers(server)

    wait_for(ended, timeout=30, interval=0.5, what=f"worker {pid} to end")


def _all_ok(server, paths=("/healthz", "/metrics", "/readyz"), rounds=12) -> list[int]:
    # New connections each time, so both workers (gunicorn hands them out) are asked.
    return [
        requests.get(server.url + path, timeout=10).status_code
        for _ in range(rounds)
        for path in paths
    ]


@pytest.fixture
def own_sso(redis_server, provider):
    server = ServiceProcess("sso_service", sso_env(redis_server.url, provider), workers=2).start()
    yield server
    server.stop()


@pytest.mark.parametrize("how", ["a worker ends (TERM)", "the master reloads (HUP)"])
def test_workers_started_after_another_one_ended_still_serve(own_sso, how):
    # The metrics directory belongs to the master: a worker leaving (it exits through the
    # code that started it) once removed it, and every later worker answered 500.
    wait_for(lambda: len(_workers(own_sso)) == 2, timeout=30, what="both workers")
    before = _workers(own_sso)
    if how.startswith("a worker"):
        _end_worker(own_sso, before[0])
    else:
        os.kill(own_sso.process.pid, signal.SIGHUP)
    wait_for(
        lambda: len(after := _workers(own_sso)) == 2 and before[0] not in after,
        timeout=30,
        what="replacement workers",
    )
    statuses = _all_ok(own_sso)
    assert set(statuses) == {200}, statuses

"""gunicorn's own refusals (before the app sees a request) still use the one error shape."""

from __future__ import annotations

import json
import socket
import urllib.parse

import pytest


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

"""/metrics cannot be grown by requests: made-up methods and unknown paths are counted under
`other`, so no request creates new series (gunicorn accepts any 3-20 character method)."""

from __future__ import annotations

import re
import secrets
import socket

import pytest
import requests


def raw_request(url: str, method: str, path: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        while sock.recv(65536):
            pass


# Per-Cloud-ID gauges follow the data (a Cloud ID's first login), as each worker last read it
# (up to a minute apart), and are bounded by their top-N cut, not by requests.
DATA_SERIES = ("sso_cloud_", "contacts_cloud_")


def series(url: str) -> set[str]:
    text = requests.get(url + "/metrics", timeout=10).text
    return {
        line.rsplit(" ", 1)[0]
        for line in text.splitlines()
        if line and line[0] != "#" and not line.startswith(DATA_SERIES)
    }


@pytest.mark.parametrize("server", ["sso_server", "hostile_contacts"])
def test_made_up_methods_and_paths_create_no_series(request, server):
    url = request.getfixturevalue(server).url
    # Every kind of request the loop sends, once, so their series exist before the baseline.
    for method, path in [("FOOBAR", "/healthz"), ("FOOBAR", "/nope"), ("GET", "/nope")]:
        raw_request(url, method, path)
    series(url)
    before = series(url)
    for _ in range(20):
        method = "M" + secrets.token_hex(4).upper()
        raw_request(url, method, "/healthz")
        raw_request(url, method, "/" + secrets.token_hex(8))
        raw_request(url, "GET", "/" + secrets.token_hex(8))
    after = series(url)
    # Values of gauges and counters change; the set of series does not.
    assert after == before
    assert not any(re.search(r'method="M[0-9A-F]{8}"', line) for line in after)
    assert any('method="other"' in line for line in after)

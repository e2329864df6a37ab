"""CORS_ORIGINS entries are exact origins, never regular expressions (flask-cors reads an entry
with `[`, `*`, `?`, `(`... as one, matched as a prefix): each admits that origin only."""

from __future__ import annotations

import pytest
import requests

from tests.support.servers import ServiceProcess
from tests.support.stack import sso_env

LISTED = "https://app.example.com"


@pytest.fixture(scope="module")
def cors_sso(redis_server, provider):
    env = sso_env(
        redis_server.url, provider, CORS_ORIGINS=f"{LISTED},http://localhost:8080,http://[::1]:8080"
    )
    server = ServiceProcess("sso_service", env, workers=1).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (LISTED, True),
        ("https://APP.example.com", True),  # hosts are case-insensitive
        ("http://localhost:8080", True),
        ("https://appXexample.com", False),  # `.` as a regex wildcard
        ("https://app.example.com.evil.test", False),  # a prefix match
        ("https://app.example.comX", False),
        ("https://evil.test/https://app.example.com", False),
        ("http://app.example.com", False),
        ("http://localhost:80800", False),
        ("null", False),
        # `[::1]` read as a regex is a character class: it matched `http://1:8080` and not
        # the listed origin itself.
        ("http://[::1]:8080", True),
        ("http://1:8080", False),
        ("http://::8080", False),
    ],
)
def test_only_listed_origins_get_cors_headers(cors_sso, origin, allowed):
    preflight = requests.options(
        cors_sso.url + "/v1/tokens",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    error = requests.post(
        cors_sso.url + "/v1/tokens", json={}, headers={"Origin": origin}, timeout=10
    )
    for response in (preflight, error):
        if allowed:
            assert response.headers.get("Access-Control-Allow-Origin") == origin
        else:
            assert "Access-Control-Allow-Origin" not in response.headers

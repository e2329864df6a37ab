"""ext-auth slow beyond its timeout, answering 500, garbage or dropping the connection: the
login answers 502 upstream_error within the timeout plus a margin, and no token is issued."""

from __future__ import annotations

import secrets
import time

import pytest
import redis
import requests
from demo_provider import Behaviour  # deploy/demo is on sys.path (tests/conftest.py)

from tests.support.clients import introspect

EXT_AUTH_TIMEOUT = 2
# Functional bound (not a benchmark): the SSO must give up on its own timeout, not hang.
MARGIN = 5


def _token_keys(server) -> set[str]:
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        return set(client.scan_iter("sso:token:*")) | set(client.scan_iter("sso:account:*"))
    finally:
        client.close()


@pytest.mark.parametrize(
    "behaviour",
    [
        Behaviour(mode="slow", delay=EXT_AUTH_TIMEOUT + 4),
        Behaviour(mode="status", status=500, body="internal error"),
        Behaviour(mode="status", status=503, body="<html>maintenance</html>"),
        Behaviour(mode="garbage", content_type="application/json"),
        Behaviour(mode="garbage", content_type="application/xml"),
        Behaviour(mode="close"),
    ],
    ids=["slow", "500", "503", "garbage-json", "garbage-xml", "dropped"],
)
def test_failing_ext_auth_gives_502_in_time_and_no_token(stack, behaviour):
    provider = stack.provider
    cloud_id = "X" + secrets.token_hex(5)
    username, password = "u" + secrets.token_hex(4), secrets.token_urlsafe(10)
    provider.add_user(cloud_id, username, password, ["+15550002222"])
    provider.definitions[cloud_id]["timeout"] = EXT_AUTH_TIMEOUT
    provider.auth_behaviour[cloud_id] = behaviour
    body = {"cloud_id": cloud_id, "username": username, "password": password}
    before = _token_keys(stack.redis)

    started = time.monotonic()
    response = requests.post(stack.sso.url + "/v1/tokens", json=body, timeout=60)
    elapsed = time.monotonic() - started

    assert response.status_code == 502, response.text
    assert response.json()["error"] == "upstream_error"
    assert "token" not in response.json()
    assert elapsed < EXT_AUTH_TIMEOUT + MARGIN, elapsed
    assert _token_keys(stack.redis) == before  # nothing was issued

    # A good login afterwards works, and its token is the only one of that account.
    provider.auth_behaviour.pop(cloud_id)
    good = requests.post(stack.sso.url + "/v1/tokens", json=body, timeout=30)
    assert good.status_code == 200, good.text
    assert introspect(stack.sso.url, good.json()["token"]).json()["active"] is True
    assert _token_keys(stack.redis) - before  # the good login did store its token

"""Redis stopped and restarted under traffic: the SSO answers 503 while it is gone and
recovers by itself; Contacts, which introspects there, answers 503 auth_unavailable."""

from __future__ import annotations

import time

import requests

from tests.support.clients import introspect
from tests.support.servers import wait_for
from tests.support.traffic import TrafficLoop


def test_sso_answers_503_without_redis_and_recovers_without_restart(stack):
    account = stack.account()
    contacts = stack.client(account)
    assert contacts.put_device("phone").status_code == 201
    sso_pid = stack.sso.process.pid
    spare = stack.account()

    def step(loop):
        login = loop.call(
            "login",
            lambda: requests.post(
                stack.sso.url + "/v1/tokens", json=account.login_body(), timeout=15
            ),
        )
        logged_in = login is not None and login.status_code == 200
        if logged_in:
            contacts.token = login.json()["token"]
        loop.call("introspect", lambda: introspect(stack.sso.url, contacts.token))
        # Revoking a real token cannot be done without Redis: a 200 then would be a logout
        # that did not happen. (A second account's token, so the loop's own stays valid.)
        loop.call(
            "revoke",
            lambda: requests.post(
                stack.sso.url + "/v1/revoke", data={"token": spare.token}, timeout=15
            ),
        )
        loop.call(
            "devices",
            lambda: contacts.request("GET", "/v1/devices"),
            fresh_token=logged_in,
        )

    with TrafficLoop(step) as loop:
        loop.wait_until("login", 200, 3)
        stack.redis.stop()
        down = time.monotonic()
        loop.wait_until("login", 503, 3, after=down)
        loop.wait_until("introspect", 503, 3, after=down)
        loop.wait_until("revoke", 503, 3, after=down)
        loop.wait_until("devices", 503, 3, after=down)
        ready = requests.get(stack.sso.url + "/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["error"] == "unavailable"
        # Contacts cannot check a token either: it is not ready, and says the SSO is why
        # (the SSO still answers a malformed token, which needs no Redis).
        contacts_ready = requests.get(stack.contacts.url + "/readyz", timeout=10)
        assert contacts_ready.status_code == 503, contacts_ready.text
        assert list(contacts_ready.json()["details"]) == ["sso"]
        up = time.monotonic()
        stack.redis.start()
        loop.wait_until("login", 200, 3, after=up)
        loop.wait_until("devices", 200, 3, after=up)

    for record in loop.records:
        assert record.status in (200, 503, 401), record
        assert record.body_ok, record
        if record.status == 503:
            expected = "auth_unavailable" if record.label == "devices" else "unavailable"
            assert record.error == expected, record
        if record.status == 401:
            # Redis came back empty (no persistence in the test server): a token from before
            # the outage is gone, so only a request that did not carry a fresh login may be
            # refused, and only as an invalid token.
            assert record.label == "devices" and not record.meta["fresh_token"], record
            assert record.error == "invalid_token", record
    assert not [r for r in loop.records if r.started > down and r.ended < up and r.status == 200]

    # The same processes serve again: no restart was needed.
    assert stack.sso.process.pid == sso_pid
    wait_for(
        lambda: requests.get(stack.sso.url + "/readyz", timeout=3).status_code == 200,
        what="SSO ready again",
    )
    assert requests.get(stack.contacts.url + "/readyz", timeout=10).status_code == 200
    assert introspect(stack.sso.url, contacts.token).json()["active"] is True

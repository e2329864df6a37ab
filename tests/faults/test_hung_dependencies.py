"""Dependencies that hang instead of refusing connections (SIGSTOP: a frozen VM, a full
disk, a network black hole). The services must answer 503 within their own timeouts plus a
margin — a functional bound, not a benchmark — and recover when the dependency resumes."""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager

import requests

from tests.support.clients import process_tree
from tests.support.servers import wait_for

MARGIN = 5  # seconds on top of the service's own timeout


@contextmanager
def frozen(pids: list[int]):
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def timed(send):
    started = time.monotonic()
    response = send()
    return response, time.monotonic() - started


def postmaster_pid(cluster) -> int:
    return int((cluster.datadir / "postmaster.pid").read_text().split()[0])


def test_a_hung_sso_is_503_auth_unavailable_within_the_introspection_timeout(stack):
    client = stack.client(stack.account())
    assert client.put_device("phone").status_code == 201
    with frozen(process_tree(stack.sso.process.pid)):
        response, elapsed = timed(lambda: client.request("GET", "/v1/devices", timeout=60))
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "auth_unavailable"
        assert elapsed < 2 + MARGIN, elapsed  # CONTACTS_SSO_TIMEOUT_SECONDS=2
    wait_for(lambda: client.request("GET", "/v1/devices").status_code == 200, timeout=20)


def test_a_hung_redis_is_503_at_the_sso_within_its_socket_timeout(stack):
    account = stack.account()
    with frozen([stack.redis.process.pid]):
        response, elapsed = timed(
            lambda: requests.post(
                stack.sso.url + "/v1/tokens", json=account.login_body(), timeout=60
            )
        )
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "unavailable"
        # Redis socket timeout 2 s, one retry.
        assert elapsed < 2 * 2 + MARGIN, elapsed
    wait_for(
        lambda: (
            requests.post(
                stack.sso.url + "/v1/tokens", json=account.login_body(), timeout=10
            ).status_code
            == 200
        ),
        timeout=20,
    )


def test_a_hung_postgres_is_503_at_contacts_within_a_bounded_time(stack):
    client = stack.client(stack.account())
    assert client.put_device("phone").status_code == 201
    assert client.request("GET", "/v1/devices").status_code == 200  # pooled connections exist
    # CONTACTS_DB_STATEMENT_TIMEOUT_SECONDS=3 in this stack: a round trip on a pooled
    # connection (the ping of an idle one, or the query) gives up after 3 + 2 s, the reconnect
    # after the 5 s connect timeout.
    bound = 3 + 2 + 5 + MARGIN
    with frozen(process_tree(postmaster_pid(stack.postgres))):
        try:
            response, elapsed = timed(
                lambda: client.request("GET", "/v1/devices", timeout=bound + 2)
            )
        except requests.Timeout:
            raise AssertionError(f"no answer within {bound + 2} s while PostgreSQL hung") from None
    assert response.status_code == 503, (response.status_code, response.text, elapsed)
    assert response.json()["error"] == "unavailable"
    # A query on a pooled connection to a hung server must be bounded by the service itself
    # (connect_timeout is 5 s), well below gunicorn's 60 s worker timeout.
    assert elapsed < bound, elapsed
    wait_for(lambda: client.request("GET", "/v1/devices").status_code == 200, timeout=60)

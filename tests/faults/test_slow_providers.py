"""Providers that answer slowly, trickle, or send far too much. One deadline bounds the whole
ext-auth exchange (not each read), every body read is capped, and logins waiting on a slow
provider never starve the introspection every Contacts request depends on."""

from __future__ import annotations

import secrets
import threading
import time

import pytest
import requests
from demo_provider import Behaviour

from tests.support.servers import ServiceProcess
from tests.support.stack import INTROSPECTION_CLIENT, login, sso_env


@pytest.fixture(scope="module")
def sso(redis_server, provider):
    # Production defaults for threads (32) and SSO_MAX_CONCURRENT_LOGINS (24) per worker.
    server = ServiceProcess("sso_service", sso_env(redis_server.url, provider), workers=2).start()
    yield server
    server.stop()


@pytest.fixture
def cloud(fresh_provider):
    cloud_id = "T" + secrets.token_hex(5)
    fresh_provider.add_user(cloud_id, "tom", "tom-pw", ["+15551230199"])
    return cloud_id


def post_login(sso, cloud_id, username="tom", password="tom-pw"):
    body = {"cloud_id": cloud_id, "username": username, "password": password}
    return requests.post(sso.url + "/v1/tokens", json=body, timeout=60)


@pytest.mark.parametrize(
    "behaviour",
    [
        Behaviour(mode="trickle", delay=0.2),
        Behaviour(mode="trickle_close", delay=0.2),
        Behaviour(mode="trickle_head", delay=0.2),
        Behaviour(mode="slow", delay=5),
    ],
    ids=["body-trickles", "body-trickles-until-close", "head-trickles", "silent"],
)
def test_the_definition_timeout_bounds_the_whole_exchange(sso, fresh_provider, cloud, behaviour):
    fresh_provider.definitions[cloud] = {**fresh_provider.default_definition(cloud), "timeout": 1}
    fresh_provider.auth_behaviour[cloud] = behaviour
    started = time.monotonic()
    response = post_login(sso, cloud)
    elapsed = time.monotonic() - started
    assert response.status_code == 502, response.text
    assert response.json()["error"] == "upstream_error"
    # Each byte arrives well within any per-read timeout; the whole answer would take 40 s.
    assert elapsed < 4, elapsed


@pytest.mark.parametrize(
    "setup",
    ["huge_answer", "huge_digest_challenge"],
)
def test_bodies_over_one_mib_are_refused(sso, fresh_provider, cloud, setup):
    if setup == "huge_answer":
        fresh_provider.auth_behaviour[cloud] = Behaviour(mode="huge", size=64 << 20)
    else:
        fresh_provider.digest_challenge_padding = 64 << 20
        fresh_provider.definitions[cloud] = {
            "url": f"{fresh_provider.url}/ext-auth-digest/{cloud}",
            "postData": "username=%username%&password=%password%",
            "authUsername": fresh_provider.digest_user,
            "authPassword": fresh_provider.digest_pass,
        }
    response = post_login(sso, cloud)
    assert response.status_code == 502, response.text
    assert response.json()["error"] == "upstream_error"
    if setup == "huge_digest_challenge":
        assert len(fresh_provider.auth_requests) == 1  # the challenge was never answered


@pytest.mark.parametrize("where", ["ext-auth", "portal"])
def test_introspection_keeps_answering_while_32_logins_hang(sso, fresh_provider, cloud, where):
    token = login(sso.url, cloud, "tom", "tom-pw")["token"]
    hanging = "H" + secrets.token_hex(5)
    fresh_provider.add_user(hanging, "hal", "hal-pw")
    fresh_provider.definitions[hanging] = {
        **fresh_provider.default_definition(hanging),
        "timeout": 8,
    }
    if where == "ext-auth":
        fresh_provider.auth_behaviour[hanging] = Behaviour(mode="trickle_close", delay=0.4)
    else:
        # Every login names a Cloud ID nobody cached, and the portal takes its time (the
        # SSO's portal deadline is 5 s).
        fresh_provider.portal_behaviour = Behaviour(mode="slow", delay=8)

    statuses: list[int] = []
    start = threading.Barrier(33)

    def hang():
        start.wait()
        cloud_id = hanging if where == "ext-auth" else "P" + secrets.token_hex(5)
        statuses.append(post_login(sso, cloud_id, "hal", "hal-pw").status_code)

    logins = [threading.Thread(target=hang) for _ in range(32)]
    for thread in logins:
        thread.start()
    start.wait()
    time.sleep(0.5)  # let the logins reach the provider

    latencies, errors = [], []
    session = requests.Session()
    until = time.monotonic() + 5
    while time.monotonic() < until:
        began = time.monotonic()
        try:
            response = session.post(
                sso.url + "/v1/introspect", data={"token": token}, auth=INTROSPECTION_CLIENT,
                timeout=5,
            )  # fmt: skip
            if response.status_code != 200 or response.json().get("active") is not True:
                errors.append(response.status_code)
        except requests.RequestException as exc:
            errors.append(repr(exc))
        latencies.append(time.monotonic() - began)
    for thread in logins:
        thread.join()

    assert errors == []
    assert len(latencies) > 20
    assert max(latencies) < 1.0, max(latencies)
    # Each hanging login ends with the provider's failure or, beyond the per-worker slots, an
    # immediate "busy": never a 500, never a token.
    assert len(statuses) == 32
    assert set(statuses) <= {502, 503}, statuses
    assert 502 in statuses


@pytest.fixture
def one_worker_sso(redis_server, provider):
    # 4 login slots, of which one Cloud ID may take 3 (the default three quarters).
    env = sso_env(redis_server.url, provider, SSO_MAX_CONCURRENT_LOGINS="4")
    server = ServiceProcess("sso_service", env, workers=1).start()
    yield server
    server.stop()


def test_one_cloud_with_a_hanging_provider_leaves_logins_to_the_others(
    one_worker_sso, fresh_provider, cloud
):
    slow = "S" + secrets.token_hex(5)
    fresh_provider.definitions[slow] = {**fresh_provider.default_definition(slow), "timeout": 6}
    fresh_provider.auth_behaviour[slow] = Behaviour(mode="slow", delay=6)
    for n in range(6):
        fresh_provider.add_user(slow, f"user{n}", "pw")

    statuses: list[int] = []
    hanging = [
        threading.Thread(
            target=lambda n=n: statuses.append(
                post_login(one_worker_sso, slow, f"user{n}", "pw").status_code
            )
        )
        for n in range(6)
    ]
    for thread in hanging:
        thread.start()
    time.sleep(1.5)  # the first three are waiting on the provider; the rest were refused
    # Another Cloud ID's login still finds a slot.
    response = post_login(one_worker_sso, cloud)
    assert response.status_code == 200, response.text
    for thread in hanging:
        thread.join()
    # Three waited on the provider (502 at its deadline); the other three were refused at
    # once: the slow cloud never held the fourth slot.
    assert sorted(statuses) == [502, 502, 502, 503, 503, 503], statuses

"""The failed-login limit holds under concurrency and across spellings of one username: at
most SSO_MAX_FAILED_LOGINS guesses per window reach the provider, however they are sent."""

from __future__ import annotations

import secrets
import threading

import pytest
import requests
from demo_provider import Behaviour

from tests.support.servers import ServiceProcess
from tests.support.stack import sso_env


@pytest.fixture(scope="module")
def limited_sso(redis_server, provider):
    env = sso_env(redis_server.url, provider, SSO_MAX_FAILED_LOGINS="10")
    server = ServiceProcess("sso_service", env, workers=2).start()
    yield server
    server.stop()


def post(sso, cloud_id, username, password):
    body = {"cloud_id": cloud_id, "username": username, "password": password}
    return requests.post(sso.url + "/v1/tokens", json=body, timeout=30)


@pytest.fixture
def cloud(fresh_provider):
    cloud_id = "L" + secrets.token_hex(5)
    fresh_provider.add_user(cloud_id, "Alice", "right-pw", ["+15551230777"])
    return cloud_id


def test_25_concurrent_guesses_let_at_most_10_reach_ext_auth(limited_sso, fresh_provider, cloud):
    fresh_provider.auth_behaviour[cloud] = Behaviour(mode="slow", delay=0.5)
    statuses, barrier = [], threading.Barrier(25)

    def guess(n):
        barrier.wait()
        statuses.append(post(limited_sso, cloud, "Alice", f"guess-{n}").status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fresh_provider.auth_requests) <= 10
    assert statuses.count(401) == len(fresh_provider.auth_requests)
    assert statuses.count(429) >= 15
    assert set(statuses) <= {401, 429}, statuses


def test_spellings_of_a_username_share_one_count(limited_sso, fresh_provider, cloud):
    spellings = ["Alice", "ALICE", "alice", " alice", "\uff21lice"]
    for n in range(10):
        response = post(limited_sso, cloud, spellings[n % len(spellings)], "wrong")
        assert response.status_code == 401, response.text
    fresh_provider.reset()
    for spelling in spellings:
        response = post(limited_sso, cloud, spelling, "right-pw")
        assert response.status_code == 429, response.text
        assert int(response.headers["Retry-After"]) >= 1
    assert fresh_provider.auth_requests == []


def test_successful_logins_never_count(limited_sso, cloud):
    for _ in range(15):
        assert post(limited_sso, cloud, "Alice", "right-pw").status_code == 200
    response = post(limited_sso, cloud, "Alice", "right-pw")
    assert response.status_code == 200
    # The identity stays exactly as the provider spells it.
    assert response.json()["account"]["username"] == "Alice"


def test_guesses_a_slow_provider_never_answers_still_count(limited_sso, fresh_provider, cloud):
    """A backend that delays wrong passwords past the definition's timeout (a tarpit) turns
    guesses into 502s: their outcome is unknown, so they count like failures."""
    fresh_provider.definitions[cloud] = {**fresh_provider.default_definition(cloud), "timeout": 0.3}
    fresh_provider.auth_behaviour[cloud] = Behaviour(mode="slow", delay=1)
    statuses = [post(limited_sso, cloud, "Alice", f"guess-{n}").status_code for n in range(12)]
    assert statuses == [502] * 10 + [429] * 2
    assert len(fresh_provider.auth_requests) == 10

"""A provider backend that keeps sessions (a PHP or Java ext-auth answering a good login with
`Set-Cookie` and trusting that cookie later) must not let one login in on another's cookie:
the SSO stores and sends no cookie, with one worker or several, Digest round trip included."""

from __future__ import annotations

import secrets

import pytest
import requests

from tests.support.servers import ServiceProcess
from tests.support.stack import sso_env


@pytest.fixture(scope="module", params=[1, 3], ids=["one-worker", "three-workers"])
def sso(request, redis_server, provider):
    server = ServiceProcess(
        "sso_service", sso_env(redis_server.url, provider), workers=request.param
    ).start()
    yield server
    server.stop()


def login(sso, cloud_id, username, password):
    body = {"cloud_id": cloud_id, "username": username, "password": password}
    return requests.post(sso.url + "/v1/tokens", json=body, timeout=15)


@pytest.fixture
def session_cloud(fresh_provider):
    cloud_id = "S" + secrets.token_hex(5)
    fresh_provider.add_user(cloud_id, "alice", "alice-pw", ["+15551230101"])
    fresh_provider.cookie_sessions.add(cloud_id)
    return cloud_id


def test_a_session_cookie_lets_no_later_login_in(sso, fresh_provider, session_cloud):
    for _ in range(6):  # enough logins to reach every worker more than once
        assert login(sso, session_cloud, "alice", "alice-pw").status_code == 200
    assert fresh_provider.sessions, "the stand-in handed out session cookies"
    for username in ("alice", "mallory"):
        for _ in range(6):
            response = login(sso, session_cloud, username, "wrong")
            assert response.status_code == 401, response.text
            assert "token" not in response.json()
    assert all("Cookie" not in seen.headers for seen in fresh_provider.auth_requests)


def test_the_digest_challenge_cookie_is_not_sent_back(sso, fresh_provider, new_cloud_id):
    fresh_provider.add_user(new_cloud_id, "dee", "dee-pw")
    fresh_provider.definitions[new_cloud_id] = {
        "url": f"{fresh_provider.url}/ext-auth-digest/{new_cloud_id}",
        "postData": "username=%username%&password=%password%",
        "authUsername": fresh_provider.digest_user,
        "authPassword": fresh_provider.digest_pass,
    }
    assert login(sso, new_cloud_id, "dee", "dee-pw").status_code == 200
    assert len(fresh_provider.auth_requests) == 2  # the challenge, then the answer
    assert all("Cookie" not in seen.headers for seen in fresh_provider.auth_requests)


@pytest.fixture
def new_cloud_id():
    return "D" + secrets.token_hex(5)

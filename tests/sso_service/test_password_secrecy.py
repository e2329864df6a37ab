"""Passwords (and tokens) never appear in logs, error bodies or Redis."""

from __future__ import annotations

import logging

import pytest
from demo_provider import Behaviour

PASSWORD = "Sup3r-Secret-Pa55word"


def everything_logged(caplog, capfd) -> str:
    out, err = capfd.readouterr()
    formatted = [caplog.text, out, err]
    for record in caplog.records:
        formatted.append(record.getMessage())
        formatted.append(repr(record.__dict__))
    return "\n".join(formatted)


@pytest.fixture
def debug_client(make_app, caplog):
    caplog.set_level(logging.DEBUG)
    return make_app(LOG_LEVEL="DEBUG").test_client()


@pytest.mark.parametrize(
    ("behaviour", "password", "status"),
    [
        (None, PASSWORD, 200),
        (None, PASSWORD + "-wrong", 401),
        (Behaviour(mode="status", status=500, body=PASSWORD), PASSWORD, 502),
        (Behaviour(mode="garbage"), PASSWORD, 502),
        (Behaviour(mode="close"), PASSWORD, 502),
        (Behaviour(mode="slow", delay=1.0), PASSWORD, 502),
    ],
)
def test_logins_never_log_the_password_or_token(
    debug_client, fresh_provider, new_cloud, caplog, capfd, redis_db, behaviour, password, status
):
    fresh_provider.add_user(new_cloud, "lee", PASSWORD, ["+15551230001"])
    fresh_provider.definitions[new_cloud] = {
        **fresh_provider.default_definition(new_cloud),
        "timeout": 0.3,
        "headers": "X-Password: %password%",
    }
    if behaviour:
        fresh_provider.auth_behaviour[new_cloud] = behaviour
    body = {"cloud_id": new_cloud, "username": "lee", "password": password}
    response = debug_client.post("/v1/tokens", json=body)
    assert response.status_code == status
    assert PASSWORD not in response.get_data(as_text=True)
    logged = everything_logged(caplog, capfd)
    assert PASSWORD not in logged
    assert "lee" in logged or "POST /v1/tokens" in logged  # the logs did capture the request
    if status == 200:
        token = response.json["token"]
        assert token not in logged
        assert token.split(".")[1] not in logged
    for key in redis_db.keys("*"):
        value = redis_db.dump(key)  # any type, serialised
        assert PASSWORD not in key and PASSWORD.encode() not in value


def test_digest_and_portal_secrets_are_not_logged(
    debug_client, fresh_provider, new_cloud, caplog, capfd
):
    fresh_provider.add_user(new_cloud, "mo", PASSWORD)
    fresh_provider.definitions[new_cloud] = {
        "url": f"{fresh_provider.url}/ext-auth-digest/{new_cloud}",
        "postData": "username=%username%&password=%password%",
        "authUsername": fresh_provider.digest_user,
        "authPassword": fresh_provider.digest_pass,
    }
    for password in (PASSWORD, PASSWORD + "x"):
        debug_client.post(
            "/v1/tokens", json={"cloud_id": new_cloud, "username": "mo", "password": password}
        )
    logged = everything_logged(caplog, capfd)
    assert PASSWORD not in logged
    assert fresh_provider.digest_pass not in logged


def test_validation_errors_do_not_echo_the_password(client):
    response = client.post(
        "/v1/tokens", json={"cloud_id": "bad cloud", "username": "a\x00", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert PASSWORD not in response.get_data(as_text=True)


def test_cr_lf_refusal_does_not_echo_the_password(client, fresh_provider, new_cloud):
    fresh_provider.definitions[new_cloud] = {
        "url": f"{fresh_provider.url}/ext-auth/{new_cloud}",
        "headers": "X-P: %password%",
    }
    response = client.post(
        "/v1/tokens",
        json={"cloud_id": new_cloud, "username": "a", "password": PASSWORD + "\r\n"},
    )
    assert response.status_code == 400
    assert PASSWORD not in response.get_data(as_text=True)

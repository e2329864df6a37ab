"""POST /v1/revoke: log out everywhere; no client authentication needed."""

from __future__ import annotations

import pytest

from tests.sso_service.views.test_introspection import AUTH


def login(client, account, **changes):
    body = {k: account[k] for k in ("cloud_id", "username", "password")} | changes
    return client.post("/v1/tokens", json=body)


def introspect(client, token):
    return client.post("/v1/introspect", json={"token": token}, headers=AUTH).json


def test_revoke_makes_the_token_inactive_for_every_device(client, account):
    token = login(client, account).json["token"]
    assert login(client, account).json["token"] == token  # a second device
    response = client.post("/v1/revoke", json={"token": token})
    assert response.status_code == 200
    assert response.json == {}
    assert introspect(client, token) == {"active": False}
    fresh = login(client, account).json["token"]
    assert fresh != token
    assert introspect(client, fresh)["active"] is True


def test_revoke_with_a_form_body(client, account):
    token = login(client, account).json["token"]
    assert client.post("/v1/revoke", data={"token": token}).status_code == 200
    assert introspect(client, token) == {"active": False}


@pytest.mark.parametrize("token", ["unknown", "", "a" * 43 + "." + "b" * 43])
def test_unknown_tokens_answer_200(client, token):
    response = client.post("/v1/revoke", json={"token": token})
    assert response.status_code == 200


def test_revoking_twice_is_fine(client, account):
    token = login(client, account).json["token"]
    assert client.post("/v1/revoke", json={"token": token}).status_code == 200
    assert client.post("/v1/revoke", json={"token": token}).status_code == 200


def test_revoking_a_forged_token_leaves_the_real_one(client, account):
    token = login(client, account).json["token"]
    key = token.split(".")[0]
    client.post("/v1/revoke", json={"token": key + ".AAAA"})
    client.post("/v1/revoke", json={"token": key})
    assert introspect(client, token)["active"] is True


def test_failed_login_after_revoke_does_not_resurrect(client, account):
    token = login(client, account).json["token"]
    client.post("/v1/revoke", json={"token": token})
    assert login(client, account, password="wrong").status_code == 401
    assert introspect(client, token) == {"active": False}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"json": {}}, "invalid_request"),
        ({}, "invalid_request"),
        ({"data": {"tok": "x"}}, "invalid_request"),
        ({"json": {"token": ["x"]}}, "invalid_request"),
        ({"data": b"nope", "content_type": "application/json"}, "invalid_json"),
    ],
)
def test_bad_bodies(client, kwargs, error):
    response = client.post("/v1/revoke", **kwargs)
    assert response.status_code == 400
    assert response.json["error"] == error

"""POST /v1/introspect: client authentication and the exact answers."""

from __future__ import annotations

import base64
import gzip

import pytest

from tests.support.stack import INTROSPECTION_CLIENT

AUTH = {
    "Authorization": "Basic " + base64.b64encode(":".join(INTROSPECTION_CLIENT).encode()).decode()
}


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def token(client, account):
    return client.post(
        "/v1/tokens", json={k: account[k] for k in ("cloud_id", "username", "password")}
    ).json["token"]


def test_active_token_answer(client, token, account):
    response = client.post("/v1/introspect", json={"token": token}, headers=AUTH)
    assert response.status_code == 200
    data = response.json
    assert set(data) == {"active", "cloud_id", "username", "phone_numbers", "sip_uri", "iat", "exp"}
    assert data["active"] is True
    assert data["cloud_id"] == account["cloud_id"]
    assert data["username"] == account["username"]
    assert data["phone_numbers"] == ["+15551230001", "+442071838750"]
    assert data["sip_uri"] == f"sip:{account['username']}@t"
    assert data["exp"] - data["iat"] == 7_776_000


def test_form_body(client, token):
    response = client.post("/v1/introspect", data={"token": token}, headers=AUTH)
    assert response.json["active"] is True


@pytest.mark.parametrize(
    "candidate",
    [
        "unknown",
        "",
        "a" * 43 + "." + "b" * 43,
        "x" * 5000,
    ],
)
def test_anything_not_active_is_exactly_active_false(client, candidate):
    response = client.post("/v1/introspect", json={"token": candidate}, headers=AUTH)
    assert response.status_code == 200
    assert response.json == {"active": False}


def test_tampered_token_is_inactive(client, token):
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = client.post("/v1/introspect", json={"token": tampered}, headers=AUTH)
    assert response.json == {"active": False}


def test_revoked_token_is_inactive(client, token):
    client.post("/v1/revoke", json={"token": token})
    response = client.post("/v1/introspect", json={"token": token}, headers=AUTH)
    assert response.json == {"active": False}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic(INTROSPECTION_CLIENT[0], "wrong-secret"),
        basic("stranger", INTROSPECTION_CLIENT[1]),
        basic(INTROSPECTION_CLIENT[0], ""),
        basic("", ""),
        {"Authorization": "Bearer " + "x" * 20},
        {"Authorization": "Basic !!!notbase64"},
        basic(INTROSPECTION_CLIENT[0], INTROSPECTION_CLIENT[1] + "x"),
    ],
)
def test_client_authentication_is_required(client, token, headers):
    response = client.post("/v1/introspect", json={"token": token}, headers=headers)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert "active" not in response.json


def test_secrets_containing_colons_work(make_app, redis_db):
    app = make_app(SSO_INTROSPECTION_CLIENTS="web:a:b:c,contacts:s2")
    client = app.test_client()
    assert (
        client.post(
            "/v1/introspect", json={"token": "x"}, headers=basic("web", "a:b:c")
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/v1/introspect", json={"token": "x"}, headers=basic("contacts", "s2")
        ).status_code
        == 200
    )
    assert (
        client.post("/v1/introspect", json={"token": "x"}, headers=basic("web", "s2")).status_code
        == 401
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"json": {}}, "invalid_request"),
        ({"json": {"tok": "x"}}, "invalid_request"),
        ({"json": {"token": 5}}, "invalid_request"),
        ({"json": {"token": None}}, "invalid_request"),
        ({"data": {}}, "invalid_request"),
        ({"data": b"", "content_type": "application/json"}, "invalid_request"),
        ({"data": {"other": "x"}}, "invalid_request"),
        ({"data": b"{nope", "content_type": "application/json"}, "invalid_json"),
        ({"data": b"[]", "content_type": "application/json"}, "invalid_json"),
    ],
)
def test_bad_bodies(client, kwargs, error):
    response = client.post("/v1/introspect", headers=AUTH, **kwargs)
    assert response.status_code == 400
    assert response.json["error"] == error


def test_get_is_405(client):
    assert client.get("/v1/introspect", headers=AUTH).status_code == 405


def test_expired_token_is_inactive_and_next_login_gets_a_new_one(make_app, account):
    import time

    client = make_app(SSO_TOKEN_TTL_SECONDS="1").test_client()
    body = {k: account[k] for k in ("cloud_id", "username", "password")}
    first = client.post("/v1/tokens", json=body).json
    assert first["expires_in"] <= 1
    time.sleep(2.1)
    response = client.post("/v1/introspect", json={"token": first["token"]}, headers=AUTH)
    assert response.json == {"active": False}
    second = client.post("/v1/tokens", json=body).json["token"]
    assert second != first["token"]


def test_failed_client_authentication_is_throttled_per_address(make_app, account):
    app = make_app(SSO_MAX_FAILED_CLIENT_AUTH_PER_IP="3")
    client = app.test_client()
    token = client.post("/v1/tokens", json=account).json["token"]
    wrong = basic(INTROSPECTION_CLIENT[0], "guess")
    for _ in range(3):
        assert (
            client.post("/v1/introspect", json={"token": token}, headers=wrong).status_code == 401
        )
    throttled = client.post("/v1/introspect", json={"token": token}, headers=wrong)
    assert throttled.status_code == 429
    assert throttled.json["error"] == "too_many_attempts"
    assert int(throttled.headers["Retry-After"]) >= 1
    assert "active" not in throttled.json
    # The real client sharing that address is not locked out.
    right = basic(*INTROSPECTION_CLIENT)
    answer = client.post("/v1/introspect", json={"token": token}, headers=right)
    assert answer.status_code == 200
    assert answer.json["active"] is True


def test_authenticated_clients_are_never_throttled(make_app, account):
    app = make_app(SSO_MAX_FAILED_CLIENT_AUTH_PER_IP="2")
    client = app.test_client()
    token = client.post("/v1/tokens", json=account).json["token"]
    right = basic(*INTROSPECTION_CLIENT)
    for _ in range(10):
        answer = client.post("/v1/introspect", json={"token": token}, headers=right)
        assert answer.status_code == 200
        assert answer.json["active"] is True


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ("token={token}", {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}),
        ("token={token}&token=other&extra=1", {}),
        ("extra=1&token={token}", {"Content-Type": "Application/X-WWW-Form-Urlencoded"}),
    ],
    ids=["charset", "first-of-repeated", "media-type-case"],
)
def test_form_bodies_as_clients_send_them(client, token, body, headers):
    headers = {"Content-Type": "application/x-www-form-urlencoded", **headers, **AUTH}
    response = client.post("/v1/introspect", data=body.format(token=token), headers=headers)
    assert response.status_code == 200
    assert response.json["active"] is True


def test_a_gzip_encoded_form_is_read_like_a_plain_one(client, token):
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Encoding": "gzip",
        **AUTH,
    }
    body = gzip.compress(f"token={token}".encode())
    response = client.post("/v1/introspect", data=body, headers=headers)
    assert response.json["active"] is True


def test_a_form_shorter_than_its_content_length_is_a_400(client, token):
    body = f"token={token}".encode()
    response = client.post(
        "/v1/introspect",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **AUTH},
        environ_overrides={"CONTENT_LENGTH": str(len(body) + 10)},
    )
    assert response.status_code == 400
    assert set(response.json) >= {"error", "message"}
    assert "active" not in response.json

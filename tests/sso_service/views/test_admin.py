"""/v1/admin/accounts/revoke and /v1/admin/clouds/{cloud_id}/stats: operator clients, the
answers, the throttle of failed authentications and the one audit line per request."""

from __future__ import annotations

import json
import logging
import secrets

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from shared.logging import JsonFormatter
from tests.support.admin import (
    ADMIN_AUTH,
    ADMIN_CLIENT,
    ADMIN_CLIENTS,
    OTHER_ADMIN_CLIENT,
    REFUSED_AUTH,
    basic,
)
from tests.support.stack import INTROSPECTION_CLIENT

INTROSPECTION_AUTH = basic(*INTROSPECTION_CLIENT)
REVOKE = "/v1/admin/accounts/revoke"


@pytest.fixture
def admin_app(make_app):
    return make_app(SSO_ADMIN_CLIENTS=ADMIN_CLIENTS, SSO_MAX_FAILED_CLIENT_AUTH_PER_IP="3")


@pytest.fixture
def client(admin_app):
    return admin_app.test_client()


@pytest.fixture
def cloud(fresh_provider):
    return f"adm-{secrets.token_hex(4)}"


@pytest.fixture
def user(client, fresh_provider, cloud):
    """make a provider user of `cloud` and log it in: user() → (username, password, token)."""

    def make(username: str | None = None):
        username = username or f"u-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(12)
        fresh_provider.add_user(cloud, username, password, ["+15551230009"])
        return username, password, login(client, cloud, username, password)

    return make


def login(client, cloud: str, username: str, password: str) -> str:
    body = {"cloud_id": cloud, "username": username, "password": password}
    response = client.post("/v1/tokens", json=body)
    assert response.status_code == 200, response.json
    return response.json["token"]


def active(client, token: str) -> bool:
    response = client.post("/v1/introspect", json={"token": token}, headers=INTROSPECTION_AUTH)
    assert response.status_code == 200
    return response.json["active"]


def stats(client, cloud: str) -> dict:
    response = client.get(f"/v1/admin/clouds/{cloud}/stats", headers=ADMIN_AUTH)
    assert response.status_code == 200, response.json
    return response.json


# --- revoke ------------------------------------------------------------------------------------


def test_revoke_makes_every_token_inactive_and_the_next_login_gets_a_new_one(client, user, cloud):
    username, password, token = user()
    assert login(client, cloud, username, password) == token  # devices share the token
    response = client.post(
        REVOKE, json={"cloud_id": cloud, "username": username}, headers=ADMIN_AUTH
    )
    assert response.status_code == 200
    assert response.json == {"revoked": 1}
    assert not active(client, token)
    fresh = login(client, cloud, username, password)
    assert fresh != token
    assert active(client, fresh)
    assert not active(client, token)


def test_revoke_leaves_other_accounts_alone(client, user, cloud):
    target, _, token = user()
    _, _, other_token = user()
    body = {"cloud_id": cloud, "username": target}
    assert client.post(REVOKE, json=body, headers=ADMIN_AUTH).json == {"revoked": 1}
    assert not active(client, token)
    assert active(client, other_token)


@pytest.mark.parametrize(
    ("before", "revoked"),
    [
        ("nothing", 1),
        ("logout", 0),  # /v1/revoke first: known account, no active token
        ("admin revoke", 0),  # revoking twice is not an error
    ],
)
def test_revoke_counts_the_tokens_it_made_inactive(client, user, cloud, before, revoked):
    username, _, token = user()
    body = {"cloud_id": cloud, "username": username}
    if before == "logout":
        client.post("/v1/revoke", json={"token": token})
    elif before == "admin revoke":
        client.post(REVOKE, json=body, headers=ADMIN_AUTH)
    response = client.post(REVOKE, json=body, headers=ADMIN_AUTH)
    assert response.status_code == 200
    assert response.json == {"revoked": revoked}


@pytest.mark.parametrize(
    "account",
    [
        {"cloud_id": "never-seen", "username": "nobody"},
        {"cloud_id": "TEST", "username": "never-logged-in"},
    ],
    ids=["unknown cloud", "unknown user"],
)
def test_revoke_of_an_account_never_seen_is_404(client, account):
    response = client.post(REVOKE, json=account, headers=ADMIN_AUTH)
    assert response.status_code == 404
    assert response.json["error"] == "not_found"


def test_a_failed_login_does_not_make_an_account_seen(client, user, cloud, fresh_provider):
    username = f"u-{secrets.token_hex(4)}"
    fresh_provider.add_user(cloud, username, "right-password")
    body = {"cloud_id": cloud, "username": username, "password": "wrong"}
    assert client.post("/v1/tokens", json=body).status_code == 401
    response = client.post(
        REVOKE, json={"cloud_id": cloud, "username": username}, headers=ADMIN_AUTH
    )
    assert response.status_code == 404


def test_usernames_are_exact(client, user, cloud):
    _, _, token = user("Alice")
    response = client.post(
        REVOKE, json={"cloud_id": cloud, "username": "alice"}, headers=ADMIN_AUTH
    )
    assert response.status_code == 404
    assert active(client, token)


# --- stats -------------------------------------------------------------------------------------


def test_stats_count_accounts_ever_seen_and_active_tokens(client, user, cloud):
    assert stats(client, cloud) == {"cloud_id": cloud, "accounts": 0, "active_tokens": 0}
    names = [user()[0] for _ in range(3)]
    _, _, logged_out = user()
    client.post("/v1/revoke", json={"token": logged_out})
    client.post(REVOKE, json={"cloud_id": cloud, "username": names[0]}, headers=ADMIN_AUTH)
    assert stats(client, cloud) == {"cloud_id": cloud, "accounts": 4, "active_tokens": 2}


def test_stats_of_clouds_are_separate(client, user, cloud):
    user()
    assert stats(client, cloud)["accounts"] == 1
    assert stats(client, cloud + "x") == {
        "cloud_id": cloud + "x",
        "accounts": 0,
        "active_tokens": 0,
    }


def test_a_relogin_is_not_counted_twice(client, user, cloud):
    username, password, _ = user()
    login(client, cloud, username, password)
    assert stats(client, cloud) == {"cloud_id": cloud, "accounts": 1, "active_tokens": 1}


def test_expired_tokens_are_not_active(make_app, fresh_provider, cloud):
    import time

    client = make_app(SSO_ADMIN_CLIENTS=ADMIN_CLIENTS, SSO_TOKEN_TTL_SECONDS="1").test_client()
    fresh_provider.add_user(cloud, "brief", "pw")
    login(client, cloud, "brief", "pw")
    assert stats(client, cloud)["active_tokens"] == 1
    time.sleep(2.1)
    assert stats(client, cloud) == {"cloud_id": cloud, "accounts": 1, "active_tokens": 0}
    # An expired account is still known: revoking it is a 200 with nothing to revoke.
    response = client.post(
        REVOKE, json={"cloud_id": cloud, "username": "brief"}, headers=ADMIN_AUTH
    )
    assert response.json == {"revoked": 0}


# --- client authentication ---------------------------------------------------------------------

ROUTES = [
    ("POST", REVOKE, {"cloud_id": "TEST", "username": "x"}),
    ("GET", "/v1/admin/clouds/TEST/stats", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=["revoke", "stats"])
@pytest.mark.parametrize("headers", REFUSED_AUTH.values(), ids=REFUSED_AUTH.keys())
def test_wrong_client_credentials_are_401(make_app, method, path, body, headers):
    client = make_app(SSO_ADMIN_CLIENTS=ADMIN_CLIENTS).test_client()
    response = client.open(path, method=method, json=body, headers=headers)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


@pytest.mark.parametrize("auth", [ADMIN_CLIENT, OTHER_ADMIN_CLIENT], ids=["ops", "auditor"])
def test_every_listed_client_is_accepted(client, cloud, auth):
    response = client.get(f"/v1/admin/clouds/{cloud}/stats", headers=basic(*auth))
    assert response.status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=["revoke", "stats"])
def test_without_admin_clients_everyone_is_refused(make_app, method, path, body):
    client = make_app().test_client()  # SSO_ADMIN_CLIENTS unset
    for headers in (ADMIN_AUTH, INTROSPECTION_AUTH, {}):
        response = client.open(path, method=method, json=body, headers=headers)
        assert response.status_code == 401
        assert response.json["error"] == "invalid_client"


def test_failed_authentications_are_throttled_per_address(client, cloud):
    path = f"/v1/admin/clouds/{cloud}/stats"
    wrong = basic(ADMIN_CLIENT[0], "guess")
    statuses = [client.get(path, headers=wrong).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = client.get(path, headers=wrong)
    assert limited.json["error"] == "too_many_attempts"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # The right credentials always pass; another address has its own allowance.
    assert client.get(path, headers=ADMIN_AUTH).status_code == 200
    other = client.get(path, headers=wrong, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 401
    # Introspection clients are counted apart: their allowance is untouched.
    bad_introspection = basic(INTROSPECTION_CLIENT[0], "guess")
    assert (
        client.post("/v1/introspect", json={"token": "t"}, headers=bad_introspection).status_code
        == 401
    )


# --- fields ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        ({}, "invalid_request", "cloud_id"),
        ({"cloud_id": "TEST"}, "invalid_request", "username"),
        ({"username": "x"}, "invalid_request", "cloud_id"),
        ({"cloud_id": "..", "username": "x"}, "invalid_request", "cloud_id"),
        ({"cloud_id": "a/b", "username": "x"}, "invalid_request", "cloud_id"),
        ({"cloud_id": "x" * 65, "username": "x"}, "invalid_request", "cloud_id"),
        ({"cloud_id": "TEST\n", "username": "x"}, "invalid_request", "cloud_id"),
        ({"cloud_id": "TEST", "username": ""}, "invalid_request", "username"),
        ({"cloud_id": "TEST", "username": "a\x00b"}, "invalid_request", "username"),
        ({"cloud_id": "TEST", "username": "u" * 129}, "invalid_request", "username"),
        ({"cloud_id": 5, "username": "x"}, "invalid_request", "cloud_id"),
        ({"cloud_id": "TEST", "username": ["x"]}, "invalid_request", "username"),
        ({"cloud_id": "TEST", "username": "x", "password": "y"}, "invalid_request", "password"),
    ],
)
def test_field_errors_are_400_invalid_request(client, body, error, field):
    response = client.post(REVOKE, json=body, headers=ADMIN_AUTH)
    assert response.status_code == 400
    assert response.json["error"] == error
    assert field in response.json["details"]


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"", "application/json"),
        (b"[]", "application/json"),
        (b"{", "application/json"),
        (b"cloud_id=TEST&username=x", "application/x-www-form-urlencoded"),
    ],
    ids=["empty", "array", "broken", "form"],
)
def test_bodies_are_json_objects(client, data, content_type):
    response = client.post(REVOKE, data=data, headers={**ADMIN_AUTH, "Content-Type": content_type})
    assert response.status_code == 400
    assert response.json["error"] == "invalid_json"


@pytest.mark.parametrize("cloud_id", ["...", "a%20b", "x" * 65, "%C3%A9t%C3%A9"])
def test_stats_of_an_invalid_cloud_id_is_400(client, cloud_id):
    response = client.get(f"/v1/admin/clouds/{cloud_id}/stats", headers=ADMIN_AUTH)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert "cloud_id" in response.json["details"]


# --- audit ---------------------------------------------------------------------------------------


def audit_records(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if hasattr(record, "audit")]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ("revoke", {"client": "ops", "action": "accounts.revoke", "result": "ok", "status": 200}),
        ("unknown", {"client": "ops", "action": "accounts.revoke", "result": "not_found"}),
        ("invalid", {"client": "ops", "action": "accounts.revoke", "result": "invalid_request"}),
        ("wrong secret", {"client": None, "action": "accounts.revoke", "result": "invalid_client"}),
        ("stats", {"client": "ops", "action": "clouds.stats", "result": "ok"}),
    ],
)
def test_every_admin_request_writes_one_audit_line_without_secrets(
    make_app, user, cloud, caplog, request_, expected
):
    client = make_app(SSO_ADMIN_CLIENTS=ADMIN_CLIENTS, LOG_LEVEL="ERROR").test_client()
    username, password, token = user()
    caplog.clear()
    body = {"cloud_id": cloud, "username": username}
    if request_ == "revoke":
        client.post(REVOKE, json=body, headers=ADMIN_AUTH)
    elif request_ == "unknown":
        client.post(REVOKE, json={**body, "username": "nobody"}, headers=ADMIN_AUTH)
    elif request_ == "invalid":
        client.post(REVOKE, json={**body, "cloud_id": ".."}, headers=ADMIN_AUTH)
    elif request_ == "wrong secret":
        client.post(REVOKE, json=body, headers=basic(ADMIN_CLIENT[0], "not-the-" + ADMIN_CLIENT[1]))
    else:
        client.get(f"/v1/admin/clouds/{cloud}/stats", headers=ADMIN_AUTH)
    records = audit_records(caplog)
    assert len(records) == 1  # written although LOG_LEVEL is ERROR
    entry = records[0].audit
    assert {key: entry[key] for key in expected} == expected
    if expected["result"] in ("ok", "not_found") and request_ != "stats":
        assert entry["cloud_id"] == cloud
        assert entry["username"] == (username if request_ == "revoke" else "nobody")
    line = JsonFormatter().format(records[0])
    assert json.loads(line)["audit"] == entry
    for secret in (ADMIN_CLIENT[1], password, token, token.split(".")[1]):
        assert secret not in line


# --- the OpenAPI document ---------------------------------------------------------------------


def test_admin_routes_are_in_the_document(client):
    document = client.get("/openapi.json").json
    revoke = document["paths"][REVOKE]["post"]
    assert revoke["security"] == [{"admin": []}]
    assert set(revoke["requestBody"]["content"]) == {"application/json"}
    assert {"200", "400", "401", "404", "429", "503"} <= set(revoke["responses"])
    stats_ = document["paths"]["/v1/admin/clouds/{cloud_id}/stats"]["get"]
    assert {"200", "400", "401", "429", "503"} <= set(stats_["responses"])
    assert document["components"]["securitySchemes"]["admin"] == {"type": "http", "scheme": "basic"}


@pytest.mark.parametrize("path", [REVOKE, "/v1/admin/clouds/{cloud_id}/stats"])
def test_admin_routes_match_their_document_with_credentials(make_app, path):
    # A high throttle: schemathesis probes wrong credentials after each 200, expecting 401.
    app = make_app(SSO_ADMIN_CLIENTS=ADMIN_CLIENTS, SSO_MAX_FAILED_CLIENT_AUTH_PER_IP="10000")
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    (operation,) = [
        result.ok() for result in schema.get_all_operations() if result.ok().path == path
    ]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case):
        case.call_and_validate(headers=ADMIN_AUTH)

    check()

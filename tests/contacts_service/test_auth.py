"""Bearer authentication by introspection at the real SSO service."""

from __future__ import annotations

import time

import pytest
import requests

from contacts_service.app import create_app
from contacts_service.auth import numbers_and_region
from contacts_service.extensions import db

ROUTES = [
    ("GET", "/v1/devices"),
    ("PUT", "/v1/devices/d"),
    ("GET", "/v1/devices/d"),
    ("DELETE", "/v1/devices/d"),
    ("GET", "/v1/devices/d/checksums"),
    ("GET", "/v1/devices/d/contacts"),
    ("PATCH", "/v1/devices/d/contacts"),
    ("PUT", "/v1/devices/d/contacts"),
    ("GET", "/v1/devices/d/smart-contacts"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 2000],
)
def test_missing_or_inactive_token_is_401_invalid_token(api, method, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = api.request(method, path, headers=headers, json={})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["error"] == "invalid_token" and body["message"]


def test_revoked_token_is_rejected_at_once(api, new_account, sso_server):
    account = new_account()
    me = api.as_(account)
    assert me.get("/v1/devices").status_code == 200
    revoked = requests.post(sso_server.url + "/v1/revoke", json={"token": account.token}, timeout=5)
    assert revoked.status_code == 200
    response = me.get("/v1/devices")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_scheme_is_case_insensitive(api, new_account):
    account = new_account()
    response = api.get("/v1/devices", headers={"Authorization": f"bearer {account.token}"})
    assert response.status_code == 200


def test_introspection_cache_when_enabled_serves_a_revoked_token_until_it_expires(
    contacts_config, new_account, sso_server
):
    app = create_app({**contacts_config, "CONTACTS_INTROSPECTION_CACHE_SECONDS": "1"})
    try:
        client = app.test_client()
        account = new_account()
        headers = {"Authorization": f"Bearer {account.token}"}
        before = time.monotonic()
        assert client.get("/v1/devices", headers=headers).status_code == 200
        cached_by = time.monotonic()  # the entry expires 1 s after a moment in [before, this]
        revoked = requests.post(
            sso_server.url + "/v1/revoke", json={"token": account.token}, timeout=5
        )
        assert revoked.status_code == 200
        # Documented trade-off of the cache: a revocation takes effect when the entry expires.
        assert client.get("/v1/devices", headers=headers).status_code == 200
        assert time.monotonic() - before < 1, "too slow to see the cached answer"
        time.sleep(max(0.0, cached_by + 1.05 - time.monotonic()))
        expired = client.get("/v1/devices", headers=headers)
        assert expired.status_code == 401
        assert expired.get_json()["error"] == "invalid_token"
    finally:
        with app.app_context():
            db.engine.dispose()


def test_in_process_app_sees_the_same_accounts(client, new_account):
    account = new_account()
    headers = {"Authorization": f"Bearer {account.token}"}
    assert client.put("/v1/devices/in-process", headers=headers).status_code == 201
    listed = client.get("/v1/devices", headers=headers).get_json()
    assert [d["id"] for d in listed["devices"]] == ["in-process"]


def test_numbers_and_region_follow_each_introspected_list():
    """Kept per process (auth.py); a changed list is a different key, and long lists are
    worked out every time rather than kept."""
    assert numbers_and_region(("+442071838750", "not a number", "+442071838750")) == (
        ("+442071838750",),
        "GB",
    )
    assert numbers_and_region(("+15551230001",)) == (("+15551230001",), "US")
    assert numbers_and_region(()) == ((), None)
    many = tuple(f"+4420718{i:05d}" for i in range(40))
    assert numbers_and_region(many) == (many, "GB")

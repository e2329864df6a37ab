"""Security headers on every kind of response of both services (success, errors, 304)."""

from __future__ import annotations

import pytest
import requests

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture(scope="module")
def user(make_user, hostile_contacts):
    u = make_user(numbers=["+15557770005"])
    assert u.client(hostile_contacts).put_device("phone").status_code == 201
    return u


def assert_secure(response: requests.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (response.request.url, name, response.headers)
    assert "frame-ancestors 'none'" in response.headers.get("Content-Security-Policy", "")
    assert response.headers.get("Cache-Control"), response.headers
    if response.status_code != 304 and response.content:
        content_type = response.headers["Content-Type"]
        assert content_type.startswith(("application/json", "text/plain")), content_type


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/healthz", {}),
        ("GET", "/readyz", {}),
        ("GET", "/openapi.json", {}),
        ("GET", "/metrics", {}),
        ("GET", "/nowhere", {}),
        ("DELETE", "/v1/tokens", {}),
        ("POST", "/v1/tokens", {"data": b"{", "headers": {"Content-Type": "application/json"}}),
        ("POST", "/v1/tokens", {"json": {"cloud_id": "nope-none", "username": "u",
                                        "password": "p"}}),
        ("POST", "/v1/introspect", {"data": {"token": "x"}}),
        ("POST", "/v1/revoke", {"data": {"token": "x"}}),
    ],
)  # fmt: skip
def test_sso_responses_carry_security_headers(sso_server, method, path, kwargs):
    assert_secure(requests.request(method, sso_server.url + path, timeout=10, **kwargs))


def test_sso_login_and_introspection_carry_security_headers(sso_server, user):
    from tests.support.clients import introspect

    response = introspect(sso_server.url, user.token)
    assert response.status_code == 200
    assert_secure(response)
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "path", "authenticated"),
    [
        ("GET", "/healthz", False),
        ("GET", "/readyz", False),
        ("GET", "/openapi.json", False),
        ("GET", "/v1/devices", False),
        ("GET", "/v1/devices", True),
        ("GET", "/v1/devices/phone", True),
        ("GET", "/v1/devices/nope", True),
        ("GET", "/v1/devices/phone/contacts", True),
        ("GET", "/v1/devices/phone/checksums", True),
        ("POST", "/v1/devices", True),
        ("PATCH", "/v1/devices/phone/contacts", True),
        ("GET", "/nowhere", False),
    ],
)
def test_contacts_responses_carry_security_headers(
    hostile_contacts, user, method, path, authenticated
):
    headers = {"Authorization": f"Bearer {user.token}"} if authenticated else {}
    response = requests.request(
        method, hostile_contacts.url + path, headers=headers, timeout=10, data=b"{"
    )
    assert_secure(response)


def test_a_304_carries_security_headers(hostile_contacts, user):
    client = user.client(hostile_contacts)
    etag = client.get_contacts("phone").headers["ETag"]
    response = client.request("GET", "/v1/devices/phone/contacts", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert_secure(response)

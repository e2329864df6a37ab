"""The introspection client, against canned HTTP answers (`responses`); the real SSO service is
exercised by the HTTP tests."""

from __future__ import annotations

import time

import pytest
import requests
import responses

from contacts_service.sso_client import SsoClient, SsoUnavailable

URL = "http://sso.test"
ACTIVE = {
    "active": True,
    "cloud_id": "C1",
    "username": "alice",
    "phone_numbers": ["+15551230001"],
    "sip_uri": "sip:alice@example.com",
    "iat": 1,
    "exp": int(time.time()) + 3600,
}


def client(**kwargs) -> SsoClient:
    return SsoClient(URL, "contacts", "s3cret", timeout=1.5, **kwargs)


@responses.activate
def test_active_token_gives_the_identity_and_uses_basic_auth_and_a_timeout():
    call = responses.post(URL + "/v1/introspect", json=ACTIVE)
    identity = client().introspect("tok")
    assert identity.cloud_id == "C1" and identity.username == "alice"
    assert identity.phone_numbers == ("+15551230001",)
    assert identity.sip_uri == "sip:alice@example.com"
    request = call.calls[0].request
    assert request.headers["Authorization"].startswith("Basic ")
    assert request.body == "token=tok"
    assert call.calls[0].request.req_kwargs["timeout"] == 1.5


@responses.activate
def test_inactive_token_is_none():
    responses.post(URL + "/v1/introspect", json={"active": False})
    assert client().introspect("tok") is None


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 500, "body": "oops"},
        {"status": 401, "json": {"error": "invalid_client"}},
        {"status": 200, "body": "not json"},
        {"status": 200, "json": ["active"]},
        {"status": 200, "json": {"active": True, "cloud_id": "C1"}},
        {"body": requests.ConnectionError("refused")},
        {"body": requests.Timeout("slow")},
    ],
)
@responses.activate
def test_failures_are_unavailable(answer):
    responses.post(URL + "/v1/introspect", **answer)
    with pytest.raises(SsoUnavailable):
        client().introspect("tok")


@responses.activate
def test_no_cache_by_default():
    call = responses.post(URL + "/v1/introspect", json=ACTIVE)
    sso = client()
    sso.introspect("tok")
    sso.introspect("tok")
    assert call.call_count == 2


@responses.activate
def test_cache_keeps_active_answers_but_never_beyond_exp():
    call = responses.post(URL + "/v1/introspect", json=ACTIVE)
    sso = client(cache_seconds=60)
    sso.introspect("tok")
    sso.introspect("tok")
    assert call.call_count == 1
    sso.introspect("other")
    assert call.call_count == 2

    responses.replace(responses.POST, URL + "/v1/introspect", json={**ACTIVE, "exp": 0})
    expired = client(cache_seconds=60)
    expired.introspect("tok")
    expired.introspect("tok")
    assert responses.calls[-1].request.url == URL + "/v1/introspect"
    assert len(responses.calls) == 4


@responses.activate
def test_inactive_answers_are_not_cached():
    call = responses.post(URL + "/v1/introspect", json={"active": False})
    sso = client(cache_seconds=60)
    sso.introspect("tok")
    sso.introspect("tok")
    assert call.call_count == 2


def test_session_is_pooled_and_ignores_proxies():
    sso = client(ca_bundle="/tmp/ca.pem")
    assert sso._session.trust_env is False
    assert sso._session.verify == "/tmp/ca.pem"

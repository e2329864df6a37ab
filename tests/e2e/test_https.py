"""HTTPS and the browser: CORS preflight on both services, and Contacts verifying SSO's
certificate instead of trusting whatever answers."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.conftest import BROWSER_ORIGIN
from tests.support.clients import contacts_base_env
from tests.support.servers import ServiceProcess

PREFLIGHTS = [
    ("sso", "/v1/tokens", "POST", "content-type"),
    ("sso", "/v1/revoke", "POST", "content-type"),
    ("contacts", "/v1/devices", "GET", "authorization"),
    ("contacts", "/v1/devices/web-1/contacts", "PATCH", "authorization, content-type"),
]


def service_url(stack, service: str) -> str:
    return getattr(stack, service).url


@pytest.mark.parametrize(("service", "path", "method", "headers"), PREFLIGHTS)
def test_browser_preflight_is_answered_over_https(stack, service, path, method, headers):
    response = stack.session().options(
        service_url(stack, service) + path,
        headers={
            "Origin": BROWSER_ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
        timeout=10,
    )
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == BROWSER_ORIGIN
    assert method in response.headers["Access-Control-Allow-Methods"]
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {h.strip() for h in headers.split(",")} <= allowed


@pytest.mark.parametrize("service", ["sso", "contacts"])
def test_an_unlisted_origin_gets_no_cors_headers(stack, service):
    response = stack.session().options(
        service_url(stack, service) + "/v1/tokens",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in response.headers


def test_browser_errors_carry_cors_headers(stack):
    response = stack.session(origin=BROWSER_ORIGIN).get(
        f"{stack.contacts.url}/v1/devices", timeout=10
    )
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == BROWSER_ORIGIN


@pytest.mark.parametrize("service", ["sso", "contacts"])
def test_services_speak_only_tls(stack, service):
    plain = service_url(stack, service).replace("https://", "http://")
    with pytest.raises(requests.ConnectionError):
        requests.get(plain + "/healthz", timeout=5)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(service_url(stack, service) + "/healthz", timeout=5, verify=True)


def test_contacts_refuses_an_sso_certificate_it_cannot_verify(stack, e2e_database):
    """Without the private CA the SSO certificate is untrusted: no data is served (503)."""
    untrusting = ServiceProcess(
        "contacts_service", contacts_base_env(e2e_database.url, stack.sso.url), workers=1
    )
    untrusting.start(timeout=60)
    try:
        ready = requests.get(untrusting.url + "/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["error"] == "unavailable"
        refused = requests.get(
            untrusting.url + "/v1/devices",
            headers={"Authorization": "Bearer " + "x" * 43},
            timeout=10,
        )
        assert refused.status_code == 503
        assert refused.json()["error"] == "auth_unavailable"
    finally:
        untrusting.stop()

    ready = stack.session().get(stack.contacts.url + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text

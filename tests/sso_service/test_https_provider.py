"""The production path: portal and ext-auth over verified HTTPS, plain http refused."""

from __future__ import annotations

import ssl

import pytest
import trustme
from demo_provider import DemoProvider

from sso_service import create_app
from tests.sso_service.conftest import app_env


@pytest.fixture
def tls_provider(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    stand_in = DemoProvider()
    stand_in._server.socket = context.wrap_socket(stand_in._server.socket, server_side=True)
    stand_in.start()
    https_url = stand_in.url.replace("http://", "https://")
    stand_in.add_user("SECURE", "alice", "pw", ["+15551230001"], "sip:alice@secure")
    stand_in.definitions["SECURE"] = {
        "url": f"{https_url}/ext-auth/SECURE",
        "postData": "username=%username%&password=%password%",
    }
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    stand_in.https_portal_url = https_url + "/portal/{cloud_id}"
    stand_in.ca_path = str(ca_path)
    yield stand_in
    stand_in.stop()


def _client(redis_server, tls_provider, **overrides):
    env = app_env(
        redis_server,
        tls_provider,
        SSO_PORTAL_URL=tls_provider.https_portal_url,
        SSO_ALLOW_INSECURE_HTTP="0",
        **overrides,
    )
    return create_app(env).test_client()


def test_login_over_verified_https(redis_server, redis_db, tls_provider):
    client = _client(redis_server, tls_provider, SSO_CA_BUNDLE=tls_provider.ca_path)
    body = {"cloud_id": "SECURE", "username": "alice", "password": "pw"}
    response = client.post("/v1/tokens", json=body)
    assert response.status_code == 200, response.json
    assert response.json["account"]["sip_uri"] == "sip:alice@secure"
    assert tls_provider.auth_requests[-1].method == "POST"


def test_untrusted_certificate_is_an_upstream_error(redis_server, redis_db, tls_provider):
    client = _client(redis_server, tls_provider)
    body = {"cloud_id": "SECURE", "username": "alice", "password": "pw"}
    response = client.post("/v1/tokens", json=body)
    assert response.status_code == 502
    assert response.json["error"] == "upstream_error"

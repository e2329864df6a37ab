"""shared.http: the pooled outbound session."""

from __future__ import annotations

import requests
import responses

from shared.http import make_session
from tests.support.scripted_http import ScriptedServer, reply


def test_session_is_pooled_without_retries_or_environment_proxies():
    session = make_session(pool_size=8, user_agent="ua-test")
    adapter = session.get_adapter("https://example.test/")
    assert adapter.max_retries.total == 0
    assert adapter._pool_maxsize == 8
    assert session.get_adapter("http://example.test/") is adapter
    assert session.trust_env is False
    assert session.headers["User-Agent"] == "ua-test"


def test_verify_is_configurable():
    assert make_session(verify="/tmp/ca.pem").verify == "/tmp/ca.pem"
    assert make_session().verify is True


@responses.activate
def test_no_retry_on_failure():
    responses.get("https://example.test/x", status=503)
    response = make_session().get("https://example.test/x", timeout=1)
    assert response.status_code == 503
    assert len(responses.calls) == 1


def test_environment_proxies_are_ignored(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    session = make_session()
    settings = session.merge_environment_settings("https://example.test/", {}, None, None, None)
    assert not settings["proxies"]
    assert isinstance(session, requests.Session)


def test_cookies_are_neither_kept_nor_sent():
    server = ScriptedServer()
    try:
        server.script = lambda h: reply(h, 200, b"{}", Set_Cookie="SESSIONID=abc; Path=/")
        session = make_session()
        for _ in range(2):
            assert session.get(server.url("/x"), timeout=5).status_code == 200
        assert len(session.cookies) == 0
        assert all("Cookie" not in seen.headers for seen in server.requests)
    finally:
        server.close()

"""Redis stopped and restarted while the service runs: 503, then recovery without restart.

Uses a private redis-server so the session-wide one is never disturbed.
"""

from __future__ import annotations

import pytest
import requests

from sso_service import create_app
from tests.support.servers import RedisServer, ServiceProcess
from tests.support.stack import INTROSPECTION_CLIENT, sso_env


@pytest.fixture
def private_redis():
    server = RedisServer().start()
    yield server
    server.close()


def test_in_process_app_answers_503_then_recovers(private_redis, fresh_provider, account):
    client = create_app(sso_env(private_redis.url, fresh_provider)).test_client()
    body = {k: account[k] for k in ("cloud_id", "username", "password")}
    auth = {"Authorization": "Basic Y29udGFjdHM6Y29udGFjdHMtdGVzdC1zZWNyZXQ="}
    assert client.post("/v1/tokens", json=body).status_code == 200

    private_redis.stop()
    # Forged or malformed tokens fail the MAC check before any Redis call.
    forged = client.post("/v1/introspect", json={"token": "x" * 43 + "." + "y" * 43}, headers=auth)
    assert forged.json == {"active": False}
    assert client.post("/v1/revoke", json={"token": "anything"}).status_code == 200
    login = client.post("/v1/tokens", json=body)
    assert login.status_code == 503
    assert login.json["error"] == "unavailable"
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["error"] == "unavailable"
    assert "redis" in ready.json["details"]
    assert client.get("/healthz").status_code == 200

    private_redis.start()  # empty: the tokens are gone with the old process
    assert client.get("/readyz").status_code == 200
    again = client.post("/v1/tokens", json=body)
    assert again.status_code == 200
    introspected = client.post("/v1/introspect", json={"token": again.json["token"]}, headers=auth)
    assert introspected.json["active"] is True


def test_introspect_and_revoke_with_a_real_token_are_503_while_redis_is_down(
    private_redis, fresh_provider, account
):
    client = create_app(sso_env(private_redis.url, fresh_provider)).test_client()
    body = {k: account[k] for k in ("cloud_id", "username", "password")}
    token = client.post("/v1/tokens", json=body).json["token"]
    auth = {"Authorization": "Basic Y29udGFjdHM6Y29udGFjdHMtdGVzdC1zZWNyZXQ="}
    private_redis.stop()
    introspected = client.post("/v1/introspect", json={"token": token}, headers=auth)
    assert introspected.status_code == 503
    assert introspected.json["error"] == "unavailable"
    assert client.post("/v1/revoke", json={"token": token}).status_code == 503
    private_redis.start()


def test_gunicorn_process_answers_503_then_recovers(private_redis, provider, account):
    server = ServiceProcess("sso_service", sso_env(private_redis.url, provider), workers=2).start()
    try:
        body = {k: account[k] for k in ("cloud_id", "username", "password")}
        for _ in range(4):  # warm the pools of both workers
            assert requests.post(f"{server.url}/v1/tokens", json=body, timeout=10).ok
        private_redis.stop()
        for _ in range(4):
            response = requests.post(f"{server.url}/v1/tokens", json=body, timeout=10)
            assert response.status_code == 503
            assert response.json()["error"] == "unavailable"
        assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 503
        private_redis.start()
        for _ in range(4):
            response = requests.post(f"{server.url}/v1/tokens", json=body, timeout=10)
            assert response.status_code == 200, response.text
        token = response.json()["token"]
        introspected = requests.post(
            f"{server.url}/v1/introspect",
            data={"token": token},
            auth=INTROSPECTION_CLIENT,
            timeout=10,
        )
        assert introspected.json()["active"] is True
        assert "Traceback" not in server.log()
    finally:
        server.stop()


def test_redis_refusing_writes_is_503(private_redis, fresh_provider, account):
    import redis

    client = create_app(sso_env(private_redis.url, fresh_provider)).test_client()
    admin = redis.Redis.from_url(private_redis.url)
    body = {k: account[k] for k in ("cloud_id", "username", "password")}
    admin.config_set("maxmemory", "1")  # every write now fails with OOM
    try:
        response = client.post("/v1/tokens", json=body)
        assert response.status_code == 503
        assert response.json["error"] == "unavailable"
    finally:
        admin.config_set("maxmemory", "0")
        admin.close()
    assert client.post("/v1/tokens", json=body).status_code == 200

"""App-wide behaviour: health, metrics, OpenAPI, CORS, error shape, headers."""

from __future__ import annotations

import pytest

from shared.config import ConfigError
from shared.openapi import openapi_path
from sso_service import create_app
from sso_service.app import SERVICE
from sso_service.settings import Settings
from tests.sso_service.conftest import app_env
from tests.support.metrics import sample_value


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_checks_redis(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {"redis": "ok"}


def test_metrics_count_requests_and_ext_auth(client, account):
    """One good and one wrong login move exactly their own series, each by one."""

    def tokens(status: str) -> dict:
        return {"service": SERVICE, "endpoint": "/v1/tokens", "method": "POST", "status": status}

    series = [
        ("http_requests_total", tokens("200")),
        ("http_requests_total", tokens("401")),
        ("http_requests_total", tokens("400")),
        ("sso_ext_auth_requests_total", {"outcome": "success"}),
        ("sso_ext_auth_requests_total", {"outcome": "invalid_credentials"}),
        ("sso_ext_auth_requests_total", {"outcome": "upstream_error"}),
        ("sso_ext_auth_duration_seconds_count", {"outcome": "success"}),
        ("sso_ext_auth_duration_seconds_count", {"outcome": "invalid_credentials"}),
        (
            "http_requests_total",
            {"service": SERVICE, "endpoint": "/metrics", "method": "GET", "status": "200"},
        ),
    ]

    def read() -> list[float]:
        text = client.get("/metrics").get_data(as_text=True)
        assert account["password"] not in text
        return [sample_value(text, name, **labels) for name, labels in series]

    before = read()
    good = client.post(
        "/v1/tokens", json={k: account[k] for k in ("cloud_id", "username", "password")}
    )
    assert good.status_code == 200
    assert client.post("/v1/tokens", json={**account, "password": "wrong"}).status_code == 401
    after = read()
    # 200 and 401 logins, their ext-auth outcomes and timings; no 400, no upstream error;
    # the first GET /metrics is counted once it has answered.
    expected = [1, 1, 0, 1, 1, 0, 1, 1, 1]
    assert [b - a for a, b in zip(before, after, strict=True)] == expected


def test_openapi_document(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json
    assert spec["openapi"].startswith("3.")
    assert {"/v1/tokens", "/v1/introspect", "/v1/revoke"} <= set(spec["paths"])
    login = spec["paths"]["/v1/tokens"]["post"]
    assert {"200", "400", "401", "404", "429", "502", "503"} <= set(login["responses"])
    assert "password" in spec["components"]["schemas"]["Login"]["properties"]


def error_codes(operation: dict, status: str) -> list[str]:
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    return schema["allOf"][1]["properties"]["error"]["enum"]


def test_every_route_is_in_the_document(app, client):
    document = client.get("/openapi.json").json
    routes = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert routes == documented
    login = document["paths"]["/v1/tokens"]["post"]
    assert error_codes(login, "400") == ["invalid_json", "invalid_request"]
    assert error_codes(login, "429") == ["too_many_attempts"]
    introspect = document["paths"]["/v1/introspect"]["post"]
    assert error_codes(introspect, "401") == ["invalid_client"]
    assert introspect["security"] == [{"client": []}]
    assert set(introspect["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("GET", "/v1/tokens", 405, "method_not_allowed"),
        ("DELETE", "/v1/revoke", 405, "method_not_allowed"),
        ("POST", "/healthz", 405, "method_not_allowed"),
    ],
)
def test_routing_errors_use_the_error_shape(client, method, path, status, error):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.json["error"] == error
    assert isinstance(response.json["message"], str)


def test_security_headers_and_request_id(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Request-ID"] == "abc-123"


@pytest.fixture
def cors_client(make_app):
    return make_app(CORS_ORIGINS="https://app.example.com").test_client()


@pytest.mark.parametrize("path", ["/v1/tokens", "/v1/introspect", "/v1/revoke"])
def test_cors_preflight_for_a_listed_origin(cors_client, path):
    response = cors_client.options(
        path,
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_no_cors_for_an_unlisted_origin(cors_client):
    response = cors_client.options(
        "/v1/tokens",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    response = cors_client.post("/v1/tokens", json={}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_headers_on_error_responses(cors_client):
    response = cors_client.post(
        "/v1/tokens", json={}, headers={"Origin": "https://app.example.com"}
    )
    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


def test_no_cors_when_not_configured(client):
    response = client.post("/v1/tokens", json={}, headers={"Origin": "https://app.example.com"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_create_app_accepts_settings(redis_server, fresh_provider, redis_db):
    settings = Settings.from_env(app_env(redis_server, fresh_provider))
    assert create_app(settings).test_client().get("/readyz").status_code == 200


def test_create_app_reads_the_environment(monkeypatch, redis_server, fresh_provider, redis_db):
    for name, value in app_env(redis_server, fresh_provider).items():
        monkeypatch.setenv(name, value)
    assert create_app().test_client().get("/readyz").status_code == 200


def test_create_app_refuses_a_missing_secret(redis_server, fresh_provider):
    env = app_env(redis_server, fresh_provider)
    del env["SSO_TOKEN_SECRET"]
    with pytest.raises(ConfigError, match="SSO_TOKEN_SECRET"):
        create_app(env)

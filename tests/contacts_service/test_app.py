"""Routes every service has: health, readiness, metrics, OpenAPI, CORS, the error shape."""

from __future__ import annotations

import pytest

from contacts_service.app import create_app
from contacts_service.extensions import db
from shared.openapi import openapi_path
from tests.support.metrics import sample_value
from tests.support.servers import free_port


def test_healthz(api):
    response = api.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_readyz_when_everything_answers(api):
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"postgresql": "ok", "sso": "ok"}


@pytest.mark.parametrize(
    ("override", "failed"),
    [
        ({"CONTACTS_SSO_URL": "http://127.0.0.1:{port}"}, "sso"),
        ({"CONTACTS_SSO_CLIENT_SECRET": "not-the-secret"}, "sso"),
        (
            {"CONTACTS_DATABASE_URL": "postgresql://nobody:nothing@127.0.0.1:{port}/none"},
            "postgresql",
        ),
    ],
)
def test_readyz_names_what_failed(contacts_config, override, failed):
    port = free_port()
    config = {**contacts_config, **{k: v.format(port=port) for k, v in override.items()}}
    app = create_app(config)
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        body = response.get_json()
        assert body["error"] == "unavailable"
        assert failed in body["message"]
        assert list(body["details"]) == [failed]
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://nobody:nothing@127.0.0.1:{port}/none", "connection refused"),
        # An unescaped "@" in the password (then a quote): what follows it is read as the host
        # name, and libpq's message quotes that host back.
        ("postgresql://nobody:s3cr@tpart@127.0.0.1:{port}/none", "host name not found"),
        ('postgresql://nobody:p@ss"tpart@127.0.0.1:{port}/none', "host name not found"),
    ],
)
def test_database_down_is_503_not_500_and_logged_without_the_url(
    contacts_config, new_account, caplog, url, reason
):
    """The warning says why in fixed words, never the driver's message: the host, user or
    database name it quotes may carry part of a password."""
    config = {**contacts_config, "CONTACTS_DATABASE_URL": url.format(port=free_port())}
    app = create_app(config)
    try:
        account = new_account()
        with caplog.at_level("WARNING", logger="contacts_service.app"):
            response = app.test_client().get(
                "/v1/devices", headers={"Authorization": f"Bearer {account.token}"}
            )
        assert response.status_code == 503
        assert response.get_json()["error"] == "unavailable"
        (warning,) = [
            r.getMessage() for r in caplog.records if "database unavailable" in r.getMessage()
        ]
        assert reason in warning
        assert "tpart" not in warning and "nobody" not in warning and "127.0.0.1" not in warning
    finally:
        with app.app_context():
            db.engine.dispose()


def test_metrics_count_each_request_once_under_its_route(api, alice):
    """Across the process's workers: a request moves exactly its own series, by one."""

    def requests_total(endpoint: str, status: str) -> dict:
        return {"service": "contacts", "endpoint": endpoint, "method": "GET", "status": status}

    series = [
        requests_total("/v1/devices", "200"),
        requests_total("/v1/devices/<device_id>", "404"),
        requests_total("/v1/devices/<device_id>", "200"),
        requests_total("/v1/devices", "401"),
    ]

    def read() -> list[float]:
        response = api.get("/metrics")
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return [sample_value(response.text, "http_requests_total", **s) for s in series]

    before = read()
    assert alice.get("/v1/devices").status_code == 200
    assert alice.get("/v1/devices/no-such-device").status_code == 404
    after = read()
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 0, 0]


def test_every_route_is_in_the_document(app, api):
    document = api.get("/openapi.json").json()
    routes = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == {(path, method) for path, ops in document["paths"].items() for method in ops}
    put_device = document["paths"]["/v1/devices/{device_id}"]["put"]
    enum = put_device["responses"]["422"]["content"]["application/json"]["schema"]["allOf"][1]
    assert enum["properties"]["error"]["enum"] == ["validation_error", "too_many_devices"]
    assert put_device["security"] == [{"bearer": []}]


def test_openapi_document(api):
    spec = api.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in (
        "/v1/devices",
        "/v1/devices/{device_id}",
        "/v1/devices/{device_id}/checksums",
        "/v1/devices/{device_id}/contacts",
        "/v1/devices/{device_id}/smart-contacts",
    ):
        assert path in spec["paths"]
    assert {"get", "patch", "put"} <= set(spec["paths"]["/v1/devices/{device_id}/contacts"])
    assert "Contact" in spec["components"]["schemas"]


def test_unknown_route_is_404_in_the_error_shape(api):
    response = api.get("/v2/nothing")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "No such resource."}


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/devices"), ("POST", "/v1/devices/d/contacts"), ("DELETE", "/healthz")],
)
def test_wrong_method_is_405_in_the_error_shape(api, method, path):
    response = api.request(method, path)
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert response.json()["message"]


def test_request_id_is_echoed(api):
    assert api.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == (
        "abc-123"
    )


def test_cors_preflight_for_a_listed_origin(limited):
    response = limited.request(
        "OPTIONS",
        "/v1/devices/d/contacts",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]


def test_cors_headers_on_errors_and_none_for_unlisted_origins(limited, new_account):
    listed = limited.get("/v1/devices", headers={"Origin": "https://other.example"})
    assert listed.status_code == 401
    assert listed.headers["Access-Control-Allow-Origin"] == "https://other.example"
    ok = limited.as_(new_account()).get("/v1/devices", headers={"Origin": "https://app.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "ETag" in ok.headers.get("Access-Control-Expose-Headers", "")
    unlisted = limited.get("/v1/devices", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in unlisted.headers
    preflight = limited.request(
        "OPTIONS",
        "/v1/devices",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_no_cors_headers_without_cors_origins(api):
    response = api.get("/healthz", headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("pooling", ["false", "true"])
def test_options_in_the_database_url_are_kept_beside_the_statement_timeout(
    contacts_config, pooling
):
    """A URL's own libpq `options` (a search_path, a provider's endpoint id) survive the
    statement timeout the service adds as a startup parameter (outside read of issue 10: the
    connect argument replaced them), and the timeout is in effect either way."""
    url = contacts_config["CONTACTS_DATABASE_URL"] + "?options=-c%20search_path%3Dalt%2Cpublic"
    app = create_app(
        {
            **contacts_config,
            "CONTACTS_DATABASE_URL": url,
            "CONTACTS_DB_TRANSACTION_POOLING": pooling,
            "CONTACTS_DB_STATEMENT_TIMEOUT_SECONDS": "7",
        }
    )
    with app.app_context():
        try:
            path = db.session.execute(db.text("SHOW search_path")).scalar()
            timeout = db.session.execute(db.text("SHOW statement_timeout")).scalar()
        finally:
            db.session.rollback()
            db.engine.dispose()
    assert (path, timeout) == ("alt,public", "7s")

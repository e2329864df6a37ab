"""shared.errors: the one error shape and its handlers."""

from __future__ import annotations

import pytest
from flask import Flask

from shared.body import json_object
from shared.errors import (
    ApiError,
    error_body,
    flatten_validation_messages,
    register_error_handlers,
)


@pytest.fixture
def client():
    app = Flask("errors-test")
    app.config["MAX_CONTENT_LENGTH"] = 100
    register_error_handlers(app)

    @app.post("/echo")
    def echo():
        return json_object()

    @app.get("/api-error")
    def api_error():
        raise ApiError(409, "conflict_here", "It conflicts.", {"a": ["b"]}, {"X-Extra": "1"})

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail")

    return app.test_client()


def test_error_body_omits_empty_details():
    assert error_body("e", "m") == {"error": "e", "message": "m"}
    assert error_body("e", "m", {"f": ["x"]})["details"] == {"f": ["x"]}


def test_api_error_shape_and_headers(client):
    response = client.get("/api-error")
    assert response.status_code == 409
    assert response.json == {
        "error": "conflict_here",
        "message": "It conflicts.",
        "details": {"a": ["b"]},
    }
    assert response.headers["X-Extra"] == "1"


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [("GET", "/missing", 404, "not_found"), ("GET", "/echo", 405, "method_not_allowed")],
)
def test_routing_errors(client, method, path, status, error):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.json["error"] == error
    assert response.mimetype == "application/json"


def test_unexpected_errors_are_500_without_detail(client):
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.json == {"error": "internal_error", "message": "An internal error occurred."}


def test_body_too_large_is_413(client):
    response = client.post("/echo", data=b"{" + b" " * 200 + b"}", content_type="application/json")
    assert response.status_code == 413
    assert response.json["error"] == "payload_too_large"


@pytest.mark.parametrize("raw", [b"", b"  ", b"{", b"[]", b"1", b"null", b"\xff"])
def test_json_object_refusals(client, raw):
    response = client.post("/echo", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"] == "invalid_json"


def test_json_object_returns_the_object(client):
    assert client.post("/echo", json={"a": 1}).json == {"a": 1}


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ({"a": ["bad"]}, {"a": ["bad"]}),
        ({"a": {"3": {"b": ["x", "y"]}}}, {"a.3.b": ["x", "y"]}),
        ({"c": {0: ["z"]}}, {"c.0": ["z"]}),
        (["schema-level"], {"_schema": ["schema-level"]}),
        ("plain", {"_schema": ["plain"]}),
        ({"a": [{"b": ["x"]}]}, {"a.b": ["x"]}),
    ],
)
def test_flatten_validation_messages(messages, expected):
    assert flatten_validation_messages(messages) == expected

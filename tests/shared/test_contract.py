"""shared.contract and shared.openapi: a route's one declaration validates, answers errors in
the service's shape and is the route's OpenAPI operation."""

from __future__ import annotations

import pytest
from flask import Blueprint, Flask, jsonify
from marshmallow import Schema, fields, validate

from shared.contract import Answer, Api, Failure, declare
from shared.errors import register_error_handlers
from shared.openapi import build_document, documented_routes, openapi_path


class ThingSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=8))


class QuerySchema(Schema):
    limit = fields.Integer(validate=validate.Range(min=1, max=10))


def make_app(forms: bool = False, status: int = 422) -> Flask:
    app = Flask("contract-test")
    register_error_handlers(app)
    api = Api(
        validation_status=status,
        validation_error="validation_error" if status == 422 else "invalid_request",
        validation_message="The request failed validation.",
        forms=forms,
        common_failures=[Failure(503, "unavailable", "A dependency is down")],
        security="bearer",
    )
    bp = Blueprint("things", __name__, url_prefix="/v1")
    calls = []

    @api.route(
        bp,
        "/things/<thing_id>",
        "PUT",
        path={"thing_id": {"type": "string", "pattern": "^[a-z]+$"}},
        body=ThingSchema(),
        query=QuerySchema(),
        answers=[Answer(200, ThingSchema, "Stored", headers={"ETag": "Version"})],
        failures=[Failure(404, "not_found", "No such thing")],
        before=lambda: calls.append("before"),
    )
    def put_thing(thing_id, body, query):
        """Store a thing.

        Longer words about it."""
        calls.append((thing_id, body, query))
        return jsonify(body)

    app.register_blueprint(bp)

    @declare(answers=[Answer(200, None, "Alive")])
    def healthz():
        """Liveness."""
        return jsonify(status="ok")

    app.add_url_rule("/healthz", "healthz", healthz)
    app.calls = calls
    return app


def test_valid_requests_reach_the_view_with_loaded_values():
    app = make_app()
    response = app.test_client().put("/v1/things/abc?limit=3", json={"name": "n", "extra": 1})
    assert response.status_code == 422  # unknown keys are refused (marshmallow's RAISE)
    assert "extra" in response.json["details"]
    response = app.test_client().put("/v1/things/abc?limit=3", json={"name": "n"})
    assert response.status_code == 200
    assert app.calls[-2:] == ["before", ("abc", {"name": "n"}, {"limit": 3})]


@pytest.mark.parametrize(
    ("request_args", "status", "error", "field"),
    [
        ({"json": {"name": ""}}, 422, "validation_error", "name"),
        ({"json": {}}, 422, "validation_error", "name"),
        ({"data": "[1]", "content_type": "application/json"}, 400, "invalid_json", None),
        ({"data": "", "content_type": "application/json"}, 400, "invalid_json", None),
        ({"json": {"name": "n"}, "query_string": "limit=99"}, 422, "validation_error", "limit"),
        ({"json": {"name": "n"}, "query_string": "limit=1&limit=2"}, 422, "validation_error",
         "limit"),
    ],
)  # fmt: skip
def test_bad_input_is_answered_in_the_service_shape(request_args, status, error, field):
    app = make_app()
    response = app.test_client().put("/v1/things/abc", **request_args)
    assert response.status_code == status
    assert response.json["error"] == error
    if field:
        assert field in response.json["details"]
    assert app.calls in ([], ["before"])  # the view never ran


def test_forms_where_the_service_takes_them():
    app = make_app(forms=True, status=400)
    client = app.test_client()
    assert client.put("/v1/things/a", data={"name": "n"}).status_code == 200
    response = client.put("/v1/things/a", data="", content_type="application/json")
    assert (response.status_code, response.json["error"]) == (400, "invalid_request")


def test_the_document_has_every_route_and_its_contract():
    app = make_app()
    with app.app_context():
        document = build_document(app, title="t", description="d", security_schemes={})
    assert set(document["paths"]) == {"/v1/things/{thing_id}", "/healthz"}
    operation = document["paths"]["/v1/things/{thing_id}"]["put"]
    assert operation["summary"] == "Store a thing."
    assert operation["description"] == "Longer words about it."
    assert operation["security"] == [{"bearer": []}]
    assert set(operation["responses"]) == {"200", "400", "404", "413", "415", "422", "503"}
    enum = operation["responses"]["404"]["content"]["application/json"]["schema"]["allOf"][1]
    assert enum["properties"]["error"]["enum"] == ["not_found"]
    assert operation["responses"]["200"]["headers"]["ETag"]["description"] == "Version"
    kinds = {(p["in"], p["name"]) for p in operation["parameters"]}
    assert kinds == {("path", "thing_id"), ("query", "limit")}
    assert "application/json" in operation["requestBody"]["content"]


def test_a_route_without_a_contract_is_an_error():
    app = make_app()
    app.add_url_rule("/bare", "bare", lambda: "")
    with pytest.raises(RuntimeError, match="/bare"):
        documented_routes(app)


@pytest.mark.parametrize(
    ("rule", "path"),
    [("/v1/devices/<device_id>", "/v1/devices/{device_id}"), ("/a/<int:n>/b", "/a/{n}/b")],
)
def test_openapi_paths(rule, path):
    assert openapi_path(rule) == path

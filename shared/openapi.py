"""The OpenAPI 3 document of a service, built from the contracts its routes declare
(shared/contract.py): every route in the URL map, and nothing else. A route without a contract
is an error here, so a route cannot be added without saying what it takes and answers."""

from __future__ import annotations

import re
from collections import defaultdict

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask

from shared.contract import Answer, Contract, Failure, contract_of
from shared.schemas import ErrorSchema

_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_IMPLICIT = {"HEAD", "OPTIONS"}


def openapi_path(rule: str) -> str:
    """`/v1/devices/<device_id>` → `/v1/devices/{device_id}`."""
    return _ARGUMENT.sub(r"{\1}", rule)


def documented_routes(app: Flask) -> list[tuple[str, str, Contract]]:
    """(path, method, contract) of every route of the app; RuntimeError for one undeclared."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        contract = contract_of(view)
        if contract is None:
            raise RuntimeError(f"route {rule.rule} ({rule.endpoint}) declares no contract")
        for method in sorted((rule.methods or set()) - _IMPLICIT):
            routes.append((openapi_path(rule.rule), method.lower(), contract))
    return routes


def build_document(
    app: Flask, *, title: str, description: str, security_schemes: dict[str, dict]
) -> dict:
    spec = APISpec(
        title=title,
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": description},
    )
    spec.components.schema("Error", schema=ErrorSchema)
    for name, scheme in security_schemes.items():
        spec.components.security_scheme(name, scheme)
    paths: dict[str, dict] = defaultdict(dict)
    for path, method, contract in documented_routes(app):
        paths[path][method] = _operation(contract)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _operation(contract: Contract) -> dict:
    operation: dict = {"summary": contract.summary, "responses": _responses(contract)}
    if contract.description:
        operation["description"] = contract.description
    if contract.tags:
        operation["tags"] = list(contract.tags)
    if contract.security:
        operation["security"] = [{contract.security: []}]
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in contract.path.items()
    ]
    parameters += [
        {"name": name, "in": "header", "required": False, "schema": schema}
        for name, schema in contract.headers.items()
    ]
    if contract.query is not None:
        parameters.append({"in": "query", "schema": contract.query})
    if parameters:
        operation["parameters"] = parameters
    if contract.body is not None:
        operation["requestBody"] = {
            "required": contract.body_required,
            "content": {media: {"schema": contract.body} for media in contract.body_media},
        }
    return operation


def _responses(contract: Contract) -> dict:
    responses: dict = {}
    for answer in contract.answers:
        described, status = _answer(answer), str(answer.status)
        if status not in responses:
            responses[status] = described
            continue
        # Another media type of the same status (JSON or vCard): one response, both contents.
        same = responses[status]
        same["description"] += "; " + described["description"]
        same.setdefault("content", {}).update(described.get("content", {}))
    by_status: dict[int, list[Failure]] = defaultdict(list)
    for failure in contract.failures:
        by_status[failure.status].append(failure)
    for status, failures in sorted(by_status.items()):
        codes = list(dict.fromkeys(failure.error for failure in failures))
        responses[str(status)] = {
            "description": "; ".join(f"`{f.error}`: {f.description}" for f in failures),
            "content": {
                "application/json": {
                    "schema": {
                        "allOf": [
                            {"$ref": "#/components/schemas/Error"},
                            {
                                "type": "object",
                                "properties": {"error": {"type": "string", "enum": codes}},
                            },
                        ]
                    }
                }
            },
        }
    return responses


def _answer(answer: Answer) -> dict:
    response: dict = {"description": answer.description}
    if answer.schema is not None:
        response["content"] = {answer.media: {"schema": answer.schema}}
    if answer.headers:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in answer.headers.items()
        }
    return response

"""The OpenAPI 3 document of the SSO service, generated from the marshmallow schemas."""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from sso_service import schemas


def _error(description: str, code: str) -> dict:
    return {
        "description": f"{description} (`{code}`)",
        "content": {"application/json": {"schema": "Error"}},
    }


def _body(schema: str) -> dict:
    return {
        "required": True,
        "content": {
            "application/json": {"schema": schema},
            "application/x-www-form-urlencoded": {"schema": schema},
        },
    }


_INVALID = _error(
    "Malformed or non-object JSON (`invalid_json`), or missing/invalid fields with one entry per "
    "field in `details`; an empty body counts as all fields missing",
    "invalid_json / invalid_request",
)
_UNAVAILABLE = _error("Redis is unreachable", "unavailable")
_TOO_LARGE = _error("Body larger than SSO_MAX_BODY_BYTES", "payload_too_large")


def build_spec() -> dict:
    spec = APISpec(
        title="Contact Sync SSO service",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                "Logs softphone users in through their provider's External Authentication "
                "service and issues opaque access tokens shared by all devices of an account. "
                "Every error uses {error, message, details}."
            )
        },
    )
    spec.components.schema("Error", schema=schemas.ErrorSchema)
    spec.components.schema("Login", schema=schemas.LoginSchema)
    spec.components.schema("TokenField", schema=schemas.TokenFieldSchema)
    spec.components.schema("TokenResponse", schema=schemas.TokenResponseSchema)
    spec.components.schema("Introspection", schema=schemas.IntrospectionResponseSchema)
    spec.components.schema("RevokeResponse", schema=schemas.RevokeResponseSchema)
    spec.components.security_scheme("client", {"type": "http", "scheme": "basic"})

    spec.path(
        path="/v1/tokens",
        operations={
            "post": {
                "summary": "Log in with SIP credentials",
                "description": (
                    "Resolves the Cloud ID's ext-auth definition (clouds file, else portal), "
                    "calls it and returns the account's token; every login of the account gets "
                    "the same token while it is valid and renews it."
                ),
                "requestBody": _body("Login"),
                "responses": {
                    "200": {
                        "description": "Logged in",
                        "content": {"application/json": {"schema": "TokenResponse"}},
                    },
                    "400": _INVALID,
                    "401": _error("Ext-auth rejected the credentials", "invalid_credentials"),
                    "404": _error("No definition for this Cloud ID", "unknown_cloud"),
                    "413": _TOO_LARGE,
                    "429": {
                        **_error("Too many attempts; see Retry-After", "too_many_attempts"),
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                    },
                    "502": _error("Portal or ext-auth failed", "upstream_error"),
                    "503": _UNAVAILABLE,
                },
            }
        },
    )
    spec.path(
        path="/v1/introspect",
        operations={
            "post": {
                "summary": "Introspect a token (RFC 7662 style)",
                "security": [{"client": []}],
                "requestBody": _body("TokenField"),
                "responses": {
                    "200": {
                        "description": (
                            'Active token with its account, or exactly {"active": false} '
                            "for unknown, expired, revoked or malformed tokens"
                        ),
                        "content": {"application/json": {"schema": "Introspection"}},
                    },
                    "400": _INVALID,
                    "401": _error("Client authentication failed", "invalid_client"),
                    "413": _TOO_LARGE,
                    "429": _error(
                        "Too many failed client authentications from this address; see Retry-After",
                        "too_many_attempts",
                    ),
                    "503": _UNAVAILABLE,
                },
            }
        },
    )
    spec.path(
        path="/v1/revoke",
        operations={
            "post": {
                "summary": "Revoke a token (RFC 7009 style); no client authentication",
                "requestBody": _body("TokenField"),
                "responses": {
                    "200": {
                        "description": "Revoked (also for unknown tokens); body is {}",
                        "content": {"application/json": {"schema": "RevokeResponse"}},
                    },
                    "400": _INVALID,
                    "413": _TOO_LARGE,
                    "503": _UNAVAILABLE,
                },
            }
        },
    )
    for path, summary in (
        ("/healthz", "Liveness"),
        ("/readyz", "Readiness: Redis answers (503 unavailable otherwise)"),
        ("/metrics", "Prometheus metrics"),
    ):
        spec.path(
            path=path,
            operations={"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}},
        )
    return spec.to_dict()

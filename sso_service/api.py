"""How the SSO service's routes declare their contracts (shared/contract.py): field errors are
400 invalid_request, bodies may be JSON or forms (RFC 6749-style clients send forms), and
every route can meet Redis down."""

from __future__ import annotations

from shared.contract import Api, Failure

api = Api(
    validation_status=400,
    validation_error="invalid_request",
    validation_message="The request has invalid or missing fields.",
    forms=True,
    common_failures=[
        Failure(
            503,
            "unavailable",
            "Redis, the token store, is unreachable or failing over, or too few replicas"
            " acknowledged a new or revoked token; see `Retry-After`",
        )
    ],
)

TOO_MANY = Failure(429, "too_many_attempts", "A throttle is exhausted; see `Retry-After`")

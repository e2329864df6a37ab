"""POST /v1/introspect — token introspection for trusted clients (RFC 7662 style)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from shared.client_auth import basic_client
from shared.contract import Answer, Failure
from sso_service.api import TOO_MANY, api
from sso_service.schemas import IntrospectionResponseSchema, TokenFieldSchema
from sso_service.state import app_state

blueprint = Blueprint("introspection", __name__)


def _authenticate_client() -> None:
    """HTTP Basic as one of SSO_INTROSPECTION_CLIENTS (shared/client_auth.py: constant time;
    the right credentials always pass, even from a throttled address, so a guesser sharing the
    Contacts service's address cannot take every Contacts request down)."""
    sso = app_state()
    basic_client(sso.settings.introspection_clients, sso.client_throttle, realm="sso")


@api.route(
    blueprint,
    "/v1/introspect",
    "POST",
    before=_authenticate_client,
    body=TokenFieldSchema(),
    answers=[
        Answer(
            200,
            IntrospectionResponseSchema,
            "Active: whose token it is. Unknown, expired, revoked or malformed: only"
            ' `{"active": false}`',
        )
    ],
    failures=[
        Failure(401, "invalid_client", "Missing or wrong client credentials"),
        TOO_MANY,
    ],
    security="client",
    tags=["tokens"],
)
def introspect_token(body: dict):
    """Tell a trusted client whether a token is active and whose it is (RFC 7662 style).

    The client authenticates with HTTP Basic as one of `SSO_INTROSPECTION_CLIENTS`; failed
    client authentications are throttled per address, the right credentials always pass."""
    sso = app_state()
    record = sso.tokens.lookup(body["token"])
    if record is None:
        return jsonify(active=False)
    return jsonify(
        active=True,
        cloud_id=record.cloud_id,
        username=record.username,
        phone_numbers=record.phone_numbers,
        sip_uri=record.sip_uri,
        iat=record.iat,
        exp=record.exp,
    )

"""POST /v1/introspect — token introspection for trusted clients (RFC 7662 style)."""

from __future__ import annotations

import hmac

from flask import Blueprint, jsonify, request

from shared.contract import Answer, Failure
from shared.errors import ApiError
from sso_service.api import TOO_MANY, api
from sso_service.schemas import IntrospectionResponseSchema, TokenFieldSchema
from sso_service.state import app_state

blueprint = Blueprint("introspection", __name__)

# Compared against when the client id is unknown, so timing does not reveal valid ids.
_DUMMY_SECRET = b"\x00" * 32


def _authenticate_client() -> None:
    sso = app_state()
    clients = sso.settings.introspection_clients
    auth = request.authorization
    given_id = auth.username if auth and auth.type == "basic" else None
    given_secret = (auth.password or "") if given_id is not None else ""
    expected = clients.get(given_id or "")
    ok = hmac.compare_digest(
        given_secret.encode(), expected.encode() if expected is not None else _DUMMY_SECRET
    )
    if given_id is not None and expected is not None and ok:
        # The right credentials always pass, even from a throttled address: a guesser sharing
        # the Contacts service's address (a NAT, a proxy) must not be able to take every
        # Contacts request down. Guessing itself is defeated by long random secrets.
        return
    address = request.remote_addr or "unknown"
    sso.limiter.check_client_auth(address)
    sso.limiter.record_client_auth_failure(address)
    raise ApiError(
        401,
        "invalid_client",
        "Client authentication failed.",
        headers={"WWW-Authenticate": 'Basic realm="sso", charset="UTF-8"'},
    )


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

"""POST /v1/introspect — token introspection for trusted clients (RFC 7662 style)."""

from __future__ import annotations

import hmac

from flask import Blueprint, jsonify, request

from shared.errors import ApiError
from sso_service.body import load_body
from sso_service.schemas import TokenFieldSchema
from sso_service.state import AppState, app_state

blueprint = Blueprint("introspection", __name__)

# Compared against when the client id is unknown, so timing does not reveal valid ids.
_DUMMY_SECRET = b"\x00" * 32


def _authenticate_client(sso: AppState) -> None:
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


@blueprint.post("/v1/introspect")
def introspect_token():
    """Tell a trusted client whether a token is active and whose it is."""
    sso = app_state()
    _authenticate_client(sso)
    body = load_body(TokenFieldSchema())
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

"""POST /v1/revoke — log out (RFC 7009 style); holding the token is the authority."""

from __future__ import annotations

from flask import Blueprint, jsonify

from shared.contract import Answer
from sso_service.api import api
from sso_service.schemas import RevokeResponseSchema, TokenFieldSchema
from sso_service.state import app_state

blueprint = Blueprint("revocation", __name__)


@api.route(
    blueprint,
    "/v1/revoke",
    "POST",
    body=TokenFieldSchema(),
    answers=[Answer(200, RevokeResponseSchema, "Revoked, or was not active")],
    tags=["tokens"],
)
def revoke_token(body: dict):
    """Log out: make a token inactive everywhere.

    No client authentication: holding the token is the authority. Answers 200 for unknown
    tokens too, so it reveals nothing."""
    app_state().tokens.revoke(body["token"])
    return jsonify({})

"""POST /v1/revoke — log out (RFC 7009 style); holding the token is the authority."""

from __future__ import annotations

from flask import Blueprint, jsonify

from sso_service.body import load_body
from sso_service.schemas import TokenFieldSchema
from sso_service.state import app_state

blueprint = Blueprint("revocation", __name__)


@blueprint.post("/v1/revoke")
def revoke_token():
    """Make a token inactive everywhere; answers 200 for unknown tokens too."""
    body = load_body(TokenFieldSchema())
    app_state().tokens.revoke(body["token"])
    return jsonify({})

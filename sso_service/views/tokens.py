"""POST /v1/tokens — log in with SIP credentials through the provider's ext-auth."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, request

from shared.errors import ApiError
from sso_service.body import load_body
from sso_service.definitions import PortalError, UnknownCloud
from sso_service.ext_auth import Credentials, InvalidCredentials, UnsafeValue, UpstreamError
from sso_service.schemas import LoginSchema
from sso_service.services import services

blueprint = Blueprint("tokens", __name__)


@blueprint.post("/v1/tokens")
def create_token():
    """Log in and get the account's shared access token."""
    body = load_body(LoginSchema())
    sso = services()
    credentials = Credentials(
        username=body["username"],
        password=body["password"],
        cloud_id=body["cloud_id"],
        host=body.get("host") or "",
    )
    sso.limiter.count_ip(request.remote_addr or "unknown")
    sso.limiter.check_account(credentials.cloud_id, credentials.username)
    try:
        definition = sso.definitions.get(credentials.cloud_id)
    except UnknownCloud:
        raise ApiError(
            404, "unknown_cloud", "No authentication is set up for this Cloud ID."
        ) from None
    except PortalError:
        raise ApiError(
            502, "upstream_error", "The provider portal could not be reached or answered badly."
        ) from None
    try:
        result = sso.ext_auth.authenticate(definition, credentials)
    except InvalidCredentials:
        sso.limiter.record_failure(credentials.cloud_id, credentials.username)
        raise ApiError(401, "invalid_credentials", "The username or password is wrong.") from None
    except UnsafeValue as exc:
        raise ApiError(
            400,
            "invalid_request",
            "A credential contains characters the provider's service cannot receive.",
            {exc.field: ["Must not contain CR or LF."]},
        ) from None
    except UpstreamError:
        raise ApiError(
            502, "upstream_error", "The provider's authentication service failed."
        ) from None
    token, record = sso.tokens.issue(
        credentials.cloud_id, credentials.username, result.phone_numbers, result.sip_uri
    )
    return jsonify(
        token=token,
        token_type="Bearer",  # noqa: S106 - the OAuth token type, not a secret
        expires_in=max(0, record.exp - int(time.time())),
        account={
            "cloud_id": record.cloud_id,
            "username": record.username,
            "phone_numbers": record.phone_numbers,
            "sip_uri": record.sip_uri,
        },
    )

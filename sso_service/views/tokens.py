"""POST /v1/tokens — log in with SIP credentials through the provider's ext-auth."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from flask import Blueprint, jsonify, request

from shared.contract import Answer, Failure
from shared.errors import ApiError
from sso_service.api import TOO_MANY, api
from sso_service.definitions import PortalError, UnknownCloud
from sso_service.ext_auth import (
    AuthResult,
    Credentials,
    Definition,
    InvalidCredentials,
    UnsafeValue,
    UpstreamError,
)
from sso_service.rate_limit import Attempt
from sso_service.schemas import LoginSchema, TokenResponseSchema
from sso_service.state import AppState, app_state

blueprint = Blueprint("tokens", __name__)


@api.route(
    blueprint,
    "/v1/tokens",
    "POST",
    body=LoginSchema(),
    answers=[Answer(200, TokenResponseSchema, "Logged in: the account's shared token")],
    failures=[
        Failure(400, "invalid_request", "A credential holds CR or LF for a header"),
        Failure(401, "invalid_credentials", "ext-auth answered 4xx"),
        Failure(404, "unknown_cloud", "No External Authentication is set up for the Cloud ID"),
        TOO_MANY,
        Failure(
            502,
            "upstream_error",
            "Portal or ext-auth unreachable, past its timeout, 5xx, or an unparseable answer",
        ),
        Failure(
            503,
            "unavailable",
            "Too many logins of this worker (or to this Cloud ID) are waiting for providers;"
            " see `Retry-After`",
        ),
    ],
    tags=["tokens"],
)
def create_token(body: dict):
    """Log in and get the account's shared access token.

    The definition for `cloud_id` comes from the clouds file or the portal; ext-auth is called
    with the credentials; while the account's token is valid every login returns it (renewed).
    Failed logins count per account (username NFKC-casefolded), logins per client address."""
    sso = app_state()
    credentials = Credentials(
        username=body["username"],
        password=body["password"],
        cloud_id=body["cloud_id"],
        host=body.get("host") or "",
    )
    sso.limiter.count_ip(request.remote_addr or "unknown")
    with (
        sso.limiter.attempt(credentials.cloud_id, credentials.username) as attempt,
        _login_slot(sso, credentials.cloud_id),
    ):
        definition = _definition(sso, credentials.cloud_id)
        result = _authenticate(sso, definition, credentials, attempt)
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


def _definition(sso: AppState, cloud_id: str) -> Definition:
    try:
        return sso.definitions.get(cloud_id)
    except UnknownCloud:
        raise ApiError(
            404, "unknown_cloud", "No authentication is set up for this Cloud ID."
        ) from None
    except PortalError:
        raise ApiError(
            502, "upstream_error", "The provider portal could not be reached or answered badly."
        ) from None


@contextlib.contextmanager
def _login_slot(sso: AppState, cloud_id: str) -> Iterator[None]:
    """One of this worker's slots for logins waiting on the provider (portal and ext-auth), or
    503 at once: slow providers never hold the threads introspection needs, and one Cloud ID's
    slow provider never holds all the slots the others' logins need."""
    refused = sso.login_slots.acquire(cloud_id)
    if refused == "cloud":
        raise ApiError(
            503,
            "unavailable",
            "Too many logins to this Cloud ID are waiting for its provider; retry shortly.",
            headers={"Retry-After": "1"},
        )
    if refused:
        raise ApiError(
            503,
            "unavailable",
            "Too many logins are waiting for the provider; retry shortly.",
            headers={"Retry-After": "1"},
        )
    try:
        yield
    finally:
        sso.login_slots.release(cloud_id)


def _authenticate(
    sso: AppState, definition: Definition, credentials: Credentials, attempt: Attempt
) -> AuthResult:
    """Ask ext-auth. The attempt stays counted unless the login succeeded or nothing reached
    the provider: an answer that never came (a timeout, a 5xx) may hide a failed login, and a
    provider that slows wrong passwords down must not turn guesses into free 502s."""
    try:
        return sso.ext_auth.authenticate(definition, credentials)
    except InvalidCredentials:
        attempt.failed()
        raise ApiError(401, "invalid_credentials", "The username or password is wrong.") from None
    except UnsafeValue as exc:
        raise ApiError(
            400,
            "invalid_request",
            "A credential contains characters the provider's service cannot receive.",
            {exc.field: [exc.problem]},
        ) from None
    except UpstreamError as exc:
        if exc.reached:
            attempt.failed()
        raise ApiError(
            502, "upstream_error", "The provider's authentication service failed."
        ) from None

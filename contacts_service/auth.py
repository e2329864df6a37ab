"""Bearer-token authentication of every /v1 request, by introspection at the SSO service.

Nothing touches PostgreSQL before the token is known to be active: the account row is synced
(and the caller's verified numbers learned for Smart Contacts) only after introspection.
"""

from __future__ import annotations

import logging

from flask import g, request

from contacts_service import repository
from contacts_service.address_book import Caller
from contacts_service.sso_client import SsoUnavailable
from contacts_service.state import app_state
from shared.errors import ApiError
from shared.phone import region_of_numbers, to_e164

log = logging.getLogger(__name__)

# Opaque tokens are far shorter; anything longer is not worth a round trip to the SSO.
_MAX_TOKEN_LENGTH = 1024


def _invalid_token(message: str, error: str | None = None) -> ApiError:
    challenge = 'Bearer realm="contacts"'
    if error:
        challenge += f', error="{error}"'
    return ApiError(401, "invalid_token", message, headers={"WWW-Authenticate": challenge})


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def authenticate() -> None:
    """before_request of /v1: resolve the token to g.caller or answer 401/503."""
    if request.method == "OPTIONS":
        return  # CORS preflight carries no credentials
    token = bearer_token()
    if token is None:
        raise _invalid_token("An `Authorization: Bearer <token>` header is required.")
    if len(token) > _MAX_TOKEN_LENGTH:
        raise _invalid_token("The access token is not valid.", "invalid_token")
    state = app_state()
    try:
        identity = state.sso.introspect(token)
    except SsoUnavailable as exc:
        log.warning("introspection failed: %s", exc)
        raise ApiError(
            503,
            "auth_unavailable",
            "The sign-in service cannot be reached; try again shortly.",
            headers={"Retry-After": "5"},
        ) from None
    if identity is None:
        raise _invalid_token("The access token is not valid or has expired.", "invalid_token")
    numbers = verified_numbers(identity.phone_numbers)
    account_id = repository.sync_account(
        identity.cloud_id, identity.username, numbers, identity.sip_uri
    )
    g.caller = Caller(
        account_id=account_id,
        cloud_id=identity.cloud_id,
        username=identity.username,
        phone_numbers=tuple(numbers),
        sip_uri=identity.sip_uri,
        region=region_of_numbers(numbers),
    )


def verified_numbers(raw: tuple[str, ...]) -> list[str]:
    """The E.164 forms of the introspected numbers, in order, without duplicates.

    They come from the SSO, already normalised; whatever else arrives (garbage, huge strings,
    national numbers) is skipped, never an error: to_e164 looks at short strings only.
    """
    return list(dict.fromkeys(n for n in (to_e164(x, None) for x in raw) if n))


def caller() -> Caller:
    return g.caller

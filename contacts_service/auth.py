"""Bearer-token authentication of every /v1 request, by introspection at the SSO service.

Nothing touches PostgreSQL before the token is known to be active: the account row is synced
(and the caller's verified numbers learned for Smart Contacts) only after introspection.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from flask import g, request

from contacts_service import repository
from contacts_service.address_book import Caller
from contacts_service.extensions import db
from contacts_service.sso_client import SsoUnavailable
from contacts_service.state import app_state
from shared.body import has_body
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
    numbers, region = numbers_and_region(identity.phone_numbers)
    account_id = repository.sync_account(
        identity.cloud_id, identity.username, list(numbers), identity.sip_uri
    )
    if has_body():
        # The body is read (and an upload parsed) as it arrives, which takes as long as the
        # client takes to send it: the account sync is committed first so that no pooled
        # connection waits idle in a transaction meanwhile (a few slow uploads would hold the
        # whole pool and every other account would get 503). The sync mirrors the SSO's
        # answer, not anything the request asks for, so keeping it when the request is then
        # refused changes nothing the client sent.
        db.session.commit()
    g.caller = Caller(
        account_id=account_id,
        cloud_id=identity.cloud_id,
        username=identity.username,
        phone_numbers=numbers,
        sip_uri=identity.sip_uri,
        region=region,
    )


def verified_numbers(raw: tuple[str, ...]) -> list[str]:
    """The E.164 forms of the introspected numbers, in order, without duplicates.

    They come from the SSO, already normalised; whatever else arrives (garbage, huge strings,
    national numbers) is skipped, never an error: to_e164 looks at short strings only.
    """
    return list(dict.fromkeys(n for n in (to_e164(x, None) for x in raw) if n))


# An account's numbers are the same on every request until it logs in with new ones, and
# parsing them again (phonenumbers) was ≈ 2 % of a worker's CPU under GET /v1/devices: the
# results are kept per process for the usual few numbers (an answer may list up to 1,000, and
# those long lists are not worth the memory).
_CACHED_NUMBERS_AT_MOST = 16


@lru_cache(maxsize=4096)
def _cached_numbers_and_region(raw: tuple[str, ...]) -> tuple[tuple[str, ...], str | None]:
    numbers = verified_numbers(raw)
    return tuple(numbers), region_of_numbers(numbers)


def numbers_and_region(raw: tuple[str, ...]) -> tuple[tuple[str, ...], str | None]:
    """The verified E.164 numbers of an introspection answer and the region they imply."""
    if len(raw) <= _CACHED_NUMBERS_AT_MOST:
        return _cached_numbers_and_region(raw)
    numbers = verified_numbers(raw)
    return tuple(numbers), region_of_numbers(numbers)


def caller() -> Caller:
    return g.caller

"""The SSO service, as the Contacts service sees it: token introspection.

One pooled keep-alive requests.Session per worker process, an explicit short timeout, HTTP Basic
client authentication. With CONTACTS_INTROSPECTION_CACHE_SECONDS > 0 active answers are cached
in-process under SHA-256(token) + the SSO URL, never beyond the token's `exp`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import requests

from shared.http import make_session

log = logging.getLogger(__name__)

_READINESS_PROBE_TOKEN = "readiness-probe"  # noqa: S105 - a deliberately invalid token

_CACHE_LIMIT = 10_000

# The identifiers of API.md, matched over the whole string (fullmatch: a trailing newline is
# outside the class; a username is also whole Unicode text, no lone surrogates). An answer
# naming an account outside them is not one we can serve.
CLOUD_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
USERNAME = re.compile(r"[^\x00-\x1f\x7f-\x9f\ud800-\udfff]{1,128}")
# Verified numbers considered from one answer (the SSO keeps at most 1,000 per account).
MAX_PHONE_NUMBERS = 1000


class SsoUnavailable(Exception):
    """The SSO service could not give an answer (down, timed out, 5xx, rejected our client)."""


@dataclass(frozen=True)
class Identity:
    """The account an active token belongs to, as introspection describes it."""

    cloud_id: str
    username: str
    phone_numbers: tuple[str, ...]
    sip_uri: str | None
    exp: int | None


def _identity(body: object) -> Identity | None:
    """The Identity in an introspection answer; None for an inactive token.

    The account fields must be what API.md says identifiers are, else the answer is unusable
    (SsoUnavailable). Phone numbers are only advisory input to Smart Contacts: anything in
    `phone_numbers` that is not a string is dropped here, and auth.py keeps only the strings
    that normalise to E.164, so no value there can fail a request.
    """
    if not isinstance(body, dict):
        raise SsoUnavailable("introspection answer is not a JSON object")
    if body.get("active") is not True:
        return None
    cloud_id, username = body.get("cloud_id"), body.get("username")
    sip_uri = body.get("sip_uri")
    exp = body.get("exp")
    if (
        not isinstance(cloud_id, str)
        or not isinstance(username, str)
        or CLOUD_ID.fullmatch(cloud_id) is None
        or cloud_id.strip(".") == ""
        or USERNAME.fullmatch(username) is None
        or not (sip_uri is None or isinstance(sip_uri, str))
    ):
        raise SsoUnavailable("introspection answer lacks valid account fields")
    return Identity(
        cloud_id=cloud_id,
        username=username,
        phone_numbers=_phone_numbers(body.get("phone_numbers")),
        sip_uri=sip_uri,
        exp=exp if isinstance(exp, int) and not isinstance(exp, bool) else None,
    )


def _phone_numbers(value: object) -> tuple[str, ...]:
    """The strings among an answer's phone_numbers, in order, without duplicates, bounded."""
    if not isinstance(value, list):
        return ()
    return tuple(dict.fromkeys(n for n in value if isinstance(n, str)))[:MAX_PHONE_NUMBERS]


class SsoClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        timeout: float = 3.0,
        ca_bundle: str | None = None,
        cache_seconds: int = 0,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self._session = make_session(user_agent="contact-sync-contacts", verify=ca_bundle or True)
        self._session.auth = (client_id, client_secret)
        self._cache: OrderedDict[str, tuple[Identity, float]] = OrderedDict()
        self._lock = threading.Lock()

    def introspect(self, token: str) -> Identity | None:
        """The account of an active token, None when inactive; SsoUnavailable on failure."""
        key = None
        if self.cache_seconds > 0:
            key = hashlib.sha256(token.encode()).hexdigest() + "|" + self.base_url
            cached = self._cached(key)
            if cached is not None:
                return cached
        try:
            response = self._session.post(
                self.base_url + "/v1/introspect", data={"token": token}, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise SsoUnavailable(f"SSO unreachable: {exc.__class__.__name__}") from None
        if response.status_code != 200:
            if response.status_code == 401:
                log.error("the SSO service rejected our introspection client credentials")
            raise SsoUnavailable(f"SSO answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise SsoUnavailable("SSO answered a body that is not JSON") from None
        identity = _identity(body)
        if identity is not None and key is not None:
            self._remember(key, identity)
        return identity

    def healthy(self) -> None:
        """Raise unless the SSO answers an introspection made with our client credentials, so
        a wrong CONTACTS_SSO_CLIENT_SECRET shows in /readyz rather than only as 503s."""
        # A malformed token is answered from its shape alone, without the SSO's Redis.
        if self.introspect(_READINESS_PROBE_TOKEN) is not None:
            raise SsoUnavailable("the SSO called the readiness probe token active")

    def _cached(self, key: str) -> Identity | None:
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            identity, expires_at = entry
            if time.time() >= expires_at:
                del self._cache[key]
                return None
            return identity

    def _remember(self, key: str, identity: Identity) -> None:
        expires_at = time.time() + self.cache_seconds
        if identity.exp is not None:
            expires_at = min(expires_at, identity.exp)
        with self._lock:
            self._cache[key] = (identity, expires_at)
            self._cache.move_to_end(key)
            while len(self._cache) > _CACHE_LIMIT:
                self._cache.popitem(last=False)

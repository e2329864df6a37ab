"""The token format: `<key>.<mac>`.

key = 256 random bits (secrets.token_urlsafe(32)); mac = base64url(HMAC-SHA256(secret, key)).
Redis stores the key (as the account's current key) and looks records up by SHA-256(key), but
never the MAC, so a copy of Redis alone cannot produce a usable token. A forged, truncated or
foreign-secret token fails verify() before any Redis call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

_PART = r"[A-Za-z0-9_-]{43}"
_TOKEN = re.compile(rf"({_PART})\.({_PART})")


def new_key() -> str:
    return secrets.token_urlsafe(32)


def mac(secret: str, key: str) -> str:
    digest = hmac.new(secret.encode(), key.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_token(secret: str, key: str) -> str:
    return f"{key}.{mac(secret, key)}"


def verify(secret: str, token: object) -> str | None:
    """The key inside a well-formed token whose MAC matches, else None."""
    if not isinstance(token, str):
        return None
    match = _TOKEN.fullmatch(token)
    if not match:
        return None
    key, given = match.groups()
    if not hmac.compare_digest(mac(secret, key).encode(), given.encode()):
        return None
    return key


def lookup_id(key: str) -> str:
    """The Redis lookup id of a key: its SHA-256, so keys never appear as key names."""
    return hashlib.sha256(key.encode()).hexdigest()

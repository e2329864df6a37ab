"""HTTP Basic client authentication for service-to-service and operator routes, in both
services: the secret is compared in constant time (also for an unknown client id, against a
dummy), and failed authentications are throttled per client address.

The throttle is whatever the service has: the SSO counts failures in Redis, shared by every
worker (sso_service/admin.py); the Contacts service has no Redis and counts them in each worker
process (`MemoryThrottle`). Either way the right credentials always pass, even from a throttled
address: a guesser behind the same NAT or proxy must not lock the real client out, and guessing
itself is defeated by long random secrets.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from flask import request

from shared.errors import ApiError

# Compared against when the client id is unknown, so timing does not reveal valid ids.
_DUMMY_SECRET = b"\x00" * 32


class FailureThrottle(Protocol):
    """Failed client authentications per address."""

    def check(self, address: str) -> None:
        """ApiError 429 while `address` has used up its failures."""

    def record_failure(self, address: str) -> None:
        """Count one failure of `address`."""


def address_key(address: str) -> str:
    """IPv4 as given; IPv6 as its /64 (an IPv4-mapped IPv6 address as its IPv4): keying full
    IPv6 addresses would give every host 2**64 fresh budgets."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def too_many(retry_after: float, what: str = "failed client authentications") -> ApiError:
    """429 too_many_attempts with Retry-After (whole seconds, at least 1)."""
    seconds = max(1, int(-(-retry_after // 1)))
    return ApiError(
        429,
        "too_many_attempts",
        f"Too many {what}; retry later.",
        {"retry_after": [str(seconds)]},
        headers={"Retry-After": str(seconds)},
    )


def basic_client(clients: Mapping[str, str], throttle: FailureThrottle, realm: str) -> str:
    """The id of the client the request's HTTP Basic credentials name, when its secret matches;
    else ApiError 401 invalid_client (with `WWW-Authenticate: Basic`), or 429 once the client
    address has used up its failures. No clients configured: every request is a 401."""
    auth = request.authorization
    given_id = auth.username if auth is not None and auth.type == "basic" else None
    given_secret = (auth.password or "") if given_id is not None else ""
    expected = clients.get(given_id or "")
    matches = hmac.compare_digest(
        given_secret.encode("utf-8", "replace"),
        expected.encode("utf-8") if expected is not None else _DUMMY_SECRET,
    )
    if given_id is not None and expected is not None and matches:
        return given_id
    address = request.remote_addr or "unknown"
    throttle.check(address)
    throttle.record_failure(address)
    raise ApiError(
        401,
        "invalid_client",
        "Client authentication failed.",
        headers={"WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'},
    )


class MemoryThrottle:
    """Failures per client address in fixed windows (one minute by default), counted in this
    process only: with N worker processes an address gets up to N times `limit` failures per
    window. For a service without a shared store (the Contacts service has no Redis).

    At most `max_addresses` addresses are tracked per window, so a flood of addresses cannot
    grow memory without bound; addresses beyond that are not counted until the next window.
    """

    def __init__(
        self,
        limit: int,
        window_seconds: int = 60,
        max_addresses: int = 100_000,
        clock: Callable[[], float] = time.time,
    ):
        self.limit = limit
        self.window_seconds = window_seconds
        self.max_addresses = max_addresses
        self.clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self._counts: dict[str, int] = {}

    def _roll(self, now: float) -> None:
        window = int(now // self.window_seconds)
        if window != self._window:
            self._window = window
            self._counts.clear()

    def check(self, address: str) -> None:
        now = self.clock()
        with self._lock:
            self._roll(now)
            count = self._counts.get(address_key(address), 0)
        if count >= self.limit:
            raise too_many((self._window + 1) * self.window_seconds - now)

    def record_failure(self, address: str) -> None:
        key = address_key(address)
        with self._lock:
            self._roll(self.clock())
            if key in self._counts or len(self._counts) < self.max_addresses:
                self._counts[key] = self._counts.get(key, 0) + 1

"""Login throttling with Redis counters shared by every worker.

- per client address: fixed one-minute windows, every login attempt counts;
- per client address on /v1/introspect: failed client authentications in fixed one-minute
  windows; beyond the limit wrong credentials get 429 (right ones always pass, so a guesser
  behind the same address cannot lock the Contacts service out);
- per account: attempts whose outcome is failed or not yet known, in a sliding window. An
  attempt is counted *before* ext-auth is called and the count is released when the login
  succeeds (or never got an answer), so concurrent guesses cannot overshoot the limit and
  successful logins never count. While an account is at its limit even the right password
  gets 429, so a guesser learns nothing from the answer. The account is keyed under its
  NFKC-normalised, casefolded, trimmed username: `Alice` and `ALICE` share one count.
- client addresses are keyed as given for IPv4 and by their /64 for IPv6, the block one
  subscriber gets: keying full IPv6 addresses would give every host 2**64 fresh budgets.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
import unicodedata
from collections.abc import Iterator

import redis

from shared.client_auth import address_key, too_many
from shared.errors import ApiError

log = logging.getLogger(__name__)

_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('TTL', KEYS[1])}
"""

# Sliding window of attempts in a sorted set scored by time (ms): drop what left the window,
# then either admit this attempt or say when the oldest one leaves.
_RESERVE = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
"""


def account_key_name(username: str) -> str:
    """The form of a username the failed-login limit counts under (not the identity itself)."""
    return unicodedata.normalize("NFKC", username).casefold().strip()


def _too_many(retry_after: int, what: str = "login attempts") -> ApiError:
    retry_after = max(1, int(retry_after))
    return ApiError(
        429,
        "too_many_attempts",
        f"Too many {what}; retry later.",
        {"retry_after": [str(retry_after)]},
        headers={"Retry-After": str(retry_after)},
    )


class Attempt:
    """One reserved login attempt; `failed()` keeps it counted."""

    counted = False

    def failed(self) -> None:
        self.counted = True


class LoginLimiter:
    def __init__(
        self,
        client: redis.Redis,
        max_failed: int,
        failed_window: int,
        max_per_ip: int,
    ):
        self.redis = client
        self.max_failed = max_failed
        self.failed_window = failed_window
        self.max_per_ip = max_per_ip
        self._hit = client.register_script(_HIT)
        self._reserve = client.register_script(_RESERVE)

    @staticmethod
    def _account_key(cloud_id: str, username: str) -> str:
        return f"sso:rl:attempts:{cloud_id}:{account_key_name(username)}"

    def count_ip(self, address: str) -> None:
        """Count one login attempt from `address`; ApiError 429 beyond the per-minute limit."""
        window = int(time.time() // 60)
        count, ttl = self._hit(keys=[f"sso:rl:ip:{address_key(address)}:{window}"], args=[60])
        if int(count) > self.max_per_ip:
            raise _too_many(ttl if int(ttl) > 0 else 60)

    @contextlib.contextmanager
    def attempt(self, cloud_id: str, username: str) -> Iterator[Attempt]:
        """Reserve one of the account's attempts for the block (ApiError 429 when none is
        left); the reservation is released on leaving unless `failed()` was called."""
        key = self._account_key(cloud_id, username)
        member = secrets.token_hex(8)
        window_ms = self.failed_window * 1000
        admitted, wait_ms = self._reserve(
            keys=[key], args=[int(time.time() * 1000), window_ms, self.max_failed, member]
        )
        if not int(admitted):
            raise _too_many(-(-int(wait_ms) // 1000))
        attempt = Attempt()
        try:
            yield attempt
        finally:
            if not attempt.counted:
                with contextlib.suppress(redis.RedisError):
                    self.redis.zrem(key, member)


class RedisFailureThrottle:
    """Failed client authentications (introspection or admin clients, each under its own
    prefix, so neither can use up the other's allowance) per client address in fixed
    one-minute windows, shared by every worker through Redis. Fails open while Redis is down:
    forged tokens are still answered from the MAC alone then, every real token lookup and
    every admin action answers 503 anyway."""

    def __init__(self, client: redis.Redis, limit: int, prefix: str):
        self.redis = client
        self.limit = limit
        self.prefix = prefix
        self._hit = client.register_script(_HIT)

    def _key(self, address: str) -> str:
        return f"{self.prefix}:{address_key(address)}:{int(time.time() // 60)}"

    def check(self, address: str) -> None:
        key = self._key(address)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(key)
        pipe.ttl(key)
        try:
            count, ttl = pipe.execute()
        except redis.RedisError:
            log.warning("%s throttle skipped: redis unavailable", self.prefix)
            return
        if count is not None and int(count) >= self.limit:
            raise too_many(ttl if ttl and ttl > 0 else 60)

    def record_failure(self, address: str) -> None:
        try:
            self._hit(keys=[self._key(address)], args=[60])
        except redis.RedisError:
            log.warning("%s failure not counted: redis unavailable", self.prefix)

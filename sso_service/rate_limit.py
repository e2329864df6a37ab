"""Login throttling with Redis counters shared by every worker.

- per client address: fixed one-minute windows, every login attempt counts;
- per client address on /v1/introspect: failed client authentications in fixed one-minute
  windows; beyond the limit wrong credentials get 429 (right ones always pass, so a guesser
  behind the same address cannot lock the Contacts service out);
- per account: failed logins (ext-auth said 4xx) in a window that starts with the first
  failure; successful logins never count. While an account is over its limit even the right
  password gets 429, so a guesser learns nothing from the answer.
"""

from __future__ import annotations

import logging
import time

import redis

from shared.errors import ApiError

log = logging.getLogger(__name__)

_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('TTL', KEYS[1])}
"""


def _too_many(retry_after: int, what: str = "login attempts") -> ApiError:
    retry_after = max(1, int(retry_after))
    return ApiError(
        429,
        "too_many_attempts",
        f"Too many {what}; retry later.",
        {"retry_after": [str(retry_after)]},
        headers={"Retry-After": str(retry_after)},
    )


class LoginLimiter:
    def __init__(
        self,
        client: redis.Redis,
        max_failed: int,
        failed_window: int,
        max_per_ip: int,
        max_failed_client_auth_per_ip: int = 30,
    ):
        self.redis = client
        self.max_failed = max_failed
        self.failed_window = failed_window
        self.max_per_ip = max_per_ip
        self.max_failed_client_auth = max_failed_client_auth_per_ip
        self._hit = client.register_script(_HIT)

    @staticmethod
    def _account_key(cloud_id: str, username: str) -> str:
        return f"sso:rl:fail:{cloud_id}:{username}"

    def count_ip(self, address: str) -> None:
        """Count one login attempt from `address`; ApiError 429 beyond the per-minute limit."""
        window = int(time.time() // 60)
        count, ttl = self._hit(keys=[f"sso:rl:ip:{address}:{window}"], args=[60])
        if int(count) > self.max_per_ip:
            raise _too_many(ttl if int(ttl) > 0 else 60)

    def check_account(self, cloud_id: str, username: str) -> None:
        """ApiError 429 while the account has used up its failed logins for the window."""
        key = self._account_key(cloud_id, username)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(key)
        pipe.ttl(key)
        count, ttl = pipe.execute()
        if count is not None and int(count) >= self.max_failed:
            raise _too_many(ttl if ttl and ttl > 0 else self.failed_window)

    def record_failure(self, cloud_id: str, username: str) -> None:
        self._hit(keys=[self._account_key(cloud_id, username)], args=[self.failed_window])

    @staticmethod
    def _client_auth_key(address: str) -> str:
        return f"sso:rl:client:{address}:{int(time.time() // 60)}"

    def check_client_auth(self, address: str) -> None:
        """ApiError 429 while `address` has used up its failed introspection client logins.

        Fails open while Redis is down: forged tokens are still answered from the MAC alone
        then, and every real token lookup answers 503 anyway.
        """
        key = self._client_auth_key(address)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(key)
        pipe.ttl(key)
        try:
            count, ttl = pipe.execute()
        except redis.RedisError:
            log.warning("client-auth throttle skipped: redis unavailable")
            return
        if count is not None and int(count) >= self.max_failed_client_auth:
            raise _too_many(ttl if ttl and ttl > 0 else 60, "failed client authentications")

    def record_client_auth_failure(self, address: str) -> None:
        try:
            self._hit(keys=[self._client_auth_key(address)], args=[60])
        except redis.RedisError:
            log.warning("client-auth failure not counted: redis unavailable")

"""Operator actions on the token store: revoke every token of one account, and a Cloud ID's
figures. Used by the admin routes (sso_service/views/admin.py) and `python -m sso_service
accounts` (sso_service/admin_cli.py).

Per Cloud ID the token store keeps (sso_service/token_store.py, updated by login and logout in
the same Lua scripts that issue and revoke):

    sso:cloud:<cloud_id>:accounts   set: usernames that ever logged in (the accounts "seen")
    sso:cloud:<cloud_id>:tokens     sorted set: username → exp of its current token

so the figures are a SCARD and a ZCOUNT: no scan of Redis per request, and no lag. Accounts
whose last login predates these keys are counted (and known to revoke's 404 check) from their
next login on; revoking one of them works all the same, through its account record.

The per-Cloud-ID gauges of /metrics (`cloud_gauges`) read the same keys for every Cloud ID in
`sso:clouds` (the set login keeps of the Cloud IDs that logged in) in one pipeline, no SCAN;
shared/metrics.py CloudGauges does that at most once a minute per worker process.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

from shared.metrics import CloudFigures, CloudGauges
from sso_service.token_store import (
    CLOUDS_KEY,
    _account_key,
    cloud_accounts_key,
    cloud_tokens_key,
    run_replicated,
)

log = logging.getLogger(__name__)

# One account's token, removed with everything that points at it, atomically: the token
# record (`sso:token:<lookup>`), the account record (so the next login issues a new token) and
# its entry in the Cloud ID's active tokens. -1 when the account was never seen.
_REVOKE_ACCOUNT = """
local account, accounts, active, clouds = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local username = ARGV[1]
local lookup = redis.call('HGET', account, 'lookup')
if not lookup and redis.call('SISMEMBER', accounts, username) == 0 then
    return -1
end
local revoked = 0
if lookup then
    revoked = redis.call('DEL', 'sso:token:' .. lookup)
end
redis.call('DEL', account)
redis.call('ZREM', active, username)
redis.call('SADD', accounts, username)
redis.call('SADD', clouds, ARGV[2])
return revoked
"""


@dataclass(frozen=True)
class CloudStats:
    cloud_id: str
    accounts: int
    active_tokens: int

    def as_dict(self) -> dict:
        return {
            "cloud_id": self.cloud_id,
            "accounts": self.accounts,
            "active_tokens": self.active_tokens,
        }


class AccountAdmin:
    def __init__(self, client: redis.Redis, min_replicas_ack: int = 0, wait_timeout_ms: int = 500):
        self.redis = client
        self.min_replicas_ack = min_replicas_ack
        self.wait_timeout_ms = wait_timeout_ms
        self._revoke = client.register_script(_REVOKE_ACCOUNT)

    def revoke(self, cloud_id: str, username: str) -> int | None:
        """Make every token of the account inactive; how many were active, or None for an
        account that never logged in. Like a logout, the revocation waits for
        SSO_REDIS_MIN_REPLICAS_ACK replicas (NotReplicated, a 503, otherwise): a revocation
        lost in a failover would bring a stolen phone's token back."""
        revoked = int(
            run_replicated(
                self.redis,
                self._revoke,
                [
                    _account_key(cloud_id, username),
                    cloud_accounts_key(cloud_id),
                    cloud_tokens_key(cloud_id),
                    CLOUDS_KEY,
                ],
                [username, cloud_id],
                self.min_replicas_ack,
                self.wait_timeout_ms,
            )
        )
        return None if revoked < 0 else revoked

    def stats(self, cloud_id: str) -> CloudStats:
        """Accounts that ever logged in to the Cloud ID, and how many hold an active token."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.scard(cloud_accounts_key(cloud_id))
        pipe.zcount(cloud_tokens_key(cloud_id), f"({int(time.time())}", "+inf")
        accounts, active = pipe.execute()
        return CloudStats(cloud_id, int(accounts), int(active))

    def top_clouds(self, limit: int) -> CloudFigures:
        """stats() of the `limit` Cloud IDs with most accounts, and how many Cloud IDs there
        are: SMEMBERS of the Cloud IDs, then their SCARD and ZCOUNT in pipelines of
        _PIPELINE_CLOUDS Cloud IDs (one round trip each)."""
        cloud_ids = sorted(self.redis.smembers(CLOUDS_KEY))
        now = f"({int(time.time())}"
        figures = []
        for start in range(0, len(cloud_ids), _PIPELINE_CLOUDS):
            chunk = cloud_ids[start : start + _PIPELINE_CLOUDS]
            pipe = self.redis.pipeline(transaction=False)
            for cloud_id in chunk:
                pipe.scard(cloud_accounts_key(cloud_id))
                pipe.zcount(cloud_tokens_key(cloud_id), now, "+inf")
            values = pipe.execute()
            for i, cloud_id in enumerate(chunk):
                accounts, active = int(values[2 * i]), int(values[2 * i + 1])
                figures.append((cloud_id, {"accounts": accounts, "active_tokens": active}))
        figures.sort(key=lambda item: -item[1]["accounts"])  # stable: ties by Cloud ID
        return CloudFigures(clouds=len(cloud_ids), top=figures[:limit])


_PIPELINE_CLOUDS = 500

CLOUD_FIGURES = {
    "accounts": "Accounts of the Cloud ID that ever logged in.",
    "active_tokens": "Accounts of the Cloud ID holding an active token.",
}


def cloud_gauges(accounts: AccountAdmin, **options) -> CloudGauges:
    """The per-Cloud-ID gauges of /metrics: sso_cloud_accounts and
    sso_cloud_active_tokens{cloud_id} (with sso_cloud_ids and sso_cloud_stats_age_seconds)."""
    return CloudGauges("sso", CLOUD_FIGURES, accounts.top_clouds, **options)

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
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

from sso_service.token_store import _account_key, cloud_accounts_key, cloud_tokens_key

log = logging.getLogger(__name__)

# One account's token, removed with everything that points at it, atomically: the token
# record (`sso:token:<lookup>`), the account record (so the next login issues a new token) and
# its entry in the Cloud ID's active tokens. -1 when the account was never seen.
_REVOKE_ACCOUNT = """
local account, accounts, active = KEYS[1], KEYS[2], KEYS[3]
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
    def __init__(self, client: redis.Redis):
        self.redis = client
        self._revoke = client.register_script(_REVOKE_ACCOUNT)

    def revoke(self, cloud_id: str, username: str) -> int | None:
        """Make every token of the account inactive; how many were active, or None for an
        account that never logged in."""
        revoked = int(
            self._revoke(
                keys=[
                    _account_key(cloud_id, username),
                    cloud_accounts_key(cloud_id),
                    cloud_tokens_key(cloud_id),
                ],
                args=[username],
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

"""Token records in Redis.

Keys (prefix `sso:`):
    sso:token:<sha256(key)>          hash: cloud_id, username, phone_numbers (JSON), sip_uri
                                     (JSON), iat, exp — expires with the token
    sso:account:<cloud_id>:<username> hash: key, lookup — the account's current token key
    sso:cloud:<cloud_id>:accounts    set: usernames that ever logged in (no expiry)
    sso:cloud:<cloud_id>:tokens      sorted set: username → exp of its current token; login
                                     adds (and drops expired members), logout removes

issue() runs as one Lua script, so concurrent logins of one account always end with one token,
and a successful login renews both keys' lifetime; the per-Cloud-ID keys, which the admin
figures and revocation read (sso_service/admin.py), change in the same scripts. (The script
derives key names from the account record, which is fine on a single Redis or a replica set,
not on Redis Cluster.)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

from sso_service import tokens

_ISSUE = """
local account = KEYS[1]
local ttl = tonumber(ARGV[3])
local existing = redis.call('HMGET', account, 'key', 'lookup')
local key, lookup = existing[1], existing[2]
if not (key and lookup and redis.call('EXISTS', 'sso:token:' .. lookup) == 1) then
    key, lookup = ARGV[1], ARGV[2]
    redis.call('DEL', account)
    redis.call('HSET', account, 'key', key, 'lookup', lookup)
end
local record = 'sso:token:' .. lookup
redis.call('HSET', record, 'cloud_id', ARGV[4], 'username', ARGV[5],
           'phone_numbers', ARGV[6], 'sip_uri', ARGV[7], 'exp', ARGV[8])
redis.call('HSETNX', record, 'iat', ARGV[9])
redis.call('EXPIRE', record, ttl)
redis.call('EXPIRE', account, ttl)
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[9])
redis.call('ZADD', KEYS[3], ARGV[8], ARGV[5])
return {key, redis.call('HGET', record, 'iat')}
"""

_REVOKE = """
local record = KEYS[1]
local lookup = ARGV[1]
local owner = redis.call('HMGET', record, 'cloud_id', 'username')
if owner[1] and owner[2] then
    local account = 'sso:account:' .. owner[1] .. ':' .. owner[2]
    if redis.call('HGET', account, 'lookup') == lookup then
        redis.call('DEL', account)
        redis.call('ZREM', 'sso:cloud:' .. owner[1] .. ':tokens', owner[2])
    end
end
return redis.call('DEL', record)
"""


@dataclass(frozen=True)
class TokenRecord:
    cloud_id: str
    username: str
    phone_numbers: list[str]
    sip_uri: str | None
    iat: int
    exp: int


def connect(url: str) -> redis.Redis:
    """A pooled client that fails fast while Redis is down and reconnects once it is back."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=2.0,
        socket_connect_timeout=1.0,
        health_check_interval=30,
        # One immediate retry replaces a pooled connection that died with a restarted Redis;
        # more (with backoff) would only hold a worker while Redis is really down.
        retry=Retry(NoBackoff(), 1),
        max_connections=64,
    )


def _account_key(cloud_id: str, username: str) -> str:
    # cloud_id cannot contain ':' so the key is unambiguous.
    return f"sso:account:{cloud_id}:{username}"


def cloud_accounts_key(cloud_id: str) -> str:
    """The set of usernames of the Cloud ID that ever logged in."""
    return f"sso:cloud:{cloud_id}:accounts"


def cloud_tokens_key(cloud_id: str) -> str:
    """The sorted set username → exp of the Cloud ID's current tokens."""
    return f"sso:cloud:{cloud_id}:tokens"


def _record_key(lookup: str) -> str:
    return f"sso:token:{lookup}"


class TokenStore:
    def __init__(self, client: redis.Redis, secret: str, ttl_seconds: int):
        self.redis = client
        self.secret = secret
        self.ttl = ttl_seconds
        self._issue = client.register_script(_ISSUE)
        self._revoke = client.register_script(_REVOKE)

    def issue(
        self, cloud_id: str, username: str, phone_numbers: list[str], sip_uri: str | None
    ) -> tuple[str, TokenRecord]:
        """The account's token (the existing one while valid, else a new one), renewed."""
        now = int(time.time())
        exp = now + self.ttl
        candidate = tokens.new_key()
        key, iat = self._issue(
            keys=[
                _account_key(cloud_id, username),
                cloud_accounts_key(cloud_id),
                cloud_tokens_key(cloud_id),
            ],
            args=[
                candidate,
                tokens.lookup_id(candidate),
                self.ttl,
                cloud_id,
                username,
                json.dumps(phone_numbers),
                json.dumps(sip_uri),
                exp,
                now,
            ],
        )
        record = TokenRecord(cloud_id, username, list(phone_numbers), sip_uri, int(iat), exp)
        return tokens.make_token(self.secret, key), record

    def lookup(self, token: object) -> TokenRecord | None:
        """The record of an active token; None for malformed, forged, unknown or expired."""
        key = tokens.verify(self.secret, token)
        if key is None:
            return None
        fields = self.redis.hgetall(_record_key(tokens.lookup_id(key)))
        if not fields or "exp" not in fields:
            return None
        record = TokenRecord(
            cloud_id=fields["cloud_id"],
            username=fields["username"],
            phone_numbers=json.loads(fields["phone_numbers"]),
            sip_uri=json.loads(fields["sip_uri"]),
            iat=int(fields.get("iat") or 0),
            exp=int(fields["exp"]),
        )
        if record.exp <= time.time():
            return None
        return record

    def revoke(self, token: object) -> None:
        """Make the token inactive everywhere; unknown or malformed tokens are a no-op."""
        key = tokens.verify(self.secret, token)
        if key is None:
            return
        lookup = tokens.lookup_id(key)
        self._revoke(keys=[_record_key(lookup)], args=[lookup])

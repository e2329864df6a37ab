"""Token records in Redis.

Keys (prefix `sso:`):
    sso:token:<sha256(key)>          hash: cloud_id, username, phone_numbers (JSON), sip_uri
                                     (JSON), iat, exp — expires with the token
    sso:account:<cloud_id>:<username> hash: key, lookup — the account's current token key
    sso:cloud:<cloud_id>:accounts    set: usernames that ever logged in (no expiry)
    sso:cloud:<cloud_id>:tokens      sorted set: username → exp of its current token; login
                                     adds (and drops expired members), logout removes
    sso:clouds                       set: Cloud IDs that ever logged in (no expiry; the
                                     per-Cloud-ID gauges of /metrics, sso_service/admin.py)

issue() runs as one Lua script, so concurrent logins of one account always end with one token,
and a successful login renews both keys' lifetime; the per-Cloud-ID keys, which the admin
figures and revocation read (sso_service/admin.py), change in the same scripts. (The script
derives key names from the account record, which is fine on a single Redis or a replica set,
not on Redis Cluster: see "Redis high availability (Sentinel)" in docs/deploying.md.)

With SSO_REDIS_MIN_REPLICAS_ACK > 0 a new or revoked token is only answered once that many
replicas hold it (WAIT, on the connection that ran the script, which is the only connection
WAIT speaks for); otherwise NotReplicated, a 503: the write may not survive a failover.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

from sso_service import tokens
from sso_service.settings import Settings

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
redis.call('SADD', KEYS[4], ARGV[4])
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


# A dead primary is noticed within these (loopback and LAN round trips are well under 1 ms);
# SSO_REDIS_WAIT_TIMEOUT_MS is kept under SOCKET_TIMEOUT by the settings.
SOCKET_TIMEOUT = 2.0
CONNECT_TIMEOUT = 1.0
# Sentinels are asked in turn on every new connection: one that does not answer at once is
# skipped for the next, rather than holding the request.
SENTINEL_TIMEOUT = 0.5


class NotReplicated(redis.exceptions.RedisError):
    """Fewer replicas than required acknowledged a token write within the WAIT timeout."""


def _node_options() -> dict:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        "decode_responses": True,
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_keepalive": True,
        "health_check_interval": 30,
        # One immediate retry replaces a pooled connection that died with a restarted (or, with
        # Sentinel, replaced) primary; more (with backoff) would only hold a worker while Redis
        # is really down. A Redis call thus makes at most two attempts, each bounded by the
        # timeouts above (a host that vanished without a reset costs up to ~6 s in all; a dead
        # process on a live host is refused at once), and a request stops at its first failure.
        "retry": Retry(NoBackoff(), 1),
        "max_connections": 64,
    }


def connect(url: str) -> redis.Redis:
    """A pooled client that fails fast while Redis is down and reconnects once it is back."""
    return redis.Redis.from_url(url, **_node_options())


def connect_sentinel(
    sentinels: tuple[tuple[str, int], ...] | list[tuple[str, int]],
    master: str,
    url: str = "redis://",
    sentinel_password: str | None = None,
) -> redis.Redis:
    """A pooled client on the primary the Sentinels name for `master`. Every new connection asks
    them where the primary is, so after a failover the client finds the new one by itself (a
    demoted primary's READONLY answer drops the connection too). `url` gives the data nodes'
    database, credentials and TLS (rediss://); its host and port are not used."""
    from redis.backoff import NoBackoff
    from redis.connection import SSLConnection, parse_url
    from redis.retry import Retry
    from redis.sentinel import Sentinel

    node = parse_url(url)
    node.pop("host", None)
    node.pop("port", None)
    if node.pop("connection_class", None) is SSLConnection:
        node["ssl"] = True
    sentinel_options = {
        "socket_timeout": SENTINEL_TIMEOUT,
        "socket_connect_timeout": SENTINEL_TIMEOUT,
        # The loop over the Sentinels is the retry; redis-py's default would retry each one
        # ten times with backoff.
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": True,
    }
    if sentinel_password:
        sentinel_options["password"] = sentinel_password
    manager = Sentinel(list(sentinels), sentinel_kwargs=sentinel_options)
    return manager.master_for(master, **(_node_options() | node))


def connect_settings(settings: Settings) -> redis.Redis:
    """The client the settings name: Sentinel mode when SSO_REDIS_SENTINELS is set."""
    if settings.redis_sentinels:
        return connect_sentinel(
            settings.redis_sentinels,
            settings.redis_sentinel_master,
            settings.redis_url,
            settings.redis_sentinel_password,
        )
    return connect(settings.redis_url)


def _account_key(cloud_id: str, username: str) -> str:
    # cloud_id cannot contain ':' so the key is unambiguous.
    return f"sso:account:{cloud_id}:{username}"


def cloud_accounts_key(cloud_id: str) -> str:
    """The set of usernames of the Cloud ID that ever logged in."""
    return f"sso:cloud:{cloud_id}:accounts"


CLOUDS_KEY = "sso:clouds"


def cloud_tokens_key(cloud_id: str) -> str:
    """The sorted set username → exp of the Cloud ID's current tokens."""
    return f"sso:cloud:{cloud_id}:tokens"


def _record_key(lookup: str) -> str:
    return f"sso:token:{lookup}"


def run_replicated(
    client: redis.Redis,
    script,
    keys: list,
    args: list,
    min_replicas_ack: int,
    wait_timeout_ms: int,
):
    """Run the script; with min_replicas_ack, WAIT on the same connection (one pipeline)
    and raise NotReplicated unless enough replicas acknowledged. Also when the script wrote
    nothing this time: a retry after a 503 finds the write an earlier call made, and that
    write may still be on the primary alone (a retried logout would otherwise answer 200
    for a revocation a failover can undo)."""
    if not min_replicas_ack:
        return script(keys=keys, args=args)
    pipe = client.pipeline(transaction=False)
    script(keys=keys, args=args, client=pipe)
    pipe.wait(min_replicas_ack, wait_timeout_ms)
    result, acknowledged = pipe.execute()
    if int(acknowledged) < min_replicas_ack:
        raise NotReplicated(
            f"{acknowledged} of {min_replicas_ack} replicas acknowledged within"
            f" {wait_timeout_ms} ms"
        )
    return result


def replicas_problem(client: redis.Redis, min_replicas_ack: int) -> str | None:
    """Why SSO_REDIS_MIN_REPLICAS_ACK cannot be met now (too few replicas connected to the
    primary: every login and logout would be a 503), or None."""
    if not min_replicas_ack:
        return None
    connected = int(client.info("replication").get("connected_slaves", 0))
    if connected < min_replicas_ack:
        return (
            f"SSO_REDIS_MIN_REPLICAS_ACK={min_replicas_ack} but the Redis primary has"
            f" {connected} connected replica(s): every login and logout will answer 503"
        )
    return None


class TokenStore:
    def __init__(
        self,
        client: redis.Redis,
        secret: str,
        ttl_seconds: int,
        min_replicas_ack: int = 0,
        wait_timeout_ms: int = 500,
    ):
        self.redis = client
        self.secret = secret
        self.ttl = ttl_seconds
        self.min_replicas_ack = min_replicas_ack
        self.wait_timeout_ms = wait_timeout_ms
        self._issue = client.register_script(_ISSUE)
        self._revoke = client.register_script(_REVOKE)

    def _run(self, script, keys: list, args: list):
        return run_replicated(
            self.redis, script, keys, args, self.min_replicas_ack, self.wait_timeout_ms
        )

    def issue(
        self, cloud_id: str, username: str, phone_numbers: list[str], sip_uri: str | None
    ) -> tuple[str, TokenRecord]:
        """The account's token (the existing one while valid, else a new one), renewed."""
        now = int(time.time())
        exp = now + self.ttl
        candidate = tokens.new_key()
        key, iat = self._run(
            self._issue,
            keys=[
                _account_key(cloud_id, username),
                cloud_accounts_key(cloud_id),
                cloud_tokens_key(cloud_id),
                CLOUDS_KEY,
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
        self._run(self._revoke, keys=[_record_key(lookup)], args=[lookup])

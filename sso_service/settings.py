"""SSO service settings, read from environment variables with explicit casts.

Secrets (SSO_TOKEN_SECRET, SSO_INTROSPECTION_CLIENTS) have no defaults: a deployment without
them fails at start-up instead of running with a guessable key.

Redis is either one server (SSO_REDIS_URL) or, when SSO_REDIS_SENTINELS is set, the primary the
Sentinels name for SSO_REDIS_SENTINEL_MASTER; SSO_REDIS_URL then still gives the database,
credentials and scheme of the data nodes (its host and port are not used).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.config import (
    ConfigError,
    env_bool,
    env_clients,
    env_float,
    env_int,
    env_log_level,
    env_origins,
    env_region,
    env_str,
)

MIN_SECRET_LENGTH = 32
# A WAIT must end well inside the Redis socket timeout (sso_service/token_store.py, 2 s), or the
# client would give up on the connection before Redis answers how many replicas acknowledged.
MAX_WAIT_TIMEOUT_MS = 1000


def parse_clients(raw: str) -> dict[str, str]:
    """`id:secret,id2:secret2` → {"id": "secret", ...}; the secret may itself contain ':'."""
    clients: dict[str, str] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        client_id, sep, secret = item.partition(":")
        if not sep or not client_id.strip() or not secret:
            raise ConfigError("SSO_INTROSPECTION_CLIENTS must be id:secret pairs separated by ','")
        clients[client_id.strip()] = secret
    if not clients:
        raise ConfigError("SSO_INTROSPECTION_CLIENTS is required")
    return clients


def parse_sentinels(raw: str | None) -> tuple[tuple[str, int], ...]:
    """`host:port,host2:port` (IPv6 as `[::1]:26379`) → (("host", port), ...); empty → ()."""
    sentinels: list[tuple[str, int]] = []
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):
            host, sep, port = item[1:].partition("]:")
        else:
            host, sep, port = item.rpartition(":")
            if ":" in host:  # a bare IPv6 address: which colon starts the port is a guess
                sep = ""
        if not sep or not host.strip():
            raise ConfigError(
                f"SSO_REDIS_SENTINELS must be host:port items separated by ',', got {item!r}"
            )
        number = int(port) if port.isdigit() else 0
        if not 0 < number < 65536:
            raise ConfigError(f"SSO_REDIS_SENTINELS: {item!r} needs a port from 1 to 65535")
        sentinels.append((host.strip(), number))
    return tuple(sentinels)


@dataclass(frozen=True)
class Settings:
    redis_url: str
    token_secret: str = field(repr=False)
    introspection_clients: dict[str, str] = field(repr=False)
    token_ttl_seconds: int = 7_776_000
    portal_url: str | None = None
    portal_cache_seconds: int = 300
    portal_timeout_seconds: float = 5.0
    clouds_file: str | None = None
    allow_insecure_http: bool = False
    allow_private_upstreams: bool = False
    max_concurrent_logins: int = 24
    max_concurrent_logins_per_cloud: int = 18
    max_failed_logins: int = 10
    failed_login_window_seconds: int = 900
    max_logins_per_ip: int = 300
    max_failed_client_auth_per_ip: int = 30
    trusted_proxy_count: int = 0
    default_region: str | None = None
    cors_origins: list[str] = field(default_factory=list)
    log_level: str = "INFO"
    max_body_bytes: int = 65_536
    ca_bundle: str | None = None
    # Operators' clients for /v1/admin/... (optional: none means every admin request is a 401).
    admin_clients: dict[str, str] = field(default_factory=dict, repr=False)
    # Sentinel mode when not empty: the primary is asked of these (host, port) pairs.
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str = "contactsync"
    redis_sentinel_password: str | None = field(default=None, repr=False)
    # Replicas that must acknowledge a new or revoked token (WAIT) before the answer; 0 = none.
    redis_min_replicas_ack: int = 0
    redis_wait_timeout_ms: int = 500

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (os.environ when None); ConfigError names what is wrong."""
        secret = env_str("SSO_TOKEN_SECRET", environ=environ)
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigError(f"SSO_TOKEN_SECRET must be at least {MIN_SECRET_LENGTH} characters")
        portal_url = env_str("SSO_PORTAL_URL", None, environ=environ)
        if portal_url is not None and "{cloud_id}" not in portal_url:
            raise ConfigError("SSO_PORTAL_URL must contain {cloud_id}")
        region = env_region("SSO_DEFAULT_REGION", environ)
        log_level = env_log_level(environ)
        # Every Redis variable is read whatever the mode, so a misspelt value fails at start-up
        # even while it is not used yet.
        sentinels = parse_sentinels(env_str("SSO_REDIS_SENTINELS", None, environ=environ))
        sentinel_master = env_str("SSO_REDIS_SENTINEL_MASTER", "contactsync", environ=environ)
        if any(c.isspace() for c in sentinel_master):
            raise ConfigError(
                "SSO_REDIS_SENTINEL_MASTER must be one word (the `sentinel monitor` name)"
            )
        sentinel_password = env_str("SSO_REDIS_SENTINEL_PASSWORD", None, environ=environ)
        min_replicas_ack = env_int(
            "SSO_REDIS_MIN_REPLICAS_ACK", 0, environ=environ, minimum=0, maximum=16
        )
        wait_timeout_ms = env_int(
            "SSO_REDIS_WAIT_TIMEOUT_MS",
            500,
            environ=environ,
            minimum=1,
            maximum=MAX_WAIT_TIMEOUT_MS,
        )
        total_logins = env_int("SSO_MAX_CONCURRENT_LOGINS", 24, environ=environ, minimum=1)
        return cls(
            redis_url=env_str("SSO_REDIS_URL", "redis://127.0.0.1:6379/0", environ=environ),
            token_secret=secret,
            introspection_clients=parse_clients(
                env_str("SSO_INTROSPECTION_CLIENTS", environ=environ)
            ),
            token_ttl_seconds=env_int(
                "SSO_TOKEN_TTL_SECONDS", 7_776_000, environ=environ, minimum=1
            ),
            portal_url=portal_url,
            portal_cache_seconds=env_int(
                "SSO_PORTAL_CACHE_SECONDS", 300, environ=environ, minimum=0
            ),
            portal_timeout_seconds=env_float(
                "SSO_PORTAL_TIMEOUT_SECONDS", 5.0, environ=environ, minimum=0.1
            ),
            clouds_file=env_str("SSO_CLOUDS_FILE", None, environ=environ),
            allow_insecure_http=env_bool("SSO_ALLOW_INSECURE_HTTP", False, environ=environ),
            allow_private_upstreams=env_bool("SSO_ALLOW_PRIVATE_UPSTREAMS", False, environ=environ),
            max_concurrent_logins=total_logins,
            max_concurrent_logins_per_cloud=env_int(
                "SSO_MAX_CONCURRENT_LOGINS_PER_CLOUD",
                max(1, total_logins * 3 // 4),
                environ=environ,
                minimum=1,
                maximum=total_logins,
            ),
            max_failed_logins=env_int("SSO_MAX_FAILED_LOGINS", 10, environ=environ, minimum=1),
            failed_login_window_seconds=env_int(
                "SSO_FAILED_LOGIN_WINDOW_SECONDS", 900, environ=environ, minimum=1
            ),
            max_logins_per_ip=env_int("SSO_MAX_LOGINS_PER_IP", 300, environ=environ, minimum=1),
            max_failed_client_auth_per_ip=env_int(
                "SSO_MAX_FAILED_CLIENT_AUTH_PER_IP", 30, environ=environ, minimum=1
            ),
            trusted_proxy_count=env_int(
                "SSO_TRUSTED_PROXY_COUNT", 0, environ=environ, minimum=0, maximum=10
            ),
            default_region=region,
            cors_origins=env_origins("CORS_ORIGINS", environ=environ),
            log_level=log_level,
            max_body_bytes=env_int("SSO_MAX_BODY_BYTES", 65_536, environ=environ, minimum=1024),
            ca_bundle=env_str("SSO_CA_BUNDLE", None, environ=environ),
            admin_clients=env_clients("SSO_ADMIN_CLIENTS", environ=environ),
            redis_sentinels=sentinels,
            redis_sentinel_master=sentinel_master,
            redis_sentinel_password=sentinel_password,
            redis_min_replicas_ack=min_replicas_ack,
            redis_wait_timeout_ms=wait_timeout_ms,
        )

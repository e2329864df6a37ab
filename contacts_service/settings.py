"""Contacts service settings, read from environment variables with explicit casts.

The SSO client secret has no default: a deployment without it fails at start-up instead of
running with a guessable credential.
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


@dataclass(frozen=True)
class Settings:
    database_url: str = field(repr=False)
    sso_url: str
    sso_client_id: str
    sso_client_secret: str = field(repr=False)
    sso_timeout_seconds: float = 3.0
    sso_ca_bundle: str | None = None
    introspection_cache_seconds: int = 0
    default_region: str | None = None
    smart_new_numbers_per_day: int = 20_000
    change_log_days: int = 30
    max_body_bytes: int = 32 * 1024 * 1024
    max_contacts_per_device: int = 50_000
    max_entries_per_contact: int = 500
    max_contact_bytes: int = 65_536
    max_devices_per_account: int = 100
    db_pool_size: int = 10
    db_statement_timeout_seconds: float = 15.0
    # Behind a transaction pooler (PgBouncer pool_mode=transaction) a startup parameter cannot
    # carry statement_timeout, so it is set at the start of every transaction instead (one
    # more round trip each); see contacts_service/pg_deadline.py.
    db_transaction_pooling: bool = False
    # A pooled connection idle longer than this is pinged before use; busier ones are not.
    db_ping_after_idle_seconds: float = 1.0
    cors_origins: list[str] = field(default_factory=list)
    log_level: str = "INFO"
    # Operators' clients for /v1/admin/... (optional: none means every admin request is a 401).
    admin_clients: dict[str, str] = field(default_factory=dict, repr=False)
    max_failed_admin_auth_per_ip: int = 30
    # Change notifications (GET /v1/devices/{id}/events; contacts_service/notifications.py).
    # LISTEN needs a session-long connection, which PgBouncer's transaction pooling cannot
    # give: point this at PostgreSQL itself when CONTACTS_DATABASE_URL goes through PgBouncer.
    listen_database_url: str | None = field(default=None, repr=False)
    events_keepalive_seconds: float = 15.0
    events_reintrospect_seconds: float = 30.0
    max_streams_per_worker: int = 1000
    max_streams_per_account: int = 10

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (os.environ when None); ConfigError names what is wrong."""
        database_url = env_str("CONTACTS_DATABASE_URL", environ=environ)
        if not database_url.startswith(("postgresql://", "postgresql+psycopg2://", "postgres://")):
            raise ConfigError("CONTACTS_DATABASE_URL must be a postgresql:// URL")
        if database_url.startswith("postgres://"):
            database_url = "postgresql://" + database_url[len("postgres://") :]
        sso_url = env_str("CONTACTS_SSO_URL", environ=environ).rstrip("/")
        if not sso_url.startswith(("http://", "https://")):
            raise ConfigError("CONTACTS_SSO_URL must be an http:// or https:// URL")
        listen_url = _postgres_url(
            "CONTACTS_LISTEN_DATABASE_URL",
            env_str("CONTACTS_LISTEN_DATABASE_URL", database_url, environ=environ),
        )
        region = env_region("CONTACTS_DEFAULT_REGION", environ)
        log_level = env_log_level(environ)
        return cls(
            database_url=database_url,
            sso_url=sso_url,
            sso_client_id=env_str("CONTACTS_SSO_CLIENT_ID", environ=environ),
            sso_client_secret=env_str("CONTACTS_SSO_CLIENT_SECRET", environ=environ),
            sso_timeout_seconds=env_float(
                "CONTACTS_SSO_TIMEOUT_SECONDS", 3.0, environ=environ, minimum=0.1
            ),
            sso_ca_bundle=env_str("CONTACTS_SSO_CA_BUNDLE", None, environ=environ),
            introspection_cache_seconds=env_int(
                "CONTACTS_INTROSPECTION_CACHE_SECONDS", 0, environ=environ, minimum=0
            ),
            default_region=region,
            smart_new_numbers_per_day=env_int(
                "CONTACTS_SMART_NEW_NUMBERS_PER_DAY", 20_000, environ=environ, minimum=0
            ),
            change_log_days=env_int("CONTACTS_CHANGE_LOG_DAYS", 30, environ=environ, minimum=0),
            max_body_bytes=env_int(
                "CONTACTS_MAX_BODY_BYTES", 32 * 1024 * 1024, environ=environ, minimum=1024
            ),
            max_contacts_per_device=env_int(
                "CONTACTS_MAX_CONTACTS_PER_DEVICE", 50_000, environ=environ, minimum=1
            ),
            max_entries_per_contact=env_int(
                # Entry positions are stored as smallint.
                "CONTACTS_MAX_ENTRIES_PER_CONTACT",
                500,
                environ=environ,
                minimum=1,
                maximum=10_000,
            ),
            max_contact_bytes=env_int(
                "CONTACTS_MAX_CONTACT_BYTES", 65_536, environ=environ, minimum=256
            ),
            max_devices_per_account=env_int(
                "CONTACTS_MAX_DEVICES_PER_ACCOUNT", 100, environ=environ, minimum=1
            ),
            db_pool_size=env_int("CONTACTS_DB_POOL_SIZE", 10, environ=environ, minimum=1),
            db_statement_timeout_seconds=env_float(
                "CONTACTS_DB_STATEMENT_TIMEOUT_SECONDS", 15.0, environ=environ, minimum=1.0
            ),
            db_transaction_pooling=env_bool(
                "CONTACTS_DB_TRANSACTION_POOLING", False, environ=environ
            ),
            db_ping_after_idle_seconds=env_float(
                "CONTACTS_DB_PING_AFTER_IDLE_SECONDS", 1.0, environ=environ, minimum=0.0
            ),
            cors_origins=env_origins("CORS_ORIGINS", environ=environ),
            log_level=log_level,
            admin_clients=env_clients("CONTACTS_ADMIN_CLIENTS", environ=environ),
            max_failed_admin_auth_per_ip=env_int(
                "CONTACTS_MAX_FAILED_ADMIN_AUTH_PER_IP", 30, environ=environ, minimum=1
            ),
            listen_database_url=listen_url,
            # API.md: a keep-alive at least every 15 s, a re-introspection at least every 30 s.
            events_keepalive_seconds=_at_most(
                "CONTACTS_EVENTS_KEEPALIVE_SECONDS", 15.0, 0.1, 15.0, environ
            ),
            events_reintrospect_seconds=_at_most(
                "CONTACTS_EVENTS_REINTROSPECT_SECONDS", 30.0, 0.5, 30.0, environ
            ),
            max_streams_per_worker=env_int(
                "CONTACTS_MAX_STREAMS_PER_WORKER", 1000, environ=environ, minimum=0
            ),
            max_streams_per_account=env_int(
                "CONTACTS_MAX_STREAMS_PER_ACCOUNT", 10, environ=environ, minimum=1
            ),
        )


def _postgres_url(name: str, url: str) -> str:
    if not url.startswith(("postgresql://", "postgresql+psycopg2://", "postgres://")):
        raise ConfigError(f"{name} must be a postgresql:// URL")
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    return url


def _at_most(
    name: str, default: float, minimum: float, maximum: float, environ: Mapping[str, str] | None
) -> float:
    value = env_float(name, default, environ=environ, minimum=minimum)
    if value > maximum:
        raise ConfigError(f"{name} must be at most {maximum:g}")
    return value

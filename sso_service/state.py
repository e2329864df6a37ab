"""The SSO service's per-app state: its settings and the collaborators built from them (Redis,
the token store, limiter, definition source, ext-auth client), once per app (so once per
worker), reached through current_app."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import Flask, current_app

from sso_service.definitions import DefinitionSource, load_clouds_file
from sso_service.ext_auth import ExtAuthClient
from sso_service.login_slots import LoginSlots
from sso_service.rate_limit import LoginLimiter, RedisFailureThrottle
from sso_service.settings import Settings
from sso_service.token_store import TokenStore, connect_settings
from sso_service.upstream import UpstreamClient

_EXTENSION = "sso"


@dataclass
class AppState:
    settings: Settings
    redis: redis.Redis
    tokens: TokenStore
    limiter: LoginLimiter
    # Failed /v1/introspect client authentications per address.
    client_throttle: RedisFailureThrottle
    definitions: DefinitionSource
    ext_auth: ExtAuthClient
    # Logins of this process waiting on a provider at once, in all and per Cloud ID: a slow or
    # hung provider can hold these threads, never the ones introspection needs, nor all of
    # the ones other Cloud IDs' logins need.
    login_slots: LoginSlots

    @classmethod
    def build(cls, settings: Settings) -> AppState:
        client = connect_settings(settings)
        upstream = UpstreamClient(
            ca_bundle=settings.ca_bundle, allow_private=settings.allow_private_upstreams
        )
        clouds = load_clouds_file(settings.clouds_file) if settings.clouds_file else {}
        return cls(
            settings=settings,
            redis=client,
            tokens=TokenStore(
                client,
                settings.token_secret,
                settings.token_ttl_seconds,
                settings.redis_min_replicas_ack,
                settings.redis_wait_timeout_ms,
            ),
            limiter=LoginLimiter(
                client,
                settings.max_failed_logins,
                settings.failed_login_window_seconds,
                settings.max_logins_per_ip,
            ),
            client_throttle=RedisFailureThrottle(
                client, settings.max_failed_client_auth_per_ip, prefix="sso:rl:client"
            ),
            definitions=DefinitionSource(
                client,
                settings.portal_url,
                settings.portal_cache_seconds,
                settings.portal_timeout_seconds,
                clouds,
                upstream,
            ),
            ext_auth=ExtAuthClient(settings.allow_insecure_http, settings.default_region, upstream),
            login_slots=LoginSlots(
                settings.max_concurrent_logins, settings.max_concurrent_logins_per_cloud
            ),
        )


def init_app_state(app: Flask, settings: Settings) -> AppState:
    """Build the state from `settings` and attach it to `app`."""
    app.extensions[_EXTENSION] = state = AppState.build(settings)
    return state


def app_state(app: Flask | None = None) -> AppState:
    """The state of `app` (the current app when None)."""
    return (app or current_app).extensions[_EXTENSION]

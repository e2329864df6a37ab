"""The SSO service's application factory."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from shared.body import register_body_limit
from shared.compression import register_compression
from shared.errors import register_error_handlers
from shared.logging import configure_logging
from shared.metrics import register_metrics
from shared.web import configure_cors, register_health, register_openapi, register_security_headers
from sso_service.errors import register_redis_error_handlers
from sso_service.settings import Settings
from sso_service.state import init_app_state
from sso_service.views import register_blueprints

SERVICE = "sso_service"


def create_app(config: Mapping[str, str] | Settings | None = None) -> Flask:
    """Build the app from Settings, a mapping of environment variables, or the environment."""
    settings = config if isinstance(config, Settings) else Settings.from_env(config)
    app = Flask(SERVICE)
    configure_request_handling(app, settings)
    configure_logging(app, SERVICE, settings.log_level)
    register_error_handlers(app)
    register_redis_error_handlers(app)
    register_metrics(app, SERVICE)
    configure_cors(app, settings.cors_origins)
    register_security_headers(app)
    state = init_app_state(app, settings)
    register_health(app, {"redis": state.redis.ping})
    register_openapi(
        app,
        title="Contact Sync SSO service",
        description=(
            "Logs softphone users in through their provider's External Authentication service"
            " and issues opaque access tokens shared by all devices of an account. Every error"
            " uses {error, message, details}."
        ),
        security_schemes={
            "client": {"type": "http", "scheme": "basic"},
            "admin": {"type": "http", "scheme": "basic"},
        },
    )
    register_blueprints(app)
    register_compression(app)
    return app


def configure_request_handling(app: Flask, settings: Settings) -> None:
    """Body size limit, JSON output in field order, client address behind trusted proxies."""
    register_body_limit(app, settings.max_body_bytes)
    app.json.sort_keys = False
    if settings.trusted_proxy_count > 0:
        count = settings.trusted_proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)

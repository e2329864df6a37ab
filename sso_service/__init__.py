"""The SSO service: log in through a provider's External Authentication, tokens in Redis.

The entry points import lazily: `python -m sso_service serve` imports this package before
gunicorn sets PROMETHEUS_MULTIPROC_DIR, and metrics created earlier would never reach /metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from flask import Flask

    from sso_service.settings import Settings


def create_app(config: Mapping[str, str] | Settings | None = None) -> Flask:
    """WSGI factory `sso_service:create_app` (see sso_service.app)."""
    from sso_service.app import create_app as build

    return build(config)


def check_config(environ: Mapping[str, str] | None = None) -> list[str]:
    """Problems with the configuration, for `sso-server check-config` (see sso_service.checks)."""
    from sso_service.checks import check_config as check

    return check(environ)


__all__ = ["check_config", "create_app"]

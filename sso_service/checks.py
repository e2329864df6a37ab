"""`sso-server check-config`: validate settings and reach Redis."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import redis

from shared.config import ConfigError
from sso_service.definitions import load_clouds_file
from sso_service.settings import Settings
from sso_service.token_store import connect_settings, replicas_problem


def check_config(environ: Mapping[str, str] | None = None) -> list[str]:
    """Human-readable problems with the configuration (empty when all is well)."""
    try:
        settings = Settings.from_env(environ)
    except ConfigError as exc:
        return [str(exc)]
    problems = []
    if settings.clouds_file:
        try:
            load_clouds_file(settings.clouds_file)
        except ConfigError as exc:
            problems.append(str(exc))
    if settings.ca_bundle and not Path(settings.ca_bundle).is_file():
        problems.append(f"SSO_CA_BUNDLE {settings.ca_bundle} is not a readable file")
    if not settings.portal_url and not settings.clouds_file:
        problems.append("neither SSO_PORTAL_URL nor SSO_CLOUDS_FILE is set: no cloud can log in")
    try:
        client = connect_settings(settings)
        client.ping()
        problem = replicas_problem(client, settings.redis_min_replicas_ack)
        if problem:
            problems.append(problem)
    except redis.RedisError as exc:
        where = "SSO_REDIS_SENTINELS" if settings.redis_sentinels else "SSO_REDIS_URL"
        problems.append(f"Redis at {where} does not answer ({exc.__class__.__name__})")
    return problems

"""Reading settings from environment variables with explicit casts.

Every service has one settings module that calls these helpers; a missing or malformed value
raises ConfigError naming the variable, so a misconfigured deployment fails at start-up.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

_MISSING = object()


class ConfigError(ValueError):
    """A setting is missing or malformed."""


def _raw(environ: Mapping[str, str] | None, name: str) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default=_MISSING, environ: Mapping[str, str] | None = None) -> str | None:
    value = _raw(environ, name)
    if value is None:
        if default is _MISSING:
            raise ConfigError(f"{name} is required")
        return default
    return value


def env_int(
    name: str,
    default=_MISSING,
    environ: Mapping[str, str] | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    value = _raw(environ, name)
    if value is None:
        if default is _MISSING:
            raise ConfigError(f"{name} is required")
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name} must be at most {maximum}")
    return number


def env_float(
    name: str, default=_MISSING, environ: Mapping[str, str] | None = None, minimum: float = 0.0
) -> float:
    value = _raw(environ, name)
    if value is None:
        if default is _MISSING:
            raise ConfigError(f"{name} is required")
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return number


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool = False, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(environ, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be one of 1/0/true/false/yes/no/on/off, got {value!r}")


def env_list(
    name: str, default: list[str] | None = None, environ: Mapping[str, str] | None = None
) -> list[str]:
    value = _raw(environ, name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


_ORIGIN = re.compile(r"https?://[^/\s?#@]+", re.IGNORECASE)


def env_origins(name: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Browser origins (`scheme://host[:port]`, comma-separated) or `*`; ConfigError for an
    entry that is not one (a path, a pattern, a typo), since it would never match."""
    origins = env_list(name, [], environ=environ)
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin.rstrip("/")):
            raise ConfigError(
                f"{name} entries must be origins like https://app.example.com or *, not {origin!r}"
            )
    return origins


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def env_log_level(environ: Mapping[str, str] | None = None) -> str:
    """LOG_LEVEL, upper-cased: one of DEBUG, INFO (the default), WARNING, ERROR, CRITICAL."""
    level = env_str("LOG_LEVEL", "INFO", environ=environ).upper()
    if level not in LOG_LEVELS:
        raise ConfigError("LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def env_region(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A two-letter region code phonenumbers knows (US, GB, ...), upper-cased; None if unset."""
    import phonenumbers  # only where a region is read: the CLI imports this module too

    region = env_str(name, None, environ=environ)
    if region is None:
        return None
    region = region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"{name} must be a two-letter region code like US or GB")
    return region


def env_clients(name: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """HTTP Basic clients `id:secret,id2:secret2` → {"id": "secret", ...} (a secret may itself
    contain ':'); unset or empty: no client. ConfigError for an entry without an id or secret."""
    clients: dict[str, str] = {}
    for item in env_list(name, [], environ=environ):
        client_id, sep, secret = item.partition(":")
        if not sep or not client_id.strip() or not secret:
            raise ConfigError(f"{name} must be id:secret pairs separated by ','")
        clients[client_id.strip()] = secret
    return clients

"""SSO-specific error mapping: a Redis outage is a 503, never a 500."""

from __future__ import annotations

import logging

import redis
from flask import Flask

from shared.errors import error_response

log = logging.getLogger(__name__)


def _redis_unavailable(exc: Exception):
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        log.warning("redis unavailable: %s", exc.__class__.__name__)
    else:
        # Read-only replica, out of memory, ...: Redis answers but cannot serve us.
        log.error("redis error: %s", exc.__class__.__name__)
    return error_response(503, "unavailable", "The token store is temporarily unavailable.")


def register_redis_error_handlers(app: Flask) -> None:
    """Map every Redis failure (down, timing out, refusing writes) to 503 unavailable."""
    app.register_error_handler(redis.exceptions.RedisError, _redis_unavailable)

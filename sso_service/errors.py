"""SSO-specific error mapping: a Redis outage is a 503, never a 500.

During a Sentinel failover every failure redis-py reports is a RedisError: the dead primary
(ConnectionError, TimeoutError), no primary known yet (MasterNotFoundError, a ConnectionError),
a demoted primary (ReadOnlyError, turned into a ConnectionError by the Sentinel client), a
replica still loading its data (BusyLoadingError), and a token write no replica acknowledged
(token_store.NotReplicated). All of them answer 503 with `Retry-After`: a failover takes
seconds, and the client finds the service again by itself.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask

from shared.errors import error_response
from sso_service.token_store import NotReplicated

log = logging.getLogger(__name__)

# Seconds: about what Sentinel needs to notice a dead primary and promote a replica.
RETRY_AFTER_SECONDS = 5


def _redis_unavailable(exc: Exception):
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        log.warning("redis unavailable: %s", exc.__class__.__name__)
    elif isinstance(exc, NotReplicated):
        log.warning("token write not acknowledged by replicas: %s", exc)
    else:
        # Read-only replica, out of memory, ...: Redis answers but cannot serve us.
        log.error("redis error: %s", exc.__class__.__name__)
    return error_response(
        503,
        "unavailable",
        "The token store is temporarily unavailable.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def register_redis_error_handlers(app: Flask) -> None:
    """Map every Redis failure (down, timing out, refusing writes) to 503 unavailable."""
    app.register_error_handler(redis.exceptions.RedisError, _redis_unavailable)

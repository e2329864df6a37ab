"""Fixtures for SSO tests: an in-process app on the real session Redis and stand-in provider.

In-process apps use Redis database 1, which these fixtures flush freely; the `sso_server`
process (shared with the Contacts suite) uses database 0 and is never flushed here.
"""

from __future__ import annotations

import secrets

import pytest
import redis

from sso_service import create_app
from tests.support.stack import sso_env

CLOUD = "TEST"


def app_env(redis_server, provider, **overrides) -> dict[str, str]:
    return sso_env(redis_server.url.rsplit("/", 1)[0] + "/1", provider, **overrides)


@pytest.fixture
def redis_db(redis_server):
    """A client on the in-process apps' Redis database, emptied before each test."""
    client = redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/1", decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def make_app(redis_server, fresh_provider, redis_db):
    """Build an app with extra settings: make_app(SSO_MAX_FAILED_LOGINS="2")."""

    def build(**overrides):
        return create_app(app_env(redis_server, fresh_provider, **overrides))

    return build


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def account(fresh_provider):
    """A fresh user in Cloud ID TEST: a dict with cloud_id, username, password."""
    username = f"user-{secrets.token_hex(4)}"
    password = f'p&ss "{secrets.token_hex(3)}%" <x>'
    fresh_provider.add_user(
        CLOUD, username, password, ["+1 555 123 0001", "+44 20 7183 8750"], f"sip:{username}@t"
    )
    return {"cloud_id": CLOUD, "username": username, "password": password}


@pytest.fixture
def new_cloud(fresh_provider):
    """A fresh Cloud ID name (its definition is whatever the test puts in the provider)."""
    return f"cloud-{secrets.token_hex(4)}"

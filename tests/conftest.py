"""Session-wide real dependencies. Service-specific fixtures live in each package's conftest."""

from __future__ import annotations

import sys

import pytest

from tests.support.servers import ROOT, PostgresDatabase, RedisServer, ServiceProcess
from tests.support.stack import sso_env

sys.path.insert(0, str(ROOT / "deploy" / "demo"))

from demo_provider import DemoProvider


@pytest.fixture(scope="session")
def redis_server():
    """A private, real redis-server for this test session."""
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_database():
    """A real, empty PostgreSQL database for this test session (dropped afterwards)."""
    database = PostgresDatabase().create()
    yield database
    database.drop()


@pytest.fixture(scope="session")
def provider():
    """The stand-in portal and ext-auth service, over real HTTP on loopback."""
    stand_in = DemoProvider().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def fresh_provider(provider):
    """The provider with recorded traffic and misbehaviour cleared for one test."""
    provider.reset()
    yield provider
    provider.reset()


@pytest.fixture(scope="session")
def sso_server(redis_server, provider):
    """The SSO service as a real gunicorn process against the session Redis and provider."""
    server = ServiceProcess("sso_service", sso_env(redis_server.url, provider), workers=2).start()
    yield server
    server.stop()

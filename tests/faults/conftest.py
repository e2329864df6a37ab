"""One private stack for the fault tests, so they may break its parts without disturbing the
rest of the suite: a private redis-server, a private PostgreSQL cluster, and the SSO and
Contacts services as real gunicorn processes on them. Each test gets the stack healthy."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest
import requests

from tests.support.clients import ContactsClient, contacts_env
from tests.support.pg_cluster import PostgresCluster
from tests.support.servers import RedisServer, ServiceProcess, wait_for
from tests.support.stack import login, sso_env


@pytest.fixture(scope="session")
def fault_redis():
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = PostgresCluster().start()
    cluster.create_database()
    yield cluster
    cluster.close()


@pytest.fixture(scope="session")
def fault_sso(fault_redis, provider):
    server = ServiceProcess("sso_service", sso_env(fault_redis.url, provider), workers=2).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fault_contacts(pg_cluster, fault_sso):
    server = ServiceProcess(
        "contacts_service", contacts_env(pg_cluster.url, fault_sso.url), workers=2
    ).start()
    yield server
    server.stop()


@pytest.fixture
def stack(fault_redis, pg_cluster, fault_sso, fault_contacts, fresh_provider):
    """The private stack, every part running; restored after the test whatever it broke."""

    heal(fault_redis, pg_cluster, fault_sso, fault_contacts)
    yield Stack(fault_redis, pg_cluster, fault_sso, fault_contacts, fresh_provider)
    heal(fault_redis, pg_cluster, fault_sso, fault_contacts)


def heal(redis, postgres, sso, contacts, *others) -> None:
    """Start whatever a test stopped (`others`: more parts with running() and start(), e.g. a
    pgbouncer), then wait until Contacts is ready through all of it."""
    if redis.process is None:
        redis.start()
    if not postgres.running():
        postgres.start()
    for part in others:
        if not part.running():
            part.start()
    for server in (sso, contacts):
        if server.process is None:
            server.start()
    wait_for(lambda: ready(contacts), timeout=30, what="contacts /readyz")


def ready(server: ServiceProcess) -> bool:
    return requests.get(server.url + "/readyz", timeout=3).status_code == 200


@dataclass
class Stack:
    redis: RedisServer
    postgres: PostgresCluster
    sso: ServiceProcess
    contacts: ServiceProcess
    provider: object

    def account(self, cloud_id: str | None = None) -> Account:
        """A new provider user in its own Cloud ID, logged in at the private SSO."""
        cloud_id = cloud_id or "F" + secrets.token_hex(5)
        username = "u" + secrets.token_hex(4)
        password = secrets.token_urlsafe(12)
        self.provider.add_user(cloud_id, username, password, ["+15550001111"])
        token = login(self.sso.url, cloud_id, username, password)["token"]
        return Account(cloud_id, username, password, token, self)

    def client(self, account: Account) -> ContactsClient:
        return ContactsClient(self.contacts.url, account.token)


@dataclass
class Account:
    cloud_id: str
    username: str
    password: str
    token: str
    stack: Stack

    def login_body(self) -> dict:
        return {"cloud_id": self.cloud_id, "username": self.username, "password": self.password}

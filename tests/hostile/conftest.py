"""Real processes for the hostile-input suite: the session SSO service and stand-in provider,
a Contacts service with default limits and one with small limits (small body limit, a
5-a-day Smart Contacts allowance), both on the session database."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from tests.support.clients import ContactsClient, contacts_env
from tests.support.servers import ServiceProcess
from tests.support.stack import login

SMALL_LIMITS = {
    "CONTACTS_MAX_BODY_BYTES": "65536",
    "CONTACTS_SMART_NEW_NUMBERS_PER_DAY": "5",
}


@pytest.fixture(scope="session")
def hostile_contacts(postgres_database, sso_server):
    server = ServiceProcess(
        "contacts_service", contacts_env(postgres_database.url, sso_server.url), workers=2
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def small_contacts(postgres_database, sso_server, hostile_contacts):
    # Started after hostile_contacts, so the schema migration has run once already.
    env = contacts_env(postgres_database.url, sso_server.url, **SMALL_LIMITS)
    server = ServiceProcess("contacts_service", env, workers=1).start()
    yield server
    server.stop()


@dataclass
class User:
    cloud_id: str
    username: str
    password: str
    numbers: list[str]
    token: str

    def client(self, server: ServiceProcess) -> ContactsClient:
        return ContactsClient(server.url, self.token)


@pytest.fixture(scope="session")
def make_user(provider, sso_server):
    """make_user(cloud_id=None, numbers=()) → a provider user logged in at the session SSO."""

    def make(cloud_id: str | None = None, numbers=()) -> User:
        cloud_id = cloud_id or "H" + secrets.token_hex(5)
        username = "u" + secrets.token_hex(4)
        password = "Pw-" + secrets.token_hex(8)
        provider.add_user(cloud_id, username, password, list(numbers), f"sip:{username}@h.test")
        token = login(sso_server.url, cloud_id, username, password)["token"]
        return User(cloud_id, username, password, list(numbers), token)

    return make

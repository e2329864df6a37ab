"""Real processes for the hostile-input suite: the session SSO service and stand-in provider,
a Contacts service with default limits and one with small limits (small body limit, a
5-a-day Smart Contacts allowance), both on the session database; and the Contacts app
in-process (for its process-local state), against the real SSO or against a stand-in
introspection endpoint that answers whatever a test sets."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from contacts_service.app import create_app
from contacts_service.extensions import db
from tests.support.clients import ContactsClient, contacts_env
from tests.support.introspection_stand_in import IntrospectionStandIn
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


def _in_process(database_url: str, sso_url: str):
    app = create_app(contacts_env(database_url, sso_url))
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def contacts_app(postgres_database, sso_server, hostile_contacts):
    """The Contacts app in-process against the session SSO (hostile_contacts migrated the
    database)."""
    yield from _in_process(postgres_database.url, sso_server.url)


@pytest.fixture(scope="session")
def introspection_stand_in():
    stand_in = IntrospectionStandIn().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="session")
def stand_in_app(postgres_database, hostile_contacts, introspection_stand_in):
    """The Contacts app in-process, introspecting at the stand-in: the test sets the identity
    every token resolves to with `introspection_stand_in.active(...)`."""
    yield from _in_process(postgres_database.url, introspection_stand_in.url)


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

"""Fixtures of the Contacts suite: the service in-process (`app`, `client`) and as real gunicorn
processes (`contacts_server`, `limited_server`), against the real SSO service, the real
stand-in provider and a real PostgreSQL database."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import psycopg2
import pytest

from contacts_service.app import apply_migrations, create_app
from contacts_service.extensions import db
from tests.support.clients import ContactsClient, contacts_base_env
from tests.support.servers import ServiceProcess
from tests.support.stack import login

# Small limits for the limit tests (one dedicated process carries them).
LIMITED = {
    "CONTACTS_MAX_BODY_BYTES": "20000",
    "CONTACTS_MAX_CONTACTS_PER_DEVICE": "5",
    "CONTACTS_MAX_ENTRIES_PER_CONTACT": "3",
    "CONTACTS_MAX_CONTACT_BYTES": "600",
    "CONTACTS_MAX_DEVICES_PER_ACCOUNT": "3",
    "CONTACTS_SMART_NEW_NUMBERS_PER_DAY": "3",
    "CONTACTS_CHANGE_LOG_DAYS": "0",
    "CONTACTS_DEFAULT_REGION": "DE",
    "CORS_ORIGINS": "https://app.example,https://other.example",
}


def contacts_env(database_url: str, sso_url: str, **overrides) -> dict[str, str]:
    """This suite's settings: a 2 s SSO timeout, warnings-only logs, the default statement
    timeout."""
    suite = {"CONTACTS_SSO_TIMEOUT_SECONDS": "2", "LOG_LEVEL": "WARNING"}
    return contacts_base_env(database_url, sso_url, **{**suite, **overrides})


@pytest.fixture(scope="session")
def contacts_config(postgres_database, sso_server) -> dict[str, str]:
    """The environment of the default Contacts service; the database is migrated once."""
    env = contacts_env(postgres_database.url, sso_server.url)
    app = create_app(env)
    apply_migrations(app)
    with app.app_context():
        db.engine.dispose()
    return env


@pytest.fixture(scope="session")
def app(contacts_config):
    """The Contacts app in-process, configured by passing settings into create_app."""
    application = create_app(contacts_config)
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def contacts_server(contacts_config):
    """The Contacts service as a real gunicorn process (2 workers)."""
    server = ServiceProcess("contacts_service", contacts_config, workers=2).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def limited_server(contacts_config):
    """A second Contacts process with small limits, a 3-a-day Smart Contacts allowance, a
    change log kept 0 days, a default region, CORS origins and 3 devices per account."""
    server = ServiceProcess("contacts_service", {**contacts_config, **LIMITED}, workers=1).start()
    yield server
    server.stop()


@pytest.fixture
def database(postgres_database):
    """A direct connection, only to move timestamps into the past (the clock is not ours)."""
    connection = psycopg2.connect(postgres_database.url)
    connection.autocommit = True
    yield connection
    connection.close()


# Tables without a foreign key to their parent (contacts_service/models.py): their rows are
# deleted with the parent by the code, and must never outlive it.
_CHILD_TABLES = (
    ("contacts", "device_pk", "devices", "pk"),
    ("contact_numbers", "device_pk", "devices", "pk"),
    ("deleted_contacts", "device_pk", "devices", "pk"),
    ("smart_seen_numbers", "account_id", "accounts", "id"),
)


@pytest.fixture
def orphans(database):
    """orphans() → {table: rows whose device or account no longer exists}, for every table
    that has such rows (empty when none has)."""

    def count() -> dict[str, int]:
        found = {}
        with database.cursor() as cursor:
            for table, column, parent, key in _CHILD_TABLES:
                cursor.execute(
                    f"SELECT count(*) FROM {table} t WHERE NOT EXISTS "  # noqa: S608 - constants
                    f"(SELECT 1 FROM {parent} p WHERE p.{key} = t.{column})"
                )
                if rows := cursor.fetchone()[0]:
                    found[table] = rows
        return found

    return count


@dataclass
class Account:
    cloud_id: str
    username: str
    password: str
    numbers: list[str]
    sip_uri: str | None
    token: str = field(repr=False, default="")


@pytest.fixture
def cloud_id() -> str:
    """A Cloud ID of this test alone, so Smart Contacts of tests never meet."""
    return "T" + secrets.token_hex(5)


@pytest.fixture
def new_account(provider, sso_server, cloud_id):
    """new_account(numbers=[...], sip_uri=..., cloud=...) → a provider user, logged in."""

    def make(numbers=(), sip_uri=None, cloud=None, username=None) -> Account:
        account = Account(
            cloud_id=cloud or cloud_id,
            username=username or "u" + secrets.token_hex(4),
            password=secrets.token_urlsafe(12),
            numbers=list(numbers),
            sip_uri=sip_uri,
        )
        provider.add_user(
            account.cloud_id, account.username, account.password, account.numbers, sip_uri
        )
        account.token = login(sso_server.url, account.cloud_id, account.username, account.password)[
            "token"
        ]
        return account

    return make


def relogin(provider, sso_server, account: Account, numbers=None) -> None:
    """Change the account's numbers at the provider and log in again (same token back)."""
    if numbers is not None:
        account.numbers = list(numbers)
        provider.add_user(
            account.cloud_id, account.username, account.password, account.numbers, account.sip_uri
        )
    account.token = login(sso_server.url, account.cloud_id, account.username, account.password)[
        "token"
    ]


@pytest.fixture
def api(contacts_server) -> ContactsClient:
    """Anonymous requests to the gunicorn Contacts process; `.as_(account)` to authenticate."""
    return ContactsClient(contacts_server.url)


@pytest.fixture
def alice(api, new_account) -> ContactsClient:
    return api.as_(new_account(numbers=["+15551230001"], sip_uri="sip:alice@example.com"))


@pytest.fixture
def limited(limited_server) -> ContactsClient:
    return ContactsClient(limited_server.url)

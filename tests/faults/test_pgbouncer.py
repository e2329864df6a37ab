"""The Contacts service behind a real pgbouncer in transaction pooling mode (3 server
connections for 2 workers x 4 threads): migrations, the core workflows, concurrent writers and
device registrations of one account (the transaction-scoped advisory lock), the admin routes,
the statement timeout, and pgbouncer or PostgreSQL going away behind the service (503, never
500, then recovery by itself).

Everything runs on the fault suite's private PostgreSQL cluster and SSO, in a database of its
own. `serve` migrates through pgbouncer (CONTACTS_DATABASE_URL): alembic runs in one
transaction under a transaction-scoped advisory lock and SET LOCAL, so it is
transaction-pooling safe. CONTACTS_LISTEN_DATABASE_URL (change notifications' LISTEN, which
needs a session) points at PostgreSQL itself.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections import Counter

import psycopg2
import pytest
import requests
from psycopg2 import extensions

from contacts_service.app import create_app
from contacts_service.extensions import db
from tests.faults.conftest import Stack, heal, ready
from tests.support.admin import ADMIN_AUTH, ADMIN_CLIENTS
from tests.support.clients import ContactsClient, contacts_env, is_error_shape, sample_contact
from tests.support.pgbouncer import PgBouncer
from tests.support.servers import ServiceProcess
from tests.support.stack import login
from tests.support.traffic import TrafficLoop, in_parallel

DATABASE = "cs_pgbouncer"
POOL_SIZE = 3
MAX_DEVICES = 4


@pytest.fixture(scope="module")
def direct_url(pg_cluster) -> str:
    return pg_cluster.create_database(DATABASE)


@pytest.fixture(scope="module")
def bouncer(direct_url):
    server = PgBouncer(direct_url, pool_size=POOL_SIZE).start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def bounced_env(bouncer, direct_url, fault_sso) -> dict[str, str]:
    return contacts_env(
        bouncer.url,
        fault_sso.url,
        CONTACTS_LISTEN_DATABASE_URL=direct_url,
        CONTACTS_DB_TRANSACTION_POOLING="true",
        CONTACTS_ADMIN_CLIENTS=ADMIN_CLIENTS,
        CONTACTS_DB_POOL_SIZE="4",
        CONTACTS_MAX_DEVICES_PER_ACCOUNT=str(MAX_DEVICES),
    )


@pytest.fixture(scope="module")
def bounced_contacts(bounced_env):
    """The Contacts service (2 workers x 4 threads) on CONTACTS_DATABASE_URL = pgbouncer; its
    start migrates the empty database through pgbouncer."""
    server = ServiceProcess("contacts_service", bounced_env, workers=2).start()
    yield server
    server.stop()


@pytest.fixture
def stack(fault_redis, pg_cluster, fault_sso, bouncer, bounced_contacts, fresh_provider):
    """Every part running and Contacts ready through pgbouncer; restored after the test."""

    heal(fault_redis, pg_cluster, fault_sso, bounced_contacts, bouncer)
    yield Stack(fault_redis, pg_cluster, fault_sso, bounced_contacts, fresh_provider)
    heal(fault_redis, pg_cluster, fault_sso, bounced_contacts, bouncer)


def account_with(stack: Stack, cloud_id: str, numbers: list[str]) -> ContactsClient:
    username, password = "u" + secrets.token_hex(4), secrets.token_urlsafe(12)
    stack.provider.add_user(cloud_id, username, password, numbers, f"sip:{username}@example.com")
    token = login(stack.sso.url, cloud_id, username, password)["token"]
    client = ContactsClient(stack.contacts.url, token)
    client.account = {"cloud_id": cloud_id, "username": username}
    return client


def tel(entry_id: str, uri: str) -> dict:
    return {"entryId": entry_id, "label": "mobile", "type": "tel", "uri": uri}


def test_migrations_ran_through_pgbouncer_in_transaction_mode(stack, bouncer, pg_cluster):
    assert bouncer.pool()["pool_mode"] == "transaction"
    head = pg_cluster.psql("SELECT version_num FROM alembic_version", database=DATABASE)
    assert head  # the schema is there, and the service answers on it
    assert ready(stack.contacts)


def test_core_workflows_through_pgbouncer(stack):
    cloud_id = "P" + secrets.token_hex(5)
    bob = account_with(stack, cloud_id, ["+15552220002"])
    alice = account_with(stack, cloud_id, ["+15552220001"])
    assert bob.get("/v1/devices").status_code == 200  # the service learns bob's numbers

    assert alice.put_device("phone", name="Phone", platform="ios").status_code == 201
    assert alice.put_device("phone", name="Phone 2").status_code == 200
    first = alice.upsert("phone", [sample_contact("a"), sample_contact("b", 2)])
    assert (first["revision"], first["upserted"], first["contact_count"]) == (1, 2, 2)
    second = alice.upsert(
        "phone", [{"contactId": "bob", "contactEntries": [tel("e1", "+1 555 222 0002")]}], ["a"]
    )
    assert (second["revision"], second["deleted"], second["contact_count"]) == (2, 1, 2)

    full = alice.get_contacts("phone")
    assert full.status_code == 200
    body = full.json()
    assert sorted(c["contactId"] for c in body["contacts"]) == ["b", "bob"]
    assert body["smart"] == {
        "bob": [
            {
                "entryId": "e1",
                "number": "+15552220002",
                "username": bob.account["username"],
                "sip_uri": f"sip:{bob.account['username']}@example.com",
            }
        ]
    }
    etag = full.headers["ETag"]
    assert alice.get_contacts("phone", headers={"If-None-Match": etag}).status_code == 200
    assert alice.get("/v1/devices/phone/contacts", headers={"If-None-Match": etag}).status_code == (
        304
    )
    smart = alice.get("/v1/devices/phone/smart-contacts")
    assert smart.status_code == 200
    assert smart.json()["smart"] == body["smart"]

    since = alice.contacts("phone", since=1)
    assert [c["contactId"] for c in since["contacts"]] == ["bob"]
    assert since["deleted"] == ["a"]

    replaced = alice.put_contacts("phone", [sample_contact("z")])
    assert replaced.status_code == 200
    assert replaced.json()["contact_count"] == 1
    assert list(alice.book("phone")) == ["z"]
    checksums = alice.get("/v1/devices/phone/checksums").json()
    assert checksums["revision"] == 3
    assert list(checksums["checksums"]) == ["z"]

    # The admin routes, on the same pooled connections.
    ops = requests.Session()
    ops.headers.update(ADMIN_AUTH)
    account = {"cloud_id": cloud_id, "username": alice.account["username"]}
    exported = ops.post(stack.contacts.url + "/v1/admin/accounts/export", json=account, timeout=30)
    assert exported.status_code == 200
    [device] = exported.json()["devices"]
    assert [c["contactId"] for c in device["contacts"]] == ["z"]
    stats = ops.get(f"{stack.contacts.url}/v1/admin/clouds/{cloud_id}/stats", timeout=30)
    assert stats.json() == {"cloud_id": cloud_id, "accounts": 2, "devices": 1, "contacts": 1}

    assert alice.delete("/v1/devices/phone").status_code == 204
    assert alice.get("/v1/devices/phone").status_code == 404
    alice.register("tablet")
    erased = ops.post(stack.contacts.url + "/v1/admin/accounts/erase", json=account, timeout=30)
    assert erased.status_code == 200
    assert erased.json() == {"devices": 1, "contacts": 0}
    exported = ops.post(stack.contacts.url + "/v1/admin/accounts/export", json=account, timeout=30)
    assert exported.status_code == 404


def test_concurrent_requests_of_one_account_share_three_server_connections(
    stack, bouncer, pg_cluster
):
    client = account_with(stack, "Q" + secrets.token_hex(5), ["+15553330001"])
    client.register("phone")
    writers, rounds = 8, 4

    def write(i):
        writer = ContactsClient(stack.contacts.url, client.token)
        statuses = []
        for r in range(rounds):
            batch = [sample_contact(f"w{i}-r{r}-{k}") for k in range(3)]
            statuses.append(writer.patch_contacts("phone", upsert=batch).status_code)
        return statuses

    results = in_parallel(writers, write)
    assert all(status == 200 for statuses in results for status in statuses), results
    device = client.get("/v1/devices/phone").json()
    assert device["revision"] == writers * rounds
    assert device["contact_count"] == len(client.book("phone")) == writers * rounds * 3

    # Registrations of new devices race for the account's last slots: the transaction-scoped
    # advisory lock (repository.lock_account) lets exactly the allowed number in.
    answers = in_parallel(
        8, lambda i: ContactsClient(stack.contacts.url, client.token).put_device(f"d{i}")
    )
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == Counter({201: MAX_DEVICES - 1, 422: 9 - MAX_DEVICES}), statuses
    assert all(
        answer.json()["error"] == "too_many_devices"
        for answer in answers
        if answer.status_code == 422
    )
    assert len(client.get("/v1/devices").json()["devices"]) == MAX_DEVICES

    # Pooling really happened: more client connections than server connections, and never
    # more server connections to PostgreSQL than the pool allows.
    clients = [c for c in bouncer.show("CLIENTS") if c["database"] == DATABASE]
    assert len(clients) > POOL_SIZE
    assert len([s for s in bouncer.show("SERVERS") if s["database"] == DATABASE]) <= POOL_SIZE
    # Every session on the database but this psql and the direct LISTEN connection.
    sessions = pg_cluster.psql(
        "SELECT count(*) FROM pg_stat_activity "  # noqa: S608 - constants only
        f"WHERE datname = '{DATABASE}' AND pid <> pg_backend_pid()"
        " AND application_name <> 'contacts_service_listener'",
        database=DATABASE,
    )
    assert 0 < int(sessions) <= POOL_SIZE


def test_statement_timeout_holds_through_pgbouncer(stack, bounced_env, bouncer):
    # PgBouncer refuses the session-level startup option the service sends straight to
    # PostgreSQL...
    with pytest.raises(psycopg2.OperationalError, match="unsupported startup parameter"):
        psycopg2.connect(bouncer.url, options="-c statement_timeout=1000", connect_timeout=5)
    # ...and with CONTACTS_DB_TRANSACTION_POOLING the service's SET LOCAL at the start of
    # every transaction applies whichever server connection the transaction gets.
    previous = extensions.get_wait_callback()
    app = create_app({**bounced_env, "CONTACTS_DB_STATEMENT_TIMEOUT_SECONDS": "1"})
    try:
        with app.app_context():
            for _ in range(2 * POOL_SIZE):
                assert db.session.execute(db.text("SHOW statement_timeout")).scalar() == "1s"
                db.session.commit()
            with pytest.raises(Exception) as raised:
                db.session.execute(db.text("SELECT pg_sleep(3)"))
            db.session.rollback()
            assert getattr(raised.value.orig, "pgcode", None) == "57014"  # query_canceled
            db.engine.dispose()
    finally:
        extensions.set_wait_callback(previous)


def check_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "contacts_service", "check-config"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("pooling", "problem"),
    [
        ("true", None),
        # The startup parameter is refused: the connection fails, and check-config says why.
        ("false", "CONTACTS_DB_TRANSACTION_POOLING=true"),
    ],
)
def test_check_config_tells_a_transaction_pooler_apart(stack, bounced_env, pooling, problem):
    done = check_config({**bounced_env, "CONTACTS_DB_TRANSACTION_POOLING": pooling})
    if problem is None:
        assert done.returncode == 0, done.stdout + done.stderr
    else:
        assert done.returncode == 1
        assert problem in done.stdout + done.stderr


def test_check_config_tells_a_dropped_statement_timeout(stack, bounced_env, direct_url):
    # A pooler listing `options` in ignore_startup_parameters drops the timeout silently.
    server = PgBouncer(direct_url, pool_size=1, ignore_startup_parameters="options").start()
    try:
        done = check_config(
            {
                **bounced_env,
                "CONTACTS_DATABASE_URL": server.url,
                "CONTACTS_DB_TRANSACTION_POOLING": "false",
            }
        )
    finally:
        server.close()
    assert done.returncode == 1
    assert "a pooler dropped the startup parameter" in done.stdout + done.stderr


def _patch_and_read(client: ContactsClient, uploaded: dict):
    def step(loop):
        n = len(uploaded)
        batch = [sample_contact(f"c{n}-a", 2), sample_contact(f"c{n}-b", 3)]
        uploaded[f"c{n}"] = batch
        loop.call("patch", lambda: client.patch_contacts("phone", upsert=batch), key=f"c{n}")
        loop.call("read", lambda: client.get("/v1/devices/phone/checksums"))

    return step


def _nothing_lost_or_half_applied(client: ContactsClient, loop, uploaded: dict) -> None:
    statuses = {record.status for record in loop.records}
    assert statuses <= {200, 503}, statuses
    assert all(record.body_ok for record in loop.records)
    book = client.book("phone")
    applied = 0
    for record in loop.snapshot("patch"):
        present = [c["contactId"] in book for c in uploaded[record.meta["key"]]]
        if record.status == 200:
            assert all(present), record
        assert all(present) or not any(present), (record, present)
        applied += all(present)
    assert len(book) == 2 * applied
    assert client.get("/v1/devices/phone/checksums").json()["revision"] == applied


@pytest.mark.parametrize("fault", ["pgbouncer killed", "postgresql stopped behind pgbouncer"])
def test_an_outage_behind_the_service_is_a_503_then_it_recovers(stack, bouncer, fault):
    client = account_with(stack, "R" + secrets.token_hex(5), ["+15554440001"])
    client.register("phone")
    contacts_pid = stack.contacts.process.pid
    uploaded: dict[str, list[dict]] = {}

    with TrafficLoop(_patch_and_read(client, uploaded)) as loop:
        loop.wait_until("patch", 200, 5)
        if fault == "pgbouncer killed":
            bouncer.kill()
        else:
            stack.postgres.stop()
        down = time.monotonic()
        loop.wait_until("patch", 503, 3, after=down)
        loop.wait_until("read", 503, 3, after=down)
        ready = requests.get(stack.contacts.url + "/readyz", timeout=15)
        assert ready.status_code == 503
        assert is_error_shape(ready)
        if fault == "pgbouncer killed":
            bouncer.start()
        else:
            stack.postgres.start()
        up = time.monotonic()
        loop.wait_until("patch", 200, 5, after=up)
        loop.wait_until("read", 200, 3, after=up)

    _nothing_lost_or_half_applied(client, loop, uploaded)
    assert stack.contacts.process.pid == contacts_pid

"""PostgreSQL stopped and started under uploads and reads: Contacts answers 503 (never 500)
while it is gone, recovers by itself (idle pooled connections are pinged, a failure discards
the pool's older connections), keeps every acknowledged upload and half-applies none."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.clients import ContactsClient, contacts_env, sample_contact
from tests.support.servers import ServiceProcess, wait_for
from tests.support.traffic import TrafficLoop


@pytest.mark.parametrize("how", ["stop-then-start", "pg_ctl-restart"])
def test_contacts_survives_a_postgres_restart_without_losing_acknowledged_writes(stack, how):
    client = stack.client(stack.account())
    assert client.put_device("phone").status_code == 201
    contacts_pid = stack.contacts.process.pid
    uploaded: dict[str, list[dict]] = {}

    def step(loop):
        n = len(uploaded)
        batch = [sample_contact(f"c{n}-a", 2), sample_contact(f"c{n}-b", 3)]
        uploaded[f"c{n}"] = batch
        loop.call("patch", lambda: client.patch_contacts("phone", upsert=batch), key=f"c{n}")
        loop.call("read", lambda: client.request("GET", "/v1/devices/phone/checksums"))

    with TrafficLoop(step) as loop:
        loop.wait_until("patch", 200, 5)
        if how == "pg_ctl-restart":
            # A fast restart may fall between two requests: no 503 is required, only that
            # nothing worse than a 503 happens and nothing is lost.
            stack.postgres.restart()
        else:
            stack.postgres.stop()
            down = time.monotonic()
            loop.wait_until("patch", 503, 3, after=down)
            loop.wait_until("read", 503, 3, after=down)
            ready = requests.get(stack.contacts.url + "/readyz", timeout=10)
            assert ready.status_code == 503
            assert "postgresql" in ready.json()["details"]
            stack.postgres.start()
        up = time.monotonic()
        loop.wait_until("patch", 200, 5, after=up)
        loop.wait_until("read", 200, 3, after=up)

    statuses = {r.status for r in loop.records}
    assert statuses <= {200, 503}, statuses
    assert all(r.body_ok for r in loop.records)
    assert stack.contacts.process.pid == contacts_pid

    book = client.book("phone")
    applied = 0
    for record in loop.snapshot("patch"):
        batch = uploaded[record.meta["key"]]
        present = [c["contactId"] in book for c in batch]
        if record.status == 200:
            assert all(present), record
        # A 503 may come after the commit (the answer was lost) or before it; either way the
        # batch is all there or not there at all.
        assert all(present) or not any(present), (record, present)
        if all(present):
            applied += 1
            for contact in batch:
                stored = dict(book[contact["contactId"]])
                stored.pop("checksum")
                assert stored == contact
    assert len(book) == 2 * applied
    # Each applied PATCH changed the device once; none was counted without its contacts.
    checksums = client.request("GET", "/v1/devices/phone/checksums").json()
    assert checksums["revision"] == applied


def test_a_connection_dropped_while_idle_is_replaced_before_use(stack):
    """A pooled connection idle longer than CONTACTS_DB_PING_AFTER_IDLE_SECONDS (1 s) is
    pinged before a request uses it; one the server ended meanwhile is replaced, so the
    request never sees it. Busy connections are not pinged (no round trip per request)."""
    client = stack.client(stack.account())
    assert client.put_device("phone").status_code == 201
    # The stack is shared: start from a pool that has settled after an earlier test's restart.
    wait_for(lambda: client.request("GET", "/v1/devices").status_code == 200, timeout=10)
    for _ in range(5):
        response = client.request("GET", "/v1/devices")
        assert response.status_code == 200, response.text
    ended = stack.postgres.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'contacts_service' AND backend_type = 'client backend' "
        "AND query NOT ILIKE 'LISTEN%'"
    )
    assert int(ended) >= 1
    time.sleep(1.5)
    answers = [client.request("GET", "/v1/devices") for _ in range(10)]
    assert [(a.status_code, a.text) for a in answers if a.status_code != 200] == []


def test_a_connection_the_server_ended_moments_ago_is_replaced_before_use(stack):
    """A pooled connection the server ended (a restart, pg_terminate_backend, an idle timeout)
    is replaced at its next checkout however recently it was used: the server's goodbye (a
    FATAL message, then the close) makes its socket readable, which costs a poll(), not a round
    trip. Idle pings are pushed out of reach here (an hour), so only that check can save the
    requests; without it each worker's first request after the termination is a 503."""
    env = contacts_env(
        stack.postgres.url, stack.sso.url, CONTACTS_DB_PING_AFTER_IDLE_SECONDS="3600"
    )
    contacts = ServiceProcess("contacts_service", env, workers=2).start()
    try:
        client = ContactsClient(contacts.url, stack.account().token)
        assert client.put_device("phone").status_code == 201
        # Requests from several threads at once, so each worker pools more than one connection.
        with ThreadPoolExecutor(8) as threads:
            warm = list(threads.map(lambda _: client.request("GET", "/v1/devices"), range(40)))
        assert {response.status_code for response in warm} == {200}
        ended = stack.postgres.psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'contacts_service' AND backend_type = 'client backend' "
            "AND query NOT ILIKE 'LISTEN%'"
        )
        assert int(ended) >= 2
        time.sleep(0.3)  # the goodbyes reach the sockets
        with ThreadPoolExecutor(8) as threads:
            answers = list(threads.map(lambda _: client.request("GET", "/v1/devices"), range(40)))
        assert [(a.status_code, a.text) for a in answers if a.status_code != 200] == []
    finally:
        contacts.stop()
        contacts.log_path.unlink(missing_ok=True)

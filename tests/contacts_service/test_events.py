"""Change notifications (GET /v1/devices/{device_id}/events, Server-Sent Events) through real
gunicorn Contacts processes, the real SSO and real PostgreSQL: changes reach a waiting stream
within the bounds API.md gives, resumption, keep-alive, the end of a stream (token revoked,
device deleted), the per-worker stream cap and a PostgreSQL restart under open streams."""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import threading
import time
import urllib.parse

import pytest
import requests

from tests.contacts_service.conftest import contacts_env, relogin
from tests.support.clients import ContactsClient, is_error_shape, sample_contact
from tests.support.pg_cluster import PostgresCluster
from tests.support.servers import ServiceProcess, free_port, wait_for

ORIGIN = "https://app.example"

# The bound for a change to reach a stream is 1 s; tests allow 2 s of slack on top
# for a loaded machine (the measured figures are in docs/contacts.md).
DELIVERY = 3.0


@pytest.fixture(scope="module")
def events_server(contacts_config):
    """One worker at the default keep-alive (15 s) and re-introspection (30 s) intervals: any
    event seen within seconds was pushed by a notification, not found by a periodic check."""
    # Some tests open more streams from one account than the default per-account limit.
    env = {**contacts_config, "CORS_ORIGINS": ORIGIN, "CONTACTS_MAX_STREAMS_PER_ACCOUNT": "100"}
    server = ServiceProcess("contacts_service", env, workers=1).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def brisk_server(contacts_config):
    """One worker with short intervals and room for two streams."""
    env = {
        **contacts_config,
        "CONTACTS_EVENTS_KEEPALIVE_SECONDS": "0.5",
        "CONTACTS_EVENTS_REINTROSPECT_SECONDS": "1",
        "CONTACTS_MAX_STREAMS_PER_WORKER": "2",
    }
    server = ServiceProcess("contacts_service", env, workers=1).start()
    yield server
    server.stop()


class EventStream:
    """An open events stream read by a background thread: `next()` gives the next comment
    (": text") or event ({"id", "event", "data"}) as it arrives, None at the end.

    Plain http.client, so close() can shut the socket down under a reader blocked in recv."""

    def __init__(self, connection: http.client.HTTPConnection, response):
        self.connection = connection
        self.response = response
        self.headers = response.headers
        self.items: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = ""
        try:
            while chunk := self.response.read1(65536):
                buffer += chunk.decode()
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    self.items.put(_parse(block))
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # closed under the reader by close()
        self.items.put(None)

    def next(self, timeout: float):
        try:
            return self.items.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"nothing on the stream within {timeout} s") from None

    def next_event(self, timeout: float) -> dict:
        """The next event, skipping comments; fails at the end of the stream or the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.next(max(deadline - time.monotonic(), 0.01))
            assert item is not None, "the stream ended"
            if isinstance(item, dict):
                return item

    def ends_within(self, timeout: float) -> list:
        """Everything until the end of the stream, which must come within timeout."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            item = self.next(max(deadline - time.monotonic(), 0.01))
            if item is None:
                return seen
            seen.append(item)

    def close(self) -> None:
        if self.connection.sock is not None:
            with contextlib.suppress(OSError):
                self.connection.sock.shutdown(socket.SHUT_RDWR)
        self.connection.close()
        self._reader.join(5)


def _parse(block: str):
    if block.startswith(":"):
        return block
    fields = {}
    for line in block.split("\n"):
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")
    return fields


def open_stream(client: ContactsClient, device_id: str, headers=None, params=None):
    """(status, EventStream or the error body as JSON)."""
    url = urllib.parse.urlsplit(client.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    path = f"/v1/devices/{device_id}/events"
    if params:
        path += "?" + urllib.parse.urlencode(params)
    sent = {"Authorization": f"Bearer {client.token}"} if client.token else {}
    connection.request("GET", path, headers={**sent, **(headers or {})})
    response = connection.getresponse()
    if response.status != 200:
        body = json.loads(response.read())
        connection.close()
        return response.status, body
    return 200, EventStream(connection, response)


@contextlib.contextmanager
def stream(client: ContactsClient, device_id: str, headers=None, params=None):
    """An open stream (asserts 200), closed afterwards."""
    status, events = open_stream(client, device_id, headers, params)
    assert status == 200, (status, events)
    try:
        yield events
    finally:
        events.close()


def change(revision: int) -> dict:
    return {"id": str(revision), "event": "change", "data": json.dumps({"revision": revision})}


@pytest.fixture
def alice_events(events_server, new_account) -> ContactsClient:
    return ContactsClient(
        events_server.url,
        account=new_account(numbers=["+15551230001"], sip_uri="sip:alice@example.com"),
    )


def test_a_change_reaches_a_waiting_stream(alice_events, events_server):
    alice_events.register("phone")
    writer = ContactsClient(events_server.url, account=alice_events.account)
    with stream(alice_events, "phone") as events:
        assert events.next(5) == ": connected"
        assert writer.upsert("phone", [sample_contact("a")])["revision"] == 1
        assert events.next_event(DELIVERY) == change(1)
        writer.upsert("phone", [sample_contact("b")], delete=["a"])
        assert events.next_event(DELIVERY) == change(2)
        # PUT and a second device's changes: only this device's reach this stream.
        alice_events.register("tablet")
        writer.upsert("tablet", [sample_contact("t")])
        writer.put_contacts("phone", [sample_contact("c")])
        assert events.next_event(DELIVERY) == change(3)


def test_the_stream_is_unbuffered_plain_event_stream(alice_events):
    alice_events.register("phone")
    with stream(alice_events, "phone", headers={"Accept-Encoding": "gzip"}) as events:
        headers = events.headers
        assert headers["Content-Type"].startswith("text/event-stream")
        assert headers["Cache-Control"] == "no-cache"
        assert headers["X-Accel-Buffering"] == "no"
        assert "Content-Encoding" not in headers
        assert events.next(5) == ": connected"


@pytest.mark.parametrize(
    ("headers", "params", "announced"),
    [
        ({"Last-Event-ID": "1"}, {}, True),
        ({"Last-Event-ID": "2"}, {}, False),
        ({}, {"since": "0"}, True),
        ({}, {"since": "2"}, False),
        # An EventSource reconnects to the same URL with Last-Event-ID: the header wins.
        ({"Last-Event-ID": "2"}, {"since": "0"}, False),
    ],
)
def test_resuming_announces_a_newer_revision_at_once(alice_events, headers, params, announced):
    alice_events.register("phone")
    alice_events.upsert("phone", [sample_contact("a")])
    alice_events.upsert("phone", [sample_contact("b")])
    with stream(alice_events, "phone", headers=headers, params=params) as events:
        first = events.next(5)
        assert first == (change(2) if announced else ": connected")


def test_resuming_at_a_revision_of_a_deleted_device_of_the_same_id_is_announced(alice_events):
    alice_events.register("phone")
    alice_events.upsert("phone", [sample_contact("a")])
    alice_events.upsert("phone", [sample_contact("b")])  # rev 2 of the first book
    assert alice_events.delete("/v1/devices/phone").status_code == 204
    alice_events.register("phone")
    alice_events.upsert("phone", [sample_contact("c")])
    alice_events.upsert("phone", [sample_contact("d")])  # rev 2 of the second book
    with stream(alice_events, "phone", headers={"Last-Event-ID": "2"}) as events:
        assert events.next(5) == change(2)


@pytest.mark.parametrize(
    ("headers", "params", "field"),
    [
        ({}, {"since": "-1"}, "since"),
        ({}, {"since": "abc"}, "since"),
        ({"Last-Event-ID": "x"}, {}, "Last-Event-ID"),
        ({"Last-Event-ID": "-3"}, {}, "Last-Event-ID"),
        ({"Last-Event-ID": "+0"}, {}, "Last-Event-ID"),
        ({"Last-Event-ID": "1" * 26}, {}, "Last-Event-ID"),
    ],
)
def test_an_invalid_resume_point_is_a_validation_error(alice_events, headers, params, field):
    alice_events.register("phone")
    response = alice_events.get("/v1/devices/phone/events", headers=headers, params=params)
    assert response.status_code == 422
    assert is_error_shape(response)
    assert response.json()["error"] == "validation_error"
    assert field in response.json()["details"]


def test_errors_before_the_stream_are_json(alice_events, events_server, new_account):
    alice_events.register("phone")
    anonymous = ContactsClient(events_server.url)
    response = anonymous.get("/v1/devices/phone/events")
    assert response.status_code == 401 and is_error_shape(response)
    assert response.json()["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")

    mallory = ContactsClient(events_server.url, account=new_account())
    for device in ("phone", "never-registered"):
        response = mallory.get(f"/v1/devices/{device}/events")
        assert response.status_code == 404 and is_error_shape(response)
        assert response.json()["error"] == "not_found"


def test_a_rejected_request_notifies_nothing(alice_events, events_server):
    alice_events.register("phone")
    writer = ContactsClient(events_server.url, account=alice_events.account)
    with stream(alice_events, "phone") as events:
        assert events.next(5) == ": connected"
        rejected = writer.patch_contacts("phone", upsert=[sample_contact("a")], delete=["a"])
        assert rejected.status_code == 422
        missing = writer.patch_contacts("nothing-here", upsert=[sample_contact("a")])
        assert missing.status_code == 404
        writer.upsert("phone", [sample_contact("b")])
        # The next event on the stream is the accepted write's change, nothing before it (a
        # keep-alive comment may come first on a slow machine).
        item = events.next(DELIVERY)
        while item == ": keep-alive":
            item = events.next(DELIVERY)
        assert item == change(1)


def test_deleting_the_device_ends_its_stream(alice_events, events_server):
    alice_events.register("phone")
    writer = ContactsClient(events_server.url, account=alice_events.account)
    with stream(alice_events, "phone") as events:
        assert events.next(5) == ": connected"
        assert writer.delete("/v1/devices/phone").status_code == 204
        assert not any(isinstance(item, dict) for item in events.ends_within(DELIVERY))


def test_a_smart_contacts_change_is_notified(
    alice_events, events_server, new_account, provider, sso_server
):
    bob_account = new_account(["+15551230002"], "sip:bob@example.com")
    bob = ContactsClient(events_server.url, account=bob_account)
    assert bob.get("/v1/devices").status_code == 200
    alice_events.register("phone")
    contact = {
        "contactId": "x",
        "contactEntries": [{"entryId": "e", "type": "tel", "uri": "+15551230002"}],
    }
    alice_events.upsert("phone", [contact])
    assert alice_events.contacts("phone")["smart"]["x"][0]["username"] == bob_account.username
    with stream(alice_events, "phone", headers={"Last-Event-ID": "1"}) as events:
        assert events.next(5) == ": connected"
        # The provider takes the number from bob; his next request drops it, which changes
        # alice's Smart Contacts but not her book: the event repeats her revision.
        relogin(provider, sso_server, bob_account, numbers=[])
        assert bob.get("/v1/devices").status_code == 200
        assert events.next_event(DELIVERY) == change(1)
    assert alice_events.contacts("phone")["smart"] == {}


def test_streams_hold_no_database_connection(alice_events, events_server, database):
    """More open streams than the worker's pool has connections (10 + 10 overflow): ordinary
    requests still work, PostgreSQL sees no transaction left open, and a change reaches all."""
    alice_events.register("phone")
    with contextlib.ExitStack() as stack:
        streams = []
        for _ in range(25):
            client = ContactsClient(events_server.url, account=alice_events.account)
            streams.append(stack.enter_context(stream(client, "phone")))
        for events in streams:
            assert events.next(5) == ": connected"
        assert alice_events.get("/v1/devices").status_code == 200
        with database.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
            )
            assert cursor.fetchone()[0] == 0
        alice_events.upsert("phone", [sample_contact("a")])
        for events in streams:
            assert events.next_event(DELIVERY) == change(1)


def test_cors_lets_a_listed_origin_read_the_stream(alice_events, events_server):
    alice_events.register("phone")
    preflight = requests.options(
        events_server.url + "/v1/devices/phone/events",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, last-event-id",
        },
        timeout=5,
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "last-event-id" in allowed
    with stream(alice_events, "phone", headers={"Origin": ORIGIN}) as events:
        assert events.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_the_endpoint_is_in_the_openapi_document(events_server):
    document = requests.get(events_server.url + "/openapi.json", timeout=5).json()
    operation = document["paths"]["/v1/devices/{device_id}/events"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert {"401", "404", "422", "503"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} >= {"device_id", "Last-Event-ID"}


@pytest.fixture(scope="module")
def gevent_server(contacts_config):
    """The other worker class `serve` offers (`--worker-class gevent`)."""
    env = {**contacts_config, "CONTACTS_MAX_STREAMS_PER_ACCOUNT": "100"}
    server = ServiceProcess(
        "contacts_service", env, workers=1, extra_args=["--worker-class", "gevent"]
    )
    yield server.start()
    server.stop()


def test_streams_work_under_gevent_workers(gevent_server, new_account):
    client = ContactsClient(gevent_server.url, account=new_account())
    client.register("phone")
    with contextlib.ExitStack() as stack:
        streams = [stack.enter_context(stream(client, "phone")) for _ in range(25)]
        for events in streams:
            assert events.next(5) == ": connected"
        assert client.get("/v1/devices").status_code == 200
        client.upsert("phone", [sample_contact("a")])
        for events in streams:
            assert events.next_event(DELIVERY) == change(1)
        assert client.delete("/v1/devices/phone").status_code == 204
        for events in streams:
            events.ends_within(DELIVERY)


# --- short intervals -------------------------------------------------------------------------


@pytest.fixture
def brisk_alice(brisk_server, new_account) -> ContactsClient:
    return ContactsClient(brisk_server.url, account=new_account(numbers=["+15551230003"]))


def test_keep_alive_comments_come_at_the_interval(brisk_alice):
    brisk_alice.register("phone")
    with stream(brisk_alice, "phone") as events:
        assert events.next(5) == ": connected"
        assert events.next(3) == ": keep-alive"
        assert events.next(3) == ": keep-alive"


def test_revoking_the_token_ends_the_stream(brisk_alice, sso_server):
    brisk_alice.register("phone")
    with stream(brisk_alice, "phone") as events:
        assert events.next(5) == ": connected"
        revoked = requests.post(
            sso_server.url + "/v1/revoke", json={"token": brisk_alice.token}, timeout=5
        )
        assert revoked.status_code == 200
        # Re-introspected at least every second here.
        seen = events.ends_within(4)
        assert ": token inactive" in seen
    assert brisk_alice.get("/v1/devices/phone/events").status_code == 401


def test_streams_beyond_the_worker_cap_are_refused(brisk_server, new_account):
    account = new_account()
    client = ContactsClient(brisk_server.url, account=account)
    client.register("phone")
    with contextlib.ExitStack() as stack:
        opened = []

        def open_one() -> bool:
            # Streams of earlier tests are released when the server next writes to them.
            status, events = open_stream(client, "phone")
            if status != 200:
                return False
            opened.append(stack.enter_context(contextlib.closing(events)))
            return True

        wait_for(open_one, timeout=10, what="a first stream")
        wait_for(open_one, timeout=10, what="a second stream")
        refused = client.get("/v1/devices/phone/events", timeout=5)
        assert refused.status_code == 503 and is_error_shape(refused)
        assert refused.json()["error"] == "unavailable"
        assert int(refused.headers["Retry-After"]) > 0
        # Ordinary requests still have the worker.
        assert client.get("/v1/devices").status_code == 200
        opened.pop().close()
        wait_for(open_one, timeout=10, what="a stream in the freed place")


@pytest.fixture(scope="module")
def shared_server(contacts_config):
    """One worker where one account may hold two streams of six."""
    env = {
        **contacts_config,
        "CONTACTS_MAX_STREAMS_PER_WORKER": "6",
        "CONTACTS_MAX_STREAMS_PER_ACCOUNT": "2",
    }
    server = ServiceProcess("contacts_service", env, workers=1).start()
    yield server
    server.stop()


def test_one_account_cannot_take_every_stream(shared_server, new_account):
    """Beyond CONTACTS_MAX_STREAMS_PER_ACCOUNT the account gets a 429; other accounts still
    get their streams (one token must not lock everyone else out of live updates)."""
    mallory = ContactsClient(shared_server.url, account=new_account())
    alice = ContactsClient(shared_server.url, account=new_account())
    mallory.register("m")
    alice.register("a")
    with contextlib.ExitStack() as stack:
        for _ in range(2):
            status, events = open_stream(mallory, "m")
            assert status == 200
            stack.enter_context(contextlib.closing(events))
        status, body = open_stream(mallory, "m")
        assert status == 429 and body["error"] == "too_many_attempts"
        status, events = open_stream(alice, "a")
        assert status == 200
        stack.enter_context(contextlib.closing(events))


@pytest.fixture(scope="module")
def deaf_server(contacts_config):
    """A worker whose listener can never connect (its listen URL is a closed port)."""
    env = {
        **contacts_config,
        "CONTACTS_LISTEN_DATABASE_URL": f"postgresql://nobody:x@127.0.0.1:{free_port()}/none",
        "CONTACTS_MAX_STREAMS_PER_ACCOUNT": "100",
    }
    server = ServiceProcess("contacts_service", env, workers=1).start()
    yield server
    server.stop()


def test_streams_waiting_for_a_listener_hold_no_database_connection(deaf_server, new_account):
    """Stream attempts while the listener cannot connect are refused (503) after waiting for
    it, and meanwhile ordinary requests get database connections: more waiting attempts than
    the pool has connections (20) must not starve them."""
    account = new_account()
    client = ContactsClient(deaf_server.url, account=account)
    client.register("phone")
    statuses: list[int] = []

    def attempt() -> None:
        statuses.append(open_stream(client, "phone")[0])

    threads = [threading.Thread(target=attempt) for _ in range(30)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)  # the attempts are now waiting for the listener
    assert client.get("/v1/devices", timeout=30).status_code == 200
    for thread in threads:
        thread.join(60)
    assert statuses == [503] * 30


# --- PostgreSQL restart ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def restart_stack(sso_server):
    """A private PostgreSQL cluster (restarted by the test) and a one-worker Contacts on it."""
    cluster = PostgresCluster().start()
    cluster.create_database()
    server = ServiceProcess(
        "contacts_service", contacts_env(cluster.url, sso_server.url), workers=1
    )
    try:
        server.start()
        yield cluster, server
    finally:
        server.stop()
        cluster.close()


def test_the_listener_survives_a_postgres_restart(restart_stack, new_account):
    cluster, server = restart_stack
    client = ContactsClient(server.url, account=new_account())
    client.register("phone")
    with stream(client, "phone") as events:
        assert events.next(5) == ": connected"
        cluster.restart()

        def write() -> bool:
            return client.patch_contacts("phone", upsert=[sample_contact("a")]).status_code == 200

        wait_for(write, timeout=20, what="a write after the restart")
        # After reconnecting, the listener tells every stream the current revision once (a
        # change in the gap must not be missed), so the write's revision arrives either way.
        deadline = time.monotonic() + 15
        while True:
            item = events.next_event(max(deadline - time.monotonic(), 0.01))
            if item == change(1):
                break
        # And it listens again: a later change is pushed too.
        client.upsert("phone", [sample_contact("b")])
        assert events.next_event(DELIVERY) == change(2)

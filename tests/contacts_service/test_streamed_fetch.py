"""A full fetch of a large book is streamed from a server-side cursor (DocumentStream) in
batches: the same bytes as the book rendered whole, gzip when accepted, the same ETag and 304s,
and the database connection it reads on always goes back — read to the end, abandoned by the
client half-way, or never read (HEAD)."""

from __future__ import annotations

import gzip
import json
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
import requests

from contacts_service import address_book, repository
from contacts_service.address_book import STREAM_FROM
from contacts_service.extensions import db
from tests.support.clients import sample_contact
from tests.support.servers import ServiceProcess

# No caller: a snapshot's Smart Contacts are not what these tests look at.
NOBODY = repository.SmartQuery(0, "", ())
SIZE = STREAM_FROM + repository.DocumentStream.BATCH + 7  # more than one batch, not a multiple


@pytest.fixture
def big_book(alice):
    alice.register("big")
    contacts = [
        sample_contact(f"c{n:05d}", 1 + n % 3, fname=f"Zoë {n} ✓", notes="x" * (n % 50))
        for n in range(SIZE)
    ]
    alice.upsert("big", contacts)
    return alice


def whole(client, device_id: str) -> bytes:
    """The body render_book() gives for this book: `?since=0` is rendered whole and has the
    same contacts in the same order, plus `"deleted":[]`."""
    response = client.get(
        f"/v1/devices/{device_id}/contacts",
        params={"since": 0},
        headers={"Accept-Encoding": "identity"},
    )
    assert response.status_code == 200
    return response.content.replace(b',"deleted":[]', b"", 1)


def test_the_streamed_book_is_the_whole_book_byte_for_byte(big_book):
    response = big_book.get("/v1/devices/big/contacts", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert "Content-Length" not in response.headers  # streamed: chunked
    assert response.headers["Content-Type"] == "application/json"
    assert response.content == whole(big_book, "big")
    body = json.loads(response.content)
    assert len(body["contacts"]) == SIZE
    assert body["contacts"][0]["fname"] == "Zoë 0 ✓"


def test_the_streamed_book_in_gzip(big_book):
    plain = big_book.get("/v1/devices/big/contacts", headers={"Accept-Encoding": "identity"})
    response = big_book.get(
        "/v1/devices/big/contacts", headers={"Accept-Encoding": "gzip"}, stream=True
    )
    raw = response.raw.read(decode_content=False)
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert gzip.decompress(raw) == plain.content
    assert len(raw) < len(plain.content) / 3
    # The same version either way: weak when encoded, and a 304 for both forms.
    assert response.headers["ETag"] == "W/" + plain.headers["ETag"]
    for etag in (plain.headers["ETag"], response.headers["ETag"]):
        for encoding in ("gzip", "identity"):
            again = big_book.get(
                "/v1/devices/big/contacts",
                headers={"If-None-Match": etag, "Accept-Encoding": encoding},
            )
            assert again.status_code == 304
            assert again.content == b""


def test_a_change_changes_the_streamed_book_and_its_etag(big_book):
    first = big_book.get("/v1/devices/big/contacts")
    big_book.upsert("big", [sample_contact("c00001", 1, fname="Changed")], delete=["c00002"])
    second = big_book.get(
        "/v1/devices/big/contacts", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert second.status_code == 200
    assert second.headers["ETag"] != first.headers["ETag"]
    body = second.json()
    assert body["revision"] == first.json()["revision"] + 1
    ids = [c["contactId"] for c in body["contacts"]]
    assert "c00002" not in ids and len(ids) == SIZE - 1
    assert body["contacts"][1]["fname"] == "Changed"


def idle_in_transaction(database_url: str) -> int:
    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND state LIKE 'idle in transaction%%' "
                "AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]
    finally:
        connection.close()


def settles(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_streams_read_whole_abandoned_or_never_read_give_their_connection_back(
    big_book, postgres_database
):
    url = f"{big_book.base_url}/v1/devices/big/contacts"
    headers = {"Authorization": f"Bearer {big_book.token}", "Accept-Encoding": "identity"}
    # More streams than a worker's pool holds (CONTACTS_DB_POOL_SIZE, doubled by overflow):
    # a leaked connection would soon leave none.
    for n in range(45):
        kind = ("whole", "abandoned", "head")[n % 3]
        if kind == "head":
            assert requests.head(url, headers=headers, timeout=30).status_code == 200
        elif kind == "abandoned":
            with requests.get(url, headers=headers, stream=True, timeout=30) as response:
                assert response.status_code == 200
                assert response.raw.read(100).startswith(b'{"revision":')
        else:
            assert len(requests.get(url, headers=headers, timeout=30).json()["contacts"]) == SIZE
    assert big_book.get("/v1/devices").status_code == 200
    assert settles(lambda: idle_in_transaction(postgres_database.url) == 0)


def test_a_small_book_is_rendered_whole_with_a_length(alice):
    alice.register("small")
    alice.upsert("small", [sample_contact(f"s{n}") for n in range(STREAM_FROM - 1)])
    response = alice.get("/v1/devices/small/contacts", headers={"Accept-Encoding": "identity"})
    assert int(response.headers["Content-Length"]) == len(response.content)


def test_the_stream_reads_one_snapshot_and_answers_with_its_revision(app, big_book):
    """The revision (hence the ETag) of a streamed answer is the one of the snapshot its
    documents come from: a write committed after the stream opened changes neither."""
    with app.app_context():
        pk = newest_pk("big")
        before = repository.DocumentStream.open(pk, NOBODY, 5)
        try:
            big_book.upsert("big", [sample_contact("zz-new")])
            after = repository.DocumentStream.open(pk, NOBODY, 5)
            try:
                assert after.revision == before.revision + 1
                assert sum(len(batch) for batch in after) == SIZE + 1
            finally:
                after.close()
            assert sum(len(batch) for batch in before) == SIZE
        finally:
            before.close()
    body = big_book.get("/v1/devices/big/contacts").json()
    assert (body["revision"], len(body["contacts"])) == (before.revision + 1, SIZE + 1)


@pytest.fixture
def one_small_pool(contacts_config):
    """One worker whose pool holds 2 connections (+ 2 overflow)."""
    server = ServiceProcess(
        "contacts_service", {**contacts_config, "CONTACTS_DB_POOL_SIZE": "2"}, workers=1
    ).start()
    yield server
    server.stop()


def test_concurrent_big_fetches_do_not_run_out_of_connections(big_book, one_small_pool):
    """A request never holds two connections at once (its own and the stream's): 24 big
    fetches at once on 4 connections all succeed, none waits out the pool timeout (503)."""
    url = f"{one_small_pool.url}/v1/devices/big/contacts"
    headers = {"Authorization": f"Bearer {big_book.token}"}

    def fetch(_):
        response = requests.get(url, headers=headers, timeout=60)
        return response.status_code, len(response.json().get("contacts", ()))

    with ThreadPoolExecutor(24) as pool:
        outcomes = list(pool.map(fetch, range(24)))
    assert outcomes == [(200, SIZE)] * 24


def test_batches_are_bounded_in_bytes_and_the_last_one_ends_the_snapshot(
    app, alice, postgres_database
):
    """Big contacts come in batches of about BATCH_BYTES, not BATCH rows (1,000 contacts of
    64 KiB would be 64 MiB at once), and the snapshot ends as soon as the last batch is
    fetched, before it is sent: a client that stops reading then holds no connection."""
    alice.register("stall")
    notes = "n" * 30_000 + "😀"  # one character outside the BMP: bytes, not a 4-byte str
    alice.upsert("stall", [sample_contact(f"s{n:04d}", notes=notes) for n in range(STREAM_FROM)])
    with app.app_context():
        pk = newest_pk("stall")
        stream = repository.DocumentStream.open(pk, NOBODY, 5)
        try:
            sizes, open_snapshots = [], []
            for batch in stream:
                assert all(isinstance(document, bytes) for document in batch)
                sizes.append((len(batch), sum(map(len, batch))))
                open_snapshots.append(idle_in_transaction(postgres_database.url))
        finally:
            stream.close()
    largest = max(len(document) for document in repository_documents(app, pk))
    assert sum(rows for rows, _ in sizes) == STREAM_FROM
    assert sizes[0][0] == repository.DocumentStream.FIRST_BATCH
    assert all(size <= repository.DocumentStream.BATCH_BYTES + largest for _, size in sizes[1:])
    assert len(sizes) > 10  # 15 MB in about 1 MiB batches
    # Open while batches remain; ended before the last one reaches the caller.
    assert open_snapshots == [1] * (len(sizes) - 1) + [0]


def newest_pk(device_id: str) -> int:
    """The pk of the newest device of this id (in an app context; ends its transaction)."""
    try:
        return db.session.execute(
            db.text("SELECT pk FROM devices WHERE device_id = :d ORDER BY pk DESC LIMIT 1"),
            {"d": device_id},
        ).scalar_one()
    finally:
        db.session.rollback()


def repository_documents(app, pk: int) -> list[bytes]:
    with app.app_context():
        try:
            return repository.documents(pk)
        finally:
            db.session.rollback()


def test_smart_contacts_come_from_the_snapshot_of_the_documents(
    client, api, alice, new_account, monkeypatch
):
    """A write landing between the request's own reads and the stream's snapshot must not
    leave a Smart Contacts entry for a contact the same answer no longer has (outside read of
    issue 10: smart was computed before the snapshot)."""
    bob = api.as_(new_account(["+15551230002"], "sip:bob@example.com"))
    assert bob.get("/v1/devices").status_code == 200  # Contacts learns bob's number
    alice.register("race")
    tel = {"entryId": "e1", "label": "mobile", "type": "tel", "uri": "+15551230002"}
    book = [sample_contact(f"c{n:04d}") for n in range(STREAM_FROM)]
    alice.upsert("race", [*book, {"contactId": "bob", "contactEntries": [tel]}])
    assert "bob" in alice.contacts("race")["smart"]
    original = address_book.open_book

    def racing(*args, **kwargs):
        assert alice.patch_contacts("race", delete=["bob"]).status_code == 200
        return original(*args, **kwargs)

    monkeypatch.setattr(address_book, "open_book", racing)
    answer = client.get(
        "/v1/devices/race/contacts", headers={"Authorization": f"Bearer {alice.token}"}
    )
    body = json.loads(answer.get_data())
    assert "bob" not in {contact["contactId"] for contact in body["contacts"]}
    assert body["smart"] == {}
    monkeypatch.undo()
    fresh = alice.get("/v1/devices/race/contacts", headers={"Accept-Encoding": "identity"})
    assert (fresh.json()["revision"], fresh.headers["ETag"]) == (
        body["revision"],
        answer.headers["ETag"],
    )

"""gzip both ways at a real Contacts process: compressed uploads are stored as if sent plain,
a bomb is a 413 and a truncated stream a 400 with nothing stored, and a phone that accepts gzip
gets the same book in fewer bytes, with 304s whichever encoding its ETag came with."""

from __future__ import annotations

import gzip
import json

import pytest
import requests

from tests.support.clients import contacts_env
from tests.support.servers import ServiceProcess


@pytest.fixture
def phone(hostile_contacts, make_user):
    user = make_user()
    client = user.client(hostile_contacts)
    client.register("phone")
    return client


def send_gzip(phone, data: bytes) -> requests.Response:
    return phone.patch(
        "/v1/devices/phone/contacts",
        data=data,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )


def book(count: int) -> dict:
    return {
        "upsert": [
            {"contactId": f"c{n}", "displayName": f"Person {n}", "contactEntries": [
                {"entryId": "e", "type": "tel", "uri": f"tel:+1555123{n:04d}"}]}
            for n in range(count)
        ]
    }  # fmt: skip


def test_a_gzip_upload_is_stored_as_sent(phone):
    body = book(200)
    response = send_gzip(phone, gzip.compress(json.dumps(body).encode()))
    assert response.status_code == 200, response.text
    assert response.json()["upserted"] == 200
    stored = phone.book("phone")
    assert {key: {k: v for k, v in c.items() if k != "checksum"} for key, c in stored.items()} == {
        contact["contactId"]: contact for contact in body["upsert"]
    }


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        # 64 MiB of JSON in ~64 KiB of gzip: over the 32 MiB limit once decoded
        (gzip.compress(b'{"upsert": [], "x": "' + b"0" * (64 << 20) + b'"}'), 413,
         "payload_too_large"),
        (gzip.compress(json.dumps(book(50)).encode())[:-40], 400, "invalid_json"),
    ],
    ids=["bomb", "truncated"],
)  # fmt: skip
def test_bad_gzip_uploads_are_refused_and_store_nothing(phone, data, status, error):
    response = send_gzip(phone, data)
    assert response.status_code == status
    assert response.json()["error"] == error
    device = phone.get("/v1/devices/phone").json()
    assert (device["revision"], device["contact_count"]) == (0, 0)


# The upload is parsed as it arrives, so its JSON can fail before the body's end is read:
# an error of the body as a whole (too large, broken gzip) must still win, as it does when
# the body is read whole before it is parsed.
_PAD = b" " * (40 << 20)  # whitespace: 40 MiB decoded, past the 32 MiB limit
_MORE = b" " * (3 << 20)  # more than the reader's first window (1 MiB), under the limit


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (gzip.compress(b"[" + _PAD), 413, "too large"),
        (gzip.compress(b'{"upsert": [] junk' + _PAD), 413, "too large"),
        (gzip.compress(b'{"upsert": [' + b"1," * 50_001 + _PAD), 413, "too large"),
        (gzip.compress(b'{"upsert": [] junk' + _MORE)[:-40], 400, "not valid gzip"),
        (gzip.compress(b'{"upsert": [] junk' + _MORE) + b"junk", 400, "not valid gzip"),
        (gzip.compress(b'{"upsert": [' + b"1," * 50_001 + _MORE) + b"junk", 400, "not valid gzip"),
    ],
    ids=["not-an-object-then-too-large", "syntax-error-then-too-large",
         "too-many-then-too-large", "syntax-error-then-truncated", "syntax-error-then-garbage",
         "too-many-then-garbage"],
)  # fmt: skip
def test_an_error_of_the_whole_body_wins_over_an_early_json_error(phone, data, status, message):
    response = send_gzip(phone, data)
    assert response.status_code == status, response.text
    assert message in response.json()["message"]
    device = phone.get("/v1/devices/phone").json()
    assert (device["revision"], device["contact_count"]) == (0, 0)


def test_a_book_sent_in_small_chunks_is_stored_as_sent(phone):
    """Chunked, in pieces far smaller than the reader's window, with multi-byte characters
    cut between pieces."""
    body = {"upsert": [
        {"contactId": f"c{n}", "displayName": f"Zoë ☕ {n} 太郎", "contactEntries": [
            {"entryId": "e", "type": "tel", "uri": f"+1555123{n:04d}"}]}
        for n in range(400)
    ]}  # fmt: skip
    data = json.dumps(body, ensure_ascii=False).encode()
    response = phone.patch(
        "/v1/devices/phone/contacts",
        data=(data[start : start + 997] for start in range(0, len(data), 997)),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    stored = phone.book("phone")
    assert {key: {k: v for k, v in c.items() if k != "checksum"} for key, c in stored.items()} == {
        contact["contactId"]: contact for contact in body["upsert"]
    }


def test_a_phone_that_accepts_gzip_gets_the_book_gzipped(phone):
    phone.upsert("phone", book(300)["upsert"])
    url = "/v1/devices/phone/contacts"
    plain = phone.get(url, headers={"Accept-Encoding": "identity"})
    packed = phone.get(url, headers={"Accept-Encoding": "gzip"}, stream=True)
    wire = packed.raw.read(decode_content=False)
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert "Accept-Encoding" in plain.headers["Vary"]
    assert gzip.decompress(wire) == plain.content
    assert len(wire) * 4 < len(plain.content)
    for etag in (plain.headers["ETag"], packed.headers["ETag"]):
        for accept in ("gzip", "identity"):
            again = phone.get(url, headers={"Accept-Encoding": accept, "If-None-Match": etag})
            assert again.status_code == 304


def test_bodies_are_decoded_only_after_the_token_is_checked(hostile_contacts):
    bomb = gzip.compress(b'{"upsert": [], "x": "' + b"0" * (64 << 20) + b'"}')
    response = requests.put(
        hostile_contacts.url + "/v1/devices/x",
        data=bomb,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        timeout=30,
    )
    assert (response.status_code, response.json()["error"]) == (401, "invalid_token")


def test_a_million_items_in_a_small_gzip_body_are_refused_before_validation(phone):
    body = b'{"upsert":[' + b",".join([b"1"] * 1_000_000) + b"]}"
    response = send_gzip(phone, gzip.compress(body))
    assert response.status_code == 422
    assert response.json()["error"] == "too_many_contacts"
    assert len(response.content) < 2000


@pytest.mark.parametrize(
    ("method", "body", "key"),
    [
        ("PATCH", b'{"delete":[' + b"{}," * 10_000_000 + b"{}]}", "delete"),
        ("PUT", b'{"contacts":[],"x":[' + b"[]," * 10_000_000 + b"[]]}", "x"),
    ],
    ids=["ids-to-delete", "an-unknown-key"],
)
def test_ten_million_items_of_another_array_are_refused_at_the_limit(phone, method, body, key):
    """Any top-level array stops at the device's contact limit as it is read (it cost a worker
    750 MiB and 30-45 s of CPU to collect them first), from a ~30 kB gzip body."""
    packed = gzip.compress(body)
    assert len(packed) < 100_000
    response = phone.request(
        method,
        "/v1/devices/phone/contacts",
        data=packed,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        timeout=30,
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "too_many_contacts"
    assert list(response.json()["details"]) == [key]


def test_error_details_are_capped(phone):
    response = phone.patch("/v1/devices/phone/contacts", json={"upsert": [1] * 5000})
    assert response.status_code == 422
    details = response.json()["details"]
    assert len(details) == 101
    assert details["_more"] == ["4900 more fields are invalid."]


def test_a_browser_may_send_gzip_bodies(cors_contacts):
    response = requests.options(
        cors_contacts.url + "/v1/devices/d/contacts",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type, content-encoding",
        },
        timeout=10,
    )
    assert "content-encoding" in response.headers["Access-Control-Allow-Headers"].lower()


@pytest.fixture(scope="module")
def cors_contacts(postgres_database, sso_server, hostile_contacts):
    env = contacts_env(postgres_database.url, sso_server.url, CORS_ORIGINS="https://app.example")
    server = ServiceProcess("contacts_service", env, workers=1).start()
    yield server
    server.stop()

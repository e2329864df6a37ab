"""A client that retries the same PATCH after a dropped connection ends with exactly one copy
of each contact: PATCH is idempotent by contactId."""

from __future__ import annotations

import socket
import struct
import threading

from tests.support.clients import dumps, sample_contact


def _raw_request(client, method: str, path: str, body: bytes) -> bytes:
    host = client.base_url.split("://", 1)[1]
    head = (
        f"{method} {path} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        f"Authorization: Bearer {client.token}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


def _send_and_drop(client, payload: bytes) -> None:
    """Send `payload` on a fresh connection and reset it without reading the answer."""
    host, port = client.base_url.split("://", 1)[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(payload)
    # SO_LINGER 0: close() sends a RST, like a phone losing its network mid-request.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _assert_exactly(client, device: str, expected: list[dict]) -> None:
    book = client.book(device)  # asserts no duplicated contactId
    assert sorted(book) == sorted(c["contactId"] for c in expected)
    for contact in expected:
        stored = dict(book[contact["contactId"]])
        stored.pop("checksum")
        assert stored == contact
    listed = client.request("GET", f"/v1/devices/{device}").json()
    assert listed["contact_count"] == len(expected)


def test_the_same_patch_twice_leaves_one_copy(stack):
    client = stack.client(stack.account())
    client.put_device("phone")
    batch = [sample_contact("a", 2), sample_contact("b", 1)]
    first = client.patch_contacts("phone", upsert=batch)
    second = client.patch_contacts("phone", upsert=batch)
    assert first.status_code == second.status_code == 200
    assert first.json()["upserted"] == 2
    assert second.json()["upserted"] == 0
    assert second.json()["unchanged"] == 2
    assert second.json()["revision"] == first.json()["revision"]
    _assert_exactly(client, "phone", batch)


def test_retry_after_a_connection_dropped_after_sending_leaves_one_copy(stack):
    client = stack.client(stack.account())
    client.put_device("phone")
    batch = [sample_contact(f"c{i}", 3) for i in range(50)]
    body = dumps({"upsert": batch, "delete": []})
    _send_and_drop(client, _raw_request(client, "PATCH", "/v1/devices/phone/contacts", body))
    # The client never saw an answer, so it retries at once (the first attempt may still be
    # in progress on the server).
    retry = client.patch_contacts("phone", upsert=batch)
    assert retry.status_code == 200, retry.text
    _assert_exactly(client, "phone", batch)


def test_a_request_cut_off_mid_body_stores_nothing_and_the_retry_stores_one_copy(stack):
    client = stack.client(stack.account())
    client.put_device("phone")
    batch = [sample_contact(f"c{i}", 2) for i in range(20)]
    body = dumps({"upsert": batch, "delete": []})
    payload = _raw_request(client, "PATCH", "/v1/devices/phone/contacts", body)
    _send_and_drop(client, payload[: len(payload) - len(body) // 2])
    assert client.book("phone") == {}
    assert client.request("GET", "/v1/devices/phone").json()["revision"] == 0

    retry = client.patch_contacts("phone", upsert=batch)
    assert retry.status_code == 200, retry.text
    _assert_exactly(client, "phone", batch)


def test_concurrent_retries_of_one_patch_all_succeed_with_one_copy(stack):
    account = stack.account()
    stack.client(account).put_device("phone")
    batch = [sample_contact(f"c{i}", 2) for i in range(30)]
    results: list[int] = []

    def send():
        client = stack.client(account)
        results.append(client.patch_contacts("phone", upsert=batch).status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [200] * 6
    _assert_exactly(stack.client(account), "phone", batch)

"""Uploads that arrive slowly. The Contacts service reads a body as it arrives (it is parsed
piece by piece), so a client that sends its body slowly, or stops halfway, keeps its request
open that long: it must not keep a pooled database connection with it, or a handful of such
clients would take the pool and every other account would get 503."""

from __future__ import annotations

import contextlib
import socket

import pytest

from tests.support.clients import contacts_env
from tests.support.raw_http import read_answer, send_head
from tests.support.servers import ServiceProcess

POOL = 2  # connections per worker (and as many again in overflow)


@pytest.fixture(scope="module")
def tiny_pool(postgres_database, sso_server, hostile_contacts):
    # Started after hostile_contacts, so the schema migration has run once already.
    env = contacts_env(postgres_database.url, sso_server.url, CONTACTS_DB_POOL_SIZE=str(POOL))
    server = ServiceProcess("contacts_service", env, workers=1).start()
    yield server
    server.stop()


def start_slow_upload(url: str, token: str):
    """Headers and the first bytes of a 100 kB PATCH body; the rest never comes."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Content-Length": "100000",
    }
    return send_head(url, "PATCH", "/v1/devices/phone/contacts", headers, b'{"upsert": [')


def test_slow_uploads_leave_the_database_to_other_accounts(tiny_pool, make_user):
    slow, other = make_user(), make_user()
    slow_client, other_client = slow.client(tiny_pool), other.client(tiny_pool)
    assert slow_client.put_device("phone").status_code == 201
    sockets = [start_slow_upload(tiny_pool.url, slow.token) for _ in range(3 * POOL)]
    try:
        # Each slow upload is past authentication (its account synced) and waiting for the
        # rest of its body; another account's requests still get a connection.
        for _ in range(3):
            response = other_client.request("GET", "/v1/devices", timeout=30)
            assert response.status_code == 200, response.text
        assert other_client.put_device("tablet").status_code == 201
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()


def test_a_chunked_upload_cut_off_is_the_clients_400(tiny_pool, make_user):
    """The client half-closes inside a chunk: gunicorn's NoMoreData is a 400 for the client,
    not a 500 with a traceback in the log."""
    user = make_user()
    assert user.client(tiny_pool).put_device("phone").status_code == 201
    headers = {
        "Authorization": f"Bearer {user.token}",
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
    }
    path, first = "/v1/devices/phone/contacts", b'100\r\n{"upsert": ['
    with send_head(tiny_pool.url, "PATCH", path, headers, first) as sock:
        sock.shutdown(socket.SHUT_WR)
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"unhandled error" not in tiny_pool.log_path.read_bytes()

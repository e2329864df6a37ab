"""A statement the database cancels (its statement timeout, here while another session holds
a table locked) is a 503 on every read path, including those that read on psycopg2's own
cursors (documents as bytes, streamed books from a snapshot of their own), never a 500."""

from __future__ import annotations

import contextlib
import time

import psycopg2
import pytest

from contacts_service.address_book import STREAM_FROM
from tests.support.clients import is_error_shape, sample_contact


@pytest.fixture(scope="module")
def reader(make_user, hostile_contacts):
    client = make_user().client(hostile_contacts)
    client.register("small")
    client.upsert("small", [sample_contact("s1")])
    client.register("big")
    client.upsert("big", [sample_contact(f"b{n:04d}") for n in range(STREAM_FROM)])
    return client


@contextlib.contextmanager
def locked(database_url: str, table: str):
    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # a test constant
        yield
    finally:
        connection.rollback()
        connection.close()


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/devices/small/contacts", {}),
        ("/v1/devices/small/contacts", {"since": "0"}),
        ("/v1/devices/big/contacts", {}),
    ],
    ids=["small-book", "since", "streamed-book"],
)
def test_a_cancelled_read_is_503_not_500(reader, hostile_contacts, postgres_database, path, params):
    with locked(postgres_database.url, "contacts"):
        started = time.monotonic()
        response = reader.get(path, params=params, timeout=30)
        elapsed = time.monotonic() - started
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert response.json()["error"] == "unavailable" and is_error_shape(response)
    assert elapsed < 3 + 2 + 3  # the service's statement timeout (3 s) and its slack
    assert reader.get(path, params=params).status_code == 200

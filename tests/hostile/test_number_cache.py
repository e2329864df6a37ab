"""The E.164 cache cannot be made to hold hostile input, and a write to an unknown device does
no number work at all.

The cache is process-local state, so these tests drive the Contacts app in-process (its WSGI
interface, the same requests a client sends) and look at the cache of that process.
"""

from __future__ import annotations

import gc
import secrets

import pytest

from shared import phone

HUGE = 60_000  # characters per tel URI: 500 of them are a 30 MB upload under the 32 MiB limit
# The longest key the cache may hold: a bare number, never a whole URI.
MAX_KEY_LENGTH = 64

# The module's one memoised function (an lru_cache), whatever it is called.
(CACHED,) = [f for f in vars(phone).values() if hasattr(f, "cache_info")]


def cache_keys() -> list[tuple]:
    """The keys the E.164 cache holds (functools' C implementation keeps them in a dict it
    reports to the garbage collector)."""
    size = CACHED.cache_info().currsize
    dicts = [
        referent
        for referent in gc.get_referents(CACHED)
        if isinstance(referent, dict) and all(isinstance(key, tuple) for key in referent)
    ]
    (cache,) = [d for d in dicts if len(d) == size] or [{}]
    return list(cache)


@pytest.fixture
def client(contacts_app, make_user):
    # No verified numbers, so authentication itself normalises nothing.
    user = make_user(numbers=())
    test_client = contacts_app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {user.token}"
    return test_client


def tel(contact_id: str, uri: str) -> dict:
    return {"contactId": contact_id, "contactEntries": [{"type": "tel", "uri": uri}]}


def test_huge_tel_uris_never_become_cache_keys(client):
    assert client.put("/v1/devices/phone").status_code == 201
    prefix = "+1555" + str(secrets.randbelow(10**6)).zfill(6)
    contacts = [
        # not a number at all: refused before the cache
        tel("digits", "tel:+" + "5" * HUGE),
        tel("spaces", " " * (HUGE // 2) + "+15551230001" + " " * (HUGE // 2)),
        tel("letters", "x" * HUGE),
    ]
    contacts += [tel(f"n{i}", f"tel:+49{i}" + "1" * HUGE) for i in range(250)]
    # a short number with a huge parameter: cached under the short number alone
    contacts += [tel(f"p{i}", f"tel:{prefix}{i % 10};x={'y' * HUGE}") for i in range(247)]
    assert len(contacts) == 500
    before = CACHED.cache_info()

    response = client.patch("/v1/devices/phone/contacts", json={"upsert": contacts})

    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.get_json()["upserted"] == 500
    after = CACHED.cache_info()
    # 248 lookups of 11 distinct short numbers (the huge ones never reach the cache).
    assert after.currsize - before.currsize <= 11
    assert (after.hits + after.misses) - (before.hits + before.misses) == 248
    keys = cache_keys()
    assert {(f"{prefix}{i}", None) for i in range(10)} <= set(keys)
    assert max(len(str(part)) for key in keys for part in key) <= MAX_KEY_LENGTH


def test_write_to_an_unknown_device_is_404_before_any_number_work(client):
    fresh = "+1555" + str(secrets.randbelow(10**6)).zfill(6)
    contacts = [tel(f"h{i}", f"tel:+49{i}" + "1" * HUGE) for i in range(50)]
    contacts += [tel(f"s{i}", f"{fresh}{i}") for i in range(10)]
    before = CACHED.cache_info()

    for method, body in [("PATCH", {"upsert": contacts}), ("PUT", {"contacts": contacts})]:
        response = client.open("/v1/devices/never-registered/contacts", method=method, json=body)
        assert response.status_code == 404, response.get_data(as_text=True)[:500]
        assert response.get_json()["error"] == "not_found"

    assert CACHED.cache_info() == before
    assert client.get("/v1/devices").get_json()["devices"] == []

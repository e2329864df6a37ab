"""Configured limits (the limited service: 5 contacts per device, 3 entries per contact,
600 bytes per contact, 20,000-byte bodies); a rejected request changes nothing."""

from __future__ import annotations

import json
import threading

import pytest


@pytest.fixture
def bob(limited, new_account):
    api = limited.as_(new_account())
    api.register("d")
    api.upsert("d", [{"contactId": f"c{i}"} for i in range(4)])
    return api


def test_contact_count_is_checked_after_applying_the_batch(bob):
    before = bob.contacts("d")
    too_many = bob.patch(
        "/v1/devices/d/contacts", json={"upsert": [{"contactId": "c4"}, {"contactId": "c5"}]}
    )
    assert too_many.status_code == 422
    assert too_many.json()["error"] == "too_many_contacts"
    assert too_many.json()["message"]
    assert bob.contacts("d") == before
    assert bob.get("/v1/devices/d").json()["revision"] == 1

    # The same upload fits once a deletion in the same batch makes room.
    fits = bob.upsert("d", [{"contactId": "c4"}, {"contactId": "c5"}], delete=["c0"])
    assert fits["contact_count"] == 5 and fits["revision"] == 2
    # Re-uploading existing contacts does not count twice.
    assert bob.upsert("d", [{"contactId": "c1", "fname": "x"}])["contact_count"] == 5


def test_put_over_the_limit_is_rejected(bob):
    response = bob.put(
        "/v1/devices/d/contacts", json={"contacts": [{"contactId": f"x{i}"} for i in range(6)]}
    )
    assert response.status_code == 422 and response.json()["error"] == "too_many_contacts"
    assert bob.get("/v1/devices/d").json()["contact_count"] == 4


def test_entries_per_contact(bob):
    entries = [{"type": "tel", "uri": f"+1555000000{i}"} for i in range(4)]
    response = bob.patch(
        "/v1/devices/d/contacts",
        json={"upsert": [{"contactId": "ok"}, {"contactId": "big", "contactEntries": entries}]},
    )
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert list(response.json()["details"]) == ["upsert.1.contactEntries"]
    assert bob.get("/v1/devices/d").json()["contact_count"] == 4


def test_bytes_per_contact(bob):
    response = bob.put(
        "/v1/devices/d/contacts", json={"contacts": [{"contactId": "big", "notes": "n" * 700}]}
    )
    assert response.status_code == 422
    assert list(response.json()["details"]) == ["contacts.0"]
    assert bob.get("/v1/devices/d").json()["contact_count"] == 4


def test_body_size_is_413_payload_too_large(bob):
    body = json.dumps({"upsert": [{"contactId": f"z{i}", "notes": "x" * 300} for i in range(80)]})
    response = bob.patch(
        "/v1/devices/d/contacts", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert bob.get("/v1/devices/d").json()["contact_count"] == 4


def test_chunked_body_over_the_limit_is_413_too(bob):
    body = json.dumps({"upsert": [{"contactId": f"z{i}", "notes": "x" * 300} for i in range(80)]})
    chunks = iter([body[i : i + 4096].encode() for i in range(0, len(body), 4096)])
    response = bob.patch(
        "/v1/devices/d/contacts", data=chunks, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    small = json.dumps({"upsert": [{"contactId": "c9"}]}).encode()
    accepted = bob.patch(
        "/v1/devices/d/contacts", data=iter([small[:10], small[10:]]),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert accepted.status_code == 200 and accepted.json()["contact_count"] == 5


def test_devices_per_account(limited, new_account):
    api = limited.as_(new_account())
    for n in range(3):
        api.register(f"d{n}")
    refused = api.put("/v1/devices/d3", json={"name": "one too many"})
    assert refused.status_code == 422
    assert refused.json()["error"] == "too_many_devices"
    assert api.get("/v1/devices/d3").status_code == 404
    assert api.put("/v1/devices/d0", json={"name": "renamed"}).status_code == 200
    assert api.delete("/v1/devices/d1").status_code == 204
    assert api.put("/v1/devices/d3").status_code == 201


def test_concurrent_registrations_cannot_pass_the_device_limit(limited, new_account):
    api = limited.as_(new_account())
    barrier, statuses = threading.Barrier(8), []

    def register(n):
        barrier.wait()
        statuses.append(api.put(f"/v1/devices/race{n}").status_code)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] * 3 + [422] * 5
    assert len(api.get("/v1/devices").json()["devices"]) == 3


def test_registering_an_existing_device_at_the_limit_is_an_update(limited, new_account):
    """At quota - 1, concurrent PUTs of one new id: one 201, the rest 200 (never 422)."""
    api = limited.as_(new_account())
    api.register("d0")
    api.register("d1")
    barrier, statuses = threading.Barrier(10), []

    def register():
        barrier.wait()
        statuses.append(api.put("/v1/devices/same").status_code)

    threads = [threading.Thread(target=register) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 9 + [201]

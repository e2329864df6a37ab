"""/v1/devices: register, list, read, delete; isolation between accounts."""

from __future__ import annotations

import pytest

from tests.support.clients import ContactsClient
from tests.support.traffic import in_parallel


def test_put_creates_with_201_then_200_idempotently(alice):
    created = alice.put("/v1/devices/phone-1", json={"name": "Alice's phone", "platform": "ios"})
    assert created.status_code == 201
    device = created.json()
    assert device["id"] == "phone-1"
    assert device["name"] == "Alice's phone"
    assert device["platform"] == "ios"
    assert device["revision"] == 0
    assert device["contact_count"] == 0
    assert device["created_at"] and device["updated_at"]

    again = alice.put("/v1/devices/phone-1", json={"name": "Alice's phone", "platform": "ios"})
    assert again.status_code == 200
    assert again.json() == device


@pytest.mark.parametrize("body", [None, b"", b"{}", b"  "])
def test_put_accepts_no_body_or_an_empty_object(alice, body):
    response = alice.put("/v1/devices/dev", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    assert response.json()["name"] is None


def test_put_updates_only_the_fields_given(alice):
    alice.register("d", name="one", platform="android")
    updated = alice.put("/v1/devices/d", json={"name": "two"}).json()
    assert (updated["name"], updated["platform"]) == ("two", "android")
    assert alice.put("/v1/devices/d").json()["name"] == "two"


def test_list_and_get(alice):
    alice.register("b-device", name="B")
    alice.register("a-device", name="A")
    devices = alice.get("/v1/devices").json()["devices"]
    assert [d["id"] for d in devices] == ["a-device", "b-device"]
    assert set(devices[0]) == {
        "id", "name", "platform", "contact_count", "revision", "created_at", "updated_at"
    }  # fmt: skip
    assert alice.get("/v1/devices/b-device").json() == devices[1]


def test_delete_removes_the_device_and_its_contacts(alice):
    alice.register("d")
    alice.upsert("d", [{"contactId": "c1", "fname": "X"}])
    assert alice.delete("/v1/devices/d").status_code == 204
    assert alice.get("/v1/devices/d").status_code == 404
    assert alice.get("/v1/devices/d/contacts").status_code == 404
    assert alice.delete("/v1/devices/d").status_code == 404
    registered_again = alice.register("d")
    assert registered_again["contact_count"] == 0 and registered_again["revision"] == 0
    assert alice.contacts("d")["contacts"] == []


def test_delete_leaves_no_row_of_the_device(alice, database, orphans):
    alice.register("d")
    alice.upsert("d", [
        {"contactId": "c1", "contactEntries": [{"type": "tel", "uri": "+15551230001"}]},
        {"contactId": "c2", "contactEntries": [{"type": "tel", "uri": "+15551230002"}]},
    ])  # fmt: skip
    alice.upsert("d", delete=["c2"])  # a tombstone too
    with database.cursor() as cursor:
        cursor.execute("SELECT pk FROM devices WHERE device_id = 'd' ORDER BY pk DESC LIMIT 1")
        (pk,) = cursor.fetchone()
        counts = "SELECT (SELECT count(*) FROM {0} WHERE device_pk = %s)"
        tables = ("contacts", "contact_numbers", "deleted_contacts")
        cursor.execute(" UNION ALL ".join(counts.format(t) for t in tables), [pk] * 3)
        assert [row[0] for row in cursor.fetchall()] == [1, 1, 1]
        assert alice.delete("/v1/devices/d").status_code == 204
        cursor.execute(" UNION ALL ".join(counts.format(t) for t in tables), [pk] * 3)
        assert [row[0] for row in cursor.fetchall()] == [0, 0, 0]
    assert orphans() == {}


def test_deletes_racing_writes_leave_nothing_behind(alice, orphans):
    """A write holds its device row; a delete of the device waits for it and then removes what
    it wrote, and a write that comes after the delete finds no device (404)."""
    book = [
        {"contactId": f"c{n}", "contactEntries": [{"type": "tel", "uri": f"+1555124{n:04d}"}]}
        for n in range(300)
    ]
    for round_ in range(8):
        device = f"race-{round_}"
        alice.register(device)

        def act(n: int, device=device) -> int:
            client = ContactsClient(alice.base_url, account=alice.account)  # a session each
            try:
                if n == 0:
                    return client.delete(f"/v1/devices/{device}").status_code
                return client.patch_contacts(device, book[n * 50 : n * 50 + 100]).status_code
            finally:
                client.close()

        statuses = in_parallel(4, act)
        assert statuses[0] == 204
        assert set(statuses[1:]) <= {200, 404}
        assert alice.get(f"/v1/devices/{device}").status_code == 404
    assert orphans() == {}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/devices/ghost"),
        ("DELETE", "/v1/devices/ghost"),
        ("GET", "/v1/devices/ghost/contacts"),
        ("GET", "/v1/devices/ghost/checksums"),
        ("GET", "/v1/devices/ghost/smart-contacts"),
        ("PATCH", "/v1/devices/ghost/contacts"),
        ("PUT", "/v1/devices/ghost/contacts"),
    ],
)
def test_unregistered_device_is_404_not_found(alice, method, path):
    body = {"contacts": []} if method == "PUT" else {"upsert": [{"contactId": "x"}]}
    response = alice.request(method, path, json=body if method in ("PUT", "PATCH") else None)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert response.json()["message"]


@pytest.mark.parametrize("device_id", ["nul%00byte", "sp%20ace", "%C3%BC", "x" * 129])
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("DELETE", ""), ("GET", "/contacts"), ("PATCH", "/contacts"),
     ("PUT", "/contacts"), ("GET", "/checksums"), ("GET", "/smart-contacts")],
)  # fmt: skip
def test_device_ids_that_cannot_exist_are_404(alice, device_id, method, suffix):
    body = {"contacts": []} if method == "PUT" else {}
    response = alice.request(method, f"/v1/devices/{device_id}{suffix}", json=body)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_invalid_device_id_on_put_is_a_validation_error(alice):
    for device_id in ("x" * 129, "nul%00byte", "%C3%BC"):
        response = alice.put("/v1/devices/" + device_id)
        assert response.status_code == 422
        assert "device_id" in response.json()["details"]


def test_put_device_with_a_bad_body(alice):
    assert alice.put("/v1/devices/d", data=b"{oops").json()["error"] == "invalid_json"
    assert alice.put("/v1/devices/d", json=[1]).json()["error"] == "invalid_json"
    bad = alice.put("/v1/devices/d", json={"name": 5})
    assert bad.status_code == 422
    assert bad.json()["details"] == {"name": ["Not a valid string."]}
    assert alice.get("/v1/devices/d").status_code == 404


def test_another_accounts_device_answers_exactly_like_a_missing_one(api, alice, new_account):
    mallory = api.as_(new_account(numbers=["+15551239999"]))
    alice.register("shared-name", name="alice's")
    alice.upsert("shared-name", [{"contactId": "secret", "fname": "Hidden"}])
    before = alice.contacts("shared-name")

    for method, path, body in [
        ("GET", "/v1/devices/shared-name", None),
        ("GET", "/v1/devices/shared-name/contacts", None),
        ("GET", "/v1/devices/shared-name/checksums", None),
        ("GET", "/v1/devices/shared-name/smart-contacts", None),
        ("PATCH", "/v1/devices/shared-name/contacts", {"delete": ["secret"]}),
        ("PUT", "/v1/devices/shared-name/contacts", {"contacts": []}),
        ("DELETE", "/v1/devices/shared-name", None),
    ]:
        theirs = mallory.request(method, path, json=body)
        missing = mallory.request(method, path.replace("shared-name", "never-seen"), json=body)
        assert theirs.status_code == missing.status_code == 404, (method, path)
        assert theirs.json() == missing.json()
    assert mallory.get("/v1/devices").json() == {"devices": []}

    # Mallory registering the same device id gets her own, empty device.
    assert mallory.put("/v1/devices/shared-name").status_code == 201
    assert mallory.contacts("shared-name")["contacts"] == []
    assert alice.contacts("shared-name") == before
    assert alice.get("/v1/devices/shared-name").json()["name"] == "alice's"


def test_same_username_in_another_cloud_is_another_account(api, new_account):
    first = api.as_(new_account(username="sameuser"))
    second = api.as_(new_account(username="sameuser", cloud="Other" + first.account.cloud_id))
    first.register("d")
    assert second.get("/v1/devices/d").status_code == 404
    assert second.get("/v1/devices").json() == {"devices": []}


@pytest.mark.parametrize(
    ("body", "status", "error", "field"),
    [
        # \ud800 escapes are JSON by the grammar but not Unicode text: the body is refused.
        ({"name": "\ud800"}, 400, "invalid_json", "body"),
        ({"platform": "a\udfffb"}, 400, "invalid_json", "body"),
        ({"name": "a\x00b"}, 422, "validation_error", "name"),
    ],
)
def test_device_fields_must_be_plain_text(alice, body, status, error, field):
    response = alice.put("/v1/devices/text-check", json=body)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert set(response.json()["details"]) == {field}
    assert alice.get("/v1/devices/text-check").status_code == 404  # nothing was created

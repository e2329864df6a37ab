"""Tenant isolation as a property: random sequences of operations by three accounts (two in one
Cloud ID, one in another), all using the same device ids and contactIds, never reveal or change
another account's data. Each account's every answer matches a model of that account alone,
and Smart Contacts only ever names other accounts of the caller's own Cloud ID."""

from __future__ import annotations

import itertools
import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DEVICES = ("d1", "d2")
CONTACT_IDS = ("c1", "c2", "c3")
KINDS = (
    "register", "delete_device", "patch", "delete_contacts", "put", "read_contacts",
    "read_device", "list_devices", "checksums", "smart",
)  # fmt: skip


@pytest.fixture(scope="module")
def accounts(make_user, hostile_contacts):
    cloud_one, cloud_two = "I" + secrets.token_hex(5), "J" + secrets.token_hex(5)
    users = [
        make_user(cloud_one, ["+15552000001"]),
        make_user(cloud_one, ["+15552000002"]),
        make_user(cloud_two, ["+15552000003"]),
    ]
    clients = [user.client(hostile_contacts) for user in users]
    for client in clients:  # the service learns each account's number
        assert client.request("GET", "/v1/devices").status_code == 200
    return users, clients


operations = st.lists(
    st.tuples(
        st.integers(0, 2),  # actor
        st.sampled_from(KINDS),
        st.sampled_from(DEVICES),
        st.lists(st.sampled_from(CONTACT_IDS), min_size=1, max_size=3, unique=True),
        st.sampled_from(["Ann", "Bob", "Zoë", "x" * 40]),
        st.integers(0, 3),  # whose number the contact holds (3: nobody's)
    ),
    min_size=1,
    max_size=12,
)

_examples = itertools.count()


def contact(contact_id: str, name: str, number: str) -> dict:
    return {
        "contactId": contact_id,
        "displayName": name,
        "contactEntries": [{"entryId": "t", "label": "mobile", "type": "tel", "uri": number}],
    }


@given(ops=operations)
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_operation_of_one_account_reveals_or_changes_another(accounts, ops):
    users, clients = accounts
    prefix = f"x{next(_examples)}-{secrets.token_hex(2)}"
    models: list[dict[str, dict[str, dict]]] = [{}, {}, {}]
    numbers = [user.numbers[0] for user in users] + ["+15552999999"]

    def check_smart(actor: int, smart: dict) -> None:
        allowed = {
            users[i].username
            for i in range(3)
            if i != actor and users[i].cloud_id == users[actor].cloud_id
        }
        for matches in smart.values():
            for match in matches:
                assert match["username"] in allowed, (actor, match)

    def check_book(actor: int, device: str, response) -> None:
        model = models[actor].get(device)
        if model is None:
            assert response.status_code == 404, response.text
            assert response.json()["error"] == "not_found"
            return
        assert response.status_code == 200, response.text
        body = response.json()
        got = {}
        for item in body["contacts"]:
            item = dict(item)
            item.pop("checksum")
            assert item["contactId"] not in got
            got[item["contactId"]] = item
        assert got == model
        check_smart(actor, body["smart"])

    for actor, kind, short_device, ids, name, whose in ops:
        client, model = clients[actor], models[actor]
        device = f"{prefix}-{short_device}"
        path = f"/v1/devices/{device}"
        exists = device in model
        if kind == "register":
            response = client.put_device(device)
            assert response.status_code == (200 if exists else 201), response.text
            model.setdefault(device, {})
        elif kind == "delete_device":
            response = client.request("DELETE", path)
            assert response.status_code == (204 if exists else 404), response.text
            model.pop(device, None)
        elif kind in ("patch", "put", "delete_contacts"):
            upsert = [contact(i, name, numbers[whose]) for i in ids]
            if kind == "patch":
                response = client.patch_contacts(device, upsert=upsert)
            elif kind == "put":
                response = client.put_contacts(device, upsert)
            else:
                response = client.patch_contacts(device, delete=ids)
            assert response.status_code == (200 if exists else 404), response.text
            if exists:
                if kind == "put":
                    model[device] = {c["contactId"]: c for c in upsert}
                elif kind == "patch":
                    model[device].update((c["contactId"], c) for c in upsert)
                else:
                    for contact_id in ids:
                        model[device].pop(contact_id, None)
                assert response.json()["contact_count"] == len(model[device])
        elif kind == "read_contacts":
            check_book(actor, device, client.get_contacts(device))
        elif kind == "read_device":
            response = client.request("GET", path)
            assert response.status_code == (200 if exists else 404), response.text
            if exists:
                assert response.json()["contact_count"] == len(model[device])
        elif kind == "list_devices":
            listed = client.request("GET", "/v1/devices").json()["devices"]
            mine = {d["id"]: d["contact_count"] for d in listed if d["id"].startswith(prefix)}
            assert mine == {d: len(c) for d, c in model.items()}
        elif kind == "checksums":
            response = client.request("GET", path + "/checksums")
            assert response.status_code == (200 if exists else 404), response.text
            if exists:
                assert set(response.json()["checksums"]) == set(model[device])
        elif kind == "smart":
            response = client.request("GET", path + "/smart-contacts")
            assert response.status_code == (200 if exists else 404), response.text
            if exists:
                check_smart(actor, response.json()["smart"])

    # In the end every account sees exactly its own books, whatever the others did.
    for actor in range(3):
        for short_device in DEVICES:
            device = f"{prefix}-{short_device}"
            check_book(actor, device, clients[actor].get_contacts(device))

"""Identifiers match their character class over the whole string (API.md, "Precise rules"):
a trailing newline, a NUL or a lookalike character is not a way around the class, and a
rejected request stores nothing.

- device_id (path): 1-128 of [A-Za-z0-9_.:-]. An invalid one is answered as the service
  always has: PUT /v1/devices/{id} is a 422 validation_error naming `device_id`; every other
  route answers 404 not_found (such a device cannot exist).
- contactId / entryId (body): API.md gives contactId no character class (only 1-256 chars),
  so any Unicode text is an id, lookalikes included, and is kept exactly (never folded);
  control characters (C0, DEL, C1: NUL, TAB, LF, CR, NEL ...) are refused, 422
  validation_error with details keyed by path. Ids in `delete` only need to be storable, so a
  contact stored before this rule can still be deleted.
- cloud_id / username (from introspection): an SSO answer naming an account outside the
  classes is unusable: 503 auth_unavailable, no account row.
"""

from __future__ import annotations

import secrets
import urllib.parse

import psycopg2
import pytest

from contacts_service.checksums import contact_checksum
from tests.support.clients import is_error_shape

BAD_DEVICE_IDS = {
    "trailing-newline": "abc\n",
    "leading-newline": "\nabc",
    "trailing-crlf": "abc\r\n",
    "nul": "abc\x00",
    "tab": "ab\tc",
    "cyrillic-a": "\u0430bc",  # CYRILLIC SMALL LETTER A, then "bc"
    "fullwidth-digits": "device\uff11\uff12",  # FULLWIDTH DIGIT ONE, TWO
    "fullwidth-letters": "\uff41bc",  # FULLWIDTH LATIN SMALL LETTER A
    "too-long": "d" * 129,
}
BAD_IDS = {
    "trailing-newline": "abc\n",
    "leading-newline": "\nabc",
    "cr": "abc\r",
    "nul": "abc\x00",
    "tab": "a\tb",
    "del": "abc\x7f",
    "c1-nel": "abc\x85",
}
LOOKALIKE_IDS = ["\u0430bc", "\uff11\uff12\uff13", "abc\u200b", "e\u0301"]


@pytest.fixture(scope="module")
def user(make_user):
    return make_user(numbers=["+15557770401"])


@pytest.fixture
def phone(user, hostile_contacts):
    """The user's only device "phone", emptied."""
    client = user.client(hostile_contacts)
    for device in client.request("GET", "/v1/devices").json()["devices"]:
        path = "/v1/devices/" + urllib.parse.quote(device["id"], safe="")
        assert client.request("DELETE", path).status_code == 204
    assert client.put_device("phone").status_code == 201
    return client


def device_path(device_id: str, tail: str = "") -> str:
    return "/v1/devices/" + urllib.parse.quote(device_id, safe="") + tail


def assert_nothing_stored(client) -> None:
    devices = client.request("GET", "/v1/devices").json()["devices"]
    assert [(d["id"], d["revision"], d["contact_count"]) for d in devices] == [("phone", 0, 0)]
    assert client.book("phone") == {}


@pytest.mark.parametrize("device_id", BAD_DEVICE_IDS.values(), ids=BAD_DEVICE_IDS.keys())
def test_invalid_device_id_is_422_on_register_and_creates_nothing(phone, device_id):
    response = phone.request("PUT", device_path(device_id), json={"name": "x"})
    assert response.status_code == 422, response.text
    assert is_error_shape(response)
    assert response.json()["error"] == "validation_error"
    assert set(response.json()["details"]) == {"device_id"}
    assert_nothing_stored(phone)


@pytest.mark.parametrize("device_id", BAD_DEVICE_IDS.values(), ids=BAD_DEVICE_IDS.keys())
@pytest.mark.parametrize(
    ("method", "tail", "body"),
    [
        ("GET", "", None),
        ("DELETE", "", None),
        ("GET", "/contacts", None),
        ("GET", "/checksums", None),
        ("GET", "/smart-contacts", None),
        ("PATCH", "/contacts", {"upsert": [{"contactId": "c"}]}),
        ("PUT", "/contacts", {"contacts": [{"contactId": "c"}]}),
    ],
)
def test_invalid_device_id_is_404_elsewhere(phone, device_id, method, tail, body):
    response = phone.request(method, device_path(device_id, tail), json=body)
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"
    assert_nothing_stored(phone)


def test_a_valid_device_id_never_reaches_a_lookalike(phone):
    """The ASCII device and its lookalikes are not one device: "phone\\n" is not "phone"."""
    for lookalike in ("phone\n", "ph\u043ene", "phone\x00"):
        assert phone.request("GET", device_path(lookalike)).status_code == 404
        assert phone.request("DELETE", device_path(lookalike)).status_code == 404
    assert_nothing_stored(phone)


def _entry(entry_id: str) -> dict:
    return {"entryId": entry_id, "type": "tel", "uri": "+15551230001"}


@pytest.mark.parametrize("bad", BAD_IDS.values(), ids=BAD_IDS.keys())
@pytest.mark.parametrize(
    ("method", "body", "path"),
    [
        (
            "PATCH",
            lambda bad: {"upsert": [{"contactId": "ok"}, {"contactId": bad}]},
            "upsert.1.contactId",
        ),
        (
            "PUT",
            lambda bad: {"contacts": [{"contactId": "ok"}, {"contactId": bad}]},
            "contacts.1.contactId",
        ),
        (
            "PATCH",
            lambda bad: {
                "upsert": [{"contactId": "ok", "contactEntries": [_entry("e0"), _entry(bad)]}]
            },
            "upsert.0.contactEntries.1.entryId",
        ),
        (
            "PUT",
            lambda bad: {
                "contacts": [
                    {"contactId": "ok"},
                    {"contactEntries": [_entry(bad)], "contactId": "ok2"},
                ]
            },
            "contacts.1.contactEntries.0.entryId",
        ),
    ],
    ids=["patch-contactId", "put-contactId", "patch-entryId", "put-entryId"],
)
def test_control_characters_in_contact_and_entry_ids_are_422(phone, bad, method, body, path):
    response = phone.request(method, "/v1/devices/phone/contacts", json=body(bad))
    assert response.status_code == 422, response.text
    assert is_error_shape(response)
    assert response.json()["error"] == "validation_error"
    assert list(response.json()["details"]) == [path]
    assert_nothing_stored(phone)


def test_lookalike_contact_and_entry_ids_are_distinct_ids_kept_exactly(phone):
    contacts = [{"contactId": "abc", "contactEntries": [_entry("e1")]}] + [
        {"contactId": cid, "contactEntries": [_entry(cid)]} for cid in LOOKALIKE_IDS
    ]
    response = phone.patch_contacts("phone", upsert=contacts)
    assert response.status_code == 200, response.text
    assert response.json()["upserted"] == len(contacts)
    book = phone.book("phone")
    assert book == {c["contactId"]: {**c, "checksum": contact_checksum(c)} for c in contacts}


def test_delete_matches_the_whole_id(phone):
    """A delete of "abc\\n" is not a delete of "abc" (and, as an unknown id, not an error)."""
    assert phone.patch_contacts("phone", upsert=[{"contactId": "abc"}]).status_code == 200
    response = phone.patch_contacts("phone", delete=["abc\n", "abc ", "\u0430bc"])
    assert response.status_code == 200, response.text
    assert response.json()["deleted"] == 0
    assert list(phone.book("phone")) == ["abc"]


# --------------------------------------------------------------------------- introspection

BAD_ACCOUNTS = {
    "cloud-trailing-newline": ("abc\n", "alice"),
    "cloud-cyrillic": ("\u0430bc", "alice"),
    "cloud-fullwidth": ("C\uff11", "alice"),
    "cloud-nul": ("abc\x00", "alice"),
    "cloud-too-long": ("c" * 65, "alice"),
    "cloud-dots": ("..", "alice"),
    "cloud-empty": ("", "alice"),
    "username-trailing-newline": ("abc", "alice\n"),
    "username-nul": ("abc", "alice\x00x"),
    "username-too-long": ("abc", "u" * 129),
    "username-empty": ("abc", ""),
}


@pytest.mark.parametrize(("cloud_id", "username"), BAD_ACCOUNTS.values(), ids=BAD_ACCOUNTS.keys())
def test_introspected_identifiers_outside_their_class_are_refused(
    introspection_stand_in, stand_in_app, postgres_database, cloud_id, username
):
    # A unique prefix, so the check below sees only this test's rows.
    tag = secrets.token_hex(4)
    cloud_id = cloud_id.replace("abc", "abc" + tag) if "abc" in cloud_id else cloud_id
    username = username.replace("alice", "alice" + tag)
    introspection_stand_in.active(cloud_id, username, ["+15551230001"])
    client = stand_in_app.test_client()
    response = client.put("/v1/devices/phone", headers={"Authorization": "Bearer t"})
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json()["error"] == "auth_unavailable"
    with psycopg2.connect(postgres_database.url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM accounts WHERE cloud_id = %s OR username = %s",
            (cloud_id.replace("\x00", ""), username.replace("\x00", "")),
        )
        assert cursor.fetchone()[0] == 0
    connection.close()


def test_introspected_identifiers_inside_their_class_are_served(
    introspection_stand_in, stand_in_app
):
    cloud_id = "Cloud-1_a." + secrets.token_hex(4)
    introspection_stand_in.active(cloud_id, "Zoë O'Brien " + secrets.token_hex(2), [])
    client = stand_in_app.test_client()
    response = client.put("/v1/devices/phone", headers={"Authorization": "Bearer t"})
    assert response.status_code == 201, response.get_data(as_text=True)

"""Validation of contact batches: paths from the body root, limits, duplicates, unknown keys."""

from __future__ import annotations

import pytest
from flask import Flask

from contacts_service.api import api
from contacts_service.schemas import (
    ChecksumsQuerySchema,
    ContactsQuerySchema,
    DeviceBodySchema,
    DeviceIdSchema,
    PatchContactsSchema,
    PutContactsSchema,
)
from shared.errors import ApiError

PATCH, PUT = PatchContactsSchema(), PutContactsSchema()
load_or_422 = api.load


@pytest.fixture(autouse=True)
def small_limits():
    """An app whose per-contact limits are 3 entries and 400 bytes."""
    app = Flask("schema-test")
    app.config.update(CONTACTS_MAX_ENTRIES_PER_CONTACT=3, CONTACTS_MAX_CONTACT_BYTES=400)
    with app.app_context():
        yield


GOOD = {"contactId": "c1", "displayName": "A", "contactEntries": [{"type": "tel", "uri": "1"}]}


def details(schema, body) -> dict:
    with pytest.raises(ApiError) as caught:
        load_or_422(schema, body)
    assert caught.value.status == 422
    assert caught.value.error == "validation_error"
    return caught.value.details


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ({"upsert": [GOOD, {"contactId": ""}]}, "upsert.1.contactId", "Length must be"),
        ({"upsert": [{"fname": "x"}]}, "upsert.0.contactId", "Missing data"),
        ({"upsert": [{"contactId": 5}]}, "upsert.0.contactId", "Not a valid string."),
        ({"upsert": [{"contactId": "x" * 257}]}, "upsert.0.contactId", "Length must be"),
        (
            {"upsert": [GOOD, GOOD, GOOD, {"contactId": "c", "contactEntries": [{"type": "fax"}]}]},
            "upsert.3.contactEntries.0.type",
            "Must be one of: tel, email, url.",
        ),
        (
            {"upsert": [{"contactId": "c", "contactEntries": [{"type": "tel"}]}]},
            "upsert.0.contactEntries.0.uri",
            "Missing data",
        ),
        (
            {"upsert": [{"contactId": "c", "contactEntries": [{"type": "tel", "uri": 1}]}]},
            "upsert.0.contactEntries.0.uri",
            "Not a valid string.",
        ),
        (
            {"upsert": [{"contactId": "c", "contactEntries": "tel"}]},
            "upsert.0.contactEntries",
            "Not a valid list.",
        ),
        (
            {"upsert": [{"contactId": "c", "contactEntries": ["tel"]}]},
            "upsert.0.contactEntries.0",
            "Invalid input type.",
        ),
        (
            {"upsert": [{"contactId": "c", "contactAddresses": [{"city": 7}]}]},
            "upsert.0.contactAddresses.0.city",
            "Not a valid string.",
        ),
        ({"upsert": [{"contactId": "c", "displayName": 5}]}, "upsert.0.displayName", "string"),
        ({"upsert": [{"contactId": "c", "checksum": 5}]}, "upsert.0.checksum", "string"),
        ({"upsert": [{"contactId": "c", "notes": ["x"]}]}, "upsert.0.notes", "string"),
        ({"upsert": ["c"]}, "upsert.0", "Invalid input type."),
        ({"upsert": {"contactId": "c"}}, "upsert", "Not a valid list."),
        ({"delete": "c"}, "delete", "Not a valid list."),
        ({"delete": [""]}, "delete.0", "Length must be"),
        ({"delete": [5]}, "delete.0", "Not a valid string."),
        ({"upserts": []}, "upserts", "Unknown field."),
        (
            {"upsert": [GOOD, GOOD]},
            "upsert.1.contactId",
            "This contactId appears more than once in upsert.",
        ),
        (
            {"upsert": [GOOD], "delete": ["x", "c1"]},
            "delete.1",
            "This contactId is both upserted and deleted.",
        ),
        (
            {"upsert": [{"contactId": "c", "contactEntries": [{"type": "tel", "uri": "1"}] * 4}]},
            "upsert.0.contactEntries",
            "at most 3 entries",
        ),
        ({"upsert": [{"contactId": "c", "notes": "n" * 400}]}, "upsert.0", "at most 400 bytes"),
        ({"upsert": [{"contactId": "a\x00b"}]}, "upsert.0.contactId", "U+0000"),
        ({"upsert": [{"contactId": "a", "checksum": "\x00"}]}, "upsert.0.checksum", "U+0000"),
        (
            {
                "upsert": [
                    {
                        "contactId": "a",
                        "contactEntries": [{"entryId": "\x00", "type": "tel", "uri": "1"}],
                    }
                ]
            },
            "upsert.0.contactEntries.0.entryId",
            "U+0000",
        ),
        ({"delete": ["\x00"]}, "delete.0", "U+0000"),
    ],
)
def test_patch_validation_table(body, path, message):
    found = details(PATCH, body)
    assert path in found, found
    assert any(message in text for text in found[path]), found


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, "contacts"),
        ({"contacts": [GOOD, {"contactId": "c", "contactEntries": [{"type": "x", "uri": "1"}]}]},
         "contacts.1.contactEntries.0.type"),
        ({"contacts": [GOOD, GOOD]}, "contacts.1.contactId"),
        ({"contacts": [GOOD], "upsert": []}, "upsert"),
    ],
)  # fmt: skip
def test_put_validation_table(body, path):
    assert path in details(PUT, body)


def test_valid_contacts_pass_through_untouched():
    contact = {"zeta": {"b": 1, "a": None}, "contactId": "c1", "displayName": None, "x": [1]}
    loaded = load_or_422(PATCH, {"upsert": [contact], "delete": ["c2"]})
    assert loaded["upsert"][0] is contact
    assert list(loaded["upsert"][0]) == ["zeta", "contactId", "displayName", "x"]
    assert loaded["delete"] == ["c2"]
    assert load_or_422(PATCH, {}) == {"upsert": [], "delete": []}


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ({"blocks": "0"}, "blocks"),
        ({"blocks": "17"}, "blocks"),
        ({"blocks": "x"}, "blocks"),
        ({"block": "0"}, "block"),
        ({"blocks": "4", "block": "10"}, "block"),
        ({"blocks": "8", "block": "g0"}, "block"),
        ({"blocks": "1", "block": "2"}, "block"),
    ],
)
def test_checksums_query_table(query, path):
    assert path in details(ChecksumsQuerySchema(), query)


def test_checksums_query_accepts_valid_blocks():
    assert load_or_422(ChecksumsQuerySchema(), {"blocks": "12", "block": "0aF"}) == {
        "blocks": 12,
        "block": "0aF",
    }


@pytest.mark.parametrize("since", ["-1", "x", "1.5"])
def test_since_must_be_a_revision(since):
    assert "since" in details(ContactsQuerySchema(), {"since": since})


@pytest.mark.parametrize("device_id", ["", "a/b", "a b", "x" * 129, "ü"])
def test_device_ids(device_id):
    assert "device_id" in details(DeviceIdSchema(), {"device_id": device_id})


def test_device_body_fields_are_optional_strings():
    assert load_or_422(DeviceBodySchema(), {}) == {}
    assert load_or_422(DeviceBodySchema(), {"name": None, "other": 1}) == {"name": None}
    assert "name" in details(DeviceBodySchema(), {"name": 5})

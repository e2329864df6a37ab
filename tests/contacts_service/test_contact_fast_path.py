"""One definition of a valid contact: the upload fast path and the schema agree on every body,
valid or not — same status, same error code, same `details` (a Hypothesis differential test),
and a valid contact passes through as the very object that was uploaded."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import fields

from contacts_service.api import api
from contacts_service.schemas import (
    ContactField,
    ContactSchema,
    PatchContactsSchema,
    PutContactsSchema,
)
from shared.errors import ApiError


class ReferencePatch(PatchContactsSchema):
    upsert = fields.List(ContactField(ContactSchema, fast=False), load_default=list)


class ReferencePut(PutContactsSchema):
    contacts = fields.List(ContactField(ContactSchema, fast=False), required=True)


@pytest.fixture(scope="module")
def app():
    app = Flask("fast-path-test")
    # Small limits, so random contacts cross them.
    app.config.update(CONTACTS_MAX_ENTRIES_PER_CONTACT=3, CONTACTS_MAX_CONTACT_BYTES=300)
    return app


def outcome(schema, body):
    try:
        return ("loaded", api.load(schema, body))
    except ApiError as exc:
        return (exc.status, exc.error, exc.details)


# Mostly valid contacts with one part made wrong: a disagreement hides in the one rule the
# fast path might skip, so every other part must pass for it to show.
control = st.characters(max_codepoint=0x9F)
plain = st.characters(blacklist_categories=("Cc", "Cs"))  # no control characters
names = st.none() | st.text(plain, max_size=5)
valid_entries = st.fixed_dictionaries(
    {"type": st.sampled_from(["tel", "email", "url"]), "uri": st.text(max_size=8)},
    optional={"entryId": names, "label": names, "extra": names},
)
valid_contacts = st.fixed_dictionaries(
    {"contactId": st.text(plain, min_size=1, max_size=8)},
    optional={
        "checksum": st.text(plain, min_size=1, max_size=8),
        "fname": names,
        "notes": st.text(max_size=40),
        "contactEntries": st.lists(valid_entries, max_size=3),
        "contactAddresses": st.lists(
            st.fixed_dictionaries({}, optional={"city": names}), max_size=2
        ),
        "unknownKey": names | st.integers(),
    },
)
bad_text = st.sampled_from(
    ["", "a\x00b", "\t", "id\n", "\x85", "\x7f", "x" * 257, "tel", "TEL", "fax"]
) | st.text(alphabet=control, min_size=1, max_size=3)
bad_types = st.one_of(
    st.integers(),
    st.none(),
    st.booleans(),
    st.lists(st.text(max_size=1), max_size=1),
    st.dictionaries(st.text(max_size=1), st.none(), max_size=1),
)
bad = bad_text | bad_types
PLACES = [
    ("contactId",), ("checksum",), ("fname",), ("displayName",), ("contactEntries",),
    ("contactAddresses",), ("contactEntries", "entryId"), ("contactEntries", "type"),
    ("contactEntries", "uri"), ("contactEntries", "label"), ("contactAddresses", "city"),
    ("notes",),
]  # fmt: skip


def spoil(contact: dict, place: tuple, value) -> dict:
    contact = json.loads(json.dumps(contact))
    if len(place) == 1:
        contact[place[0]] = value
    elif contact.get(place[0]):
        contact[place[0]][0][place[1]] = value
    else:
        contact[place[0]] = [{"type": "tel", "uri": "1", place[1]: value}]
    return contact


spoiled = st.builds(spoil, valid_contacts, st.sampled_from(PLACES), bad)
contacts = st.one_of(valid_contacts, spoiled, spoiled, spoiled, bad)
ids = st.text(max_size=6) | bad


@settings(max_examples=600, deadline=None)
@given(
    st.fixed_dictionaries(
        {}, optional={"upsert": st.lists(contacts, max_size=4) | bad, "delete": st.lists(ids)}
    )
)
def test_patch_fast_path_and_schema_agree(app, body):
    with app.app_context():
        assert outcome(PatchContactsSchema(), body) == outcome(ReferencePatch(), body)


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({"contacts": st.lists(contacts, max_size=4) | bad}))
def test_put_fast_path_and_schema_agree(app, body):
    with app.app_context():
        assert outcome(PutContactsSchema(), body) == outcome(ReferencePut(), body)


BASE = {
    "contactId": "c1",
    "checksum": "abc",
    "fname": "Ann",
    "contactEntries": [{"entryId": "e1", "type": "tel", "uri": "+15551230001", "label": "m"}],
    "contactAddresses": [{"city": "Prague"}],
}
BAD_VALUES = [
    "", "a\x00b", "\t", "id\n", "\x85", "\x7f", "x" * 257, "x" * 400, "tel", "fax", 1, None,
    True, [], {}, ["x"],
]  # fmt: skip


@pytest.mark.parametrize("place", PLACES, ids=".".join)
@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
def test_every_rule_is_judged_alike(app, place, value):
    """Each part of a valid contact made wrong in each way: one table, every rule reached."""
    body = {"upsert": [spoil(BASE, place, value)]}
    with app.app_context():
        assert outcome(PatchContactsSchema(), body) == outcome(ReferencePatch(), body)


@pytest.mark.parametrize(
    "contact",
    [
        {"contactId": "a\tb"},
        {"contactId": "ok", "checksum": "a\x00"},
        {"contactId": "ok", "contactEntries": [{"type": "tel", "uri": "1", "entryId": "\n"}]},
        {"contactId": "ok", "contactEntries": [{"type": "tel", "uri": "1"}] * 4},
        {"contactId": "ok", "notes": "n" * 300},
    ],
)
def test_what_the_schema_refuses_the_fast_path_refuses(app, contact):
    with app.app_context():
        assert outcome(PatchContactsSchema(), {"upsert": [contact]})[0] == 422


def nested(depth: int) -> dict:
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return {"contactId": "deep", "x": value}


@pytest.mark.parametrize(("depth", "status"), [(31, "loaded"), (32, 422), (900, 422)])
def test_nesting_has_one_fixed_limit(app, depth, status):
    """The contact object is one level, so 31 nested arrays inside it make 32 levels."""
    body = {"upsert": [nested(depth)]}
    with app.app_context():
        fast, reference = outcome(PatchContactsSchema(), body), outcome(ReferencePatch(), body)
    assert fast == reference
    assert fast[0] == status


def test_a_valid_contact_is_the_uploaded_object(app):
    contact = {"zeta": {"b": 1}, "contactId": "c1", "displayName": None}
    with app.app_context():
        _, loaded = outcome(PatchContactsSchema(), {"upsert": [contact]})
    assert loaded["upsert"][0] is contact

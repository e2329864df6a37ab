"""Marshmallow schemas of the Contacts service: request bodies and queries, and the answers the
OpenAPI document describes.

One definition of a valid contact: the rule functions below are what both the schema and the
upload fast path apply (tests/contacts_service/test_contact_fast_path.py checks they agree on
random bodies). Validation never rewrites a contact: the view stores the object exactly as it
was parsed, so unknown keys and key order survive. Text is already valid Unicode here (the
body reader refuses unpaired surrogates), so these rules only add what each field needs.
"""

from __future__ import annotations

import re
from typing import BinaryIO

from flask import current_app, has_app_context
from marshmallow import (
    EXCLUDE,
    INCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from contacts_service import json_numbers
from contacts_service.checksums import MAX_BITS, parse_block_id
from contacts_service.upload import load_upload, value_cap
from shared import text
from shared.errors import ApiError
from shared.text import validator

# Identifiers are matched over the whole string (fullmatch): `$` would also match before a
# trailing newline, so "abc\n" would pass.
DEVICE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
DEVICE_ID_PARAMETER = {"type": "string", "pattern": r"^[A-Za-z0-9_.:-]{1,128}$"}
ENTRY_TYPES = ("tel", "email", "url")

# The Acrobits Contacts JSON keys that hold one string each (null is accepted as "not set").
ACROBITS_STRING_KEYS = (
    "displayName",
    "fname",
    "mname",
    "lname",
    "fnamePhonetic",
    "mnamePhonetic",
    "lnamePhonetic",
    "nick",
    "namePrefix",
    "nameSuffix",
    "company",
    "departmentName",
    "jobTitle",
    "birthday",
    "notes",
    "avatar",
    "largeAvatar",
    "street",
    "city",
    "state",
    "zip",
    "country",
    "countryCode",
)
ADDRESS_STRING_KEYS = ("label", "type", "street", "city", "state", "zip", "country", "countryCode")

# The app's per-contact limits live in its config (set from CONTACTS_MAX_ENTRIES_PER_CONTACT
# and CONTACTS_MAX_CONTACT_BYTES by the app factory); these are the defaults.
MAX_ENTRIES = 500
MAX_CONTACT_BYTES = 65_536
MAX_CONTACTS = 50_000
# JSON nesting inside one contact: deep enough for any address book, and a fixed rule (Python's
# recursion limit would otherwise decide, differently in the schema and the fast path).
MAX_DEPTH = 32


def contact_limits() -> tuple[int, int]:
    """(entries per contact, bytes of JSON per contact) of the current app."""
    if not has_app_context():
        return MAX_ENTRIES, MAX_CONTACT_BYTES
    config = current_app.config
    return (
        config.get("CONTACTS_MAX_ENTRIES_PER_CONTACT", MAX_ENTRIES),
        config.get("CONTACTS_MAX_CONTACT_BYTES", MAX_CONTACT_BYTES),
    )


def contacts_limit() -> int:
    """Contacts one device may hold (CONTACTS_MAX_CONTACTS_PER_DEVICE) in the current app."""
    if not has_app_context():
        return MAX_CONTACTS
    return current_app.config.get("CONTACTS_MAX_CONTACTS_PER_DEVICE", MAX_CONTACTS)


def valid_device_id(value: str) -> bool:
    return DEVICE_ID.fullmatch(value) is not None


def device_id_problem(value: str) -> str | None:
    return None if valid_device_id(value) else "1-128 characters of A-Z a-z 0-9 _ . : -"


# --- the rules of a valid contact ------------------------------------------------------------
#
# contactId / entryId: API.md gives no character class, only "1-256 chars"; any Unicode text is
# an id (no folding: fullwidth U+FF11 and "1" are two ids) except control characters (C0, DEL,
# C1). contactIds frame the block-checksum lines (contactId TAB checksum LF), and a TAB or LF
# inside an id would make two different blocks hash alike.


def _length(value: str, low: int, high: int) -> str | None:
    if not low <= len(value) <= high:
        return f"Length must be between {low} and {high}."
    return None


def contact_id_problem(value: str) -> str | None:
    return _length(value, 1, 256) or text.control_characters(value)


def checksum_problem(value: str) -> str | None:
    # Stored in a column of its own: PostgreSQL text cannot hold U+0000.
    return _length(value, 1, 256) or text.storable_text(value)


def entry_id_problem(value: str) -> str | None:
    return text.control_characters(value)


def too_deep(value: object, limit: int = MAX_DEPTH) -> bool:
    """True when arrays and objects nest more than `limit` levels. Level by level, following
    only containers: a usual contact is three short levels (contact, entries, entry), so this
    stays cheap on a 50,000-contact upload."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        if depth >= limit:
            return True
        deeper = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            deeper.extend(child for child in children if isinstance(child, dict | list))
        level, depth = deeper, depth + 1
    return False


def contact_size(contact: dict) -> int:
    """Bytes of the contact as compact UTF-8 JSON (ValueError for NaN, RecursionError for
    absurd nesting)."""
    return len(
        json_numbers.dumps(
            contact, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
    )


def _optional_string(**kwargs) -> fields.String:
    return fields.String(allow_none=True, **kwargs)


_NO_CONTROL = {"pattern": text.NO_CONTROL_PATTERN}


class ContactEntrySchema(Schema):
    """One entry of `contactEntries`: a phone number, e-mail address or URL."""

    class Meta:
        unknown = INCLUDE

    entryId = _optional_string(validate=validator(entry_id_problem), metadata=_NO_CONTROL)
    label = _optional_string()
    type = fields.String(required=True, validate=validate.OneOf(ENTRY_TYPES))
    uri = fields.String(required=True)


class ContactAddressSchema(
    Schema.from_dict({key: _optional_string() for key in ADDRESS_STRING_KEYS})
):
    """One item of `contactAddresses`; unknown keys are kept."""

    class Meta:
        unknown = INCLUDE


class ContactSchema(Schema.from_dict({key: _optional_string() for key in ACROBITS_STRING_KEYS})):
    """An Acrobits Contacts JSON contact; unknown keys are kept as they are."""

    class Meta:
        unknown = INCLUDE

    contactId = fields.String(
        required=True,
        validate=validator(contact_id_problem),
        metadata={**_NO_CONTROL, "minLength": 1, "maxLength": 256},
    )
    checksum = fields.String(
        validate=validator(checksum_problem),
        metadata={"pattern": text.NO_NUL_PATTERN, "minLength": 1, "maxLength": 256},
    )
    contactEntries = fields.List(fields.Nested(ContactEntrySchema))
    contactAddresses = fields.List(fields.Nested(ContactAddressSchema))

    @validates_schema(pass_original=True)
    def _limits(self, data, original, **kwargs):
        max_entries, max_bytes = contact_limits()
        entries = original.get("contactEntries") or []
        if len(entries) > max_entries:
            raise ValidationError(f"A contact has at most {max_entries} entries.", "contactEntries")
        if too_deep(original):
            raise ValidationError(
                f"A contact nests at most {MAX_DEPTH} levels of arrays and objects.", "_schema"
            )
        try:
            size = contact_size(original)
        except ValueError:
            raise ValidationError("NaN and Infinity are not JSON numbers.", "_schema") from None
        if size > max_bytes:
            raise ValidationError(
                f"A contact is at most {max_bytes} bytes of JSON; this one is {size}.", "_schema"
            )


# --- the fast path ---------------------------------------------------------------------------


def _optional_strings(mapping: dict, keys: frozenset) -> bool:
    # Over the object's own keys (a handful), not over every key the schema knows (dozens).
    for key, value in mapping.items():
        if value is not None and key in keys and not isinstance(value, str):
            return False
    return True


_CONTACT_STRINGS = frozenset(ACROBITS_STRING_KEYS)
_ENTRY_STRINGS = frozenset(("entryId", "label"))
_ADDRESS_STRINGS = frozenset(ADDRESS_STRING_KEYS)


def plainly_valid(contact: object, max_entries: int, max_bytes: int) -> bool:
    """True when `contact` passes ContactSchema; False means "ask marshmallow", which then
    reports what is wrong. The same rule functions as the schema, without building a Python
    object per field, for uploads of 50,000 contacts."""
    return plain_text(contact, max_entries, max_bytes) is not None


def plain_text(contact: object, max_entries: int, max_bytes: int) -> str | None:
    """The compact JSON text of `contact` when it plainly passes ContactSchema (see
    plainly_valid), else None. The text is what the size rule measures, and what an upload
    stores, so it is serialised once."""
    if not isinstance(contact, dict):
        return None
    contact_id = contact.get("contactId")
    if not isinstance(contact_id, str) or contact_id_problem(contact_id):
        return None
    if "checksum" in contact:
        checksum = contact["checksum"]
        if not isinstance(checksum, str) or checksum_problem(checksum):
            return None
    if not _optional_strings(contact, _CONTACT_STRINGS):
        return None
    entries = contact.get("contactEntries", [])
    if not isinstance(entries, list) or len(entries) > max_entries:
        return None
    for entry in entries:
        if (
            not isinstance(entry, dict)
            or entry.get("type") not in ENTRY_TYPES
            or not isinstance(entry.get("uri"), str)
            or not _optional_strings(entry, _ENTRY_STRINGS)
        ):
            return None
        entry_id = entry.get("entryId")
        if entry_id is not None and entry_id_problem(entry_id):
            return None
    addresses = contact.get("contactAddresses", [])
    if not isinstance(addresses, list):
        return None
    for address in addresses:
        if not isinstance(address, dict) or not _optional_strings(address, _ADDRESS_STRINGS):
            return None
    try:
        text_ = json_numbers.dumps(
            contact, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except (ValueError, RecursionError):
        # NaN, or nesting deeper than the encoder's recursion allows (the C decoder takes
        # somewhat deeper): not plainly valid, so the schema's depth rule decides (422).
        return None
    # Nesting can be no deeper than the number of brackets: most contacts have a handful, so
    # the exact (slower) walk only runs for the rare contact that could be too deep.
    if text_.count("[") + text_.count("{") > MAX_DEPTH and too_deep(contact):
        return None
    if len(text_) > max_bytes or len(text_.encode()) > max_bytes:  # chars ≤ bytes: cheap first
        return None
    return text_


class ContactField(fields.Nested):
    """A contact in a batch: valid ones pass through untouched (same object, same key order);
    `fast=False` always asks the schema (the differential test's reference)."""

    def __init__(self, *args, fast: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fast = fast

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        if self.fast and plainly_valid(value, *contact_limits()):
            return value
        super()._deserialize(value, attr, data, partial=partial, **kwargs)
        return value


def _duplicates(ids: list[str]) -> list[int]:
    seen: set[str] = set()
    positions = []
    for position, contact_id in enumerate(ids):
        if contact_id in seen:
            positions.append(position)
        seen.add(contact_id)
    return positions


def _refuse_overlong(data: object, key: str) -> None:
    """More contacts (or ids) than a device may hold can never be applied: refused before a
    single item is validated, so a small gzip body of a million items costs nothing."""
    items = data.get(key) if isinstance(data, dict) else None
    limit = contacts_limit()
    if isinstance(items, list) and len(items) > limit:
        raise _too_many(key, limit, f"{len(items)}")


def _too_many(key: str, limit: int, listed: str) -> ApiError:
    return ApiError(
        422,
        "too_many_contacts",
        f"A device holds at most {limit} contacts; this request lists {listed}.",
        {key: [f"At most {limit} items."]},
    )


_UPLOADED_CONTACT = ContactField(ContactSchema)


def _load_upload(schema: Schema, body: bytes | BinaryIO, key: str) -> dict:
    """`schema.load` of a JSON body, except that the contacts under `key` come back as
    PreparedContacts, each parsed and reduced on its own (contacts_service/upload.py)."""
    limit = contacts_limit()
    max_entries, max_bytes = contact_limits()
    return load_upload(
        body,
        schema,
        key,
        _UPLOADED_CONTACT,
        limit,
        lambda which: _too_many(which, limit, f"more than {limit}"),
        lambda contact: plain_text(contact, max_entries, max_bytes),
        value_cap(max_bytes),
    )


class PatchContactsSchema(Schema):
    """PATCH body: contacts to create or replace, and contactIds to delete, in one transaction."""

    class Meta:
        unknown = RAISE

    @pre_load
    def _not_too_long(self, data, **kwargs):
        _refuse_overlong(data, "upsert")
        _refuse_overlong(data, "delete")
        return data

    upsert = fields.List(ContactField(ContactSchema), load_default=list)
    # Ids to delete only need to be storable: a contact stored before control characters were
    # refused in contactIds can still be deleted (deleting an unknown id is not an error).
    delete = fields.List(
        fields.String(
            validate=[validate.Length(min=1, max=256), validator(text.storable_text)],
            metadata={"pattern": text.NO_NUL_PATTERN},
        ),
        load_default=list,
    )

    def load_json_body(self, body: bytes | BinaryIO) -> dict:
        return _load_upload(self, body, "upsert")

    @validates_schema
    def _unique_ids(self, data, **kwargs):
        upsert_ids = [contact["contactId"] for contact in data["upsert"]]
        errors: dict = {}
        for position in _duplicates(upsert_ids):
            errors.setdefault("upsert", {})[position] = {
                "contactId": ["This contactId appears more than once in upsert."]
            }
        upserted = set(upsert_ids)
        for position, contact_id in enumerate(data["delete"]):
            if contact_id in upserted:
                errors.setdefault("delete", {})[position] = [
                    "This contactId is both upserted and deleted."
                ]
        if errors:
            raise ValidationError(errors)


class PutContactsSchema(Schema):
    """PUT body: the device's complete address book."""

    class Meta:
        unknown = RAISE

    @pre_load
    def _not_too_long(self, data, **kwargs):
        _refuse_overlong(data, "contacts")
        return data

    contacts = fields.List(ContactField(ContactSchema), required=True)

    def load_json_body(self, body: bytes | BinaryIO) -> dict:
        return _load_upload(self, body, "contacts")

    @validates_schema
    def _unique_ids(self, data, **kwargs):
        ids = [contact["contactId"] for contact in data["contacts"]]
        errors = {
            position: {"contactId": ["This contactId appears more than once in contacts."]}
            for position in _duplicates(ids)
        }
        if errors:
            raise ValidationError({"contacts": errors})


class DeviceBodySchema(Schema):
    """PUT /v1/devices/{id} body; every field optional, the body itself too."""

    class Meta:
        unknown = EXCLUDE

    name = fields.String(
        allow_none=True,
        validate=[validate.Length(max=256), validator(text.storable_text)],
        metadata={"pattern": text.NO_NUL_PATTERN},
    )
    platform = fields.String(
        allow_none=True,
        validate=[validate.Length(max=64), validator(text.storable_text)],
        metadata={"pattern": text.NO_NUL_PATTERN},
    )


class DeviceIdSchema(Schema):
    """A device_id from a path, where an invalid one is a 422 (registration); elsewhere a
    device with an invalid id cannot exist, so it is a 404."""

    device_id = fields.String(required=True, validate=validator(device_id_problem))


class ChecksumsQuerySchema(Schema):
    """Query of GET .../checksums: no parameters, ?blocks=<bits>, or ?blocks=<bits>&block=<id>."""

    class Meta:
        unknown = EXCLUDE

    blocks = fields.Integer(
        strict=False,
        validate=validate.Range(min=1, max=MAX_BITS),
        metadata={"description": "Group contacts by the top `blocks` bits of SHA-256(contactId)."},
    )
    block = fields.String(
        metadata={
            "description": "Only with blocks: one block id, ceil(blocks/4) hex digits.",
            "pattern": "^[0-9a-fA-F]{1,4}$",
        }
    )

    @validates_schema
    def _block_needs_bits(self, data, **kwargs):
        if "block" not in data:
            return
        if "blocks" not in data:
            raise ValidationError("block needs blocks=<bits>.", "block")
        if parse_block_id(data["block"], data["blocks"]) is None:
            width = (data["blocks"] + 3) // 4
            raise ValidationError(
                f"Must be a block id of {width} hex digit(s) below {1 << data['blocks']:x}.",
                "block",
            )


class ContactsQuerySchema(Schema):
    """Query of GET .../contacts: optional ?since=<revision>."""

    class Meta:
        unknown = EXCLUDE

    since = fields.Integer(
        strict=False,
        validate=validate.Range(min=0),
        metadata={"description": "Only what changed after this revision."},
    )


# --- answers (the OpenAPI document) ----------------------------------------------------------


class DeviceSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(allow_none=True)
    platform = fields.String(allow_none=True)
    contact_count = fields.Integer(required=True)
    revision = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class DeviceListSchema(Schema):
    devices = fields.List(fields.Nested(DeviceSchema), required=True)


class WriteResultSchema(Schema):
    revision = fields.Integer(required=True)
    upserted = fields.Integer(required=True)
    unchanged = fields.Integer(required=True)
    deleted = fields.Integer(required=True)
    contact_count = fields.Integer(required=True)


class SmartMatchSchema(Schema):
    entryId = fields.String(allow_none=True)
    number = fields.String(required=True, metadata={"description": "E.164"})
    username = fields.String(required=True)
    sip_uri = fields.String(allow_none=True)


def _smart_map(**kwargs) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Nested(SmartMatchSchema)),
        required=True,
        metadata={"description": "contactId → matches; contacts without a match have no key."},
        **kwargs,
    )


class SmartSchema(Schema):
    smart = _smart_map()


class ContactsSchema(Schema):
    revision = fields.Integer(required=True)
    contacts = fields.List(fields.Nested(ContactSchema), required=True)
    deleted = fields.List(fields.String(), metadata={"description": "Only with ?since="})
    smart = _smart_map()


class ChecksumsSchema(Schema):
    revision = fields.Integer(required=True)
    checksums = fields.Dict(keys=fields.String(), values=fields.String())
    bits = fields.Integer()
    blocks = fields.Dict(keys=fields.String(), values=fields.String())

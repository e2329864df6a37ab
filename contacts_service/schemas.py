"""Marshmallow schemas: request validation, and the response shapes the OpenAPI spec documents.

Validation never rewrites a contact: the view validates with these schemas and stores the object
exactly as it was parsed, so unknown keys and key order survive (see models.Contact).
"""

from __future__ import annotations

import json
import re

from marshmallow import (
    EXCLUDE,
    INCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from contacts_service.checksums import MAX_BITS, parse_block_id
from shared.errors import ApiError, flatten_validation_messages

# Identifiers are matched over the whole string: \A...\Z, and callers use fullmatch (`$`
# would also match before a trailing newline, so "abc\n" would pass).
DEVICE_ID = re.compile(r"\A[A-Za-z0-9_.:-]{1,128}\Z")
# contactId / entryId: API.md gives no character class, only "1-256 chars"; any Unicode text
# is an id (no folding: fullwidth U+FF11 and "1" are two ids) except control characters
# (C0, DEL, C1). Those are refused: contactIds frame the block-checksum lines
# (contactId TAB checksum LF), and a TAB or LF inside an id would make two different blocks
# hash alike.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
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


# For the OpenAPI document: what _storable_text and _identifier_text enforce, as JSON Schema
# patterns.
_NO_NUL = {"pattern": "^[^\\u0000]*$"}
_NO_CONTROL = {"pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}


def _storable_text(value: str) -> None:
    # PostgreSQL text cannot hold U+0000 or unpaired surrogates; inside a contact's JSON they
    # are stored escaped, but values kept in their own columns (ids, checksums, names) must be
    # plain Unicode text.
    if "\x00" in value:
        raise ValidationError("Must not contain the character U+0000.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("Contains an unpaired surrogate.") from None


def _identifier_text(value: str) -> None:
    """contactId and entryId: storable text without control characters (see above)."""
    _storable_text(value)
    character = CONTROL_CHARACTERS.search(value)
    if character is not None:
        raise ValidationError(
            f"Must not contain control characters (found U+{ord(character.group()):04X})."
        )


def _optional_string(**kwargs) -> fields.String:
    return fields.String(allow_none=True, **kwargs)


class ContactEntrySchema(Schema):
    """One entry of `contactEntries`: a phone number, e-mail address or URL."""

    class Meta:
        unknown = INCLUDE

    entryId = _optional_string(validate=_identifier_text, metadata=_NO_CONTROL)
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
        validate=[validate.Length(min=1, max=256), _identifier_text],
        metadata=_NO_CONTROL,
    )
    checksum = fields.String(
        validate=[validate.Length(min=1, max=256), _storable_text], metadata=_NO_NUL
    )
    contactEntries = fields.List(fields.Nested(ContactEntrySchema))
    contactAddresses = fields.List(fields.Nested(ContactAddressSchema))

    # Overridden per app by build_write_schemas() from the CONTACTS_MAX_* settings.
    max_entries = 500
    max_bytes = 65_536

    @validates_schema(pass_original=True)
    def _limits(self, data, original, **kwargs):
        entries = original.get("contactEntries") or []
        if len(entries) > self.max_entries:
            raise ValidationError(
                f"A contact has at most {self.max_entries} entries.", "contactEntries"
            )
        try:
            size = _size_of(original)
        except RecursionError:
            raise ValidationError("The contact is nested too deeply.", "_schema") from None
        except ValueError:
            raise ValidationError("NaN and Infinity are not JSON numbers.", "_schema") from None
        if size > self.max_bytes:
            raise ValidationError(
                f"A contact is at most {self.max_bytes} bytes of JSON; this one is {size}.",
                "_schema",
            )


def _size_of(contact: dict) -> int:
    text = json.dumps(contact, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # surrogatepass: unpaired surrogates are reported as invalid text later, not crash here.
    return len(text.encode("utf-8", "surrogatepass"))


def _optional_strings(mapping: dict, keys) -> bool:
    for key in keys:
        value = mapping.get(key)
        if value is not None and not isinstance(value, str):
            return False
    return True


def _plainly_valid(contact, schema_class) -> bool:
    """True when `contact` obviously passes `schema_class`; False means "ask marshmallow".

    Only a fast path for the common case of a valid upload: it accepts a subset of what the
    schema accepts, and anything it is unsure about is validated (and reported) by marshmallow.
    """
    if not isinstance(contact, dict):
        return False
    contact_id = contact.get("contactId")
    if (
        not isinstance(contact_id, str)
        or not 1 <= len(contact_id) <= 256
        or CONTROL_CHARACTERS.search(contact_id)
    ):
        return False
    if "checksum" in contact:
        checksum = contact["checksum"]
        if not isinstance(checksum, str) or not 1 <= len(checksum) <= 256 or "\x00" in checksum:
            return False
    if not _optional_strings(contact, ACROBITS_STRING_KEYS):
        return False
    entries = contact.get("contactEntries", [])
    if not isinstance(entries, list) or len(entries) > schema_class.max_entries:
        return False
    for entry in entries:
        if (
            not isinstance(entry, dict)
            or entry.get("type") not in ENTRY_TYPES
            or not isinstance(entry.get("uri"), str)
            or not _optional_strings(entry, ("entryId", "label"))
            or CONTROL_CHARACTERS.search(entry.get("entryId") or "")
        ):
            return False
    addresses = contact.get("contactAddresses", [])
    if not isinstance(addresses, list):
        return False
    for address in addresses:
        if not isinstance(address, dict) or not _optional_strings(address, ADDRESS_STRING_KEYS):
            return False
    try:
        return _size_of(contact) <= schema_class.max_bytes
    except (RecursionError, ValueError):
        return False


class ContactField(fields.Nested):
    """A contact in a batch: valid ones pass through untouched (same object, same key order)."""

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        if _plainly_valid(value, type(self.schema)):
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


class PatchContactsSchema(Schema):
    """PATCH body: contacts to create or replace, and contactIds to delete, in one transaction."""

    class Meta:
        unknown = RAISE

    upsert = fields.List(ContactField(ContactSchema), load_default=list)
    # Ids to delete only need to be storable: a contact stored before control characters were
    # refused in contactIds can still be deleted (deleting an unknown id is not an error).
    delete = fields.List(
        fields.String(validate=[validate.Length(min=1, max=256), _storable_text], metadata=_NO_NUL),
        load_default=list,
    )

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

    contacts = fields.List(ContactField(ContactSchema), required=True)

    @validates_schema
    def _unique_ids(self, data, **kwargs):
        ids = [contact["contactId"] for contact in data["contacts"]]
        errors = {
            position: {"contactId": ["This contactId appears more than once in contacts."]}
            for position in _duplicates(ids)
        }
        if errors:
            raise ValidationError({"contacts": errors})


def build_write_schemas(
    max_entries: int, max_bytes: int
) -> tuple[PatchContactsSchema, PutContactsSchema]:
    """PATCH and PUT body schemas enforcing this deployment's per-contact limits."""

    class LimitedContactSchema(ContactSchema):
        pass

    LimitedContactSchema.max_entries = max_entries
    LimitedContactSchema.max_bytes = max_bytes

    class LimitedPatchSchema(PatchContactsSchema):
        upsert = fields.List(ContactField(LimitedContactSchema), load_default=list)

    class LimitedPutSchema(PutContactsSchema):
        contacts = fields.List(ContactField(LimitedContactSchema), required=True)

    return LimitedPatchSchema(), LimitedPutSchema()


class DeviceBodySchema(Schema):
    """PUT /v1/devices/{id} body; every field optional, the body itself too."""

    class Meta:
        unknown = EXCLUDE

    name = fields.String(
        allow_none=True, validate=[validate.Length(max=256), _storable_text], metadata=_NO_NUL
    )
    platform = fields.String(
        allow_none=True, validate=[validate.Length(max=64), _storable_text], metadata=_NO_NUL
    )


class DeviceIdSchema(Schema):
    device_id = fields.String(
        required=True,
        validate=validate.Regexp(DEVICE_ID, error="1-128 characters of A-Z a-z 0-9 _ . : -"),
    )


class ChecksumsQuerySchema(Schema):
    """Query of GET .../checksums: no parameters, ?blocks=<bits>, or ?blocks=<bits>&block=<id>."""

    class Meta:
        unknown = EXCLUDE

    blocks = fields.Integer(strict=False, validate=validate.Range(min=1, max=MAX_BITS))
    block = fields.String()

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

    since = fields.Integer(strict=False, validate=validate.Range(min=0))


# --- response shapes (documentation for /openapi.json) ---------------------------------------


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


class SmartSchema(Schema):
    smart = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Nested(SmartMatchSchema)),
        required=True,
        metadata={"description": "contactId → matches; contacts without a match have no key."},
    )


class ContactsSchema(Schema):
    revision = fields.Integer(required=True)
    contacts = fields.List(fields.Nested(ContactSchema), required=True)
    deleted = fields.List(fields.String(), metadata={"description": "Only with ?since="})
    smart = fields.Dict(
        keys=fields.String(), values=fields.List(fields.Nested(SmartMatchSchema)), required=True
    )


class ChecksumsSchema(Schema):
    revision = fields.Integer(required=True)
    checksums = fields.Dict(keys=fields.String(), values=fields.String())
    bits = fields.Integer()
    blocks = fields.Dict(keys=fields.String(), values=fields.String())


class ErrorSchema(Schema):
    error = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


def load_or_422(schema: Schema, data):
    """Load `data` with `schema`, or ApiError 422 validation_error naming each failing path."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        details = {}
        for path, messages in flatten_validation_messages(exc.messages).items():
            # A whole-object error belongs to the object's own path ("upsert.3"), not "._schema".
            key = path.removesuffix("._schema") if path != "_schema" else "body"
            details.setdefault(key, []).extend(messages)
        raise ApiError(422, "validation_error", "The request failed validation.", details) from None

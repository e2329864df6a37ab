"""The OpenAPI 3 document of the Contacts service, generated from the marshmallow schemas.

It also records the decisions API.md leaves open (see the operation descriptions)."""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from contacts_service import schemas


def _json(schema: str) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _error(code: str, description: str) -> dict:
    return {"description": f"{description} (`{code}`)", **_json("Error")}


_AUTH = {
    "401": _error("invalid_token", "Missing, inactive or expired token; has WWW-Authenticate"),
    "503": _error("auth_unavailable", "The SSO service cannot be reached"),
}
_NOT_FOUND = {"404": _error("not_found", "No such device for this account")}
_BAD_BODY = {
    "400": _error("invalid_json", "Body is not a JSON object (or not valid Unicode)"),
    "413": _error("payload_too_large", "Body larger than CONTACTS_MAX_BODY_BYTES"),
    "422": _error(
        "validation_error / too_many_contacts",
        "Schema failure, keyed by path from the body root; or the device would exceed "
        "CONTACTS_MAX_CONTACTS_PER_DEVICE",
    ),
}
_DEVICE_ID = {
    "name": "device_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_.:-]{1,128}$"},
}


def build_spec() -> dict:
    spec = APISpec(
        title="Contact Sync Contacts service",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                "Per-device address books (Acrobits Contacts JSON) with checksum sync, "
                "incremental fetch and Smart Contacts. Every /v1 request carries "
                "`Authorization: Bearer <token>` from the SSO service. Every error uses "
                "{error, message, details}."
            )
        },
    )
    for name, schema in [
        ("Error", schemas.ErrorSchema),
        ("ContactEntry", schemas.ContactEntrySchema),
        ("ContactAddress", schemas.ContactAddressSchema),
        ("SmartMatch", schemas.SmartMatchSchema),
        ("Device", schemas.DeviceSchema),
        ("DeviceList", schemas.DeviceListSchema),
        ("DeviceBody", schemas.DeviceBodySchema),
        ("Contact", schemas.ContactSchema),
        ("PatchContacts", schemas.PatchContactsSchema),
        ("PutContacts", schemas.PutContactsSchema),
        ("WriteResult", schemas.WriteResultSchema),
        ("Contacts", schemas.ContactsSchema),
        ("Checksums", schemas.ChecksumsSchema),
        ("Smart", schemas.SmartSchema),
    ]:
        spec.components.schema(name, schema=schema)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    security = [{"bearer": []}]

    spec.path(
        path="/v1/devices",
        operations={
            "get": {
                "summary": "List the caller's devices",
                "security": security,
                "responses": {"200": {"description": "Devices", **_json("DeviceList")}, **_AUTH},
            }
        },
    )
    spec.path(
        path="/v1/devices/{device_id}",
        parameters=[_DEVICE_ID],
        operations={
            "put": {
                "summary": "Register a device (idempotent)",
                "description": (
                    "No body, `{}`, or `{name?, platform?}` (strings or null; other keys "
                    "ignored). Given fields are updated on an existing device. A new device has "
                    "revision 0. An invalid device_id is a 422."
                ),
                "security": security,
                "requestBody": {"required": False, **_json("DeviceBody")},
                "responses": {
                    "201": {"description": "Created", **_json("Device")},
                    "200": {"description": "Already existed", **_json("Device")},
                    **_BAD_BODY,
                    **_AUTH,
                },
            },
            "get": {
                "summary": "One device",
                "security": security,
                "responses": {
                    "200": {"description": "Device", **_json("Device")},
                    **_NOT_FOUND,
                    **_AUTH,
                },
            },
            "delete": {
                "summary": "Delete a device and its contacts",
                "security": security,
                "responses": {"204": {"description": "Deleted"}, **_NOT_FOUND, **_AUTH},
            },
        },
    )
    spec.path(
        path="/v1/devices/{device_id}/checksums",
        parameters=[_DEVICE_ID],
        operations={
            "get": {
                "summary": "Checksums of the device's contacts, or of blocks of them",
                "description": (
                    "No parameters: every contactId → checksum. `blocks=<bits>` (1 to 16): block "
                    "id (top bits of SHA-256(contactId), lowercase hex, ceil(bits/4) digits) → "
                    "SHA-256 over `contactId\\tchecksum\\n` lines in bytewise contactId order; "
                    "empty blocks omitted. `blocks=<bits>&block=<id>`: the per-contact "
                    "checksums of that block only (the answer also echoes `bits` and `block`). "
                    "A bad `blocks` or `block` is a 422."
                ),
                "security": security,
                "parameters": [
                    {
                        "name": "blocks",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 16},
                    },
                    {
                        "name": "block",
                        "in": "query",
                        "description": "Only with blocks; ceil(blocks/4) hex digits.",
                        "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{1,4}$"},
                    },
                ],
                "responses": {
                    "200": {"description": "Checksums", **_json("Checksums")},
                    "422": _error("validation_error", "Bad blocks/block"),
                    **_NOT_FOUND,
                    **_AUTH,
                },
            }
        },
    )
    spec.path(
        path="/v1/devices/{device_id}/contacts",
        parameters=[_DEVICE_ID],
        operations={
            "get": {
                "summary": "The device's contacts (or changes since a revision), Smart Contacts",
                "description": (
                    "Returns an ETag that changes with the revision and with the Smart Contacts "
                    "result; `If-None-Match` with it → 304. With `since`, `contacts` holds "
                    "contacts changed or added after that revision and `deleted` the ids "
                    "deleted after it (a contact deleted and re-added appears only in "
                    "`contacts`); `smart` is always the complete map. A `since` older than the "
                    "change log (CONTACTS_CHANGE_LOG_DAYS) or newer than the current revision "
                    "(e.g. the device was deleted and registered again) → 410."
                ),
                "security": security,
                "parameters": [
                    {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "Contacts", **_json("Contacts")},
                    "304": {"description": "Not modified"},
                    "410": _error("revision_expired", "Read everything again"),
                    "422": _error("validation_error", "since is not a whole number >= 0"),
                    **_NOT_FOUND,
                    **_AUTH,
                },
            },
            "patch": {
                "summary": "Upsert and delete contacts in one transaction",
                "description": (
                    "Counts: `upserted` = created or checksum differs; `unchanged` = same "
                    "checksum (not rewritten); `deleted` = existed and gone. The revision grows "
                    "by one when anything changed. Unknown top-level keys are a 422; unknown "
                    "keys inside a contact are kept. A contact without `checksum` gets the "
                    "computed one (first 16 hex of SHA-256 over canonical JSON: sorted keys, "
                    "no whitespace, raw UTF-8) appended as its last key."
                ),
                "security": security,
                "requestBody": {"required": True, **_json("PatchContacts")},
                "responses": {
                    "200": {"description": "Applied", **_json("WriteResult")},
                    **_BAD_BODY,
                    **_NOT_FOUND,
                    **_AUTH,
                },
            },
            "put": {
                "summary": "Replace the device's whole address book",
                "security": security,
                "requestBody": {"required": True, **_json("PutContacts")},
                "responses": {
                    "200": {"description": "Applied", **_json("WriteResult")},
                    **_BAD_BODY,
                    **_NOT_FOUND,
                    **_AUTH,
                },
            },
        },
    )
    spec.path(
        path="/v1/devices/{device_id}/smart-contacts",
        parameters=[_DEVICE_ID],
        operations={
            "get": {
                "summary": "Smart Contacts alone",
                "description": (
                    "contactId → matches for tel entries whose E.164 form is a verified number "
                    "of another account of the caller's Cloud ID, in entry order."
                ),
                "security": security,
                "responses": {
                    "200": {"description": "Smart Contacts", **_json("Smart")},
                    **_NOT_FOUND,
                    **_AUTH,
                },
            }
        },
    )
    for path, summary in [
        ("/healthz", "Liveness"),
        ("/readyz", "Readiness: PostgreSQL and the SSO service answer (503 names what failed)"),
        ("/metrics", "Prometheus metrics"),
        ("/openapi.json", "This document"),
    ]:
        spec.path(path=path, operations={"get": {"summary": summary, "responses": {"200": {
            "description": "OK"}}}})  # fmt: skip
    return spec.to_dict()

"""/v1/devices/{device_id}/contacts and /checksums: one device's address book."""

from __future__ import annotations

import dataclasses

from flask import Blueprint, Response, jsonify, request

from contacts_service import address_book
from contacts_service.api import DEVICE_PATH, NO_DEVICE, api
from contacts_service.auth import caller
from contacts_service.extensions import db
from contacts_service.schemas import (
    ChecksumsQuerySchema,
    ChecksumsSchema,
    ContactsQuerySchema,
    ContactsSchema,
    PatchContactsSchema,
    PutContactsSchema,
    WriteResultSchema,
)
from contacts_service.state import app_state
from shared.compression import streamed
from shared.contract import Answer, Failure

bp = Blueprint("contacts", __name__, url_prefix="/devices/<device_id>")


@api.route(
    bp,
    "/checksums",
    "GET",
    path=DEVICE_PATH,
    query=ChecksumsQuerySchema(),
    answers=[Answer(200, ChecksumsSchema, "Checksums")],
    failures=[NO_DEVICE],
    tags=["contacts"],
)
def get_checksums(device_id: str, query: dict):
    """Checksums of the device's contacts, or of blocks of them.

    No parameters: every contactId → checksum. `blocks=<bits>` (1 to 16): block id (top bits
    of SHA-256(contactId), lowercase hex, ceil(bits/4) digits) → SHA-256 over
    `contactId\tchecksum\n` lines in bytewise contactId order; empty blocks omitted.
    `blocks=<bits>&block=<id>`: the per-contact checksums of that block only."""
    listing = address_book.checksum_listing(
        caller(), device_id, query.get("blocks"), query.get("block")
    )
    return jsonify(listing)


_WRITE_FAILURES = [
    NO_DEVICE,
    Failure(422, "too_many_contacts", "The device would hold more than its limit"),
]


@api.route(
    bp,
    "/contacts",
    "PATCH",
    path=DEVICE_PATH,
    body=PatchContactsSchema(),
    answers=[Answer(200, WriteResultSchema, "Applied, all or nothing")],
    failures=_WRITE_FAILURES,
    tags=["contacts"],
)
def patch_contacts(device_id: str, body: dict):
    """Upsert and delete contacts in one transaction.

    Counts: `upserted` = created or checksum differs; `unchanged` = same checksum (not
    rewritten); `deleted` = existed and gone. The revision grows by one when anything changed.
    Unknown top-level keys are a 422; unknown keys inside a contact are kept. A contact without
    `checksum` gets the computed one (first 16 hex of SHA-256 over canonical JSON: sorted keys,
    no whitespace, raw UTF-8) appended as its last key."""
    result = address_book.write_contacts(
        caller(),
        device_id,
        body["upsert"],
        body["delete"],
        replace=False,
        settings=app_state().settings,
    )
    return jsonify(result)


@api.route(
    bp,
    "/contacts",
    "PUT",
    path=DEVICE_PATH,
    body=PutContactsSchema(),
    answers=[Answer(200, WriteResultSchema, "Applied, all or nothing")],
    failures=_WRITE_FAILURES,
    tags=["contacts"],
)
def put_contacts(device_id: str, body: dict):
    """Replace the device's whole address book with the given list."""
    result = address_book.write_contacts(
        caller(), device_id, body["contacts"], [], replace=True, settings=app_state().settings
    )
    return jsonify(result)


@api.route(
    bp,
    "/contacts",
    "GET",
    path=DEVICE_PATH,
    query=ContactsQuerySchema(),
    headers={"If-None-Match": {"type": "string"}},
    answers=[
        Answer(200, ContactsSchema, "Contacts", headers={"ETag": "Current version"}),
        Answer(304, None, "Not modified (the If-None-Match ETag is current)"),
    ],
    failures=[
        NO_DEVICE,
        Failure(410, "revision_expired", "`since` is older than the change log: read all"),
    ],
    tags=["contacts"],
)
def get_contacts(device_id: str, query: dict):
    """The device's contacts (or the changes since a revision) and Smart Contacts.

    The ETag changes with the revision and with the Smart Contacts result; `If-None-Match`
    with it → 304. With `since`, `contacts` holds contacts changed or added after that revision
    and `deleted` the ids deleted after it (a contact deleted and re-added appears only in
    `contacts`); `smart` is always the complete map. A `since` older than the change log
    (CONTACTS_CHANGE_LOG_DAYS) or newer than the current revision → 410."""
    since = query.get("since")
    settings = app_state().settings
    who = caller()
    documents = None
    device = None if since is not None else address_book.device_or_404(who, device_id)
    if device is not None and device.contact_count >= address_book.STREAM_FROM:
        # A big book is streamed from a snapshot on a connection of its own. End the request's
        # transaction first (what it did is kept: signing in, Smart Contacts grants), so its
        # connection is back in the pool: a request never holds two, and concurrent big
        # fetches cannot take the whole pool between them.
        address_book.grant_pending(who.account_id, settings.smart_new_numbers_per_day)
        db.session.commit()
        documents = address_book.open_book(who, device, settings)
        if documents is None:
            raise address_book.not_found()
        # Revision and Smart Contacts of the snapshot: answer, ETag and documents agree.
        device = dataclasses.replace(device, revision=documents.revision)
        smart_text = address_book.smart_text(address_book.smart_map(documents.smart))
    else:
        # The revision, the Smart Contacts, the documents and the deletions from one snapshot:
        # read one after the other in READ COMMITTED, a write landing between them gave one
        # ETag to two bodies, or a contact in both `contacts` and `deleted`.
        device = address_book.device_in_snapshot(who, device_id, settings)
        if since is not None:
            address_book.check_since(device, since, settings)
        smart_text = address_book.smart_text(address_book.snapshot_smart(who, device))
    etag = address_book.contacts_etag(device, since, smart_text)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if request.if_none_match.contains_weak(etag.strip('"')):
        if documents is not None:
            documents.close()
        return Response(status=304, headers=headers)
    if documents is not None:
        book = address_book.StreamedBook(device.revision, smart_text, documents)
        return streamed(book, mimetype="application/json", headers=headers)
    body = address_book.render_book(device, since, smart_text)
    return Response(body, mimetype="application/json", headers=headers)

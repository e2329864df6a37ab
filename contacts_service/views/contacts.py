"""/v1/devices/{device_id}/contacts and /checksums: one device's address book."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from contacts_service import address_book
from contacts_service.auth import caller
from contacts_service.schemas import ChecksumsQuerySchema, ContactsQuerySchema, load_or_422
from contacts_service.state import app_state
from shared.errors import json_object

bp = Blueprint("contacts", __name__, url_prefix="/devices/<device_id>")

_checksums_query = ChecksumsQuerySchema()
_contacts_query = ContactsQuerySchema()


@bp.get("/checksums")
def get_checksums(device_id: str):
    """Per-contact checksums, or block checksums with ?blocks=<bits>[&block=<id>]."""
    query = load_or_422(_checksums_query, request.args)
    listing = address_book.checksum_listing(
        caller(), device_id, query.get("blocks"), query.get("block")
    )
    return jsonify(listing)


@bp.patch("/contacts")
def patch_contacts(device_id: str):
    """Upsert and delete contacts in one transaction."""
    state = app_state()
    body = load_or_422(state.patch_schema, json_object())
    result = address_book.write_contacts(
        caller(), device_id, body["upsert"], body["delete"], replace=False, settings=state.settings
    )
    return jsonify(result)


@bp.put("/contacts")
def put_contacts(device_id: str):
    """Replace the device's whole address book."""
    state = app_state()
    body = load_or_422(state.put_schema, json_object())
    result = address_book.write_contacts(
        caller(), device_id, body["contacts"], [], replace=True, settings=state.settings
    )
    return jsonify(result)


@bp.get("/contacts")
def get_contacts(device_id: str):
    """All contacts (or those changed ?since=<revision>) with Smart Contacts; ETag/304."""
    since = load_or_422(_contacts_query, request.args).get("since")
    who = caller()
    device = address_book.device_or_404(who, device_id)
    if since is not None:
        address_book.check_since(device, since, app_state().settings)
    smart_text = address_book.smart_text(
        address_book.smart_contacts(who, device, app_state().settings)
    )
    etag = address_book.contacts_etag(device, since, smart_text)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if request.if_none_match.contains_weak(etag.strip('"')):
        return Response(status=304, headers=headers)
    body = address_book.render_book(device, since, smart_text)
    return Response(body, mimetype="application/json", headers=headers)

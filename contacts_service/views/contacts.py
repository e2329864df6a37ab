"""/v1/devices/{device_id}/contacts and /checksums: one device's address book."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from contacts_service import service
from contacts_service.auth import caller
from contacts_service.extensions import service_state
from contacts_service.schemas import ChecksumsQuerySchema, ContactsQuerySchema, load_or_422
from shared.errors import json_object

bp = Blueprint("contacts", __name__, url_prefix="/devices/<device_id>")

_checksums_query = ChecksumsQuerySchema()
_contacts_query = ContactsQuerySchema()


@bp.get("/checksums")
def get_checksums(device_id: str):
    """Per-contact checksums, or block checksums with ?blocks=<bits>[&block=<id>]."""
    query = load_or_422(_checksums_query, request.args)
    return jsonify(service.checksums(caller(), device_id, query.get("blocks"), query.get("block")))


@bp.patch("/contacts")
def patch_contacts(device_id: str):
    """Upsert and delete contacts in one transaction."""
    state = service_state()
    body = load_or_422(state.patch_schema, json_object())
    result = service.write_contacts(
        caller(), device_id, body["upsert"], body["delete"], replace=False, limits=state.limits
    )
    return jsonify(result)


@bp.put("/contacts")
def put_contacts(device_id: str):
    """Replace the device's whole address book."""
    state = service_state()
    body = load_or_422(state.put_schema, json_object())
    result = service.write_contacts(
        caller(), device_id, body["contacts"], [], replace=True, limits=state.limits
    )
    return jsonify(result)


@bp.get("/contacts")
def get_contacts(device_id: str):
    """All contacts (or those changed ?since=<revision>) with Smart Contacts; ETag/304."""
    since = load_or_422(_contacts_query, request.args).get("since")
    who = caller()
    device = service.device_or_404(who, device_id)
    if since is not None:
        service.check_since(device, since, service_state().limits)
    smart_text = service.smart_text(service.smart_contacts(who, device, service_state().limits))
    etag = service.contacts_etag(device, since, smart_text)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if request.if_none_match.contains_weak(etag.strip('"')):
        return Response(status=304, headers=headers)
    body = service.render_book(device, since, smart_text)
    return Response(body, mimetype="application/json", headers=headers)

"""/v1/devices/{device_id}/smart-contacts: Smart Contacts alone, for apps that keep the book."""

from __future__ import annotations

from flask import Blueprint, jsonify

from contacts_service import address_book
from contacts_service.api import DEVICE_PATH, NO_DEVICE, api
from contacts_service.auth import caller
from contacts_service.schemas import SmartSchema
from contacts_service.state import app_state
from shared.contract import Answer

bp = Blueprint("smart", __name__, url_prefix="/devices/<device_id>")


@api.route(
    bp,
    "/smart-contacts",
    "GET",
    path=DEVICE_PATH,
    answers=[Answer(200, SmartSchema, "Smart Contacts")],
    failures=[NO_DEVICE],
    tags=["contacts"],
)
def get_smart_contacts(device_id: str):
    """Smart Contacts alone: which contacts' numbers belong to other accounts of the Cloud ID.

    contactId → matches for tel entries whose E.164 form is a verified number of another
    account of the caller's Cloud ID, in entry order (for apps that keep the book locally)."""
    who = caller()
    device = address_book.device_or_404(who, device_id)
    return jsonify(smart=address_book.smart_contacts(who, device, app_state().settings))

"""/v1/devices/{device_id}/smart-contacts: Smart Contacts alone, for apps that keep the book."""

from __future__ import annotations

from flask import Blueprint, jsonify

from contacts_service import address_book
from contacts_service.auth import caller
from contacts_service.state import app_state

bp = Blueprint("smart", __name__, url_prefix="/devices/<device_id>")


@bp.get("/smart-contacts")
def get_smart_contacts(device_id: str):
    """Which contacts' numbers belong to other accounts of the caller's Cloud ID."""
    who = caller()
    device = address_book.device_or_404(who, device_id)
    return jsonify(smart=address_book.smart_contacts(who, device, app_state().settings))

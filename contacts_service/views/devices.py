"""/v1/devices: the caller's devices, each holding one address book."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from contacts_service import repository
from contacts_service.address_book import device_or_404, not_found, valid_device_id
from contacts_service.auth import caller
from contacts_service.repository import DeviceRow
from contacts_service.schemas import DeviceBodySchema, DeviceIdSchema, load_or_422
from shared.errors import json_object

bp = Blueprint("devices", __name__, url_prefix="/devices")

_device_body = DeviceBodySchema()
_device_id = DeviceIdSchema()


def _timestamp(value) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def device_json(device: DeviceRow) -> dict:
    return {
        "id": device.device_id,
        "name": device.name,
        "platform": device.platform,
        "contact_count": device.contact_count,
        "revision": device.revision,
        "created_at": _timestamp(device.created_at),
        "updated_at": _timestamp(device.updated_at),
    }


@bp.get("")
def list_devices():
    """List the caller's devices."""
    devices = repository.list_devices(caller().account_id)
    return jsonify(devices=[device_json(device) for device in devices])


@bp.put("/<device_id>")
def put_device(device_id: str):
    """Register a device (201) or update its name/platform (200); idempotent."""
    load_or_422(_device_id, {"device_id": device_id})
    body = json_object() if request.get_data(cache=True).strip() else {}
    fields = load_or_422(_device_body, body)
    account_id = caller().account_id
    device = repository.get_device(account_id, device_id, lock=True)
    if device is None:
        device = repository.create_device(
            account_id, device_id, fields.get("name"), fields.get("platform")
        )
        if device is not None:
            return jsonify(device_json(device)), 201
        device = repository.get_device(account_id, device_id, lock=True)
    changes = {name: value for name, value in fields.items() if getattr(device, name) != value}
    if changes:
        device = repository.update_device_fields(device.pk, changes)
    return jsonify(device_json(device)), 200


@bp.get("/<device_id>")
def get_device(device_id: str):
    """One device of the caller."""
    return jsonify(device_json(device_or_404(caller(), device_id)))


@bp.delete("/<device_id>")
def delete_device(device_id: str):
    """Delete a device and its whole address book."""
    if not valid_device_id(device_id) or not repository.delete_device(
        caller().account_id, device_id
    ):
        raise not_found()
    return "", 204

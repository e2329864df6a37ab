"""/v1/devices: the caller's devices, each holding one address book."""

from __future__ import annotations

from flask import Blueprint, jsonify

from contacts_service import notifications, repository
from contacts_service.address_book import device_or_404, not_found
from contacts_service.api import DEVICE_PATH, NO_DEVICE, api
from contacts_service.auth import caller
from contacts_service.repository import DeviceRow
from contacts_service.schemas import (
    DeviceBodySchema,
    DeviceIdSchema,
    DeviceListSchema,
    DeviceSchema,
    valid_device_id,
)
from contacts_service.state import app_state
from shared.contract import Answer, Failure
from shared.errors import ApiError

bp = Blueprint("devices", __name__, url_prefix="/devices")


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


@api.route(
    bp,
    "",
    "GET",
    answers=[Answer(200, DeviceListSchema, "The caller's devices")],
    tags=["devices"],
)
def list_devices():
    """List the caller's devices."""
    devices = repository.list_devices(caller().account_id)
    return jsonify(devices=[device_json(device) for device in devices])


@api.route(
    bp,
    "/<device_id>",
    "PUT",
    path=DEVICE_PATH,
    body=DeviceBodySchema(),
    body_required=False,
    answers=[
        Answer(201, DeviceSchema, "Registered"),
        Answer(200, DeviceSchema, "Already registered; name/platform updated if given"),
    ],
    failures=[
        Failure(422, "validation_error", "An invalid device_id (`details.device_id`)"),
        Failure(
            422, "too_many_devices", "The account has CONTACTS_MAX_DEVICES_PER_ACCOUNT devices"
        ),
    ],
    tags=["devices"],
)
def put_device(device_id: str, body: dict):
    """Register a device (201) or update its name/platform (200); idempotent.

    No body, `{}`, or `{name?, platform?}` (strings or null; other keys ignored). A new device
    has revision 0."""
    api.load(DeviceIdSchema(), {"device_id": device_id})
    account_id = caller().account_id
    device = repository.get_device(account_id, device_id, lock=True)
    if device is None:
        device = _register(account_id, device_id, body)
        if device is not None:
            return jsonify(device_json(device)), 201
        device = repository.get_device(account_id, device_id, lock=True)
    changes = {name: value for name, value in body.items() if getattr(device, name) != value}
    if changes:
        device = repository.update_device_fields(device.pk, changes)
    return jsonify(device_json(device)), 200


def _register(account_id: int, device_id: str, given: dict) -> DeviceRow | None:
    """Create the device within the account's quota; None when a concurrent request made it.
    The account row is locked first, so concurrent registrations cannot pass the quota."""
    limit = app_state().settings.max_devices_per_account
    repository.lock_account(account_id)
    if not repository.account_exists(account_id):
        # Erased (contacts-server accounts erase) while this request was under way (its
        # account sync is committed before the body is read): a 404, as a write to a device
        # of a gone account gets, not the foreign key's 500.
        raise not_found()
    if repository.get_device(account_id, device_id) is not None:
        return None  # registered meanwhile by a concurrent request: an update, not a new one
    if repository.device_count(account_id) >= limit:
        raise ApiError(
            422,
            "too_many_devices",
            f"An account has at most {limit} devices; delete one first.",
            {"device_id": [f"The account already has {limit} devices."]},
        )
    return repository.create_device(account_id, device_id, given.get("name"), given.get("platform"))


@api.route(
    bp,
    "/<device_id>",
    "GET",
    path=DEVICE_PATH,
    answers=[Answer(200, DeviceSchema, "The device")],
    failures=[NO_DEVICE],
    tags=["devices"],
)
def get_device(device_id: str):
    """One device of the caller."""
    return jsonify(device_json(device_or_404(caller(), device_id)))


@api.route(
    bp,
    "/<device_id>",
    "DELETE",
    path=DEVICE_PATH,
    answers=[Answer(204, None, "Deleted, with its contacts")],
    failures=[NO_DEVICE],
    tags=["devices"],
)
def delete_device(device_id: str):
    """Delete a device and its whole address book."""
    notifications.device_deleting(caller().account_id, device_id)  # sent only if it commits
    if not valid_device_id(device_id) or not repository.delete_device(
        caller().account_id, device_id
    ):
        raise not_found()
    return "", 204

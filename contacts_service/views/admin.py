"""/v1/admin/...: operator actions (API.md "Admin"), for the clients in CONTACTS_ADMIN_CLIENTS.

Registered on the app, outside the /v1 blueprint: these routes never go through bearer-token
introspection. The gate both services share (shared/admin.py `AdminGate`): HTTP Basic, compared
in constant time; failed authentications are throttled per client address in each worker
process (CONTACTS_MAX_FAILED_ADMIN_AUTH_PER_IP per minute; the service has no shared store).
Field errors are 400 invalid_request, as at the SSO (not the 422 of the /v1 routes). Every
request writes one audit line.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask, Response, current_app, jsonify
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contacts_service import admin
from contacts_service.extensions import db
from contacts_service.schemas import (
    DEVICE_ID_PARAMETER,
    ContactSchema,
    DeviceSchema,
    device_id_problem,
)
from contacts_service.state import app_state
from shared.admin import (
    AUTH_FAILURES,
    CLOUD_ID_PARAMETER,
    AccountBodySchema,
    AdminGate,
    CloudIdSchema,
    admin_contract,
    note_account,
)
from shared.client_auth import MemoryThrottle
from shared.compression import streamed
from shared.contract import Answer, Failure
from shared.errors import ApiError
from shared.metrics import register_collector
from shared.text import validator

bp = Blueprint("admin", __name__, url_prefix="/v1/admin")

admin_api = admin_contract("PostgreSQL cannot be reached")
gate = AdminGate("contacts_service", realm="contacts-admin")

NO_ACCOUNT = Failure(404, "not_found", "The service never saw this account")

_EXTENSION = "contacts_admin"
VCARD_MEDIA = "text/vcard; charset=utf-8"


@dataclass(frozen=True)
class AdminState:
    stats: admin.StatsCache


def init_app(app: Flask) -> None:
    """Attach the admin collaborators and register the routes (outside /v1's bearer auth)."""
    settings = app_state(app).settings
    gate.init_app(
        app, settings.admin_clients, MemoryThrottle(settings.max_failed_admin_auth_per_ip)
    )
    app.extensions[_EXTENSION] = AdminState(stats=admin.StatsCache())
    register_collector(app, admin.cloud_gauges())
    app.register_blueprint(bp)


def _admin() -> AdminState:
    return current_app.extensions[_EXTENSION]


class ExportBodySchema(AccountBodySchema):
    """POST /v1/admin/accounts/export body."""

    format = fields.String(
        load_default="json",
        validate=validate.OneOf(["json", "vcard"]),
        metadata={"description": "`json` (default): every device; `vcard`: one device."},
    )
    device_id = fields.String(
        validate=validator(device_id_problem),
        metadata={
            "description": "Only this device; required with `vcard`.",
            "pattern": DEVICE_ID_PARAMETER["pattern"],
        },
    )

    @validates_schema
    def _vcard_needs_a_device(self, data, **kwargs):
        if data.get("format") == "vcard" and "device_id" not in data:
            raise ValidationError("Required with format vcard.", "device_id")


class ErasedSchema(Schema):
    devices = fields.Integer(required=True, metadata={"description": "Devices erased."})
    contacts = fields.Integer(required=True, metadata={"description": "Contacts erased."})


class ExportedDeviceSchema(DeviceSchema):
    contacts = fields.List(
        fields.Nested(ContactSchema),
        required=True,
        metadata={"description": "Each contact exactly as stored."},
    )


class ExportSchema(Schema):
    cloud_id = fields.String(required=True)
    username = fields.String(required=True)
    devices = fields.List(fields.Nested(ExportedDeviceSchema), required=True)


class CloudStatsSchema(Schema):
    cloud_id = fields.String(required=True)
    accounts = fields.Integer(required=True)
    devices = fields.Integer(required=True)
    contacts = fields.Integer(required=True)


def _no_account() -> ApiError:
    return ApiError(404, "not_found", "No such account.")


@admin_api.route(
    bp,
    "/accounts/erase",
    "POST",
    before=gate.authenticate,
    body=AccountBodySchema(),
    answers=[Answer(200, ErasedSchema, "Nothing of the account remains")],
    failures=[*AUTH_FAILURES, NO_ACCOUNT],
    tags=["admin"],
)
def erase_account(body: dict):
    """Erase one account: devices, contacts, numbers, tombstones, enumeration records and the
    account row, in one transaction.

    Revoke the account's tokens at the SSO first: a request with a still-active token starts
    a new, empty account."""
    note_account(cloud_id=body["cloud_id"], username=body["username"])
    try:
        erased = admin.erase(body["cloud_id"], body["username"])
    except admin.NoSuchAccount:
        raise _no_account() from None
    db.session.commit()  # before the audit line says "ok"
    return jsonify(erased)


@admin_api.route(
    bp,
    "/accounts/export",
    "POST",
    before=gate.authenticate,
    body=ExportBodySchema(),
    answers=[
        Answer(200, ExportSchema, "The account's devices, each with its contacts as stored"),
        Answer(
            200,
            {"type": "string"},
            'With `"format": "vcard"`: one vCard 4.0 per contact of the device',
            media="text/vcard",
        ),
    ],
    failures=[
        *AUTH_FAILURES,
        Failure(404, "not_found", "The service never saw this account, or it has no such device"),
    ],
    tags=["admin"],
)
def export_account(body: dict):
    """Export one account: every device (or the `device_id` given) with its contacts exactly
    as stored, or with `"format": "vcard"` one device's contacts as vCard 4.0.

    vCard: `UID` = contactId, `FN` from displayName else the name parts, one `TEL` per tel
    entry with the number as uploaded, `EMAIL` per email entry, `URL` per url entry."""
    note_account(cloud_id=body["cloud_id"], username=body["username"])
    cloud_id, username, device_id = body["cloud_id"], body["username"], body.get("device_id")
    try:
        if body["format"] == "vcard":
            cards = admin.export_vcard(cloud_id, username, device_id)
            return Response(cards, content_type=VCARD_MEDIA)
        # Streamed from a snapshot of its own: the request's transaction ends first, so a
        # request never holds two connections.
        db.session.commit()
        exported = admin.JsonExport.open(
            cloud_id, username, device_id, app_state().settings.db_statement_timeout_seconds
        )
    except admin.NoSuchAccount:
        raise _no_account() from None
    except admin.NoSuchDevice:
        raise ApiError(404, "not_found", "No such device for this account.") from None
    return streamed(exported, mimetype="application/json", headers={})


@admin_api.route(
    bp,
    "/clouds/<cloud_id>/stats",
    "GET",
    before=gate.authenticate,
    path={"cloud_id": CLOUD_ID_PARAMETER},
    answers=[
        Answer(200, CloudStatsSchema, "The Cloud ID's figures (zeros when unknown; ≤ 30 s old)")
    ],
    failures=[Failure(400, "invalid_request", "The cloud_id is not a Cloud ID"), *AUTH_FAILURES],
    tags=["admin"],
)
def cloud_stats(cloud_id: str):
    """Figures of one Cloud ID: accounts, devices and contacts.

    Read from the account and device rows (no contact is read) and cached up to 30 s per
    worker process."""
    admin_api.load(CloudIdSchema(), {"cloud_id": cloud_id})
    note_account(cloud_id=cloud_id)
    return jsonify(_admin().stats.get(cloud_id))


gate.audit(
    bp,
    {
        "erase_account": "accounts.erase",
        "export_account": "accounts.export",
        "cloud_stats": "clouds.stats",
    },
)

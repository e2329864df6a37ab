"""HTTP views: one blueprint per resource, all under /v1 behind bearer authentication; the
operators' /v1/admin routes beside it, with their own (HTTP Basic) authentication."""

from __future__ import annotations

from flask import Blueprint, Flask

from contacts_service.auth import authenticate
from contacts_service.views import admin
from contacts_service.views.contacts import bp as contacts
from contacts_service.views.devices import bp as devices
from contacts_service.views.events import bp as events
from contacts_service.views.smart import bp as smart


def register_blueprints(app: Flask) -> None:
    """Mount /v1: devices, their contacts and checksums, and Smart Contacts."""
    v1 = Blueprint("v1", __name__, url_prefix="/v1")
    v1.before_request(authenticate)
    v1.register_blueprint(devices)
    v1.register_blueprint(contacts)
    v1.register_blueprint(smart)
    v1.register_blueprint(events)
    app.register_blueprint(v1)
    admin.init_app(app)  # not under v1: no bearer authentication

"""HTTP views: one blueprint per resource, all under /v1 behind bearer authentication."""

from __future__ import annotations

import io

from flask import Blueprint, Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from contacts_service.auth import authenticate
from contacts_service.views.contacts import bp as contacts
from contacts_service.views.devices import bp as devices
from contacts_service.views.smart import bp as smart


def register_blueprints(app: Flask) -> None:
    """Mount /v1: devices, their contacts and checksums, and Smart Contacts."""
    v1 = Blueprint("v1", __name__, url_prefix="/v1")
    v1.before_request(authenticate)
    v1.before_request(bound_chunked_body)
    v1.register_blueprint(devices)
    v1.register_blueprint(contacts)
    v1.register_blueprint(smart)
    app.register_blueprint(v1)


def bound_chunked_body() -> None:
    """Read a chunked body (no Content-Length) up to CONTACTS_MAX_BODY_BYTES, or answer 413.

    Werkzeug cuts such a body silently at MAX_CONTENT_LENGTH, which would turn an oversize
    upload into a confusing invalid_json; a Content-Length body is checked by werkzeug itself.
    """
    if request.content_length is not None:
        return
    if "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        return
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    data = request.environ["wsgi.input"].read(limit + 1)
    if len(data) > limit:
        raise RequestEntityTooLarge()
    request.environ["wsgi.input"] = io.BytesIO(data)
    request.environ["CONTENT_LENGTH"] = str(len(data))

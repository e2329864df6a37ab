"""Routes and response policies both services share: /healthz, /readyz, /openapi.json, CORS
and security headers."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from flask import Flask, jsonify
from flask_cors import CORS
from marshmallow import Schema, fields

from shared.contract import Answer, Failure, declare
from shared.errors import error_response
from shared.openapi import build_document

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], None]  # raises on failure


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})
    checks = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "Only /readyz."}
    )


def register_health(app: Flask, checks: dict[str, ReadinessCheck]) -> None:
    """/healthz answers while the process is alive; /readyz runs each dependency check."""

    @declare(answers=[Answer(200, HealthSchema, "Alive")], tags=["operations"])
    def healthz():
        """Liveness: the process answers (no dependency is asked)."""
        return jsonify(status="ok")

    @declare(
        answers=[Answer(200, HealthSchema, "Every dependency answers")],
        failures=[Failure(503, "unavailable", "A dependency failed; `details` names it")],
        tags=["operations"],
    )
    def readyz():
        """Readiness: every dependency answers."""
        failed = {}
        for name, check in checks.items():
            try:
                check()
            except Exception as exc:
                log.warning("readiness check %s failed: %s", name, exc.__class__.__name__)
                failed[name] = ["unreachable"]
        if failed:
            names = ", ".join(sorted(failed))
            return error_response(503, "unavailable", f"Not ready: {names} failed.", failed)
        return jsonify(status="ok", checks={name: "ok" for name in checks})

    app.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
    app.add_url_rule("/readyz", "readyz", readyz, methods=["GET"])


def register_openapi(
    app: Flask, *, title: str, description: str, security_schemes: dict[str, dict]
) -> None:
    """Serve the service's OpenAPI 3 document, built from its routes' contracts on first
    request (every route is registered by then)."""
    cache: dict[str, dict] = {}

    @declare(answers=[Answer(200, None, "The OpenAPI 3 document")], tags=["operations"])
    def openapi():
        """The OpenAPI 3 document of this service."""
        if "document" not in cache:
            cache["document"] = build_document(
                app, title=title, description=description, security_schemes=security_schemes
            )
        return jsonify(cache["document"])

    app.add_url_rule("/openapi.json", "openapi", openapi, methods=["GET"])


def configure_cors(app: Flask, origins: list[str]) -> None:
    """CORS headers and preflight for the listed origins only (error responses included)."""
    if not origins:
        return
    # flask-cors reads an origin string that looks like a pattern as a regular expression
    # (`https://app.example.com` would also admit `https://appXexample.com`): compiled,
    # escaped, whole-string patterns make every listed origin an exact match.
    allowed = "*" if "*" in origins else [exact_origin(origin) for origin in origins]
    CORS(
        app,
        origins=allowed,
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Content-Encoding",
            "If-None-Match",
            "Last-Event-ID",
            "X-Request-ID",
        ],
        expose_headers=["ETag", "Retry-After", "X-Request-ID", "WWW-Authenticate"],
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        max_age=600,
    )


def exact_origin(origin: str) -> re.Pattern:
    """A pattern matching exactly this origin (scheme and host case-insensitively, as browsers
    send them lowercased anyway), and nothing longer."""
    return re.compile(re.escape(origin.rstrip("/")) + r"\Z", re.IGNORECASE)


def register_security_headers(app: Flask) -> None:
    """Headers every API response carries: no sniffing, no framing, no caching by default."""

    @app.after_request
    def _security_headers(response):
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        headers.setdefault("Cache-Control", "no-store")
        return response

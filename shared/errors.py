"""The one JSON error shape of both services, and the app-wide handlers that produce it.

Every 4xx/5xx body is {"error": "<snake_case_code>", "message": "<sentence>", "details": {...}}.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Codes for the statuses werkzeug raises by itself (routing, body size, method).
_HTTP_CODES = {
    400: ("invalid_request", "The request could not be understood."),
    401: ("unauthorized", "Authentication is required."),
    403: ("forbidden", "This request is not allowed."),
    404: ("not_found", "No such resource."),
    405: ("method_not_allowed", "This method is not allowed on this resource."),
    406: ("not_acceptable", "No acceptable representation."),
    409: ("conflict", "The request conflicts with the current state."),
    410: ("gone", "The resource is gone."),
    411: ("length_required", "A Content-Length is required."),
    412: ("precondition_failed", "A precondition failed."),
    413: ("payload_too_large", "The request body is too large."),
    414: ("uri_too_long", "The request URI is too long."),
    415: ("unsupported_media_type", "This content type is not supported."),
    422: ("validation_error", "The request failed validation."),
    429: ("too_many_attempts", "Too many requests; retry later."),
    431: ("headers_too_large", "The request headers are too large."),
    500: ("internal_error", "An internal error occurred."),
    502: ("upstream_error", "An upstream service failed."),
    503: ("unavailable", "The service is temporarily unavailable."),
}


class ApiError(Exception):
    """An error answered to the client in the shared shape."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_body(error: str, message: str, details: dict[str, Any] | None = None) -> dict:
    body: dict[str, Any] = {"error": error, "message": message}
    if details:
        body["details"] = details
    return body


def error_response(
    status: int,
    error: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    response = Response(
        json.dumps(error_body(error, message, details), ensure_ascii=False),
        status=status,
        mimetype="application/json",
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _handle_api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.error, exc.message, exc.details, exc.headers)


def http_error_code(status: int) -> tuple[str, str]:
    """The (error code, message) the shared shape uses for a bare HTTP status."""
    return _HTTP_CODES.get(status, ("http_error", "The request failed."))


def _handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    error, message = _HTTP_CODES.get(status, ("http_error", exc.description or "HTTP error."))
    headers = {
        name: value
        for name, value in exc.get_headers()
        if name.lower() not in ("content-type", "content-length")
    }
    return error_response(status, error, message, headers=headers)


def _handle_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _handle_http_exception(exc)
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "An internal error occurred.")


def register_error_handlers(app: Flask) -> None:
    """Route every error raised in a view (or by routing) to the shared JSON shape."""
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)


def flatten_validation_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested error dict into {"a.3.b": ["..."]} keyed by path."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                flat.update(flatten_validation_messages(value, path))
            elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                flat[path] = list(value)
            elif isinstance(value, list):
                for item in value:
                    flat.update(flatten_validation_messages(item, path))
            else:
                flat[path] = [str(value)]
    elif isinstance(messages, list):
        flat.setdefault(prefix or "_schema", []).extend(str(m) for m in messages)
    else:
        flat.setdefault(prefix or "_schema", []).append(str(messages))
    return flat

"""Logging with a request id on every line, and one access line per request.

The request id comes from a sane incoming X-Request-ID or is generated, and is echoed back so a
client, the Contacts service and the SSO service can be correlated. Nothing here logs bodies,
query strings or headers: that is how passwords and tokens stay out of the logs.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time

from flask import Flask, g, has_request_context, request

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "msg": record.getMessage(),
        }
        for key in ("method", "path", "status", "duration_ms", "remote", "audit"):
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(app: Flask, service: str, level: str = "INFO") -> None:
    """Attach request ids and an access log to the app; configure the root handler (JSON lines
    on stderr) once."""
    root = logging.getLogger()
    if not any(getattr(h, "_contactsync", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler._contactsync = True  # type: ignore[attr-defined]
        handler.addFilter(_RequestIdFilter())
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level.upper())
    access = logging.getLogger(f"{service}.access")

    @app.before_request
    def _start_request():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish_request(response):
        response.headers["X-Request-ID"] = g.get("request_id", "-")
        started = g.get("request_started")
        duration = (time.perf_counter() - started) * 1000 if started else 0.0
        access.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(duration, 2),
                "remote": request.remote_addr,
            },
        )
        return response

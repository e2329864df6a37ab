"""Reading request bodies, the same way in both services: bounded (chunked bodies too), JSON
strictly (UTF-8, an object, no NaN), or a form where the service accepts one."""

from __future__ import annotations

import json
import re
import urllib.parse
import zlib
from typing import Any

from flask import Flask, current_app, g, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from shared.errors import ApiError


def register_body_limit(app: Flask, max_bytes: int) -> None:
    """One limit on every request body, however it comes: with a Content-Length (werkzeug
    answers 413 itself), chunked (werkzeug would cut it silently at the limit, so an oversize
    upload would look like broken JSON), and gzip-encoded, where the limit applies to the
    decoded size and is enforced while decoding: a small bomb is a 413, never a large buffer.

    Nothing is read until a view asks for its body (request_bytes), so a route without a body
    never reads one, and a Contacts upload is only decoded once its token is known good."""
    app.config["MAX_CONTENT_LENGTH"] = max_bytes


# Clients send one gzip member; a few are allowed (concatenated streams are valid gzip), but
# not thousands of empty ones, each of which costs a decoder.
MAX_GZIP_MEMBERS = 8
DEFAULT_LIMIT = 32 * 1024 * 1024  # an app that set no limit (tests' small apps)


def request_bytes() -> bytes:
    """The request body, decoded, at most MAX_CONTENT_LENGTH bytes (413 beyond, 415 for an
    encoding other than gzip or identity, 400 for a broken gzip stream). Read once."""
    cached = g.get("_request_bytes")
    if cached is not None:
        return cached
    environ = request.environ
    encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "Content-Encoding must be gzip or identity.",
            {"Content-Encoding": [f"Not supported: {encoding[:40]}."]},
        )
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or DEFAULT_LIMIT
    length = request.content_length
    if length is not None and length > limit:
        raise RequestEntityTooLarge()
    if length is not None and environ.get("CONTENT_LENGTH", "").isdigit():
        # Exactly Content-Length bytes, straight from the server's stream: werkzeug's
        # get_data wraps it in a limited stream first, which costs every small body (an
        # introspection's one-field form) more than reading it.
        raw = environ["wsgi.input"].read(length) if length else b""
        if len(raw) != length:
            raise ClientDisconnected()
    elif length is None and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        raw = environ["wsgi.input"].read(limit + 1)
        if len(raw) > limit:
            raise RequestEntityTooLarge()
    else:
        raw = request.get_data(cache=False)
    data = _gunzip(raw, limit) if encoding in ("gzip", "x-gzip") else raw
    g._request_bytes = data
    return data


def _gunzip(raw: bytes, limit: int) -> bytes:
    """Decode up to MAX_GZIP_MEMBERS gzip members, never holding more than `limit` + 1 decoded
    bytes; offsets into one buffer, so the work is linear in the body's size."""
    view, position, out, size = memoryview(raw), 0, [], 0
    for _ in range(MAX_GZIP_MEMBERS):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = decoder.decompress(view[position:], limit + 1 - size)
        except zlib.error:
            raise _not_gzip() from None
        size += len(chunk)
        out.append(chunk)
        if size > limit or decoder.unconsumed_tail:
            raise RequestEntityTooLarge()
        if not decoder.eof:
            raise _not_gzip()  # truncated
        position = len(raw) - len(decoder.unused_data)
        if position >= len(raw):
            return b"".join(out)
    raise _not_gzip(f"More than {MAX_GZIP_MEMBERS} gzip members.")


def _not_gzip(why: str = "") -> ApiError:
    detail = {"body": [why]} if why else None
    return ApiError(
        400, "invalid_json", "The body is not valid gzip (Content-Encoding: gzip).", detail
    )


def read_body(*, forms: bool = False, required: bool = True) -> dict[str, Any]:
    """The body as a dict of fields: a form (where `forms`), else a JSON object.

    An empty body is an empty set of fields where a form is accepted (RFC 6749-style
    endpoints: a bodiless revoke is "token missing") or the body is optional; otherwise it is
    400 invalid_json like any body that is not a JSON object.
    """
    # The media type as werkzeug's `request.mimetype` reads it, without parsing parameters.
    mimetype = request.environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if forms and mimetype == "multipart/form-data":
        return {key: request.form.get(key) for key in request.form}
    if forms and mimetype == "application/x-www-form-urlencoded":
        # Parsed from the decoded body, so a gzip-encoded form works like a plain one.
        pairs = urllib.parse.parse_qsl(
            request_bytes().decode("utf-8", "replace"), keep_blank_values=True
        )
        fields: dict[str, Any] = {}
        for key, value in pairs:
            fields.setdefault(key, value)  # the first of a repeated field, as before
        return fields
    if (forms or not required) and not request_bytes().strip():
        return {}
    return json_object()


def _not_json(constant: str):
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) does not.
    raise ValueError(f"{constant} is not a JSON value")


def json_object() -> dict:
    """The request body parsed as a JSON object, or ApiError 400 invalid_json."""
    raw = request_bytes()
    if not raw.strip():
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    try:
        # Strictly UTF-8: json.loads(bytes) would also accept UTF-16 and UTF-32.
        body = json.loads(raw.decode("utf-8"), parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(
            400, "invalid_json", "The request body is not valid JSON.", {"body": [str(exc)]}
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    if _ESCAPED_SURROGATE.search(raw) and _has_unpaired_surrogate(body):
        # "\ud800" is JSON by the grammar but not Unicode text (RFC 7493 forbids it): it could
        # be stored nowhere and sent nowhere, so the body is refused whole, here, once.
        raise ApiError(
            400,
            "invalid_json",
            "The request body is not valid Unicode text.",
            {"body": ["Contains an unpaired surrogate (\\ud800-\\udfff escape)."]},
        )
    return body


# Strict UTF-8 decoding leaves surrogates only one way in: a \uD800-\uDFFF escape. Bodies
# without one (nearly all) skip the full check.
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_unpaired_surrogate(body: dict) -> bool:
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False

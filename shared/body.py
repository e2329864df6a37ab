"""Reading request bodies, the same way in both services: bounded (chunked bodies too), JSON
strictly (UTF-8, an object, no NaN), or a form where the service accepts one."""

from __future__ import annotations

import io
import json
import re
import zlib
from typing import Any

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from shared.errors import ApiError

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def register_body_limit(app: Flask, max_bytes: int) -> None:
    """One limit on every request body, however it comes: with a Content-Length (werkzeug
    answers 413 itself), chunked (werkzeug would cut it silently at the limit, so an oversize
    upload would look like broken JSON), and gzip-encoded, where the limit applies to the
    decoded size and is enforced while decoding: a small bomb is a 413, never a large buffer."""
    app.config["MAX_CONTENT_LENGTH"] = max_bytes
    app.before_request(prepare_body)


def prepare_body() -> None:
    environ = request.environ
    encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if request.content_length is None and not chunked:
        return
    if encoding in ("", "identity") and not chunked:
        return  # werkzeug enforces the limit on a plain body with a Content-Length
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    length = request.content_length
    if length is not None and length > limit:
        raise RequestEntityTooLarge()
    raw = environ["wsgi.input"].read(limit + 1 if length is None else length)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    if encoding in ("", "identity"):
        data = raw
    elif encoding in ("gzip", "x-gzip"):
        data = _gunzip(raw, limit)
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Content-Encoding must be gzip or identity.",
            {"Content-Encoding": [f"Not supported: {encoding[:40]}."]},
        )
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    environ.pop("HTTP_CONTENT_ENCODING", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def _gunzip(raw: bytes, limit: int) -> bytes:
    """Decode one or more gzip members, never holding more than `limit` + 1 decoded bytes."""
    out, size, rest = [], 0, raw
    while True:
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = decoder.decompress(rest, limit + 1 - size)
        except zlib.error:
            raise _not_gzip() from None
        size += len(chunk)
        out.append(chunk)
        if size > limit or decoder.unconsumed_tail:
            raise RequestEntityTooLarge()
        if not decoder.eof:
            raise _not_gzip()  # truncated
        rest = decoder.unused_data
        if not rest:
            return b"".join(out)


def _not_gzip() -> ApiError:
    return ApiError(
        400, "invalid_json", "The body is not valid gzip (Content-Encoding: gzip).", None
    )


def read_body(*, forms: bool = False, required: bool = True) -> dict[str, Any]:
    """The body as a dict of fields: a form (where `forms`), else a JSON object.

    An empty body is an empty set of fields where a form is accepted (RFC 6749-style
    endpoints: a bodiless revoke is "token missing") or the body is optional; otherwise it is
    400 invalid_json like any body that is not a JSON object.
    """
    if forms and request.mimetype in _FORMS:
        return {key: request.form.get(key) for key in request.form}
    if (forms or not required) and not request.get_data(cache=True).strip():
        return {}
    return json_object()


def _not_json(constant: str):
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) does not.
    raise ValueError(f"{constant} is not a JSON value")


def json_object() -> dict:
    """The request body parsed as a JSON object, or ApiError 400 invalid_json."""
    raw = request.get_data(cache=True)
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

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

try:  # gunicorn's framing errors; without gunicorn (a WSGI server of the deployer's) only OSError
    from gunicorn.http.errors import ParseException as _GunicornParseError
except ImportError:  # pragma: no cover - gunicorn is a dependency
    _GunicornParseError = OSError


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
    data = request_stream().read_all()
    g._request_bytes = data
    return data


def request_stream() -> RequestBody:
    """The request body as a stream (see RequestBody), for readers that turn a large body into
    something smaller as they go. Either this or request_bytes, once per request."""
    if "_request_stream" in g:
        raise RuntimeError("The request body was already read.")
    g._request_stream = stream = RequestBody(request.environ)
    return stream


def has_body() -> bool:
    """Whether the request says a body follows (a non-zero Content-Length, or chunked)."""
    environ = request.environ
    return (
        environ.get("CONTENT_LENGTH", "0") not in ("", "0")
        or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    )


def request_body_size() -> int:
    """Bytes of the decoded body read so far in this request (0 when none was read)."""
    stream = g.get("_request_stream")
    return stream.size if stream is not None else 0


class RequestBody:
    """The request body, decoded, a piece at a time: what request_bytes holds whole, without
    holding it. The same limits and errors, raised when the piece that breaks them is read:
    413 past MAX_CONTENT_LENGTH decoded bytes (at once when a Content-Length says so), 415 for
    an unknown Content-Encoding (at once), 400 for a broken or truncated gzip stream,
    ClientDisconnected when fewer bytes come than the Content-Length announced.

    A reader that stops at an error of its own calls `drain()` before reporting it: an error
    of the body itself (too large, broken gzip) then wins, as it does when the body is read
    whole first, so a body gets the same answer however it is read."""

    CHUNK = 256 * 1024  # compressed bytes per read from the connection

    def __init__(self, environ: dict):
        encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip"):
            raise ApiError(
                415,
                "unsupported_media_type",
                "Content-Encoding must be gzip or identity.",
                {"Content-Encoding": [f"Not supported: {encoding[:40]}."]},
            )
        self.limit = current_app.config.get("MAX_CONTENT_LENGTH") or DEFAULT_LIMIT
        self.size = 0  # decoded bytes handed out
        length = request.content_length
        if length is not None and length > self.limit:
            raise RequestEntityTooLarge()
        stream = environ["wsgi.input"]
        if length is not None and environ.get("CONTENT_LENGTH", "").isdigit():
            # Exactly Content-Length bytes, straight from the server's stream: werkzeug's
            # get_data wraps it in a limited stream first, which costs every small body (an
            # introspection's one-field form) more than reading it.
            self._raw = _SizedBody(stream, length).read
        elif length is None and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            self._raw = _ChunkedBody(stream, self.limit).read
        else:
            self._raw = _WholeBody(_whole_body()).read
        self._gzip = _Gunzip(self._raw) if encoding in ("gzip", "x-gzip") else None

    def read(self, size: int) -> bytes:
        """Up to `size` decoded bytes (at least one unless the body has ended: b"")."""
        size = max(size, 1)  # zlib reads a max_length of 0 as "no limit"
        data = self._gzip.read(size) if self._gzip else self._raw(size)
        self.size += len(data)
        if self.size > self.limit:
            raise RequestEntityTooLarge()
        return data

    def read_all(self) -> bytes:
        pieces = []
        while piece := self.read(self.limit + 1 - self.size):
            pieces.append(piece)
        # A plain body with a Content-Length comes in one piece: returned as it is, not copied.
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def drain(self) -> None:
        """Read the rest of the body, keeping none of it (see the class docstring)."""
        while self.read(self.CHUNK):
            pass


def _read_from(stream, size: int) -> bytes:
    """stream.read(size); a client gone or a broken chunk framing is the client's 400, not
    the service's 500. gunicorn raises NoMoreData (an OSError) when the client goes, and
    InvalidChunkSize, ChunkMissingTerminator, InvalidHeader... (ParseExceptions, not OSErrors)
    for a chunked body whose framing is wrong."""
    try:
        return stream.read(size)
    except (OSError, _GunicornParseError):
        raise ClientDisconnected() from None


def _whole_body() -> bytes:
    """The body werkzeug reads whole (neither a plain Content-Length nor chunked), with the
    same translation of framing errors as _read_from."""
    try:
        return request.get_data(cache=False)
    except (OSError, _GunicornParseError):
        raise ClientDisconnected() from None


class _SizedBody:
    def __init__(self, stream, length: int):
        self.stream, self.remaining = stream, length

    def read(self, size: int) -> bytes:
        if not self.remaining:
            return b""
        data = _read_from(self.stream, min(size, self.remaining))
        if not data:
            raise ClientDisconnected()
        self.remaining -= len(data)
        return data


class _ChunkedBody:
    # Read bytes are bounded by the limit + 1 (werkzeug would cut a chunked body silently).
    def __init__(self, stream, limit: int):
        self.stream, self.left = stream, limit + 1

    def read(self, size: int) -> bytes:
        if self.left <= 0:
            raise RequestEntityTooLarge()
        data = _read_from(self.stream, min(size, self.left))
        self.left -= len(data)
        if self.left <= 0:
            raise RequestEntityTooLarge()
        return data


class _WholeBody:
    def __init__(self, data: bytes):
        self.view, self.position = memoryview(data), 0

    def read(self, size: int) -> bytes:
        data = bytes(self.view[self.position : self.position + size])
        self.position += len(data)
        return data


class _Gunzip:
    """Decode up to MAX_GZIP_MEMBERS concatenated gzip members from `raw(size)`, at most the
    asked size per read, so a small bomb is never a large buffer."""

    def __init__(self, raw):
        self.raw = raw
        self.decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.members = 1
        self.pending = b""  # compressed bytes not yet given to the decoder
        self.ended = False

    def read(self, size: int) -> bytes:
        while not self.ended:
            if not self.pending:
                self.pending = self.raw(RequestBody.CHUNK)
                if not self.pending:
                    raise _not_gzip()  # the body ended inside a member: truncated
            try:
                data = self.decoder.decompress(self.pending, size)
            except zlib.error:
                raise _not_gzip() from None
            self.pending = self.decoder.unconsumed_tail
            if self.decoder.eof:
                self._next_member()
            if data:
                return data
        return b""

    def _next_member(self) -> None:
        self.pending = self.decoder.unused_data or self.raw(RequestBody.CHUNK)
        if not self.pending:
            self.ended = True
            return
        self.members += 1
        if self.members > MAX_GZIP_MEMBERS:
            raise _not_gzip(f"More than {MAX_GZIP_MEMBERS} gzip members.")
        self.decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)


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
        # werkzeug's form parser reads the server's stream itself: its framing errors too are
        # the client's 400 (see _read_from).
        try:
            form = request.form
        except (OSError, _GunicornParseError):
            raise ClientDisconnected() from None
        return {key: form.get(key) for key in form}
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

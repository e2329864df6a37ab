"""gzip for response bodies: phones pay for every byte on mobile data.

A body over 1 KiB is gzip-encoded when the request accepts gzip (a q of 0 refuses it). Every
such answer says `Vary: Accept-Encoding`. The ETag of an encoded answer becomes weak, as the
encoded bytes differ from the plain ones while meaning the same: `If-None-Match` compares
weakly, so a 304 comes whichever encoding the ETag was seen with. Streamed answers
(Server-Sent Events, large streamed listings) compress themselves or not at all.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable

from flask import Flask, Response, request

MIN_SIZE = 1024
# zlib level 6 for ordinary answers; level 3 for large ones (a full fetch of a 5,000-contact
# bench book, 3.2 MB of JSON: level 1 gave 681 kB in 21 ms, 3 612 kB in 24 ms, 5 546 kB in
# 39 ms, 6 526 kB in 52 ms): 3 takes a tenth off level 1's bytes for almost nothing, and the
# levels above it cost up to 2.5 times the CPU of level 1 on a request that is mostly that.
SMALL_LEVEL, LARGE_LEVEL, LARGE = 6, 3, 256 * 1024


def accepts_gzip() -> bool:
    """gzip as the client names it (RFC 9110 8.4.1.3: x-gzip is gzip), else as `*` covers it:
    an explicit `gzip;q=0` is never overruled by a wildcard."""
    accepted = request.accept_encodings
    listed = {value.lower(): quality for value, quality in accepted}
    for name in ("gzip", "x-gzip"):
        if name in listed:
            return listed[name] > 0
    return accepted.quality("gzip") > 0


def register_compression(app: Flask) -> None:
    app.after_request(compress_response)


def compress_response(response: Response) -> Response:
    if response.direct_passthrough or response.is_streamed:
        return response
    if response.status_code == 304:
        return _not_modified(response)
    if response.status_code < 200 or response.status_code == 204:
        return response
    if "Content-Encoding" in response.headers:
        return response
    body = response.get_data()
    if len(body) <= MIN_SIZE:
        return response
    response.vary.add("Accept-Encoding")
    if not accepts_gzip():
        return response
    level = SMALL_LEVEL if len(body) < LARGE else LARGE_LEVEL
    response.set_data(gzip.compress(body, compresslevel=level, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    etag, weak = response.get_etag()
    if etag and not weak:
        response.set_etag(etag, weak=True)
    return response


def _not_modified(response: Response) -> Response:
    """A 304 carries what the 200 it stands for would: `Vary`, and the ETag in the form the
    client holds it (weak when it came with a gzip-encoded 200)."""
    response.vary.add("Accept-Encoding")
    etag, weak = response.get_etag()
    held = request.if_none_match
    if etag and not weak and held.is_weak(etag) and not held.is_strong(etag):
        response.set_etag(etag, weak=True)
    return response


def streamed(chunks: Iterable[bytes], mimetype: str, headers: dict) -> Response:
    """A streamed answer (chunked, no Content-Length) compressed as compress_response would
    compress it whole: gzip when accepted (level LARGE_LEVEL: streamed bodies are the large
    ones), `Vary: Accept-Encoding`, and a weak ETag when encoded. `chunks.close()`, if it
    has one, runs whether or not the body was sent."""
    accepted = accepts_gzip()
    body = _GzipStream(chunks) if accepted else chunks
    response = Response(body, mimetype=mimetype, headers=headers)
    response.vary.add("Accept-Encoding")
    if accepted:
        response.headers["Content-Encoding"] = "gzip"
        etag, weak = response.get_etag()
        if etag and not weak:
            response.set_etag(etag, weak=True)
    return response


class _GzipStream:
    """gzip of an iterable of bytes, piece by piece; close() is passed on to the source."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = chunks

    def __iter__(self):
        encoder = zlib.compressobj(LARGE_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        for chunk in self._chunks:
            encoded = encoder.compress(chunk)
            if encoded:
                yield encoded
        yield encoder.flush()

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

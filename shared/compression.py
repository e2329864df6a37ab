"""gzip for response bodies: phones pay for every byte on mobile data.

A body over 1 KiB is gzip-encoded when the request accepts gzip (a q of 0 refuses it). Every
such answer says `Vary: Accept-Encoding`. The ETag of an encoded answer becomes weak, as the
encoded bytes differ from the plain ones while meaning the same: `If-None-Match` compares
weakly, so a 304 comes whichever encoding the ETag was seen with. Streamed answers
(Server-Sent Events, large streamed listings) compress themselves or not at all.
"""

from __future__ import annotations

import gzip

from flask import Flask, Response, request

MIN_SIZE = 1024
LEVEL = 6  # zlib's default: most of the gain of 9 at a fraction of its cost on JSON


def accepts_gzip() -> bool:
    return request.accept_encodings.quality("gzip") > 0


def register_compression(app: Flask) -> None:
    app.after_request(compress_response)


def compress_response(response: Response) -> Response:
    if response.direct_passthrough or response.is_streamed:
        return response
    if response.status_code < 200 or response.status_code in (204, 304):
        return response
    if "Content-Encoding" in response.headers:
        return response
    body = response.get_data()
    if len(body) <= MIN_SIZE:
        return response
    response.vary.add("Accept-Encoding")
    if not accepts_gzip():
        return response
    response.set_data(gzip.compress(body, compresslevel=LEVEL, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    etag, weak = response.get_etag()
    if etag and not weak:
        response.set_etag(etag, weak=True)
    return response

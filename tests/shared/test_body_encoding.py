"""gzip both ways, on a small app: request bodies decoded under the body limit (a bomb is a 413,
a broken or truncated stream a 400), responses over 1 KiB encoded for clients that accept gzip,
with Vary and a weak ETag so 304s work whichever encoding the ETag was seen with."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from flask import Flask, Response, jsonify, request

from shared.body import json_object, register_body_limit, request_bytes, request_stream
from shared.compression import register_compression
from shared.errors import register_error_handlers

LIMIT = 64 * 1024


@pytest.fixture
def client():
    app = Flask("encoding-test")
    register_error_handlers(app)
    register_body_limit(app, LIMIT)
    register_compression(app)

    @app.post("/echo")
    def echo():
        return jsonify(json_object())

    @app.post("/pieces")
    def pieces():
        """The body read through request_stream in small pieces, as the upload reader does."""
        body, read = request_stream(), []
        while piece := body.read(7):
            assert len(piece) <= 7
            read.append(piece)
        return jsonify(size=sum(map(len, read)), text=b"".join(read).decode())

    @app.post("/whole")
    def whole():
        data = request_bytes()
        return jsonify(size=len(data), text=data.decode())

    @app.get("/big")
    def big():
        response = Response(json.dumps({"x": "y" * 5000}), mimetype="application/json")
        response.set_etag("v1")
        if request.if_none_match.contains_weak("v1"):
            return Response(status=304, headers={"ETag": response.headers["ETag"]})
        return response

    @app.get("/small")
    def small():
        return jsonify(ok=True)

    return app.test_client()


def post_gzip(client, data: bytes, **headers):
    return client.post(
        "/echo",
        data=data,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json", **headers},
    )


def test_a_gzip_body_is_decoded(client):
    response = post_gzip(client, gzip.compress(b'{"a": "b"}'))
    assert response.status_code == 200
    assert response.json == {"a": "b"}


def test_concatenated_gzip_members_are_one_body(client):
    response = post_gzip(client, gzip.compress(b'{"a": ') + gzip.compress(b'"b"}'))
    assert response.json == {"a": "b"}


def test_the_limit_applies_to_the_decoded_size(client):
    bomb = gzip.compress(b'{"a": "' + b"0" * (10 * 1024 * 1024) + b'"}')
    assert len(bomb) < LIMIT
    response = post_gzip(client, bomb)
    assert (response.status_code, response.json["error"]) == (413, "payload_too_large")


@pytest.mark.parametrize(
    "data",
    [gzip.compress(b'{"a": "b"}')[:-6], b"not gzip at all", gzip.compress(b"{}") + b"junk"],
    ids=["truncated", "not-gzip", "trailing-garbage"],
)
def test_a_broken_gzip_body_is_a_400(client, data):
    response = post_gzip(client, data)
    assert (response.status_code, response.json["error"]) == (400, "invalid_json")


def test_an_unknown_encoding_is_a_415(client):
    response = post_gzip(client, b"{}", **{"Content-Encoding": "br"})
    assert (response.status_code, response.json["error"]) == (415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("body", "status"),
    [(b'{"a": "chunked"}', 200), (b'{"a": "' + b"0" * LIMIT + b'"}', 413)],
)
def test_a_chunked_gzip_body_is_decoded_under_the_limit(client, body, status):
    """No Content-Length (gunicorn has already taken the chunk framing off the stream)."""
    response = client.post(
        "/echo",
        input_stream=io.BytesIO(gzip.compress(body)),
        headers={
            "Content-Encoding": "gzip",
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
        },
    )
    assert response.status_code == status


def test_responses_over_1_kib_are_gzipped_for_clients_that_accept_it(client):
    plain = client.get("/big")
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == "Accept-Encoding"
    encoded = client.get("/big", headers={"Accept-Encoding": "gzip, deflate"})
    assert encoded.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in encoded.headers["Vary"]
    assert gzip.decompress(encoded.data) == plain.data
    assert int(encoded.headers["Content-Length"]) == len(encoded.data) < len(plain.data)


@pytest.mark.parametrize("accept", ["x-gzip", "X-GZIP;q=0.5", "*", "identity;q=0.1, gzip"])
def test_gzip_when_accepted_under_any_of_its_names(client, accept):
    response = client.get("/big", headers={"Accept-Encoding": accept})
    assert response.headers["Content-Encoding"] == "gzip"


@pytest.mark.parametrize(
    "accept",
    ["gzip;q=0", "identity", "br", "*;q=0, identity", "gzip;q=0, *", "x-gzip;q=0, *", "GZIP;q=0"],
)
def test_no_gzip_unless_accepted(client, accept):
    response = client.get("/big", headers={"Accept-Encoding": accept})
    assert "Content-Encoding" not in response.headers


def test_small_responses_are_not_encoded(client):
    response = client.get("/small", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in response.headers


@pytest.mark.parametrize("seen_with", ["gzip", "identity"])
@pytest.mark.parametrize("asks_with", ["gzip", "identity"])
def test_304_whichever_encoding_the_etag_came_with(client, seen_with, asks_with):
    etag = client.get("/big", headers={"Accept-Encoding": seen_with}).headers["ETag"]
    response = client.get("/big", headers={"Accept-Encoding": asks_with, "If-None-Match": etag})
    assert response.status_code == 304


def test_many_gzip_members_are_refused_without_quadratic_work(client):
    """Thousands of empty members would each cost a decoder and a copy of the rest."""
    members = gzip.compress(b"", mtime=0) * 3000  # 60 kB, under the 64 KiB limit
    response = post_gzip(client, members)
    assert (response.status_code, response.json["error"]) == (400, "invalid_json")
    assert "members" in response.json["details"]["body"][0]


def test_a_route_that_reads_no_body_never_decodes_one(client):
    for encoding in ("gzip", "br"):
        response = client.get("/small", data=b"garbage", headers={"Content-Encoding": encoding})
        assert response.status_code == 200


def test_a_304_carries_vary_and_the_etag_as_the_client_holds_it(client):
    weak = client.get("/big", headers={"Accept-Encoding": "gzip"}).headers["ETag"]
    assert weak.startswith("W/")
    response = client.get("/big", headers={"Accept-Encoding": "gzip", "If-None-Match": weak})
    assert response.status_code == 304
    assert response.headers["ETag"] == weak
    assert "Accept-Encoding" in response.headers["Vary"]


_TEXT = b'{"a": "' + "zoë ☕ ".encode() * 300 + b'"}'


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        (_TEXT, {}),
        (gzip.compress(_TEXT), {"Content-Encoding": "gzip"}),
        (gzip.compress(_TEXT[:900]) + gzip.compress(_TEXT[900:]), {"Content-Encoding": "gzip"}),
        (_TEXT, {"Transfer-Encoding": "chunked"}),
        (gzip.compress(_TEXT), {"Content-Encoding": "gzip", "Transfer-Encoding": "chunked"}),
        (gzip.compress(b'{"a": "' + b"0" * LIMIT + b'"}'), {"Content-Encoding": "gzip"}),
        (gzip.compress(_TEXT)[:-6], {"Content-Encoding": "gzip"}),
        (gzip.compress(b"{}") * 9, {"Content-Encoding": "gzip"}),
        (gzip.compress(b"{}") + b"junk", {"Content-Encoding": "gzip"}),
        (b"", {"Content-Encoding": "gzip"}),
        (b'{"a": "' + b"0" * LIMIT + b'"}', {"Transfer-Encoding": "chunked"}),
    ],
    ids=[
        "plain", "gzip", "two-members", "chunked", "chunked-gzip", "bomb", "truncated",
        "nine-members", "trailing-garbage", "empty-gzip", "chunked-over-limit",
    ],
)  # fmt: skip
def test_the_streamed_body_is_the_whole_body_piece_by_piece(client, data, headers):
    """request_stream gives the bytes request_bytes gives, and fails where it fails, with
    the same status and message."""
    chunked = "Transfer-Encoding" in headers
    answers = [
        client.post(
            path,
            data=None if chunked else data,
            input_stream=io.BytesIO(data) if chunked else None,
            headers={"Content-Type": "application/json", **headers},
        )
        for path in ("/whole", "/pieces")
    ]
    whole, pieces = ((answer.status_code, answer.json) for answer in answers)
    assert whole == pieces

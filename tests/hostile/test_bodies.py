"""Hostile request bodies: oversize, deeply nested, invalid UTF-8, NUL bytes, wrong types,
100,000 tiny contacts, one contact with 10,000 entries. Each gets a clear 4xx in the error
shape, nothing of it is stored, and the service keeps serving."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from tests.support.clients import dumps, is_error_shape, sample_contact
from tests.support.raw_http import read_answer, send_head

CONTACTS = "/v1/devices/phone/contacts"


@pytest.fixture(scope="module")
def user(make_user):
    return make_user(numbers=["+15557770002"])


@pytest.fixture
def phone(user, hostile_contacts):
    """The user's device "phone", emptied, on the default-limits service."""
    client = user.client(hostile_contacts)
    client.request("DELETE", "/v1/devices/phone")
    assert client.put_device("phone").status_code == 201
    return client


def assert_untouched(client, device: str = "phone") -> None:
    """Nothing stored: the device is still empty at revision 0, and the service still serves."""
    assert requests.get(client.base_url + "/healthz", timeout=5).status_code == 200
    device_json = client.request("GET", f"/v1/devices/{device}").json()
    assert (device_json["revision"], device_json["contact_count"]) == (0, 0), device_json
    assert client.book(device) == {}
    ok = client.patch_contacts(device, upsert=[sample_contact("after")])
    assert ok.status_code == 200, ok.text


def send_raw(client, method: str, path: str, body: bytes, content_type="application/json"):
    return client.request(
        method, path, data=body, headers={"Content-Type": content_type}, timeout=120
    )


def nested(depth: int) -> bytes:
    return b'{"upsert": [{"contactId": "deep", "notes": ' + b"[" * depth + b"]" * depth + b"}]}"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"upsert": [', 400, "invalid_json"),
        (b"[]", 400, "invalid_json"),
        (b'"upsert"', 400, "invalid_json"),
        (b"", 400, "invalid_json"),
        (b'{"upsert": [{"contactId": "a\xff\xfeb"}]}', 400, "invalid_json"),
        (b'\xef\xbb\xbf{"upsert": []}\xc3', 400, "invalid_json"),
        (b'{"upsert": [{"contactId": "a", "displayName": "\xed\xa0\x80"}]}', 400, "invalid_json"),
        (nested(100_000), 400, "invalid_json"),
        (b'{"upsert": [], "delete": [], "upsert": [' + b"1," * 10 + b"1]}", 422, None),
        (b'{"upsert": [{"contactId": "n", "x": NaN}]}', 400, "invalid_json"),
        (b'{"upsert": [{"contactId": "n", "x": -Infinity}]}', 400, "invalid_json"),
    ],
    ids=[
        "truncated",
        "array",
        "string",
        "empty",
        "invalid-utf8",
        "bom-and-stray-byte",
        "lone-surrogate-utf8",
        "nested-100000",
        "duplicate-key",
        "nan",
        "infinity",
    ],
)
def test_malformed_patch_bodies_are_rejected_and_change_nothing(phone, body, status, code):
    response = send_raw(phone, "PATCH", CONTACTS, body)
    assert response.status_code == status, response.text
    assert is_error_shape(response), response.text
    if code:
        assert response.json()["error"] == code
    assert_untouched(phone)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"upsert": {"contactId": "a"}}, "upsert"),
        ({"upsert": ["a"]}, "upsert.0"),
        ({"upsert": [{"contactId": 7}]}, "upsert.0.contactId"),
        ({"upsert": [{"contactId": None}]}, "upsert.0.contactId"),
        ({"upsert": [{"contactId": ""}]}, "upsert.0.contactId"),
        ({"upsert": [{"contactId": "x" * 257}]}, "upsert.0.contactId"),
        ({"upsert": [{"displayName": "no id"}]}, "upsert.0.contactId"),
        ({"upsert": [{"contactId": "a", "displayName": 5}]}, "upsert.0.displayName"),
        ({"upsert": [{"contactId": "a", "displayName": ["x"]}]}, "upsert.0.displayName"),
        ({"upsert": [{"contactId": "a", "contactEntries": "tel"}]}, "upsert.0.contactEntries"),
        ({"upsert": [{"contactId": "a", "contactEntries": [7]}]}, "upsert.0.contactEntries.0"),
        (
            {"upsert": [{"contactId": "a", "contactEntries": [{"type": "fax", "uri": "1"}]}]},
            "upsert.0.contactEntries.0.type",
        ),
        (
            {"upsert": [{"contactId": "a", "contactEntries": [{"type": "tel", "uri": 5}]}]},
            "upsert.0.contactEntries.0.uri",
        ),
        ({"upsert": [{"contactId": "a", "checksum": 12}]}, "upsert.0.checksum"),
        ({"upsert": [], "delete": "a"}, "delete"),
        ({"upsert": [], "delete": [1]}, "delete.0"),
        ({"upsert": [sample_contact("a"), sample_contact("a")]}, None),
        ({"upsert": [sample_contact("a")], "delete": ["a"]}, None),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_wrong_types_are_a_422_naming_the_field_and_change_nothing(phone, body, field):
    response = phone.request("PATCH", "/v1/devices/phone/contacts", json=body)
    assert response.status_code == 422, response.text
    assert is_error_shape(response)
    assert response.json()["error"] == "validation_error"
    if field:
        assert field in response.json()["details"], response.json()
    assert_untouched(phone)


def test_nul_in_a_contact_id_is_a_validation_error(phone):
    """A contactId is also a key column, and PostgreSQL text cannot hold NUL."""
    response = phone.patch_contacts("phone", upsert=[{"contactId": "nul\u0000id"}])
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"
    assert list(response.json()["details"]) == ["upsert.0.contactId"]
    assert_untouched(phone)


@pytest.mark.parametrize(
    "contact",
    [
        {"contactId": "a", "displayName": "Ann\u0000Smith"},
        {"contactId": "a", "unknownKey": {"nested\u0000key": "v\u0000"}},
        {"contactId": "a", "contactEntries": [{"type": "tel", "uri": "+1555\u00000001"}]},
    ],
    ids=["in-name", "in-unknown-key", "in-entry"],
)
def test_nul_characters_in_contact_data_are_kept_exactly(phone, contact):
    response = phone.patch_contacts("phone", upsert=[contact])
    assert response.status_code == 200, response.text
    # What was uploaded is what is read back, character for character.
    stored = phone.book("phone")[contact["contactId"]]
    stored.pop("checksum")
    assert stored == contact


def test_nul_in_the_device_id_is_rejected(phone):
    response = phone.request("PUT", "/v1/devices/bad%00id")
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"
    assert is_error_shape(response)


def test_100000_tiny_contacts_exceed_the_limit_and_nothing_is_stored(phone):
    contacts = [{"contactId": str(i)} for i in range(100_000)]
    response = phone.request("PUT", CONTACTS, json={"contacts": contacts}, timeout=120)
    assert response.status_code == 422, response.text[:500]
    assert response.json()["error"] == "too_many_contacts"
    response = phone.request("PATCH", CONTACTS, json={"upsert": contacts}, timeout=120)
    assert response.status_code == 422, response.text[:500]
    assert response.json()["error"] == "too_many_contacts"
    assert_untouched(phone)


def test_one_contact_with_10000_entries_is_rejected_and_nothing_is_stored(phone):
    contact = sample_contact("huge", n_entries=10_000)
    response = phone.patch_contacts("phone", upsert=[sample_contact("fine"), contact])
    assert response.status_code == 422, response.text[:500]
    assert is_error_shape(response)
    assert response.json()["error"] == "validation_error"
    assert any(key.startswith("upsert.1") for key in response.json()["details"])
    assert_untouched(phone)


def test_a_contact_over_the_byte_limit_is_rejected(phone):
    contact = {"contactId": "big", "notes": "n" * 70_000}
    response = phone.patch_contacts("phone", upsert=[contact])
    assert response.status_code == 422, response.text[:500]
    assert is_error_shape(response)
    assert_untouched(phone)


@pytest.fixture
def small_phone(user, small_contacts):
    client = user.client(small_contacts)
    client.request("DELETE", "/v1/devices/phone")
    assert client.put_device("phone").status_code == 201
    return client


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversize_body_is_a_413_and_nothing_is_stored(small_phone, chunked):
    contacts = [sample_contact(f"c{i}", 2) for i in range(2000)]  # ~300 KB > 64 KiB
    body = dumps({"upsert": contacts, "delete": []})
    data = iter([body[i : i + 8192] for i in range(0, len(body), 8192)]) if chunked else body
    response = small_phone.request(
        "PATCH", CONTACTS, data=data, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text[:500]
    assert response.json()["error"] == "payload_too_large"
    assert is_error_shape(response)
    assert_untouched(small_phone)


def test_an_oversize_login_body_is_a_413(sso_server):
    body = {"cloud_id": "C", "username": "u", "password": "p" * 200_000}
    response = requests.post(sso_server.url + "/v1/tokens", json=body, timeout=30)
    assert response.status_code == 413, response.text[:500]
    assert response.json()["error"] == "payload_too_large"


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/v1/tokens", nested(20_000), "invalid_json"),  # under the SSO's 64 KiB body limit
        ("/v1/tokens", b'{"cloud_id": "C\xff", "username": "u", "password": "p"}', "invalid_json"),
        # A raw control character inside a JSON string is not JSON.
        ("/v1/tokens", b'{"cloud_id": "C", "username": "u\x00", "password": "p"}', "invalid_json"),
        ("/v1/tokens", b'{"cloud_id": ["C"], "username": {"a": 1}, "password": 5}',
         "invalid_request"),
        ("/v1/introspect", nested(20_000), "invalid_json"),
        ("/v1/revoke", nested(20_000), "invalid_json"),
        ("/v1/revoke", b'{"token": ["a"]}', "invalid_request"),
    ],
    ids=["login-nested", "login-utf8", "login-nul", "login-types", "introspect-nested",
         "revoke-nested", "revoke-types"],
)  # fmt: skip
def test_hostile_sso_bodies_get_a_400_in_the_error_shape(sso_server, path, body, code):
    from tests.support.stack import INTROSPECTION_CLIENT

    response = requests.post(
        sso_server.url + path,
        data=body,
        headers={"Content-Type": "application/json"},
        auth=INTROSPECTION_CLIENT if path == "/v1/introspect" else None,
        timeout=30,
    )
    assert response.status_code == 400, response.text[:500]
    assert response.json()["error"] == code, response.text[:500]
    assert is_error_shape(response), response.text[:500]
    assert requests.get(sso_server.url + "/healthz", timeout=5).status_code == 200


def test_valid_json_that_is_not_utf8_text_is_rejected(phone):
    body = json.dumps({"upsert": [sample_contact("x")]}).encode("utf-16")
    response = send_raw(phone, "PATCH", CONTACTS, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_json"
    assert_untouched(phone)


@pytest.mark.parametrize(
    "device_id",
    ["a" * 129, "a%20b", "%C3%A4", "a%2Fb", "a%00", "a;b", "a%0D%0Ab", "*"],
    ids=["129-chars", "space", "non-ascii", "slash", "nul", "semicolon", "crlf", "star"],
)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_invalid_device_ids_are_a_4xx_in_the_error_shape(phone, device_id, method):
    """Such a device cannot exist (404); registering one fails validation (422) — except
    `a%2Fb`, which the server decodes to two path segments: no route (404)."""
    response = phone.request(method, f"/v1/devices/{device_id}")
    expected = 422 if method == "PUT" and device_id != "a%2Fb" else 404
    assert response.status_code == expected, response.text
    assert response.json()["error"] == {404: "not_found", 422: "validation_error"}[expected]
    assert is_error_shape(response), response.text
    assert [d["id"] for d in phone.request("GET", "/v1/devices").json()["devices"]] == ["phone"]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        # Newer than the device's revision: as gone as one older than the change log keeps.
        ("/contacts", {"since": "99999999999999999999999"}, 410),
        ("/contacts", {"since": "-1"}, 422),
        ("/contacts", {"since": "1e3"}, 422),
        ("/contacts", {"since": "0x10"}, 422),
        ("/contacts", {"since": "1\x00"}, 422),
        ("/checksums", {"blocks": "99999999999999999999999"}, 422),
        ("/checksums", {"blocks": "0"}, 422),
        ("/checksums", {"blocks": "17"}, 422),
        ("/checksums", {"blocks": "4", "block": "zz"}, 422),
        ("/checksums", {"blocks": "4", "block": "f" * 3_000}, 422),  # under gunicorn's line limit
        ("/checksums", {"block": "0"}, 422),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_hostile_query_parameters_are_a_4xx_never_a_500(phone, path, params, status):
    assert phone.patch_contacts("phone", upsert=[sample_contact("a")]).status_code == 200
    response = phone.request("GET", "/v1/devices/phone" + path, params=params)
    assert response.status_code == status, response.text[:500]
    code = {410: "revision_expired", 422: "validation_error"}[status]
    assert response.json()["error"] == code, response.text[:500]
    assert is_error_shape(response), response.text[:500]


def test_a_repeated_query_parameter_is_never_a_500(phone):
    """API.md does not say what `?since=1&since=2` means: the answer may be the first value's
    (200) or a refusal (422), in the error shape."""
    assert phone.patch_contacts("phone", upsert=[sample_contact("a")]).status_code == 200
    response = phone.request("GET", CONTACTS, params={"since": ["1", "2"]})
    assert response.status_code in (200, 422), response.text[:500]
    if response.status_code == 422:
        assert is_error_shape(response), response.text[:500]


def test_dot_dot_is_an_ordinary_device_id(phone):
    """`..` is made of allowed characters: it must name a device, not walk a path."""
    created = phone.request("PUT", "/v1/devices/%2E%2E")
    assert created.status_code == 201, created.text
    assert created.json()["id"] == ".."
    # Encoded, or the HTTP client itself would resolve the dot segment.
    dots = "/v1/devices/%2E%2E/contacts"
    patched = phone.request("PATCH", dots, json={"upsert": [sample_contact("dots")]})
    assert patched.status_code == 200, patched.text
    assert [c["contactId"] for c in phone.request("GET", dots).json()["contacts"]] == ["dots"]
    assert phone.book("phone") == {}
    assert phone.request("DELETE", "/v1/devices/%2E%2E").status_code == 204


# Chunked bodies whose framing is wrong: gunicorn raises a ParseException (not an OSError)
# for these while the view reads the body.
BROKEN_CHUNKS = {
    "bad-size": b"zz\r\nabc\r\n0\r\n\r\n",
    "no-terminator": b"3\r\nabcXY0\r\n\r\n",
    "negative-size": b"-3\r\nabc\r\n0\r\n\r\n",
}


def broken_chunked(
    url: str, method: str, path: str, body: bytes, token: str | None = None,
    content_type: str = "application/json",
):  # fmt: skip
    headers = {"Content-Type": content_type, "Transfer-Encoding": "chunked",
               "Connection": "close"}  # fmt: skip
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with send_head(url, method, path, headers, body) as sock:
        sock.shutdown(socket.SHUT_WR)
        answer = read_answer(sock)
    head, _, payload = answer.partition(b"\r\n\r\n")
    return head, payload


def assert_client_error(head: bytes, payload: bytes) -> None:
    assert head.startswith(b"HTTP/1.1 400"), head[:300]
    body = json.loads(payload)
    assert set(body) <= {"error", "message", "details"} and body["error"] != "internal_error"


@pytest.mark.parametrize("body", BROKEN_CHUNKS.values(), ids=BROKEN_CHUNKS.keys())
@pytest.mark.parametrize(("method", "path"), [("PATCH", CONTACTS), ("PUT", "/v1/devices/other")])
def test_a_chunked_body_with_broken_framing_is_a_400_and_nothing_is_stored(
    phone, hostile_contacts, method, path, body
):
    head, payload = broken_chunked(hostile_contacts.url, method, path, body, phone.token)
    assert_client_error(head, payload)
    assert phone.request("GET", "/v1/devices/other").status_code == 404
    assert b"unhandled error" not in hostile_contacts.log_path.read_bytes()
    assert_untouched(phone)


@pytest.mark.parametrize("body", BROKEN_CHUNKS.values(), ids=BROKEN_CHUNKS.keys())
@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/tokens", "application/json"),
        ("/v1/revoke", "application/json"),
        ("/v1/revoke", "application/x-www-form-urlencoded"),
        # werkzeug's multipart parser reads the stream itself.
        ("/v1/revoke", "multipart/form-data; boundary=xyz"),
    ],
)
def test_an_sso_chunked_body_with_broken_framing_is_a_400(sso_server, path, content_type, body):
    head, payload = broken_chunked(sso_server.url, "POST", path, body, content_type=content_type)
    assert_client_error(head, payload)
    assert b"unhandled error" not in sso_server.log_path.read_bytes()

"""Unit tests of the ext-auth client: placeholders, definitions, parsing, numbers, HTTP."""

# ruff: noqa: E501 - the parametrized tables read best one case per line

from __future__ import annotations

import json
import socket
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from sso_service.ext_auth import (
    Credentials,
    Definition,
    ExtAuthClient,
    InvalidCredentials,
    UnsafeValue,
    UpstreamError,
    build_call,
    escape_url,
    normalise_numbers,
    parse_answer,
    parse_headers,
    substitute,
)
from sso_service.upstream import UpstreamClient
from tests.support.scripted_http import ScriptedServer, reply
from tests.support.servers import free_port

PASSWORDS = [
    "plain",
    'p&ss "100%"',
    "a+b=c&d",
    "100% sure",
    "<tag attr='x'>",
    'it\'s "quoted"',
    "with space and trailing ",
    "pässwörd-日本語-🙂",
    "%password%",
    "back\\slash",
    "semi;colon#hash?q",
]


def creds(password: str, **kw) -> Credentials:
    values = {"username": "alice", "cloud_id": "ACME", "host": "sip.example.com"} | kw
    return Credentials(password=password, **values)


# --- placeholders --------------------------------------------------------------------------


@pytest.mark.parametrize("password", PASSWORDS)
def test_url_placeholders_arrive_intact(password):
    definition = Definition.from_fields(
        {"url": "https://x.test/auth?u=%username%&p=%password%&h=%host%&c=%cloud_id%"}
    )
    call = build_call(definition, creds(password), allow_insecure_http=False)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(call.url).query)
    assert query == {
        "u": ["alice"],
        "p": [password],
        "h": ["sip.example.com"],
        "c": ["ACME"],
    }


@pytest.mark.parametrize("password", PASSWORDS)
def test_form_body_placeholders_arrive_intact(password):
    definition = Definition.from_fields(
        {"url": "https://x.test/auth", "postData": "username=%username%&password=%password%"}
    )
    call = build_call(definition, creds(password), allow_insecure_http=False)
    assert urllib.parse.parse_qs(call.body.decode()) == {
        "username": ["alice"],
        "password": [password],
    }
    assert call.headers["Content-Type"] == b"application/x-www-form-urlencoded"


@pytest.mark.parametrize("password", PASSWORDS)
def test_json_body_placeholders_arrive_intact(password):
    definition = Definition.from_fields(
        {
            "url": "https://x.test/auth",
            "postData": '{"account": {"username": "%account[username]%", '
            '"password": "%account[password]%", "host": "%account[host]%"}}',
            "contentType": "application/json; charset=utf-8",
        }
    )
    call = build_call(definition, creds(password), allow_insecure_http=False)
    assert json.loads(call.body) == {
        "account": {"username": "alice", "password": password, "host": "sip.example.com"}
    }


@pytest.mark.parametrize("password", PASSWORDS)
def test_xml_body_placeholders_arrive_intact(password):
    definition = Definition.from_fields(
        {
            "url": "https://x.test/auth",
            "postData": "<auth u='%username%'><password>%password%</password></auth>",
            "contentType": "text/xml",
        }
    )
    call = build_call(definition, creds(password), allow_insecure_http=False)
    root = ET.fromstring(call.body)  # noqa: S314 - our own output
    assert root.get("u") == "alice"
    assert root.findtext("password") == password


@pytest.mark.parametrize(
    ("template", "escape", "expected"),
    [
        ("%password%", "url", "p%26ss%20%22100%25%22"),
        ("%password%", "json", 'p&ss \\"100%\\"'),
        ("%password%", "xml", "p&amp;ss &quot;100%&quot;"),
        ("%password%", "raw", 'p&ss "100%"'),
        ("%account[password]%/%account[username]%", "raw", 'p&ss "100%"/alice'),
        ("%host%|%unknown%|%%", "raw", "sip.example.com|%unknown%|%%"),
    ],
)
def test_substitution_table(template, escape, expected):
    from sso_service import ext_auth

    escaper = {
        "url": ext_auth.escape_url,
        "json": ext_auth.escape_json,
        "xml": ext_auth.escape_xml,
        "raw": ext_auth.escape_raw,
    }[escape]
    assert substitute(template, creds('p&ss "100%"'), escaper) == expected


def test_substitution_is_single_pass():
    assert substitute("%password%", creds("%username%"), escape_url) == "%25username%25"


def test_host_is_empty_without_one():
    assert substitute("[%host%]", creds("x", host=""), escape_url) == "[]"


@pytest.mark.parametrize("password", PASSWORDS)
def test_header_placeholders_are_inserted_as_they_are(password):
    definition = Definition.from_fields(
        {"url": "https://x.test/", "headers": "X-User: %username%\nX-Pass: %password%"}
    )
    call = build_call(definition, creds(password), allow_insecure_http=False)
    assert call.headers["X-Pass"] == password.encode()
    assert call.headers["X-User"] == b"alice"


@pytest.mark.parametrize("bad", ["a\r\nX-Evil: 1", "a\nb", "a\rb"])
def test_cr_or_lf_in_a_header_value_is_refused(bad):
    definition = Definition.from_fields({"url": "https://x.test/", "headers": "X-P: %password%"})
    with pytest.raises(UnsafeValue) as caught:
        build_call(definition, creds(bad), allow_insecure_http=False)
    assert caught.value.field == "password"


def test_cr_or_lf_is_fine_outside_headers():
    definition = Definition.from_fields({"url": "https://x.test/?p=%password%"})
    call = build_call(definition, creds("a\r\nb"), allow_insecure_http=False)
    assert "%0D%0A" in call.url


# --- definitions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "method", "content_type", "timeout"),
    [
        ({"url": "https://x/"}, "GET", "application/x-www-form-urlencoded", 10.0),
        ({"url": "https://x/", "postData": "a=b"}, "POST", "application/x-www-form-urlencoded", 10),
        ({"url": "https://x/", "postData": ""}, "POST", "application/x-www-form-urlencoded", 10),
        ({"url": "https://x/", "postData": "a", "method": "put"}, "PUT", "application/x-www-form-urlencoded", 10),
        ({"url": "https://x/", "method": "post"}, "POST", "application/x-www-form-urlencoded", 10),
        ({"url": "https://x/", "contentType": "application/json", "timeout": 3}, "GET", "application/json", 3),
        ({"url": "https://x/", "timeout": 999}, "GET", "application/x-www-form-urlencoded", 30),
    ],
)  # fmt: skip
def test_definition_defaults(fields, method, content_type, timeout):
    definition = Definition.from_fields(fields)
    assert (definition.method, definition.content_type, definition.timeout) == (
        method,
        content_type,
        timeout,
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ()),
        ("", ()),
        ("X-A: 1\nX-B:  two words \r\n\nbroken line\n", (("X-A", "1"), ("X-B", "two words"))),
        (["X-A: 1", "X-B: 2"], (("X-A", "1"), ("X-B", "2"))),
        ({"X-A": "1"}, (("X-A", "1"),)),
        ("Bad Name: x\nX-Ok: y", (("X-Ok", "y"),)),
        ("X-Url: http://a:b@c", (("X-Url", "http://a:b@c"),)),
    ],
)
def test_parse_headers(raw, expected):
    assert parse_headers(raw) == expected


def test_digest_credentials_come_from_the_definition():
    definition = Definition.from_fields(
        {"url": "https://x/", "authUsername": "svc", "authPassword": "pw"}
    )
    assert build_call(definition, creds("x"), False).auth == ("svc", "pw")


@pytest.mark.parametrize(
    ("url", "insecure", "allowed"),
    [
        ("https://x.test/a", False, True),
        ("http://x.test/a", False, False),
        ("http://x.test/a", True, True),
        ("ftp://x.test/a", True, False),
        ("file:///etc/passwd", True, False),
        ("x.test/a", True, False),
    ],
)
def test_only_https_unless_insecure_is_allowed(url, insecure, allowed):
    definition = Definition.from_fields({"url": url})
    if allowed:
        assert build_call(definition, creds("x"), insecure).url == url
    else:
        with pytest.raises(UpstreamError):
            build_call(definition, creds("x"), insecure)


# --- parsing the answer ----------------------------------------------------------------------

NUMS = ["+15551231234", "+442071838750"]


@pytest.mark.parametrize(
    ("content_type", "body", "numbers", "sip_uri"),
    [
        ("application/json", '{"phoneNumbers": ["+15551231234", "+442071838750"], "sipUri": "sip:a@b"}', NUMS, "sip:a@b"),
        ("application/json; charset=utf-8", '{"phone_numbers": ["+15551231234"], "sip_uri": "sip:a@b"}', NUMS[:1], "sip:a@b"),
        ("application/json", '{"numbers": [{"number": "+15551231234"}, {"number": "+442071838750"}]}', NUMS, None),
        ("application/json", '{"phoneNumbers": [{"number": "+15551231234"}, "+442071838750"]}', NUMS, None),
        ("application/json", '{"phoneNumbers": []}', [], None),
        ("application/json", "{}", [], None),
        ("application/json", '{"phoneNumbers": ["+15551231234", "garbage", "+1555123123"]}', NUMS[:1], None),
        ("application/json", '{"phoneNumbers": "+15551231234", "sipUri": ""}', NUMS[:1], None),
        ("application/vnd.acme+json", '{"numbers": ["+15551231234"]}', NUMS[:1], None),
        ("application/xml", "<r><phoneNumbers><phoneNumber>+15551231234</phoneNumber><phoneNumber>+442071838750</phoneNumber></phoneNumbers><sipUri>sip:a@b</sipUri></r>", NUMS, "sip:a@b"),
        ("text/xml", "<account><numbers><number>+15551231234</number></numbers></account>", NUMS[:1], None),
        (None, "<a><phoneNumbers><phoneNumber> +1 (555) 123-1234 </phoneNumber></phoneNumbers></a>", NUMS[:1], None),
        ("", "<?xml version='1.0'?><x:a xmlns:x='urn:x'><x:phoneNumbers><x:phoneNumber>+15551231234</x:phoneNumber></x:phoneNumbers><x:sipUri>sip:n@s</x:sipUri></x:a>", NUMS[:1], "sip:n@s"),
        ("application/xml", "<phoneNumbers><phoneNumber>+15551231234</phoneNumber></phoneNumbers>", NUMS[:1], None),
        ("application/xml", "<ok/>", [], None),
        ("application/json", "", [], None),
        (None, "  \n", [], None),
        ("application/json", '{"phoneNumbers": ["+15551231234", "+15551231234"]}', NUMS[:1], None),
    ],
)  # fmt: skip
def test_parser_accepts(content_type, body, numbers, sip_uri):
    result = parse_answer(content_type, body.encode(), None)
    assert (result.phone_numbers, result.sip_uri) == (numbers, sip_uri)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", "{not json"),
        ("application/json", "[1, 2]"),
        ("application/json", '"string"'),
        ("application/json", "<xml/>"),
        ("application/xml", '{"phoneNumbers": []}'),
        ("application/xml", "<unclosed>"),
        (None, "\x00<<not json or xml{{"),
        ("text/plain", "hello"),
        ("application/xml", '<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>'),
    ],
)
def test_parser_rejects_garbage(content_type, body):
    with pytest.raises(UpstreamError):
        parse_answer(content_type, body.encode(), None)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        (["+15551231234"], None, ["+15551231234"]),
        (["+1 (555) 123-1234"], None, ["+15551231234"]),
        (["+44 20 7183 8750"], None, ["+442071838750"]),
        (["020 7183 8750"], None, []),
        (["020 7183 8750"], "GB", ["+442071838750"]),
        (["(555) 123-1234"], "US", ["+15551231234"]),
        (["+1 555"], None, []),
        (["not a number", ""], None, []),
        (["+15551231234", "+1 555 123 1234"], None, ["+15551231234"]),
        (["+4930123456"], None, ["+4930123456"]),
        (["+999123456"], None, []),
    ],
)
def test_e164_normalisation(raw, region, expected):
    assert normalise_numbers(raw, region) == expected


# --- the HTTP client, against a real server on loopback -------------------------------------


@pytest.fixture(scope="module")
def upstream():
    server = ScriptedServer()
    yield server
    server.close()


@pytest.fixture
def stub(upstream):
    upstream.requests.clear()
    upstream.script = lambda handler: reply(handler, 200, b"")
    return upstream


@pytest.fixture
def client():
    return ExtAuthClient(allow_insecure_http=True, upstream=UpstreamClient(allow_private=True))


def test_client_success_returns_numbers(client, stub):
    body = json.dumps({"phoneNumbers": ["+15551231234"], "sipUri": "sip:a@b"}).encode()
    stub.script = lambda h: reply(h, 200, body)
    result = client.authenticate(Definition.from_fields({"url": stub.url()}), creds("pw"))
    assert result.phone_numbers == ["+15551231234"]
    assert result.sip_uri == "sip:a@b"


def test_client_posts_the_body_with_its_content_type(client, stub):
    definition = Definition.from_fields(
        {
            "url": stub.url(),
            "postData": '{"u": "%username%", "p": "%password%"}',
            "contentType": "application/json",
            "headers": "X-Cloud: %cloud_id%",
        }
    )
    assert client.authenticate(definition, creds('p"w')).phone_numbers == []
    (seen,) = stub.requests
    assert seen.method == "POST"
    assert json.loads(seen.body) == {"u": "alice", "p": 'p"w'}
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["X-Cloud"] == "ACME"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_4xx_is_invalid_credentials(client, stub, status):
    stub.script = lambda h: reply(h, status)
    with pytest.raises(InvalidCredentials):
        client.authenticate(Definition.from_fields({"url": stub.url()}), creds("pw"))


@pytest.mark.parametrize("status", [301, 302, 307, 500, 502, 503])
def test_client_other_statuses_are_upstream_errors_and_redirects_are_not_followed(
    client, stub, status
):
    stub.script = lambda h: reply(h, status, Location=stub.url("/elsewhere"))
    with pytest.raises(UpstreamError):
        client.authenticate(Definition.from_fields({"url": stub.url()}), creds("pw"))
    assert [seen.path for seen in stub.requests] == ["/ext"]


def test_client_unreachable_is_upstream_error(client):
    definition = Definition.from_fields({"url": f"http://127.0.0.1:{free_port()}/"})
    with pytest.raises(UpstreamError) as caught:
        client.authenticate(definition, creds("pw"))
    assert caught.value.reason == "unreachable"


def test_client_dropped_connection_is_upstream_error(client, stub):
    stub.script = lambda h: h.connection.shutdown(socket.SHUT_RDWR)
    with pytest.raises(UpstreamError) as caught:
        client.authenticate(Definition.from_fields({"url": stub.url()}), creds("pw"))
    assert caught.value.reason == "unreachable"


def test_client_garbage_2xx_is_upstream_error(client, stub):
    stub.script = lambda h: reply(h, 200, b"\x00<<garbage", "application/xml")
    with pytest.raises(UpstreamError) as caught:
        client.authenticate(Definition.from_fields({"url": stub.url()}), creds("pw"))
    assert caught.value.reason == "unparseable"


def test_client_refuses_huge_answers(client, stub):
    body = b"<a>" + b" " * (2 << 20) + b"</a>"
    stub.script = lambda h: reply(h, 200, body, "application/xml")
    with pytest.raises(UpstreamError) as caught:
        client.authenticate(Definition.from_fields({"url": stub.url()}), creds("pw"))
    assert caught.value.reason == "too_large"


def test_client_refuses_plain_http_without_calling(stub):
    client = ExtAuthClient(allow_insecure_http=False, upstream=UpstreamClient(allow_private=True))
    with pytest.raises(UpstreamError) as caught:
        client.authenticate(Definition.from_fields({"url": stub.url()}), creds("pw"))
    assert caught.value.reason == "insecure_url"
    assert stub.requests == []


def test_client_normalises_with_the_default_region(stub):
    body = json.dumps({"phoneNumbers": ["(555) 123-1234", "020 7183 8750"]}).encode()
    stub.script = lambda h: reply(h, 200, body)
    client = ExtAuthClient(True, "US", UpstreamClient(allow_private=True))
    result = client.authenticate(Definition.from_fields({"url": stub.url()}), creds("pw"))
    assert result.phone_numbers == ["+15551231234"]


def test_only_the_first_entries_of_a_huge_number_list_are_parsed():
    """Each entry costs a phonenumbers parse, kept or not: a 1 MiB answer of short junk would
    cost seconds of CPU, so entries past the first 2,000 are not looked at."""
    assert normalise_numbers(["12"] * 2000 + ["+15551231234"], None) == []
    assert normalise_numbers(["12"] * 1999 + ["+15551231234"], None) == ["+15551231234"]


# --- values that URL or XML handling would change on the way ---------------------------------


@pytest.mark.parametrize("password", ["a\r\nb", "a\nb", "a\rb", "a\tb", "\tlead and trail\r\n"])
def test_xml_body_keeps_cr_lf_and_tab(password):
    # Unescaped, an XML parser turns CR LF into LF in text and CR, LF, TAB into a space in
    # attribute values: the provider would check a different password.
    definition = Definition.from_fields(
        {
            "url": "https://x.test/auth",
            "postData": "<auth p='%password%'><password>%password%</password></auth>",
            "contentType": "application/xml",
        }
    )
    call = build_call(definition, creds(password), allow_insecure_http=False)
    root = ET.fromstring(call.body)  # noqa: S314 - our own output
    assert root.get("p") == password
    assert root.findtext("password") == password


@pytest.mark.parametrize("password", ["a\x01b", "\x00", "a\x1fb", "a\x0bb"])
def test_a_control_character_xml_cannot_carry_is_refused_in_an_xml_body(password):
    xml = Definition.from_fields(
        {"url": "https://x.test/a", "postData": "<p>%password%</p>", "contentType": "text/xml"}
    )
    with pytest.raises(UnsafeValue) as refused:
        build_call(xml, creds(password), allow_insecure_http=False)
    assert refused.value.field == "password"
    # JSON and forms carry it escaped: nothing to refuse there.
    as_json = Definition.from_fields(
        {
            "url": "https://x.test/a",
            "postData": '{"p": "%password%"}',
            "contentType": "application/json",
        }
    )
    assert json.loads(build_call(as_json, creds(password), allow_insecure_http=False).body) == {
        "p": password
    }


@pytest.mark.parametrize("username", ["..", ".", "..."])
def test_a_dots_only_value_is_not_a_path_segment_the_url_resolves(client, stub, username):
    definition = Definition.from_fields({"url": stub.url("/x/users/%username%/auth")})
    client.authenticate(definition, creds("pw", username=username))
    (seen,) = stub.requests
    assert seen.path.startswith("/x/users/") and seen.path.endswith("/auth"), seen.path
    assert urllib.parse.unquote(seen.path) == f"/x/users/{username}/auth"


def test_a_number_too_long_for_an_int_is_dropped_not_a_failed_login(client, stub):
    body = b'{"phoneNumbers": ["+15551230009", ' + b"9" * 5000 + b', "+15551230004"]}'
    stub.script = lambda h: reply(h, 200, body)
    result = client.authenticate(Definition.from_fields({"url": stub.url()}), creds("pw"))
    assert result.phone_numbers == ["+15551230009", "+15551230004"]


@pytest.mark.parametrize(
    ("body", "numbers", "sip_uri"),
    [
        (
            b'{"phoneNumbers": [15551230004, "+15551230009"], "sipUri": 12345}',
            ["+15551230009"],
            None,
        ),
        (b'{"phoneNumbers": ["+15551230009"], "sipUri": "sip:a@b"}', ["+15551230009"], "sip:a@b"),
        (b'{"phoneNumbers": "+15551230009", "sipUri": ["sip:a@b"]}', ["+15551230009"], None),
    ],
)
def test_an_integer_is_a_number_never_a_sip_uri(body, numbers, sip_uri):
    result = parse_answer("application/json", body, None)
    assert (result.phone_numbers, result.sip_uri) == (numbers, sip_uri)

"""The introspection client against a real HTTP server on loopback whose answers each test
scripts (tests/support/scripted_http.py); the real SSO service is exercised by the HTTP tests
(test_auth.py, tests/e2e, tests/faults)."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import time

import pytest
import trustme

from contacts_service.sso_client import MAX_ANSWER_BYTES, SsoClient, SsoUnavailable
from tests.support.scripted_http import ScriptedServer, reply, trickle

ACTIVE = {
    "active": True,
    "cloud_id": "C1",
    "username": "alice",
    "phone_numbers": ["+15551230001"],
    "sip_uri": "sip:alice@example.com",
    "iat": 1,
    "exp": int(time.time()) + 3600,
}
INACTIVE = {"active": False}


@pytest.fixture
def server():
    scripted = ScriptedServer()
    yield scripted
    scripted.close()


def answer(body: object, status: int = 200, **headers):
    """A script: every request gets this JSON answer."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda handler: reply(handler, status, raw, **headers)


def client(server: ScriptedServer, timeout: float = 1.5, path: str = "", **kwargs) -> SsoClient:
    return SsoClient(server.url(path), "contacts", "s3cret", timeout=timeout, **kwargs)


def http_answer(body: object, status: int = 200, reason: str = "OK", **headers) -> bytes:
    """One whole HTTP/1.1 answer as raw bytes, framed by Content-Length unless `headers` say
    otherwise (a None value leaves the header out)."""
    raw = json.dumps(body).encode()
    fields = {"Content-Type": "application/json", "Content-Length": str(len(raw))}
    fields.update({name.replace("_", "-"): value for name, value in headers.items()})
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in fields.items() if value is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


def token_of(server: ScriptedServer) -> bytes:
    """The token of the request being answered (the tests below send one at a time)."""
    return server.requests[-1].body.removeprefix(b"token=")


def peers(server: ScriptedServer) -> list:
    """A script answering ACTIVE that records the client address of every request."""
    seen = []

    def script(handler):
        seen.append(handler.client_address)
        reply(handler, 200, json.dumps(ACTIVE).encode())

    server.script = script
    return seen


def test_active_token_gives_the_identity_from_a_basic_authenticated_form_post(server):
    server.script = answer(ACTIVE)
    identity = client(server).introspect("tok+/=")
    assert identity.cloud_id == "C1" and identity.username == "alice"
    assert identity.phone_numbers == ("+15551230001",)
    assert identity.sip_uri == "sip:alice@example.com"
    assert identity.exp == ACTIVE["exp"]
    [seen] = server.requests
    assert (seen.method, seen.path) == ("POST", "/v1/introspect")
    scheme, _, credentials = seen.headers["Authorization"].partition(" ")
    assert scheme == "Basic" and base64.b64decode(credentials) == b"contacts:s3cret"
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen.body == b"token=tok%2B%2F%3D"
    assert seen.headers["Host"] == f"127.0.0.1:{server.port}"


def test_a_base_url_with_a_path_keeps_it(server):
    server.script = answer(ACTIVE)
    client(server, path="/sso/").introspect("tok")
    assert server.requests[0].path == "/sso/v1/introspect"


def test_inactive_token_is_none(server):
    server.script = answer({"active": False})
    assert client(server).introspect("tok") is None


@pytest.mark.parametrize(
    "script",
    [
        answer(b"oops", 500, content_type="text/plain"),
        answer({"error": "invalid_client"}, 401),
        answer(b"not json", content_type="text/plain"),
        answer(["active"]),
        answer({"active": True, "cloud_id": "C1"}),
        answer({**ACTIVE, "cloud_id": "C1\n"}),
        answer(ACTIVE, 302, Location="/v1/introspect-elsewhere"),
        answer(ACTIVE, Content_Encoding="gzip"),
        answer(b"x" * (MAX_ANSWER_BYTES + 1)),
        answer(b"", 204),
    ],
    ids=[
        "500",
        "401",
        "not-json",
        "not-an-object",
        "no-account",
        "bad-cloud-id",
        "redirect",
        "encoded",
        "too-large",
        "204",
    ],
)
def test_answers_that_are_not_an_introspection_are_unavailable(server, script):
    server.script = script
    with pytest.raises(SsoUnavailable):
        client(server).introspect("tok")
    assert len(server.requests) == 1  # no redirect followed, no retry


def test_a_refused_connection_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sso = SsoClient(f"http://127.0.0.1:{port}", "contacts", "s3cret", timeout=1)
    with pytest.raises(SsoUnavailable):
        sso.introspect("tok")


def test_an_sso_that_never_answers_is_unavailable_at_the_deadline(server):
    server.script = lambda handler: time.sleep(5)
    started = time.monotonic()
    with pytest.raises(SsoUnavailable, match="timed out"):
        client(server, timeout=0.5).introspect("tok")
    assert time.monotonic() - started < 2.5


def test_one_deadline_covers_the_whole_answer_even_when_it_trickles(server):
    """Every byte comes well within a per-read timeout; the whole answer does not come
    within the deadline."""
    body = json.dumps(ACTIVE).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    server.script = lambda handler: trickle(handler, head.encode() + b"\r\n\r\n" + body, 0.05)
    started = time.monotonic()
    with pytest.raises(SsoUnavailable, match="timed out"):
        client(server, timeout=1.0).introspect("tok")
    assert time.monotonic() - started < 3.0


def test_keep_alive_one_connection_carries_every_introspection(server):
    seen = peers(server)
    sso = client(server)
    for _ in range(5):
        assert sso.introspect("tok") is not None
    assert len(seen) == 5 and len(set(seen)) == 1


def test_an_answer_that_closes_the_connection_is_read_whole_and_not_reused(server):
    seen = []

    def script(handler):
        seen.append(handler.client_address)
        reply(handler, 200, json.dumps(ACTIVE).encode(), Connection="close")
        handler.close_connection = True

    server.script = script
    sso = client(server)
    assert sso.introspect("a") is not None
    assert sso.introspect("b") is not None
    assert len(set(seen)) == 2


def test_a_kept_connection_the_sso_closed_while_idle_is_replaced(server):
    """The SSO drops an idle keep-alive connection (its keepalive timeout, a restart): the
    next introspection still gets its answer, on a new connection."""
    seen = []

    def script(handler):
        seen.append(handler.client_address)
        reply(handler, 200, json.dumps(ACTIVE).encode())
        handler.close_connection = True  # closed without saying so in the answer

    server.script = script
    sso = client(server)
    assert sso.introspect("a") is not None
    time.sleep(0.1)  # the server's close has arrived
    assert sso.introspect("b") is not None
    assert len(seen) == 2 and len(set(seen)) == 2


def answer_a_then(srv, first: bytes, then: bytes, delay: float, seen: list, sent: threading.Event):
    """A script answering token A with `first` and then `then` (`delay` seconds later, or in
    the same write); any other token is inactive. `seen`: the client addresses, `sent`: set
    once `then` is out."""

    def script(handler):
        seen.append(handler.client_address)
        if token_of(srv) != b"A":
            handler.wfile.write(http_answer(INACTIVE))
            return
        if delay:
            handler.wfile.write(first)
            time.sleep(delay)
            handler.wfile.write(then)
        else:
            handler.wfile.write(first + then)
        sent.set()

    return script


@pytest.mark.parametrize(
    ("transport", "delay"),
    [("http", 0.2), ("http", 0), ("tls", 0.2)],
    ids=["a-moment-later", "right-behind-it", "tls-a-moment-later"],
)
def test_an_extra_copy_of_alices_answer_is_never_read_as_the_next_tokens_answer(
    request, transport, delay
):
    """Something on the SSO port (a buggy proxy) sends a second, unasked-for copy of the answer
    calling token A alice's. The next introspection, of token B that the SSO calls inactive, is
    inactive: it is not served as alice, and it goes over a connection of its own."""
    srv = request.getfixturevalue("server" if transport == "http" else "tls_server")
    extra_sent, seen = threading.Event(), []
    alices = http_answer(ACTIVE)  # the answer, then an unasked-for copy of it
    srv.script = answer_a_then(srv, alices, alices, delay, seen, extra_sent)
    if transport == "http":
        sso = client(srv)
    else:
        url = srv.url("").replace("http://", "https://")
        sso = SsoClient(url, "contacts", "s3cret", timeout=3, ca_bundle=srv.ca_path)
    assert sso.introspect("A").username == "alice"
    assert extra_sent.wait(5)
    time.sleep(0.1)  # the extra copy has arrived
    assert sso.introspect("B") is None
    assert [sent.body for sent in srv.requests] == [b"token=A", b"token=B"]
    assert len(set(seen)) == 2


@pytest.mark.parametrize("delay", [0.1, 0], ids=["a-moment-later", "right-behind-it"])
@pytest.mark.parametrize("status", [204, 304])
def test_bytes_sent_after_an_answer_that_has_no_body_are_never_read_as_the_next_answer(
    server, status, delay
):
    """HTTP allows no body after a 204 or a 304. An SSO that sends bytes there anyway (here:
    an answer calling the token alice's) has its connection closed: the next introspection
    gets its own answer, on a new connection."""
    smuggled = http_answer(ACTIVE)
    head = f"HTTP/1.1 {status} Whatever\r\nContent-Length: {len(smuggled)}\r\n\r\n".encode()
    sent = threading.Event()
    seen: list = []
    server.script = answer_a_then(server, head, smuggled, delay, seen, sent)
    sso = client(server)
    with pytest.raises(SsoUnavailable, match=str(status)):
        sso.introspect("A")
    assert sent.wait(5)
    time.sleep(0.1)  # the bytes after the head have arrived
    assert sso.introspect("B") is None
    assert len(set(seen)) == 2


def chunked_with_a_content_length(body: object) -> bytes:
    raw = json.dumps(body).encode()
    head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
    return head.encode() + f"{len(raw):x}\r\n".encode() + raw + b"\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    "first",
    [
        b"HTTP/1.1 100 Continue\r\n\r\n" + http_answer(ACTIVE),
        chunked_with_a_content_length(ACTIVE),
    ],
    ids=["after-an-unasked-for-100", "chunked-and-content-length"],
)
def test_an_answer_framed_in_a_way_we_do_not_trust_is_used_but_its_connection_is_not(server, first):
    seen = []

    def script(handler):
        seen.append(handler.client_address)
        handler.wfile.write(first if token_of(server) == b"A" else http_answer(INACTIVE))

    server.script = script
    sso = client(server)
    assert sso.introspect("A").username == "alice"
    assert sso.introspect("B") is None
    assert len(set(seen)) == 2


@pytest.mark.parametrize(
    "goodbye",
    [b"", http_answer({"error": "timeout"}, 408, "Request Timeout", Connection="close")],
    ids=["silently", "with-a-408"],
)
def test_a_connection_the_sso_ended_while_idle_is_never_sent_the_next_request(server, goodbye):
    """The SSO ends an idle kept-alive connection (its keep-alive timeout; some servers send a
    "408 Request Timeout" as they do). The next introspection goes to a new connection at once:
    nothing is sent on the ended one (the server here only half-closes, so it would see it),
    and no goodbye is taken for an answer."""
    ended = threading.Event()
    seen = []

    def script(handler):
        seen.append(handler.client_address)
        if getattr(handler, "ended", False):  # a request sent on the ended connection
            handler.close_connection = True
            return
        if token_of(server) != b"A":
            handler.wfile.write(http_answer(INACTIVE))
            return
        handler.wfile.write(http_answer(ACTIVE))
        time.sleep(0.1)  # idle, in the client's pool
        handler.wfile.write(goodbye)
        handler.connection.shutdown(socket.SHUT_WR)
        handler.ended = True
        ended.set()

    server.script = script
    sso = client(server)
    assert sso.introspect("A").username == "alice"
    assert ended.wait(5)
    time.sleep(0.1)  # the end of the connection has arrived
    assert sso.introspect("B") is None
    assert [seen.body for seen in server.requests] == [b"token=A", b"token=B"]
    assert len(set(seen)) == 2


def test_a_chunked_answer_is_read(server):
    body = json.dumps(ACTIVE).encode()

    def script(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for part in (body[:10], body[10:]):
            handler.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")

    server.script = script
    sso = client(server)
    assert sso.introspect("tok").username == "alice"
    assert sso.introspect("tok").username == "alice"  # the connection was left clean


def test_no_cookie_set_by_the_sso_is_ever_sent(server):
    server.script = answer(ACTIVE, Set_Cookie="session=abc; Path=/")
    sso = client(server)
    sso.introspect("a")
    sso.introspect("b")
    assert all("Cookie" not in seen.headers for seen in server.requests)


def test_proxies_from_the_environment_are_not_used(server, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    server.script = answer(ACTIVE)
    assert client(server).introspect("tok") is not None


def test_no_cache_by_default(server):
    server.script = answer(ACTIVE)
    sso = client(server)
    sso.introspect("tok")
    sso.introspect("tok")
    assert len(server.requests) == 2


def test_cache_keeps_active_answers_but_never_beyond_exp(server):
    server.script = answer(ACTIVE)
    sso = client(server, cache_seconds=60)
    sso.introspect("tok")
    sso.introspect("tok")
    assert len(server.requests) == 1
    sso.introspect("other")
    assert len(server.requests) == 2

    server.script = answer({**ACTIVE, "exp": 0})
    expired = client(server, cache_seconds=60)
    expired.introspect("tok")
    expired.introspect("tok")
    assert len(server.requests) == 4


def test_inactive_answers_are_not_cached(server):
    server.script = answer({"active": False})
    sso = client(server, cache_seconds=60)
    sso.introspect("tok")
    sso.introspect("tok")
    assert len(server.requests) == 2


def test_readiness_probe_fails_when_the_probe_token_is_called_active(server):
    server.script = answer({"active": False})
    client(server).healthy()
    server.script = answer(ACTIVE)
    with pytest.raises(SsoUnavailable):
        client(server).healthy()


@pytest.fixture
def tls_server(tmp_path):
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    scripted = ScriptedServer()
    scripted._server.socket = context.wrap_socket(scripted._server.socket, server_side=True)
    scripted.ca_path = str(tmp_path / "ca.pem")
    ca.cert_pem.write_to_path(scripted.ca_path)
    yield scripted
    scripted.close()


def test_https_with_the_configured_ca_bundle(tls_server):
    seen = peers(tls_server)
    url = tls_server.url("").replace("http://", "https://")
    sso = SsoClient(url, "contacts", "s3cret", timeout=3, ca_bundle=tls_server.ca_path)
    assert sso.introspect("tok").username == "alice"
    assert sso.introspect("tok").username == "alice"
    assert len(set(seen)) == 1  # kept alive over TLS too


def test_https_refuses_a_certificate_it_cannot_verify(tls_server):
    url = tls_server.url("").replace("http://", "https://")
    with pytest.raises(SsoUnavailable):
        SsoClient(url, "contacts", "s3cret", timeout=3).introspect("tok")
    assert tls_server.requests == []

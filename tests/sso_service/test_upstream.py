"""The provider-side HTTP client against a real server on loopback: odd but legal answers
are read right, and odd or hostile ones end in an UpstreamFailure, never anything else."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from sso_service.upstream import Request, UpstreamClient, UpstreamFailure
from tests.support.scripted_http import ScriptedServer, reply, trickle
from tests.support.servers import free_port


@pytest.fixture(scope="module")
def server():
    stub = ScriptedServer()
    yield stub
    stub.close()


@pytest.fixture
def stub(server):
    server.requests.clear()
    return server


@pytest.fixture
def client():
    return UpstreamClient(allow_private=True)


def digest_request(stub) -> Request:
    return Request("GET", stub.url(), digest=("sso", "secret"))


def test_digest_is_answered_when_several_challenges_are_offered(client, stub):
    def script(h):
        if h.headers.get("Authorization", "").startswith("Digest "):
            return reply(h, 200, b"{}")
        challenges = ['Basic realm="r"', 'Digest realm="r", nonce="abc", qop="auth"']
        return reply(h, 401, b"", WWW_Authenticate=challenges)

    stub.script = script
    assert client.exchange(digest_request(stub), 5).status == 200
    assert len(stub.requests) == 2


def test_digest_offered_after_basic_in_one_header_is_answered(client, stub):
    def script(h):
        if h.headers.get("Authorization", "").startswith("Digest "):
            return reply(h, 200, b"{}")
        return reply(h, 401, b"", WWW_Authenticate='Basic realm="r", Digest realm="r", nonce="n"')

    stub.script = script
    assert client.exchange(digest_request(stub), 5).status == 200


@pytest.mark.parametrize(
    "challenge", ['Digest nonce="abc", qop="auth"', 'Digest realm="r"', "Digest ,,,=="]
)
def test_a_broken_digest_challenge_is_a_failure(client, stub, challenge):
    stub.script = lambda h: reply(h, 401, b"", WWW_Authenticate=challenge)
    with pytest.raises(UpstreamFailure) as caught:
        client.exchange(digest_request(stub), 5)
    assert caught.value.reason == "bad_challenge"


def test_interim_answers_are_skipped(client, stub):
    def script(h):
        h.close_connection = True
        h.wfile.write(
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
            b"HTTP/1.1 102 Processing\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        )

    stub.script = script
    answer = client.exchange(Request("GET", stub.url()), 5)
    assert (answer.status, answer.body) == (200, b"{}")


@pytest.mark.parametrize("framing", ["close", "length", "http10"])
def test_the_deadline_holds_however_the_body_is_framed(client, stub, framing):
    body = b"{}" + b" " * 100

    def script(h):
        h.close_connection = True
        head = {
            "close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
            "length": b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body),
            "http10": b"HTTP/1.0 200 OK\r\n\r\n",
        }[framing]
        h.wfile.write(head)
        h.wfile.flush()
        trickle(h, body, 0.1, limit=20)

    stub.script = script
    started = time.monotonic()
    with pytest.raises(UpstreamFailure) as caught:
        client.exchange(Request("GET", stub.url()), 1)
    assert caught.value.reason == "timeout"
    assert caught.value.reached is True
    assert time.monotonic() - started < 3  # the trickle would take 10 s


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:99999/x", "http://[::1/x", "ftp://127.0.0.1/", "http:///x"]
)
def test_unusable_urls_are_failures_that_reach_nothing(client, url):
    with pytest.raises(UpstreamFailure) as caught:
        client.exchange(Request("GET", url), 2)
    assert caught.value.reason == "bad_url"
    assert caught.value.reached is False


def test_a_refused_connection_reached_nothing(client):
    with pytest.raises(UpstreamFailure) as caught:
        client.exchange(Request("GET", f"http://127.0.0.1:{free_port()}/"), 2)
    assert (caught.value.reason, caught.value.reached) == ("unreachable", False)


def test_one_hung_resolver_does_not_stall_other_hosts(stub):
    stub.script = lambda h: reply(h, 200, b"{}")
    release = threading.Event()

    def resolver(host, port):
        if host == "hung.test":
            release.wait(20)
        return [(socket.AF_INET, ("127.0.0.1", port))]

    client = UpstreamClient(allow_private=True, resolver=resolver)
    outcomes = []

    def stalled():
        try:
            client.exchange(Request("GET", "http://hung.test/"), 0.5)
        except UpstreamFailure as exc:
            outcomes.append(exc.reason)

    try:
        hung = [threading.Thread(target=stalled) for _ in range(12)]
        for thread in hung:
            thread.start()
        for thread in hung:
            thread.join()
        assert outcomes == ["timeout"] * 12
        answer = client.exchange(Request("GET", f"http://fine.test:{stub.port}/ext"), 2)
        assert answer.status == 200
    finally:
        release.set()


def test_cookies_are_never_sent_back(client, stub):
    stub.script = lambda h: reply(h, 200, b"{}", Set_Cookie="SESSIONID=abc; Path=/")
    for _ in range(3):
        client.exchange(Request("GET", stub.url()), 2)
    assert all("Cookie" not in seen.headers for seen in stub.requests)

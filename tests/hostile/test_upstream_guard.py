"""Definitions come from the provider's side, so they could aim ext-auth at the SSO's own
network (SSRF). Unless SSO_ALLOW_PRIVATE_UPSTREAMS=1, hosts that resolve to non-public
addresses are refused before anything is sent, and the address checked is the address
connected to. Only loopback is ever connected to here."""

from __future__ import annotations

import secrets
import threading

import pytest
import requests

from sso_service.upstream import Request, UpstreamClient, UpstreamFailure, is_public_address
from tests.support.scripted_http import ScriptedServer, reply
from tests.support.servers import ServiceProcess
from tests.support.stack import sso_env


@pytest.fixture(scope="module")
def guarded_sso(redis_server, provider):
    env = sso_env(redis_server.url, provider, SSO_ALLOW_PRIVATE_UPSTREAMS="0")
    server = ServiceProcess("sso_service", env, workers=1).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1.2.3", "localhost", "[::1]", "0.0.0.0", "[::ffff:127.0.0.1]"]
)
def test_ext_auth_on_a_non_public_address_is_refused_unsent(guarded_sso, fresh_provider, host):
    cloud_id = "G" + secrets.token_hex(5)
    fresh_provider.add_user(cloud_id, "gus", "gus-pw")
    # The portal itself is on loopback: the operator's own setting, so it is exempt.
    fresh_provider.definitions[cloud_id] = {
        "url": f"http://{host}:{fresh_provider.port}/ext-auth/{cloud_id}"
        "?username=%username%&password=%password%"
    }
    body = {"cloud_id": cloud_id, "username": "gus", "password": "gus-pw"}
    response = requests.post(guarded_sso.url + "/v1/tokens", json=body, timeout=15)
    assert response.status_code == 502, response.text
    assert response.json()["error"] == "upstream_error"
    assert fresh_provider.portal_hits[cloud_id] == 1
    assert fresh_provider.auth_requests == []


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False),
        ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
        ("0.0.0.0", False), ("224.0.0.1", False), ("255.255.255.255", False),
        ("::1", False), ("fe80::1", False), ("fc00::1", False), ("::ffff:10.0.0.1", False),
        ("::", False), ("ff02::1", False), ("2001:db8::1", False),
        # IPv6 that carries or reaches an IPv4 address: judged by that address, or refused.
        ("64:ff9b::a00:1", False), ("64:ff9b::7f00:1", False), ("64:ff9b::a9fe:a9fe", False),
        ("64:ff9b:1::a00:1", False), ("2002:a9fe:a9fe::", False), ("2002:7f00:1::1", False),
        ("::a9fe:a9fe", False), ("::ffff:0:7f00:1", False), ("fec0::1", False),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),
        ("64:ff9b::808:808", True), ("2002:808:808::1", True),
        ("8.8.8.8", True), ("1.1.1.1", True), ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),
    ],
)  # fmt: skip
def test_which_addresses_count_as_public(address, public):
    assert is_public_address(address) is public


@pytest.fixture(scope="module")
def stub():
    server = ScriptedServer()
    yield server
    server.close()


def test_a_mixed_dns_answer_is_refused_without_connecting(stub):
    stub.requests.clear()

    def resolver(host, port):
        return [(2, ("8.8.8.8", port)), (2, ("127.0.0.1", port))]

    client = UpstreamClient(resolver=resolver)
    with pytest.raises(UpstreamFailure) as caught:
        client.exchange(Request("GET", f"http://mixed.test:{stub.port}/ext"), 2)
    assert caught.value.reason == "forbidden_address"
    assert stub.requests == []


def test_the_connection_goes_to_the_address_that_was_resolved_once(stub):
    """One resolution per request, and the socket connects to its answer: a rebinding DNS
    server gets no second chance between the check and the connect."""
    stub.requests.clear()
    stub.script = lambda h: reply(h, 200, b"{}")
    calls = []

    def resolver(host, port):
        calls.append(host)
        return [(2, ("127.0.0.1", port))]

    client = UpstreamClient(resolver=resolver, allow_private=True)
    answer = client.exchange(Request("GET", f"http://rebind.test:{stub.port}/ext"), 2)
    assert answer.status == 200
    assert calls == ["rebind.test"]
    (seen,) = stub.requests
    assert seen.headers["Host"] == f"rebind.test:{stub.port}"


def test_a_hung_resolver_is_bounded_by_the_deadline():
    release = threading.Event()

    def resolver(host, port):
        release.wait(10)
        return [(2, ("127.0.0.1", port))]

    try:
        with pytest.raises(UpstreamFailure) as caught:
            UpstreamClient(resolver=resolver).exchange(Request("GET", "http://slow.test/"), 0.3)
        assert caught.value.reason == "timeout"
    finally:
        release.set()

"""Tokens: forged, truncated, other-secret and revoked tokens are all inactive at introspection
and 401 invalid_token at Contacts; introspection rejects unauthenticated callers and is rate
limited."""

from __future__ import annotations

import base64
import secrets

import pytest
import requests

from tests.support.clients import introspect, is_error_shape
from tests.support.servers import ServiceProcess
from tests.support.stack import INTROSPECTION_CLIENT, TEST_TOKEN_SECRET, sso_env


def other_secret_token(token: str) -> str:
    """The same key, MACed with another secret (a token of another deployment)."""
    import hashlib
    import hmac

    key = token.split(".", 1)[0]
    other = secrets.token_hex(32)
    assert other != TEST_TOKEN_SECRET
    digest = hmac.new(other.encode(), key.encode(), hashlib.sha256).digest()
    return key + "." + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def flip(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


BAD_TOKENS = {
    "random": lambda t: secrets.token_urlsafe(32),
    "random-two-part": lambda t: secrets.token_urlsafe(32) + "." + secrets.token_urlsafe(32),
    "truncated-by-one": lambda t: t[:-1],
    "truncated-half": lambda t: t[: len(t) // 2],
    "key-only": lambda t: t.split(".")[0],
    "mac-flipped": lambda t: flip(t, len(t) - 5),
    "key-flipped": lambda t: flip(t, 3),
    "other-secret": other_secret_token,
    "extended": lambda t: t + "A",
    "padded": lambda t: t + "==",
    "upper-cased": lambda t: t.upper(),
    "with-space": lambda t: t[:10] + " " + t[10:],
    "huge": lambda t: t * 90,  # ~8 KB: under the 16 KiB header limit of the server
    "unicode": lambda t: "ä" + t[1:],
}


@pytest.fixture(scope="module")
def user(make_user, hostile_contacts):
    u = make_user(numbers=["+15557770003"])
    assert u.client(hostile_contacts).put_device("phone").status_code == 201
    assert u.client(hostile_contacts).patch_contacts("phone", upsert=[{"contactId": "secret"}]).ok
    return u


@pytest.mark.parametrize("make_bad", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_tokens_are_inactive_and_refused(user, sso_server, hostile_contacts, make_bad):
    bad = make_bad(user.token)
    assert bad != user.token
    answer = introspect(sso_server.url, bad)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"active": False}

    client = user.client(hostile_contacts)
    client.token = bad
    for path in ("/v1/devices", "/v1/devices/phone/contacts"):
        response = client.request("GET", path)
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_token"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "secret" not in response.text
    # The real token still works.
    assert user.client(hostile_contacts).request("GET", "/v1/devices").status_code == 200


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer", "Token abc", "Bearer a b c"],
)
def test_missing_or_malformed_authorization_is_a_401(hostile_contacts, header):
    response = requests.get(
        hostile_contacts.url + "/v1/devices", headers={"Authorization": header}, timeout=10
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_is_inactive_everywhere(make_user, sso_server, hostile_contacts):
    u = make_user(numbers=["+15557770004"])
    phone, webrtc = u.client(hostile_contacts), u.client(hostile_contacts)
    assert phone.put_device("phone").status_code == 201
    assert webrtc.request("GET", "/v1/devices").status_code == 200

    revoked = requests.post(sso_server.url + "/v1/revoke", json={"token": u.token}, timeout=10)
    assert revoked.status_code == 200
    assert introspect(sso_server.url, u.token).json() == {"active": False}
    for client in (phone, webrtc):
        response = client.request("GET", "/v1/devices")
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
    # Revoking again, or an unknown token, is still a 200.
    for token in (u.token, secrets.token_urlsafe(32)):
        again = requests.post(sso_server.url + "/v1/revoke", data={"token": token}, timeout=10)
        assert again.status_code == 200


def private_sso_process(redis_server, provider, database: int) -> ServiceProcess:
    """A private SSO process on its own Redis database, so that rate limits it may impose on
    loopback callers never reach the session SSO the other suites use."""
    env = sso_env(redis_server.url.rsplit("/", 1)[0] + f"/{database}", provider)
    return ServiceProcess("sso_service", env, workers=1).start()


@pytest.fixture(scope="module")
def guarded_sso(redis_server, provider):
    server = private_sso_process(redis_server, provider, 8)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def throttled_sso(redis_server, provider):
    server = private_sso_process(redis_server, provider, 6)
    yield server
    server.stop()


@pytest.mark.parametrize(
    "auth",
    [
        None,
        (INTROSPECTION_CLIENT[0], "wrong-secret"),
        (INTROSPECTION_CLIENT[0], ""),
        ("unknown-client", INTROSPECTION_CLIENT[1]),
        ("", ""),
        (INTROSPECTION_CLIENT[0], INTROSPECTION_CLIENT[1] + "x"),
        (INTROSPECTION_CLIENT[0], INTROSPECTION_CLIENT[1][:-1]),
    ],
    ids=["none", "wrong", "empty-secret", "unknown-id", "empty", "longer", "shorter"],
)
def test_introspection_rejects_unauthenticated_callers(user, guarded_sso, auth):
    response = requests.post(
        guarded_sso.url + "/v1/introspect", data={"token": user.token}, auth=auth, timeout=10
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert is_error_shape(response)
    assert user.username not in response.text


@pytest.mark.parametrize(
    "header",
    [
        "Bearer " + INTROSPECTION_CLIENT[1],
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Digest username=contacts",
    ],
    ids=["bearer-secret", "bad-base64", "no-colon", "not-utf8", "digest"],
)
def test_introspection_rejects_malformed_client_credentials(user, guarded_sso, header):
    response = requests.post(
        guarded_sso.url + "/v1/introspect",
        data={"token": user.token},
        headers={"Authorization": header},
        timeout=10,
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


def test_introspection_is_rate_limited_against_client_secret_guessing(throttled_sso):
    session = requests.Session()
    answers = []
    for _ in range(400):
        response = session.post(
            throttled_sso.url + "/v1/introspect",
            data={"token": "x"},
            auth=(INTROSPECTION_CLIENT[0], secrets.token_hex(8)),
            timeout=10,
        )
        answers.append(response.status_code)
        if response.status_code == 429:
            assert response.json()["error"] == "too_many_attempts"
            assert int(response.headers["Retry-After"]) > 0
            break
    assert 429 in answers, f"400 wrong client secrets in a row, answers {set(answers)}"
    assert set(answers) <= {401, 429}


@pytest.fixture(scope="module")
def shared_address_sso(redis_server, provider):
    server = private_sso_process(redis_server, provider, 9)
    yield server
    server.stop()


def test_a_secret_guesser_does_not_lock_out_the_real_client(shared_address_sso, user):
    """The guesser and the Contacts service share a source address here (one host, a NAT, or
    an SSO behind a proxy): throttling the guesser must not take Contacts' introspection, and
    with it every Contacts request, down with it."""
    session = requests.Session()
    for _ in range(200):
        response = session.post(
            shared_address_sso.url + "/v1/introspect",
            data={"token": "x"},
            auth=(INTROSPECTION_CLIENT[0], secrets.token_hex(8)),
            timeout=10,
        )
        if response.status_code == 429:
            break
    legit = session.post(
        shared_address_sso.url + "/v1/introspect",
        data={"token": user.token},
        auth=INTROSPECTION_CLIENT,
        timeout=10,
    )
    assert legit.status_code == 200, legit.text

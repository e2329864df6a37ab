"""No password or token in any log line: logins (good, bad, and through a failing ext-auth),
introspection, Contacts requests and revocation, with both services logging at DEBUG and
gunicorn's access log on; then every line of both process logs is searched."""

from __future__ import annotations

import secrets
import urllib.parse

import pytest
import requests
from demo_provider import Behaviour  # deploy/demo is on sys.path (tests/conftest.py)

from tests.support.clients import ContactsClient, contacts_env, introspect, sample_contact
from tests.support.servers import ServiceProcess
from tests.support.stack import INTROSPECTION_CLIENT, sso_env


@pytest.fixture(scope="module", params=["INFO", "DEBUG"])
def chatty_stack(request, redis_server, postgres_database, provider, hostile_contacts):
    level = request.param
    sso = ServiceProcess(
        "sso_service",
        sso_env(redis_server.url.rsplit("/", 1)[0] + "/7", provider, LOG_LEVEL=level),
        workers=1,
        extra_args=["--access-log"],
    ).start()
    contacts = ServiceProcess(
        "contacts_service",
        contacts_env(postgres_database.url, sso.url, LOG_LEVEL=level),
        workers=1,
        extra_args=["--access-log"],
    ).start()
    yield sso, contacts
    contacts.stop()
    sso.stop()


def test_no_secret_reaches_a_log_line(chatty_stack, provider):
    sso, contacts = chatty_stack
    cloud_id = "L" + secrets.token_hex(5)
    username = "u" + secrets.token_hex(4)
    password = "Pw" + secrets.token_hex(12)
    provider.add_user(cloud_id, username, password, ["+15557770006"])
    login = {"cloud_id": cloud_id, "username": username, "password": password}

    token = requests.post(sso.url + "/v1/tokens", json=login, timeout=15).json()["token"]
    # As a form, a wrong password (itself a secret), and through a failing ext-auth.
    requests.post(sso.url + "/v1/tokens", data=login, timeout=15)
    wrong_password = "Wrong" + secrets.token_hex(12)
    bad = requests.post(
        sso.url + "/v1/tokens", json={**login, "password": wrong_password}, timeout=15
    )
    assert bad.status_code == 401
    provider.auth_behaviour[cloud_id] = Behaviour(mode="status", status=500, body=password)
    try:
        assert requests.post(sso.url + "/v1/tokens", json=login, timeout=15).status_code == 502
    finally:
        provider.auth_behaviour.pop(cloud_id, None)

    assert introspect(sso.url, token).json()["active"] is True
    client = ContactsClient(contacts.url, token)
    assert client.put_device("phone").status_code == 201
    assert client.patch_contacts("phone", upsert=[sample_contact("a")]).status_code == 200
    assert client.get_contacts("phone").status_code == 200
    assert client.request("GET", "/v1/devices/nope").status_code == 404
    # A request with the token in the query string too (a careless client).
    client.request("GET", "/v1/devices", params={"access_token": token})
    requests.post(sso.url + "/v1/revoke", data={"token": token}, timeout=10)
    assert client.request("GET", "/v1/devices").status_code == 401

    secrets_ = {
        "password": password,
        "wrong password": wrong_password,
        "token": token,
        "token key": token.split(".")[0],
        "token mac": token.split(".")[1],
        "client secret": INTROSPECTION_CLIENT[1],
    }
    # Query-string secrets are the caller's doing; the token key must still not be logged
    # from headers or bodies, so only the access-log line of that one request may hold it.
    for name, process in (("sso", sso), ("contacts", contacts)):
        for line in process.log().splitlines():
            if "access_token=" in line:
                continue
            for what, value in secrets_.items():
                for form in {value, urllib.parse.quote(value), urllib.parse.quote_plus(value)}:
                    assert form not in line, f"{what} in the {name} log: {line[:300]}"

"""The SSO service killed and restarted under traffic: Contacts answers 503 auth_unavailable,
never serves or changes data without a validated token, and recovers once the SSO is back."""

from __future__ import annotations

import time

import requests

from tests.support.clients import ContactsClient, contacts_env, kill_hard, sample_contact
from tests.support.servers import ServiceProcess
from tests.support.traffic import TrafficLoop


def test_contacts_refuses_everything_while_sso_is_dead(stack):
    client = stack.client(stack.account())
    assert client.put_device("phone").status_code == 201
    sent: list[str] = []

    def step(loop):
        contact_id = f"c{len(sent)}"
        sent.append(contact_id)
        loop.call(
            "patch",
            lambda: client.patch_contacts("phone", upsert=[sample_contact(contact_id)]),
            id=contact_id,
        )
        loop.call("read", lambda: client.get_contacts("phone"))
        loop.call("devices", lambda: client.request("GET", "/v1/devices"))

    with TrafficLoop(step) as loop:
        loop.wait_until("patch", 200, 3)
        kill_hard(stack.sso)
        down = time.monotonic()
        for label in ("patch", "read", "devices"):
            loop.wait_until(label, 503, 3, after=down)
        up = time.monotonic()
        stack.sso.start()
        loop.wait_until("patch", 200, 3, after=time.monotonic())
        loop.wait_until("read", 200, 1, after=time.monotonic())

    assert {r.status for r in loop.records} <= {200, 503}
    during = [r for r in loop.records if r.started > down and r.ended < up]
    assert during
    for record in during:
        assert record.status == 503, record
        assert record.error == "auth_unavailable", record
    for record in loop.records:
        if record.status == 503:
            assert record.error == "auth_unavailable", record

    book = client.book("phone")
    for record in loop.snapshot("patch"):
        # Refused before PostgreSQL was touched: a 503 upload is absent, a 200 one present.
        assert (record.meta["id"] in book) == (record.status == 200), record


def test_readyz_names_the_sso_while_it_is_dead(stack):
    kill_hard(stack.sso)
    response = requests.get(stack.contacts.url + "/readyz", timeout=10)
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "unavailable"
    assert "sso" in body.get("details", {})


def _misconfigured_contacts(stack, **overrides) -> ServiceProcess:
    env = contacts_env(stack.postgres.url, stack.sso.url, **overrides)
    return ServiceProcess("contacts_service", env, workers=1).start()


def test_an_sso_that_refuses_the_client_or_is_not_an_sso_is_503_never_401_or_data(stack):
    account = stack.account()
    good = stack.client(account)
    assert good.put_device("phone").status_code == 201
    assert good.patch_contacts("phone", upsert=[sample_contact("kept")]).status_code == 200

    wrong_secret = _misconfigured_contacts(stack, CONTACTS_SSO_CLIENT_SECRET="not-the-secret")
    not_an_sso = _misconfigured_contacts(stack, CONTACTS_SSO_URL=stack.provider.url)
    try:
        for server in (wrong_secret, not_an_sso):
            client = ContactsClient(server.url, account.token)
            for method, path in (
                ("GET", "/v1/devices"),
                ("GET", "/v1/devices/phone/contacts"),
                ("DELETE", "/v1/devices/phone"),
            ):
                response = client.request(method, path)
                assert response.status_code == 503, (server.env, response.text)
                assert response.json()["error"] == "auth_unavailable"
                assert "kept" not in response.text
    finally:
        wrong_secret.stop()
        not_an_sso.stop()
    assert sorted(good.book("phone")) == ["kept"]  # the refused DELETE changed nothing

"""`python -m contacts_service accounts erase|export` as real processes on the suite's
database: the same results as the admin routes, one audit line each, and exit statuses."""

from __future__ import annotations

import json

import pytest
import vobject

from tests.support.admin import audit_lines, run_cli


@pytest.fixture
def accounts(contacts_config):
    """accounts(action, *args) → the finished `python -m contacts_service accounts ...`."""

    def run(*args: str):
        return run_cli("contacts_service", contacts_config, "accounts", *args)

    return run


def who(account) -> list[str]:
    return ["--cloud-id", account.cloud_id, "--username", account.username]


CONTACTS = [
    {"contactId": "a", "displayName": "Ann Example", "contactEntries": [
        {"entryId": "1", "type": "tel", "uri": "+1 555 010 0001"},
        {"entryId": "2", "type": "email", "uri": "ann@example.com"}]},
    {"contactId": "b", "fname": "Bo", "lname": "Smith", "x-custom": {"keep": ["as", "is"]}},
]  # fmt: skip


def test_export_prints_what_the_devices_read(accounts, api, new_account):
    account = new_account()
    client = api.as_(account)
    client.register("phone")
    client.upsert("phone", CONTACTS)
    done = accounts("export", *who(account))
    assert done.returncode == 0, done.stderr
    exported = json.loads(done.stdout)
    assert exported["cloud_id"] == account.cloud_id
    (device,) = exported["devices"]
    assert device["id"] == "phone"
    assert device["contacts"] == client.contacts("phone")["contacts"]
    (entry,) = audit_lines(done.stderr)  # although LOG_LEVEL is WARNING
    assert entry["action"] == "accounts.export"
    assert entry["result"] == "ok"
    assert entry["client"].startswith("cli")
    assert entry["username"] == account.username


def test_export_as_vcard(accounts, api, new_account):
    account = new_account()
    client = api.as_(account)
    client.register("phone")
    client.upsert("phone", CONTACTS)
    done = accounts("export", *who(account), "--format", "vcard", "--device-id", "phone")
    assert done.returncode == 0, done.stderr
    cards = {card.uid.value: card for card in vobject.readComponents(done.stdout)}
    assert cards["a"].fn.value == "Ann Example"
    assert [tel.value for tel in cards["a"].contents["tel"]] == ["+1 555 010 0001"]
    assert cards["a"].email.value == "ann@example.com"
    assert cards["b"].fn.value == "Bo Smith"


def test_erase_then_the_account_is_unknown(accounts, api, new_account):
    account = new_account()
    client = api.as_(account)
    client.register("phone")
    client.upsert("phone", CONTACTS)
    client.register("tablet")
    done = accounts("erase", *who(account))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"devices": 2, "contacts": 2}
    (entry,) = audit_lines(done.stderr)
    assert (entry["action"], entry["result"]) == ("accounts.erase", "ok")
    again = accounts("erase", *who(account))
    assert again.returncode == 1
    assert "no such account" in again.stderr
    (entry,) = audit_lines(again.stderr)
    assert entry["result"] == "not_found"


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["export", "--cloud-id", "NoSuchCloud", "--username", "u"], 1, "no such account"),
        (["erase", "--cloud-id", "..", "--username", "u"], 2, "--cloud-id"),
        (["erase", "--cloud-id", "C", "--username", "u\x7f"], 2, "--username"),
        (["export", "--cloud-id", "C", "--username", "u", "--format", "vcard"], 2, "--device-id"),
        (["export", "--cloud-id", "C", "--username", "u", "--device-id", "a b"], 2, "--device-id"),
        (["export", "--cloud-id", "C", "--username", "u", "--format", "csv"], 2, "--format"),
        (["purge", "--cloud-id", "C", "--username", "u"], 2, "invalid choice"),
        (["erase", "--cloud-id", "C"], 2, "--username"),
    ],
)
def test_refusals(accounts, args, status, says):
    done = accounts(*args)
    assert done.returncode == status, (done.stdout, done.stderr)
    assert says in done.stderr
    assert done.stdout == ""


def test_export_of_an_unknown_device(accounts, api, new_account):
    account = new_account()
    api.as_(account).register("phone")
    done = accounts("export", *who(account), "--device-id", "tablet")
    assert done.returncode == 1
    assert "no such device" in done.stderr


def test_bad_settings_are_exit_2(contacts_config):
    env = {**contacts_config, "CONTACTS_DATABASE_URL": "sqlite://"}
    done = run_cli(
        "contacts_service", env, "accounts", "erase", "--cloud-id", "C", "--username", "u"
    )
    assert done.returncode == 2
    assert "CONTACTS_DATABASE_URL" in done.stderr

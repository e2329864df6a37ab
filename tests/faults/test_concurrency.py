"""Races that real clients cause: a phone and its WebRTC twin logging in at once, two requests
registering one device at once, concurrent writers on one device. Nothing is lost, nothing
duplicated, no 5xx."""

from __future__ import annotations

import secrets
from collections import Counter

import requests

from tests.support.clients import ContactsClient, sample_contact
from tests.support.traffic import in_parallel


def test_concurrent_first_logins_of_an_account_share_one_token(stack):
    cloud_id, username, password = "R" + secrets.token_hex(5), "u1", secrets.token_urlsafe(10)
    stack.provider.add_user(cloud_id, username, password, ["+15550003333"])
    body = {"cloud_id": cloud_id, "username": username, "password": password}

    answers = in_parallel(
        8, lambda i: requests.post(stack.sso.url + "/v1/tokens", json=body, timeout=30)
    )
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.json()["token"] for a in answers}) == 1


def test_concurrent_first_requests_of_a_new_account_and_device(stack):
    account = stack.account()
    # The account is new to Contacts: its first requests race to create its row, and all
    # of them race to register the same device.
    answers = in_parallel(
        8, lambda i: ContactsClient(stack.contacts.url, account.token).put_device("phone")
    )
    statuses = Counter(a.status_code for a in answers)
    assert statuses == Counter({201: 1, 200: 7}), [a.text for a in answers]
    listed = stack.client(account).request("GET", "/v1/devices").json()["devices"]
    assert [d["id"] for d in listed] == ["phone"]


def test_concurrent_writers_on_one_device_lose_nothing(stack):
    account = stack.account()
    stack.client(account).put_device("phone")
    writers, rounds = 6, 8

    def write(i):
        client = ContactsClient(stack.contacts.url, account.token)
        statuses = []
        for r in range(rounds):
            batch = [sample_contact(f"w{i}-r{r}-{k}", 1) for k in range(3)]
            statuses.append(client.patch_contacts("phone", upsert=batch).status_code)
        return statuses

    results = in_parallel(writers, write)
    assert all(status == 200 for statuses in results for status in statuses), results
    book = stack.client(account).book("phone")
    assert len(book) == writers * rounds * 3
    device = stack.client(account).request("GET", "/v1/devices/phone").json()
    # Every PATCH changed something, so each one moved the revision exactly once.
    assert device["revision"] == writers * rounds
    assert device["contact_count"] == len(book)


def test_a_put_racing_patches_leaves_a_state_some_order_explains(stack):
    account = stack.account()
    stack.client(account).put_device("phone")
    replacement = [sample_contact(f"put-{k}") for k in range(20)]

    def work(i):
        client = ContactsClient(stack.contacts.url, account.token)
        if i == 0:
            return client.put_contacts("phone", replacement).status_code
        return client.patch_contacts("phone", upsert=[sample_contact(f"patch-{i}")]).status_code

    assert in_parallel(5, work) == [200] * 5
    book = stack.client(account).book("phone")
    put_ids = {c["contactId"] for c in replacement}
    # The PUT wiped whatever PATCHes came before it and kept those after it: all 20 of its
    # contacts are there, plus a subset of the PATCHed ones, never a partial PUT.
    assert put_ids <= set(book)
    assert set(book) - put_ids <= {f"patch-{i}" for i in range(1, 5)}


def test_concurrent_uploads_of_one_account_share_new_numbers_without_a_conflict(stack):
    """Devices of one account uploading the same never-seen numbers at once: the account's
    record of seen numbers (Smart Contacts' guard) is written under one lock, so no upload
    fails on a duplicate, and each book is complete."""
    account = stack.account()
    devices = [f"d{i}" for i in range(6)]
    for device in devices:
        assert stack.client(account).put_device(device).status_code == 201
    shared = [{"entryId": f"t{n}", "type": "tel", "uri": f"+1555{n:07d}"} for n in range(200, 400)]

    def upload(i):
        client = ContactsClient(stack.contacts.url, account.token)
        book = [
            {"contactId": f"{devices[i]}-{k}", "contactEntries": shared[k * 4 : k * 4 + 4]}
            for k in range(50)
        ]
        return client.patch_contacts(devices[i], upsert=book).status_code

    assert in_parallel(len(devices), upload) == [200] * len(devices)
    for device in devices:
        assert len(stack.client(account).book(device)) == 50


def test_concurrent_writers_of_the_same_contacts_on_one_device(stack):
    """New and existing ids in one batch take different statements (an INSERT for the new, an
    UPDATE for the changed): writers racing on the same ids of one device queue on the device
    lock, so each finds the rows the previous one wrote; the last write of each id wins."""
    account = stack.account()
    stack.client(account).put_device("phone")

    def write(i):
        client = ContactsClient(stack.contacts.url, account.token)
        batch = [sample_contact(f"same-{k}", 1, notes=f"writer {i}") for k in range(40)]
        return client.patch_contacts("phone", upsert=batch).status_code

    assert in_parallel(6, write) == [200] * 6
    book = stack.client(account).book("phone")
    assert sorted(book) == sorted(f"same-{k}" for k in range(40))
    assert len({contact["notes"] for contact in book.values()}) == 1  # one writer's, whole

"""The address book the browser tests start from, put there through the API as the phone app
would, and the on-net account Smart Contacts matches in it."""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.clients import ContactsClient

ALICE_NUMBER = "+15557100001"
BOB_NUMBER = "+15557100002"


def tel(entry_id: str, uri: str, label: str = "mobile") -> dict:
    return {"entryId": entry_id, "label": label, "type": "tel", "uri": uri}


CONTACTS = [
    {
        "contactId": "bob",
        "fname": "Bob",
        "lname": "Builder",
        "contactEntries": [tel("m", "+1 (555) 710-0002")],
    },
    {
        "contactId": "dora",
        "displayName": "Dora Explorer",
        "contactEntries": [
            tel("m", "+1 555 710 0099"),
            {"entryId": "e", "label": "work", "type": "email", "uri": "dora@example.com"},
        ],
    },
    {
        "contactId": "zoe",
        "displayName": "Zoë Ångström",
        "company": "ACME",
        "contactEntries": [tel("w", "+44 20 7946 0000", "work")],
    },
]


@dataclass
class Seeded:
    alice: object  # the account whose phone uploaded the book; the page logs in as alice
    bob: object  # another account of the same Cloud ID, whose number is in alice's book
    phone: ContactsClient  # alice's phone app


def seed(stack, new_account) -> Seeded:
    alice = new_account([ALICE_NUMBER])
    bob = new_account([BOB_NUMBER])
    # Bob's request lets the Contacts service learn his verified numbers (Smart Contacts).
    assert stack.phone(bob).get("/v1/devices").status_code == 200
    phone = stack.phone(alice)
    phone.register("phone-1", name="Alice's phone", platform="ios")
    phone.register("tablet-1", name="Alice's tablet", platform="android")
    phone.upsert("phone-1", CONTACTS)
    return Seeded(alice=alice, bob=bob, phone=phone)

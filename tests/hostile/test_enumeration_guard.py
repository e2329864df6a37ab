"""Smart Contacts' enumeration guard, with an allowance of 5 new numbers a day
(CONTACTS_SMART_NEW_NUMBERS_PER_DAY=5): numbers beyond it are stored but do not match, numbers
the account already had do not count again, and uploading a numbering plan reveals nothing
beyond the allowance."""

from __future__ import annotations

import secrets

import pytest

ALLOWANCE = 5


def tel_contact(contact_id: str, number: str, notes: str = "") -> dict:
    contact = {
        "contactId": contact_id,
        "displayName": contact_id,
        "contactEntries": [{"entryId": "t", "label": "mobile", "type": "tel", "uri": number}],
    }
    if notes:
        contact["notes"] = notes
    return contact


@pytest.fixture
def cloud(make_user, small_contacts):
    """A fresh Cloud ID with 10 users whose numbers the Contacts service has learned."""
    cloud_id = "E" + secrets.token_hex(5)
    base = 5550_000_000 + secrets.randbelow(9_000) * 100
    peers = [make_user(cloud_id, [f"+1{base + i}"]) for i in range(10)]
    for peer in peers:  # each account's request teaches the service its verified numbers
        assert peer.client(small_contacts).request("GET", "/v1/devices").status_code == 200
    return cloud_id, peers


def matched(client, device: str = "phone") -> dict[str, list[str]]:
    smart = client.request("GET", f"/v1/devices/{device}/smart-contacts").json()["smart"]
    full = client.get_contacts(device).json()["smart"]
    assert smart == full
    return {cid: sorted(m["username"] for m in matches) for cid, matches in smart.items()}


def test_new_numbers_beyond_the_allowance_are_stored_but_do_not_match(
    cloud, make_user, small_contacts
):
    cloud_id, peers = cloud
    client = make_user(cloud_id, ["+15559999999"]).client(small_contacts)
    client.put_device("phone")

    first = [tel_contact(f"p{i}", peers[i].numbers[0]) for i in range(ALLOWANCE)]
    assert client.patch_contacts("phone", upsert=first).status_code == 200
    assert matched(client) == {f"p{i}": [peers[i].username] for i in range(ALLOWANCE)}

    beyond = [tel_contact(f"p{i}", peers[i].numbers[0]) for i in range(ALLOWANCE, 10)]
    assert client.patch_contacts("phone", upsert=beyond).status_code == 200
    book = client.book("phone")
    assert sorted(book) == sorted(f"p{i}" for i in range(10))  # stored ...
    assert book["p7"]["contactEntries"][0]["uri"] == peers[7].numbers[0]
    assert matched(client) == {f"p{i}": [peers[i].username] for i in range(ALLOWANCE)}  # ... hidden

    # Numbers it already had do not count: editing those contacts, adding another contact
    # with an already-matched number, or a second device with them, keeps them matching.
    edits = [tel_contact("p0", peers[0].numbers[0], notes="edited")]
    edits.append(tel_contact("again", peers[1].numbers[0]))
    assert client.patch_contacts("phone", upsert=edits).status_code == 200
    expected = {f"p{i}": [peers[i].username] for i in range(ALLOWANCE)}
    expected["again"] = [peers[1].username]
    assert matched(client) == expected

    client.put_device("tablet")
    assert client.put_contacts("tablet", first).status_code == 200
    assert matched(client, "tablet") == {f"p{i}": [peers[i].username] for i in range(ALLOWANCE)}
    assert matched(client) == expected


def test_uploading_a_numbering_plan_reveals_nothing_beyond_the_allowance(
    cloud, make_user, small_contacts
):
    cloud_id, peers = cloud
    client = make_user(cloud_id, ["+15559999998"]).client(small_contacts)
    client.put_device("phone")
    # A scan: the allowance goes to the first numbers seen, which belong to nobody ...
    scan = [tel_contact(f"s{i}", f"+1555888{i:04d}") for i in range(ALLOWANCE)]
    assert client.patch_contacts("phone", upsert=scan).status_code == 200
    # ... so a whole range containing every user's number afterwards matches nothing.
    plan = [tel_contact(f"n{i}", peer.numbers[0]) for i, peer in enumerate(peers)]
    plan += [tel_contact(f"x{i}", f"+1555777{i:04d}") for i in range(200)]
    assert client.patch_contacts("phone", upsert=plan).status_code == 200
    assert len(client.book("phone")) == ALLOWANCE + len(plan)
    assert matched(client) == {}


def test_the_guard_is_per_account(cloud, make_user, small_contacts):
    cloud_id, peers = cloud
    greedy = make_user(cloud_id, ["+15559999997"]).client(small_contacts)
    greedy.put_device("phone")
    scan = [tel_contact(f"s{i}", f"+1555666{i:04d}") for i in range(50)]
    assert greedy.patch_contacts("phone", upsert=scan).status_code == 200

    other = make_user(cloud_id, ["+15559999996"]).client(small_contacts)
    other.put_device("phone")
    peer_number = tel_contact("p", peers[0].numbers[0])
    assert other.patch_contacts("phone", upsert=[peer_number]).status_code == 200
    assert matched(other) == {"p": [peers[0].username]}

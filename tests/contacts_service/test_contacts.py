"""/v1/devices/{id}/contacts and /checksums: writes, counts, revisions, round trip, ETag, since."""

from __future__ import annotations

import hashlib
import json

import pytest

from contacts_service.checksums import contact_checksum
from tests.support.clients import sample_contact


def contact(contact_id: str, **fields) -> dict:
    return {"contactId": contact_id, **fields}


def test_patch_counts_and_revisions(alice):
    device = alice.register("d")
    assert device["revision"] == 0

    first = alice.upsert("d", [contact("a", fname="A"), contact("b", fname="B")])
    assert first == {"revision": 1, "upserted": 2, "unchanged": 0, "deleted": 0, "contact_count": 2}

    same = alice.upsert("d", [contact("a", fname="A"), contact("b", fname="B")], delete=["zz"])
    assert same == {"revision": 1, "upserted": 0, "unchanged": 2, "deleted": 0, "contact_count": 2}

    mixed = alice.upsert("d", [contact("a", fname="A2"), contact("c")], delete=["b", "nope"])
    assert mixed == {"revision": 2, "upserted": 2, "unchanged": 0, "deleted": 1, "contact_count": 2}

    only_delete = alice.upsert("d", delete=["a"])
    assert only_delete["revision"] == 3 and only_delete["deleted"] == 1
    empty = alice.upsert("d")
    assert empty == {"revision": 3, "upserted": 0, "unchanged": 0, "deleted": 0, "contact_count": 1}
    listed = alice.get("/v1/devices/d").json()
    assert (listed["revision"], listed["contact_count"]) == (3, 1)


def test_put_replaces_the_whole_book(alice):
    alice.register("d")
    alice.upsert("d", [contact("a", fname="A"), contact("b"), contact("c")])
    response = alice.put(
        "/v1/devices/d/contacts", json={"contacts": [contact("a", fname="A"), contact("x")]}
    )
    assert response.status_code == 200
    assert response.json() == {
        "revision": 2, "upserted": 1, "unchanged": 1, "deleted": 2, "contact_count": 2
    }  # fmt: skip
    assert sorted(c["contactId"] for c in alice.contacts("d")["contacts"]) == ["a", "x"]
    again = alice.put(
        "/v1/devices/d/contacts", json={"contacts": [contact("a", fname="A"), contact("x")]}
    ).json()
    assert again["revision"] == 2 and again["unchanged"] == 2
    cleared = alice.put("/v1/devices/d/contacts", json={"contacts": []}).json()
    assert cleared == {
        "revision": 3,
        "upserted": 0,
        "unchanged": 0,
        "deleted": 2,
        "contact_count": 0,
    }


def test_client_checksum_decides_what_changed(alice):
    alice.register("d")
    alice.upsert("d", [contact("a", checksum="v1", fname="Old")])
    # Same checksum: the service trusts it, counts the contact unchanged and does not rewrite it.
    result = alice.upsert("d", [contact("a", checksum="v1", fname="New")])
    assert (result["upserted"], result["unchanged"], result["revision"]) == (0, 1, 1)
    assert alice.contacts("d")["contacts"][0]["fname"] == "Old"
    result = alice.upsert("d", [contact("a", checksum="v2", fname="New")])
    assert (result["upserted"], result["revision"]) == (1, 2)
    assert alice.contacts("d")["contacts"][0] == contact("a", checksum="v2", fname="New")


def test_computed_checksum_is_read_back(alice):
    alice.register("d")
    uploaded = {"fname": "Zoë", "contactId": "a", "contactEntries": []}
    alice.upsert("d", [uploaded])
    expected = hashlib.sha256(
        json.dumps(uploaded, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()[:16]
    assert expected == contact_checksum(uploaded)
    stored = alice.contacts("d")["contacts"][0]
    assert stored == {**uploaded, "checksum": expected}
    assert alice.get("/v1/devices/d/checksums").json() == {
        "revision": 1, "checksums": {"a": expected}
    }  # fmt: skip
    # Uploading it again without a checksum, or with the computed one, changes nothing.
    assert alice.upsert("d", [uploaded])["unchanged"] == 1
    assert alice.upsert("d", [stored])["unchanged"] == 1


ROUND_TRIP = [
    {
        "contactId": "round-trip-1",
        "displayName": "Zoë 🙂👩‍👩‍👧‍👦 O'Brien \"quoted\" back\\slash",
        "fname": "مرحبا بالعالم",
        "lname": "שלום",
        "company": "株式会社テスト 中文 한국어",
        "nick": "e\u0301 a\u0308 \u0915\u094d\u0937",
        "notes": ("A long note with line\nbreaks\tand tabs. " * 900)[:30000],
        "nameSuffix": "\u0000 nul and \u001f control",
        "unknownObject": {"z": 1, "a": [True, False, None, 1.5, -0.25, 12345678901234567890]},
        "zzz-unknown": "kept",
        "birthday": None,
        "contactEntries": [
            {"entryId": "e1", "label": "mobile", "type": "tel", "uri": "+1 (555) 123-0001",
             "x-extra": "kept"},
            {"type": "email", "uri": "zoë@例え.jp", "label": "home", "entryId": "e2"},
            {"entryId": "e3", "label": "site", "type": "url", "uri": "https://example.com/ü?q=1"},
        ],
        "contactAddresses": [{"countryCode": "ie", "city": "Baile Átha Cliath", "x": {"y": []}}],
    },
    {"checksum": "first-key", "contactId": "round-trip-2", "a": 1, "Z": 2, "é": 3, "_": 4},
]  # fmt: skip


def test_round_trip_is_exact_key_for_key_and_character_for_character(alice):
    alice.register("d")
    body = json.dumps({"upsert": ROUND_TRIP}, ensure_ascii=False).encode("utf-8")
    response = alice.patch(
        "/v1/devices/d/contacts", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    read = json.loads(alice.get("/v1/devices/d/contacts").content.decode("utf-8"))
    by_id = {c["contactId"]: c for c in read["contacts"]}
    first = by_id["round-trip-1"]
    expected_first = {**ROUND_TRIP[0], "checksum": contact_checksum(ROUND_TRIP[0])}
    assert first == expected_first
    assert list(first) == list(expected_first)
    assert list(first["contactEntries"][0]) == list(ROUND_TRIP[0]["contactEntries"][0])
    assert list(first["unknownObject"]) == ["z", "a"]
    assert by_id["round-trip-2"] == ROUND_TRIP[1]
    assert list(by_id["round-trip-2"]) == list(ROUND_TRIP[1])
    # The same text again is recognised as unchanged.
    again = alice.patch(
        "/v1/devices/d/contacts", data=body, headers={"Content-Type": "application/json"}
    ).json()
    assert again["unchanged"] == 2 and again["revision"] == 1


def test_an_upload_of_several_mebibytes_is_stored_exactly(alice):
    """An upload's texts wait compressed in 1 MiB chunks and are written in slices of at most
    2 MiB: a book over 3 MiB crosses both, first put whole, then partly rewritten, partly new,
    partly unchanged; every contact reads back key for key and character for character."""
    alice.register("d")
    book = [
        {**ROUND_TRIP[0], "contactId": f"big-{n:05d}"}
        if n % 500 == 0
        else sample_contact(f"big-{n:05d}", 1 + n % 3, notes=f'Zoë ✓ \\ " {n} ' * (n % 40))
        for n in range(9000)
    ]
    put = alice.put("/v1/devices/d/contacts", json={"contacts": book})
    assert put.status_code == 200, put.text
    assert len(json.dumps(book).encode()) > 3 * 2**20
    changed = [{**c, "fname": "changed"} for c in book[::3]]
    added = [sample_contact(f"new-{n}", 2) for n in range(700)]
    patch = alice.patch_contacts("d", upsert=changed + book[1::3] + added)
    assert patch.status_code == 200, patch.text
    assert patch.json()["upserted"] == len(changed) + len(added)
    expected = {c["contactId"]: c for c in book + changed + added}
    stored = alice.book("d")
    assert set(stored) == set(expected)
    for contact_id, contact in expected.items():
        read = dict(stored[contact_id])
        read.pop("checksum")
        assert list(read.items()) == list(contact.items()), contact_id


def test_two_devices_of_one_account_are_independent(alice):
    alice.register("phone")
    alice.register("tablet")
    alice.upsert("phone", [contact("a", fname="Phone")])
    alice.upsert("tablet", [contact("a", fname="Tablet"), contact("b")])
    alice.upsert("tablet", delete=["b"])
    phone_contact = contact("a", fname="Phone")
    assert alice.contacts("phone")["contacts"] == [
        {**phone_contact, "checksum": contact_checksum(phone_contact)}
    ]
    assert alice.get("/v1/devices/phone").json()["revision"] == 1
    assert alice.get("/v1/devices/tablet").json()["revision"] == 2
    alice.delete("/v1/devices/tablet")
    assert len(alice.contacts("phone")["contacts"]) == 1


def test_etag_and_304(alice):
    alice.register("d")
    alice.upsert("d", [contact("a")])
    first = alice.get("/v1/devices/d/contacts")
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    cached = alice.get("/v1/devices/d/contacts", headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.headers["ETag"] == etag
    assert cached.content == b""
    assert (
        alice.get("/v1/devices/d/contacts", headers={"If-None-Match": '"other"'}).status_code == 200
    )
    # A no-op keeps the ETag; a change gives a new one.
    alice.upsert("d", [contact("a")])
    assert alice.get("/v1/devices/d/contacts").headers["ETag"] == etag
    alice.upsert("d", [contact("b")])
    changed = alice.get("/v1/devices/d/contacts", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_since_returns_changes_and_deletions(alice):
    alice.register("d")
    alice.upsert("d", [contact("a"), contact("b"), contact("c"), contact("d")])  # rev 1
    alice.upsert("d", [contact("a", fname="A")], delete=["b", "c"])  # rev 2
    alice.upsert("d", [contact("c", fname="back")], delete=["d"])  # rev 3: c re-added

    since_0 = alice.contacts("d", since=0)
    assert since_0["revision"] == 3
    assert sorted(c["contactId"] for c in since_0["contacts"]) == ["a", "c"]
    assert since_0["deleted"] == ["b", "d"]
    assert since_0["smart"] == {}

    since_1 = alice.contacts("d", since=1)
    assert sorted(c["contactId"] for c in since_1["contacts"]) == ["a", "c"]
    assert sorted(since_1["deleted"]) == ["b", "d"]

    since_2 = alice.contacts("d", since=2)
    assert [c["contactId"] for c in since_2["contacts"]] == ["c"]
    assert since_2["deleted"] == ["d"]

    assert alice.contacts("d", since=3) == {
        "revision": 3,
        "contacts": [],
        "deleted": [],
        "smart": {},
    }
    full = alice.contacts("d")
    assert "deleted" not in full and len(full["contacts"]) == 2


def test_since_from_the_future_or_invalid(alice):
    alice.register("d")
    gone = alice.get("/v1/devices/d/contacts", params={"since": 5})
    assert gone.status_code == 410 and gone.json()["error"] == "revision_expired"
    bad = alice.get("/v1/devices/d/contacts", params={"since": "x"})
    assert bad.status_code == 422 and "since" in bad.json()["details"]


def test_since_from_a_deleted_device_of_the_same_id_is_410(alice):
    # The review's case: a web client synced "phone" at revision 3; the phone deleted it,
    # registered it again and wrote 4 times. Both books count from 0, so since=3 must not be
    # answered with the new book's changes after 3 (the client would keep x and y).
    alice.register("phone")
    alice.upsert("phone", [contact("x")])
    alice.upsert("phone", [contact("y")])
    alice.upsert("phone", [contact("x", fname="X")])  # rev 3
    assert alice.delete("/v1/devices/phone").status_code == 204
    assert alice.register("phone")["revision"] == 0
    for n in range(1, 5):
        alice.upsert("phone", [contact(f"n{n}")])  # revs 1-4
    for since in (1, 2, 3):
        stale = alice.get("/v1/devices/phone/contacts", params={"since": since})
        assert stale.status_code == 410, (since, stale.text)
        assert stale.json()["error"] == "revision_expired"
    # 0 is every book's empty beginning: always answered, with the whole new book.
    assert len(alice.contacts("phone", since=0)["contacts"]) == 4
    # Past what the deleted book reached, a since can only be the new book's: answered.
    assert alice.contacts("phone", since=4)["revision"] == 4
    assert [c["contactId"] for c in alice.contacts("phone", since=3 + 1)["contacts"]] == []
    assert sorted(c["contactId"] for c in alice.contacts("phone")["contacts"]) == [
        "n1", "n2", "n3", "n4"
    ]  # fmt: skip


def test_since_still_works_for_a_device_deleted_before_any_write(alice):
    alice.register("tablet")
    assert alice.delete("/v1/devices/tablet").status_code == 204
    alice.register("tablet")
    alice.upsert("tablet", [contact("a")])
    assert [c["contactId"] for c in alice.contacts("tablet", since=0)["contacts"]] == ["a"]


def test_a_device_deleted_twice_remembers_the_highest_revision(alice):
    alice.register("twice")
    for n in range(5):
        alice.upsert("twice", [contact(f"a{n}")])  # revs 1-5
    alice.delete("/v1/devices/twice")
    alice.register("twice")
    alice.upsert("twice", [contact("b")])  # rev 1 of the second book
    alice.delete("/v1/devices/twice")
    alice.register("twice")
    for n in range(6):
        alice.upsert("twice", [contact(f"c{n}")])  # revs 1-6
    assert alice.get("/v1/devices/twice/contacts", params={"since": 5}).status_code == 410
    assert alice.contacts("twice", since=6)["contacts"] == []


def test_since_older_than_the_change_log_is_410(limited, new_account):
    # The limited service keeps its change log 0 days: a deletion ages out at once.
    bob = limited.as_(new_account())
    bob.register("d")
    bob.upsert("d", [contact("a"), contact("b")])  # rev 1
    bob.upsert("d", delete=["a"])  # rev 2, tombstone for a
    # No write has pruned the tombstone yet: the answer must not depend on that.
    expired = bob.get("/v1/devices/d/contacts", params={"since": 1})
    assert expired.status_code == 410
    assert expired.json()["error"] == "revision_expired"
    assert expired.json()["message"]
    bob.upsert("d", [contact("c")])  # rev 3 prunes the tombstone of rev 2
    assert bob.get("/v1/devices/d/contacts", params={"since": 1}).status_code == 410
    assert bob.contacts("d", since=2)["contacts"][0]["contactId"] == "c"


def test_an_account_remembers_its_most_recent_deleted_devices_only(alice, database):
    # Ids that come and go cannot grow the table without bound: 1,000 per account are kept.
    alice.register("kept")
    alice.upsert("kept", [contact("a")])
    with database.cursor() as cursor:
        cursor.execute(
            "INSERT INTO retired_devices (account_id, device_id, revision, retired_at) "
            "SELECT a.id, 'old-' || n, 5, now() - make_interval(secs => n) "
            "FROM accounts a, generate_series(1, 1200) AS n WHERE a.username = %s",
            (alice.account.username,),
        )
    assert alice.delete("/v1/devices/kept").status_code == 204
    with database.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE device_id = 'kept'), "
            "count(*) FILTER (WHERE device_id = 'old-1') FROM retired_devices r "
            "JOIN accounts a ON a.id = r.account_id WHERE a.username = %s",
            (alice.account.username,),
        )
        assert cursor.fetchone() == (1000, 1, 1)  # the newest, down to the 999th old one
    alice.register("kept")
    assert alice.get("/v1/devices/kept/contacts", params={"since": 1}).status_code == 410


def test_change_log_is_pruned_by_age(alice, database):
    alice.register("d")
    alice.upsert("d", [contact("a"), contact("b")])  # rev 1
    alice.upsert("d", delete=["a"])  # rev 2
    with database.cursor() as cursor:
        cursor.execute(
            "UPDATE deleted_contacts SET deleted_at = now() - interval '31 days' "
            "WHERE contact_id = 'a' AND device_pk IN (SELECT pk FROM devices d JOIN accounts a "
            "ON a.id = d.account_id WHERE a.username = %s)",
            (alice.account.username,),
        )
    # Aged out but not pruned yet: already too old to answer.
    assert alice.get("/v1/devices/d/contacts", params={"since": 1}).status_code == 410
    assert alice.contacts("d", since=2)["deleted"] == []
    alice.upsert("d", [contact("c")])  # a write prunes what is older than 30 days
    assert alice.get("/v1/devices/d/contacts", params={"since": 1}).status_code == 410
    assert alice.contacts("d", since=2)["deleted"] == []


def test_etag_depends_on_since(alice):
    alice.register("d")
    alice.upsert("d", [contact("a")])
    full = alice.get("/v1/devices/d/contacts").headers["ETag"]
    partial = alice.get("/v1/devices/d/contacts", params={"since": 1}).headers["ETag"]
    assert full != partial
    assert (
        alice.get(
            "/v1/devices/d/contacts", params={"since": 1}, headers={"If-None-Match": partial}
        ).status_code
        == 304
    )


@pytest.mark.parametrize(
    ("body", "status", "error", "path"),
    [
        (b"{not json", 400, "invalid_json", None),
        (b"[1, 2]", 400, "invalid_json", None),
        (b"", 400, "invalid_json", None),
        (b'"text"', 400, "invalid_json", None),
        (b'{"upsert": [{"contactId": "\\ud800"}]}', 400, "invalid_json", None),
        (b'{"upsert": [{"contactId": "a", "x": NaN}]}', 400, "invalid_json", None),
        (b'{"upsert": [{"contactId": "a", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}]}", 400,
         "invalid_json", None),
        (b'{"upsert": [{"contactId": "a"}, {"contactId": "b", "contactEntries": '
         b'[{"type": "fax", "uri": "1"}]}]}', 422, "validation_error",
         "upsert.1.contactEntries.0.type"),
        (b'{"upsert": [{"contactId": "a"}, {"contactId": "a"}]}', 422, "validation_error",
         "upsert.1.contactId"),
        (b'{"upsert": [{"contactId": "a"}], "delete": ["a"]}', 422, "validation_error", "delete.0"),
        (b'{"upsert": [{"fname": "no id"}]}', 422, "validation_error", "upsert.0.contactId"),
        (b'{"upsert": [{"contactId": "a", "fname": 1}]}', 422, "validation_error",
         "upsert.0.fname"),
    ],
)  # fmt: skip
def test_rejected_patch_changes_nothing(alice, body, status, error, path):
    alice.register("d")
    alice.upsert("d", [contact("keep", fname="K")])
    before = alice.contacts("d")
    response = alice.patch(
        "/v1/devices/d/contacts", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error"] == error and payload["message"]
    if path:
        assert path in payload["details"], payload
    if path == "upsert.1.contactEntries.0.type":
        assert payload["details"][path] == ["Must be one of: tel, email, url."]
    assert alice.contacts("d") == before


def test_put_validation_paths_start_at_contacts(alice):
    alice.register("d")
    response = alice.put(
        "/v1/devices/d/contacts",
        json={"contacts": [contact("a"), contact("b"), contact("c"),
                           contact("d", contactEntries=[{"type": "sms", "uri": "1"}])]},
    )  # fmt: skip
    assert response.status_code == 422
    assert response.json()["details"] == {
        "contacts.3.contactEntries.0.type": ["Must be one of: tel, email, url."]
    }
    missing = alice.put("/v1/devices/d/contacts", json={})
    assert missing.status_code == 422 and "contacts" in missing.json()["details"]


NUMBER_TEXTS = [
    "1e2", "1E2", "1.50", "3.141592653589793238462643383279", "-0", "-0.0", "1e-400",
    "0.1", "4.5", "10", "-7", "9" * 5000, "1.0000000000000000001", "2.5E+10", "1e999",
]  # fmt: skip


@pytest.mark.parametrize("text", NUMBER_TEXTS, ids=[t[:24] for t in NUMBER_TEXTS])
def test_numbers_are_read_back_as_the_text_they_were_sent_as(alice, text):
    # Python's json would write 1e2 back as 100.0, lose the digits of long floats, read
    # 1e-400 as 0.0 and -0 as 0, and refuse integers of more than 4,300 digits.
    alice.register("numbers")
    raw = (
        '{"upsert": [{"contactId": "n", "rating": ' + text + ', "list": [' + text + "],"
        ' "nested": {"x": ' + text + "}}]}"
    )
    response = alice.patch(
        "/v1/devices/numbers/contacts", data=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    stored = alice.get("/v1/devices/numbers/contacts", headers={"Accept-Encoding": "identity"}).text
    assert f'"rating":{text},"list":[{text}],"nested":{{"x":{text}}}' in stored
    # The same contact again is unchanged: its checksum is computed from the same text.
    again = alice.patch(
        "/v1/devices/numbers/contacts", data=raw, headers={"Content-Type": "application/json"}
    )
    assert again.json()["unchanged"] == 1

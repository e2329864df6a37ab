"""Smart Contacts: matches against verified numbers of other accounts of the same Cloud ID."""

from __future__ import annotations

from tests.contacts_service.conftest import relogin


def seen(api) -> None:
    """Any request lets the Contacts service learn the account's numbers and SIP URI."""
    assert api.get("/v1/devices").status_code == 200


def tel(entry_id: str, uri: str) -> dict:
    return {"entryId": entry_id, "label": "mobile", "type": "tel", "uri": uri}


def test_national_formatted_and_international_numbers_match(api, alice, new_account):
    bob = api.as_(new_account(["+15551230002", "+442071838750"], "sip:bob@example.com"))
    seen(bob)
    alice.register("d")
    alice.upsert(
        "d",
        [
            {
                "contactId": "bob",
                "contactEntries": [
                    tel("e1", "+1 (555) 123-0002"),
                    {"entryId": "e2", "type": "email", "uri": "+15551230002"},
                    tel("e3", "(555) 123-0002"),  # national: alice's own numbers are US
                    tel("e4", "tel:+44-20-7183-8750"),
                ],
            },
            {
                "contactId": "bob-uk",
                "countryCode": "gb",
                "contactEntries": [tel("u1", "020 7183 8750")],
            },
            {
                "contactId": "bob-uk-address",
                "contactAddresses": [{"countryCode": "GB"}, {"countryCode": "US"}],
                "contactEntries": [tel("a1", "020 7183 8750"), tel("a2", "555-123-0002")],
            },
            {
                "contactId": "bob-uk-second-address",
                "contactAddresses": [{"city": "London"}, {"countryCode": "GB"}],
                "contactEntries": [tel("b1", "020 7183 8750")],
            },
            {"contactId": "stranger", "contactEntries": [tel("s1", "+15557654321")]},
        ],
    )
    match = {"username": bob.account.username, "sip_uri": "sip:bob@example.com"}
    expected = {
        "bob": [
            {"entryId": "e1", "number": "+15551230002", **match},
            {"entryId": "e3", "number": "+15551230002", **match},
            {"entryId": "e4", "number": "+442071838750", **match},
        ],
        "bob-uk": [{"entryId": "u1", "number": "+442071838750", **match}],
        "bob-uk-address": [{"entryId": "a1", "number": "+442071838750", **match}],
        "bob-uk-second-address": [{"entryId": "b1", "number": "+442071838750", **match}],
    }
    assert alice.contacts("d")["smart"] == expected
    assert alice.get("/v1/devices/d/smart-contacts").json() == {"smart": expected}
    assert alice.contacts("d", since=0)["smart"] == expected


def test_own_numbers_and_other_clouds_never_match(api, alice, new_account, cloud_id):
    elsewhere = api.as_(new_account(["+15551230003"], cloud="Other" + cloud_id))
    seen(elsewhere)
    alice.register("d")
    alice.upsert(
        "d",
        [
            {"contactId": "me", "contactEntries": [tel("m", "+15551230001")]},
            {"contactId": "other-cloud", "contactEntries": [tel("o", "+15551230003")]},
        ],
    )
    assert alice.contacts("d")["smart"] == {}
    # And the other cloud's user does not see alice either.
    elsewhere.register("d")
    elsewhere.upsert("d", [{"contactId": "alice", "contactEntries": [tel("x", "+15551230001")]}])
    assert elsewhere.contacts("d")["smart"] == {}


def test_national_number_without_any_region_does_not_match(api, new_account):
    bob = api.as_(new_account(["+15551230002"]))
    seen(bob)
    nobody = api.as_(new_account([]))  # no verified numbers, no default region on this server
    nobody.register("d")
    nobody.upsert(
        "d",
        [
            {"contactId": "national", "contactEntries": [tel("n", "(555) 123-0002")]},
            {
                "contactId": "with-country",
                "countryCode": "us",
                "contactEntries": [tel("c", "(555) 123-0002")],
            },
        ],
    )
    assert list(nobody.contacts("d")["smart"]) == ["with-country"]


def test_default_region_resolves_national_numbers(limited, new_account):
    berlin = limited.as_(new_account(["+493012345678"], "sip:berlin@example.com"))
    seen(berlin)
    caller = limited.as_(new_account([]))
    caller.register("d")
    caller.upsert("d", [{"contactId": "b", "contactEntries": [tel("x", "030 12345678")]}])
    assert caller.contacts("d")["smart"] == {
        "b": [
            {
                "entryId": "x",
                "number": "+493012345678",
                "username": berlin.account.username,
                "sip_uri": "sip:berlin@example.com",
            }
        ]
    }


def test_a_number_follows_the_latest_introspection(api, alice, new_account, provider, sso_server):
    bob_account = new_account(["+15551230002"], "sip:bob@example.com")
    carol_account = new_account([], "sip:carol@example.com")
    bob, carol = api.as_(bob_account), api.as_(carol_account)
    seen(bob)
    seen(carol)
    alice.register("d")
    alice.upsert("d", [{"contactId": "x", "contactEntries": [tel("e", "+15551230002")]}])
    assert alice.contacts("d")["smart"]["x"][0]["username"] == bob_account.username

    # The provider moves the number from bob to carol; bob's next request drops it ...
    relogin(provider, sso_server, bob_account, numbers=[])
    seen(bob)
    assert alice.contacts("d")["smart"] == {}
    # ... and carol's next request claims it.
    relogin(provider, sso_server, carol_account, numbers=["+15551230002"])
    seen(carol)
    assert alice.contacts("d")["smart"]["x"] == [
        {
            "entryId": "e",
            "number": "+15551230002",
            "username": carol_account.username,
            "sip_uri": "sip:carol@example.com",
        }
    ]

    # When bob gets it back, his introspection wins again, without carol's request.
    relogin(provider, sso_server, bob_account, numbers=["+15551230002"])
    seen(bob)
    assert alice.contacts("d")["smart"]["x"][0]["username"] == bob_account.username


def test_etag_changes_when_the_smart_result_changes(api, alice, new_account):
    alice.register("d")
    alice.upsert("d", [{"contactId": "x", "contactEntries": [tel("e", "+15551230077")]}])
    first = alice.get("/v1/devices/d/contacts")
    etag = first.headers["ETag"]
    assert first.json()["smart"] == {}
    assert alice.get("/v1/devices/d/contacts", headers={"If-None-Match": etag}).status_code == 304

    newcomer = api.as_(new_account(["+15551230077"]))
    seen(newcomer)
    after = alice.get("/v1/devices/d/contacts", headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert after.headers["ETag"] != etag
    assert after.json()["revision"] == first.json()["revision"]
    assert list(after.json()["smart"]) == ["x"]


def test_enumeration_guard_limits_new_numbers_per_day(limited, new_account, database):
    # The limited service lets 3 new numbers a day through the guard.
    target = limited.as_(new_account(["+4930999999"]))
    seen(target)
    scanner = limited.as_(new_account([]))
    scanner.register("d")
    scanner.upsert(
        "d",
        [
            {"contactId": f"n{i}", "contactEntries": [tel("e", f"+4930000000{i}")]}
            for i in range(1, 4)
        ],
    )
    assert scanner.contacts("d")["smart"] == {}  # three numbers granted, none of them match

    scanner.upsert("d", [{"contactId": "t", "contactEntries": [tel("e", "+4930999999")]}])
    assert scanner.contacts("d")["smart"] == {}  # the fourth new number waits for the window

    # Numbers it already had do not count: a second device with the same numbers adds nothing.
    scanner.register("d2")
    scanner.upsert("d2", [{"contactId": "again", "contactEntries": [tel("e", "+4930000001")]}])
    assert scanner.contacts("d")["smart"] == {}

    # A day later the window has room again and the waiting number matches.
    with database.cursor() as cursor:
        cursor.execute(
            "UPDATE smart_seen_numbers SET granted_at = granted_at - interval '25 hours', "
            "first_seen_at = first_seen_at - interval '25 hours' WHERE granted_at IS NOT NULL "
            "AND account_id = (SELECT id FROM accounts WHERE username = %s)",
            (scanner.account.username,),
        )
    assert list(scanner.contacts("d")["smart"]) == ["t"]
    assert target.account.username == scanner.contacts("d")["smart"]["t"][0]["username"]


def test_the_allowance_is_shared_by_the_slices_of_a_large_upload(
    contacts_config, new_account, monkeypatch
):
    # The seen numbers are recorded in ascending slices (a 32 MiB upload holds ≈ 930,000):
    # together they must grant what one statement would — the lowest `allowance` new numbers,
    # each once, a number repeated across a slice boundary included.
    from contacts_service import repository
    from contacts_service.app import create_app
    from contacts_service.extensions import db

    monkeypatch.setattr(repository, "SEEN_SLICE", 3)
    allowance = 7
    app = create_app({**contacts_config, "CONTACTS_SMART_NEW_NUMBERS_PER_DAY": str(allowance)})
    client = app.test_client()
    try:
        peers = [new_account([f"+1555321{i:04d}"]) for i in range(10)]
        for peer in peers:
            auth = {"Authorization": f"Bearer {peer.token}"}
            assert client.get("/v1/devices", headers=auth).status_code == 200
        auth = {"Authorization": f"Bearer {new_account([]).token}"}
        assert client.put("/v1/devices/d", headers=auth).status_code == 201
        # Every number twice, in two contacts: sorted, n0 n0 n1 | n1 n2 n2 | n3 n3 n4 | ...
        upsert = [
            {"contactId": f"{copy}-{i}", "contactEntries": [tel("e", peer.numbers[0])]}
            for i, peer in enumerate(peers)
            for copy in ("a", "b")
        ]
        response = client.patch("/v1/devices/d/contacts", json={"upsert": upsert}, headers=auth)
        assert response.status_code == 200, response.get_data(as_text=True)
        smart = client.get("/v1/devices/d/contacts", headers=auth).get_json()["smart"]
        assert sorted(smart) == sorted(f"{c}-{i}" for i in range(allowance) for c in "ab")
        assert {matches[0]["username"] for matches in smart.values()} == {
            peer.username for peer in peers[:allowance]
        }
    finally:
        with app.app_context():
            db.engine.dispose()

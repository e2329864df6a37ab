"""Phone numbers can never fail a request (API.md, "Precise rules"): every number phonenumbers
accepts as possible is stored and matched in E.164 whatever its length (German and Japanese
numbers reach 18 characters), and one that cannot be normalised stays in the contact as sent.

Numbers arrive two ways: in the tel entries a client uploads, and among an account's verified
numbers from SSO introspection (from the provider's ext-auth answer through the real SSO, or,
for values the real SSO would never send, from a stand-in introspection endpoint).
"""

from __future__ import annotations

import secrets

import flask_migrate
import psycopg2
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts_service.app import MIGRATIONS_DIR, create_app, init_migrations
from contacts_service.checksums import contact_checksum
from contacts_service.extensions import db
from tests.support.clients import contacts_env
from tests.support.servers import PostgresDatabase
from tests.support.stack import login

LONG_NUMBERS = ["+49123456789012345", "+81123456789012345"]

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Strings around and beyond the length limits of E.164 (15 digits) and of the varchar(16)
# columns, formatted or not, plus arbitrary text and strings far too long to be a number.
digits = st.text(alphabet="0123456789", min_size=1, max_size=22)
country_codes = st.sampled_from(["1", "7", "44", "49", "81", "353", "886", "999"])
international = st.builds(lambda cc, rest: f"+{cc}{rest}", country_codes, digits)
formatted = (
    international.map(lambda n: f"tel:{n};phone-context=example.com")
    | international.map(lambda n: f"{n[:3]} ({n[3:6]}) {n[6:9]}-{n[9:]}")
    | international.map(lambda n: "00" + n[1:])
    | digits
)
huge = st.builds(
    lambda unit, n: (unit * n)[:n],
    st.sampled_from(["9", "+49", "tel:+1;", " ", "\u0663", "x"]),
    st.integers(min_value=65, max_value=9_000),
)
phone_strings = (
    international
    | formatted
    | huge
    | st.text(max_size=40)
    | st.sampled_from([*LONG_NUMBERS, "tel:+49123456789012345", "+", "tel:", "", " "])
)


def tel_contact(contact_id: str, uris, **extra) -> dict:
    entries = [
        {"entryId": f"e{i}", "label": "mobile", "type": "tel", "uri": uri}
        for i, uri in enumerate(uris)
    ]
    return {"contactId": contact_id, "contactEntries": entries, **extra}


def smart(client, device: str = "phone") -> dict:
    response = client.request("GET", f"/v1/devices/{device}/smart-contacts")
    assert response.status_code == 200, response.text
    return response.json()["smart"]


# --------------------------------------------------------------------------- 18-character numbers


def test_18_character_numbers_are_stored_and_matched(make_user, hostile_contacts):
    cloud_id = "L" + secrets.token_hex(5)
    owner = make_user(cloud_id, LONG_NUMBERS)
    owner_client = owner.client(hostile_contacts)
    # The owner's verified numbers are 18 characters long: every request of theirs works.
    assert owner_client.request("GET", "/v1/devices").status_code == 200
    assert owner_client.put_device("phone").status_code == 201
    own_book = [tel_contact("self", LONG_NUMBERS)]
    assert owner_client.put_contacts("phone", own_book).status_code == 200
    assert owner_client.book("phone")["self"]["contactEntries"] == own_book[0]["contactEntries"]
    assert smart(owner_client) == {}  # the caller's own numbers never match

    seeker = make_user(cloud_id, ["+15557770101"]).client(hostile_contacts)
    assert seeker.put_device("phone").status_code == 201
    contact = tel_contact("long", ["+49 1234 56789012345", "tel:+81123456789012345", "+1555777010"])
    response = seeker.patch_contacts("phone", upsert=[contact])
    assert response.status_code == 200, response.text
    assert seeker.book("phone")["long"] == {**contact, "checksum": contact_checksum(contact)}
    sip_uri = f"sip:{owner.username}@h.test"
    assert smart(seeker) == {
        "long": [
            {"entryId": "e0", "number": LONG_NUMBERS[0], "username": owner.username,
             "sip_uri": sip_uri},
            {"entryId": "e1", "number": LONG_NUMBERS[1], "username": owner.username,
             "sip_uri": sip_uri},
        ]
    }  # fmt: skip
    # The same through PUT, and the full read carries the same matches.
    assert seeker.put_contacts("phone", [contact]).status_code == 200
    body = seeker.get_contacts("phone").json()
    assert [m["number"] for m in body["smart"]["long"]] == LONG_NUMBERS


# --------------------------------------------------------------------------- the schema


def test_migrated_schema_matches_the_models(contacts_app):
    """The migrations (0002 included) produce exactly the columns models.py declares."""
    with contacts_app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def test_migration_0002_widens_the_e164_columns_of_an_existing_database(sso_server):
    database = PostgresDatabase().create()
    app = create_app(contacts_env(database.url, sso_server.url))
    init_migrations(app)
    try:
        with app.app_context():
            flask_migrate.upgrade(directory=MIGRATIONS_DIR, revision="0001")
        connection = psycopg2.connect(database.url)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO accounts (cloud_id, username) VALUES ('C', 'u') RETURNING id"
            )
            (account_id,) = cursor.fetchone()
            insert = "INSERT INTO account_numbers (cloud_id, e164, account_id) VALUES ('C', %s, %s)"
            cursor.execute(insert, ("+15551230001", account_id))
            with pytest.raises(psycopg2.errors.StringDataRightTruncation):
                cursor.execute(insert, (LONG_NUMBERS[0], account_id))

            with app.app_context():
                flask_migrate.upgrade(directory=MIGRATIONS_DIR)
            cursor.execute(insert, (LONG_NUMBERS[0], account_id))
            cursor.execute(
                "INSERT INTO smart_seen_numbers (account_id, e164) VALUES (%s, %s)",
                (account_id, LONG_NUMBERS[1]),
            )
            cursor.execute("SELECT e164 FROM account_numbers ORDER BY e164")
            assert [row[0] for row in cursor.fetchall()] == ["+15551230001", LONG_NUMBERS[0]]

            # Down again: what no longer fits is dropped, the rest is kept.
            with app.app_context():
                flask_migrate.downgrade(directory=MIGRATIONS_DIR, revision="0001")
            cursor.execute("SELECT e164 FROM account_numbers")
            assert cursor.fetchall() == [("+15551230001",)]
            cursor.execute("SELECT count(*) FROM smart_seen_numbers")
            assert cursor.fetchone() == (0,)
        connection.close()
    finally:
        with app.app_context():
            db.engine.dispose()
        database.drop()


# --------------------------------------------------------------------------- tel URIs (property)


@pytest.fixture(scope="module")
def uploader(make_user, hostile_contacts):
    client = make_user(numbers=["+15557770201"]).client(hostile_contacts)
    assert client.put_device("phone").status_code == 201
    return client


@PROPERTY
@given(
    uris=st.lists(phone_strings, min_size=1, max_size=3),
    country=st.sampled_from([None, "DE", "jp", "zz", ""]),
)
def test_no_tel_uri_fails_a_write_and_the_contact_reads_back_as_sent(uploader, uris, country):
    extra = {} if country is None else {"countryCode": country}
    contact = tel_contact("c", uris, **extra)
    response = uploader.patch_contacts("phone", upsert=[contact])
    assert response.status_code == 200, response.text
    assert uploader.book("phone")["c"] == {**contact, "checksum": contact_checksum(contact)}
    smart(uploader)
    other = tel_contact("d", list(reversed(uris)))
    response = uploader.put_contacts("phone", [contact, other])
    assert response.status_code == 200, response.text
    assert uploader.book("phone") == {
        "c": {**contact, "checksum": contact_checksum(contact)},
        "d": {**other, "checksum": contact_checksum(other)},
    }


# --------------------------------------------------------------------------- verified numbers


@pytest.fixture(scope="module")
def verified_cloud(provider, sso_server, hostile_contacts, make_user):
    """An account whose provider-side numbers each example sets, and a peer in its cloud."""
    cloud_id = "V" + secrets.token_hex(5)
    owner = make_user(cloud_id, [])
    assert owner.client(hostile_contacts).put_device("phone").status_code == 201
    peer = make_user(cloud_id, ["+15557770301"]).client(hostile_contacts)
    assert peer.put_device("phone").status_code == 201
    return owner, peer


ext_auth_values = phone_strings | st.integers(min_value=0, max_value=10**20) | st.none()


@PROPERTY
@given(numbers=st.lists(ext_auth_values, max_size=4))
def test_no_verified_number_fails_a_request_and_kept_ones_match(
    verified_cloud, provider, sso_server, hostile_contacts, numbers
):
    owner, peer = verified_cloud
    provider.add_user(owner.cloud_id, owner.username, owner.password, numbers, "sip:o@h.test")
    # A login renews the account's numbers at the SSO (same token back); whatever the SSO
    # kept (possible numbers, in E.164) is what introspection hands the Contacts service.
    kept = login(sso_server.url, owner.cloud_id, owner.username, owner.password)["account"][
        "phone_numbers"
    ]
    client = owner.client(hostile_contacts)
    # The fixture registered the owner's device: PUT updates it.
    for method, path in [("GET", "/v1/devices"), ("PUT", "/v1/devices/phone")]:
        response = client.request(method, path)
        assert response.status_code == 200, (method, path, response.text)
    response = client.put_contacts("phone", [tel_contact("own", [str(n) for n in numbers])])
    assert response.status_code == 200, response.text
    # The owner's own verified numbers never match in the owner's books.
    assert not {m["number"] for ms in smart(client).values() for m in ms} & set(kept)

    response = peer.put_contacts("phone", [tel_contact("kept", kept)])
    assert response.status_code == 200, response.text
    expected = [
        {
            "entryId": f"e{i}",
            "number": number,
            "username": owner.username,
            "sip_uri": "sip:o@h.test",
        }
        for i, number in enumerate(kept)
        if number != "+15557770301"
    ]
    assert smart(peer) == ({"kept": expected} if expected else {})


@pytest.fixture
def stand_in_client(stand_in_app):
    return stand_in_app.test_client()


introspected_values = st.recursive(
    phone_strings
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none(),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["number", "e164", "x"]), children, max_size=2)
    ),
    max_leaves=6,
)


@PROPERTY
@given(
    phone_numbers=st.lists(introspected_values, max_size=5)
    | introspected_values
    | st.just(["+49123456789012345", "9" * 100_000, 7, None, {"number": "+4930123456"}])
)
def test_no_introspected_phone_numbers_fail_a_request(
    introspection_stand_in, stand_in_client, phone_numbers
):
    """Whatever an SSO puts in `phone_numbers` (huge strings, non-strings, garbage), the
    account is served: the values that are not E.164 numbers are skipped."""
    username = "g" + secrets.token_hex(4)
    introspection_stand_in.active("G" + secrets.token_hex(5), username, phone_numbers)
    headers = {"Authorization": "Bearer stand-in-token"}
    response = stand_in_client.get("/v1/devices", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    response = stand_in_client.put("/v1/devices/phone", headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    contact = tel_contact("c", ["+49123456789012345", "+15551230001"])
    response = stand_in_client.patch(
        "/v1/devices/phone/contacts", json={"upsert": [contact]}, headers=headers
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    response = stand_in_client.get("/v1/devices/phone/contacts", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["contacts"] == [{**contact, "checksum": contact_checksum(contact)}]

"""The product's four workflows, end to end over HTTPS, as the mobile and WebRTC apps do them.

A. the mobile app logs in with SIP username, password and Cloud ID and gets a token;
B. it registers its device, reads the server's checksums, compares them with its local book and
   uploads only what changed; a second device of the same account does the same with its book;
C. the WebRTC app logs in with the same account and gets the same token;
D. it lists the devices, picks one as master and fetches all its contacts; switching the master
   returns the other book; a device of another account is refused.
"""

from __future__ import annotations

import copy
import hashlib
import json

import requests

from tests.e2e.conftest import BROWSER_ORIGIN, Account, Stack

PHONE_BOOK = [
    {
        "contactId": "p-1",
        "displayName": "Ana Żółć",
        "fname": "Ana",
        "lname": "Żółć",
        "contactEntries": [
            {"entryId": "e1", "label": "mobile", "type": "tel", "uri": "+15557000101"},
            {"entryId": "e2", "label": "work", "type": "email", "uri": "ana@example.com"},
        ],
    },
    {
        "contactId": "p-2",
        "displayName": "Ben",
        "company": "ACME",
        "contactEntries": [
            {"entryId": "e1", "label": "home", "type": "tel", "uri": "+15557000102"}
        ],
        "x-custom": {"kept": True},
    },
    {"contactId": "p-3", "displayName": "Cleo", "notes": 'line 1\nline 2 "quoted"'},
]
TABLET_BOOK = [
    {
        "contactId": "t-1",
        "displayName": "Dora",
        "contactEntries": [{"entryId": "e1", "label": "", "type": "url", "uri": "https://d.x"}],
    },
    {"contactId": "t-2", "displayName": "Emil", "birthday": "1990-01-31"},
]


def local_checksum(contact: dict) -> str:
    """The app's own checksum of a contact (the API lets the client choose it)."""
    text = json.dumps(contact, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class MobileApp:
    """The softphone: one device, one local address book, syncs by checksums."""

    def __init__(self, stack: Stack, account: Account, device_id: str, book: list[dict]):
        self.stack = stack
        self.account = account
        self.device_id = device_id
        self.book = {contact["contactId"]: copy.deepcopy(contact) for contact in book}
        self.http = stack.session()
        self.token: str | None = None
        self.sent: list[dict] = []

    @property
    def contacts_url(self) -> str:
        return f"{self.stack.contacts.url}/v1/devices/{self.device_id}"

    def login(self) -> dict:
        """Workflow A: the SIP credentials as a form post."""
        return log_in(self, as_form=True)

    def register(self) -> requests.Response:
        return self.http.put(
            self.contacts_url, json={"name": f"{self.device_id} app", "platform": "ios"}, timeout=10
        )

    def local_checksums(self) -> dict[str, str]:
        return {contact_id: local_checksum(c) for contact_id, c in self.book.items()}

    def sync(self) -> dict | None:
        """Read the server's checksums, upload what differs, delete what is gone locally."""
        response = self.http.get(f"{self.contacts_url}/checksums", timeout=10)
        assert response.status_code == 200, response.text
        remote = response.json()["checksums"]
        local = self.local_checksums()
        upsert = [
            {**self.book[contact_id], "checksum": checksum}
            for contact_id, checksum in sorted(local.items())
            if remote.get(contact_id) != checksum
        ]
        delete = sorted(set(remote) - set(local))
        if not upsert and not delete:
            return None
        body = {"upsert": upsert, "delete": delete}
        self.sent.append(body)
        response = self.http.patch(f"{self.contacts_url}/contacts", json=body, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()


class WebRtcApp:
    """The browser app: logs in like the phone, reads the books of the account's devices."""

    def __init__(self, stack: Stack, account: Account):
        self.stack = stack
        self.account = account
        self.http = stack.session(origin=BROWSER_ORIGIN)
        self.token: str | None = None

    def login(self) -> dict:
        """Workflow C: the same credentials, as JSON."""
        return log_in(self, as_form=False)

    def devices(self) -> list[dict]:
        response = self.http.get(f"{self.stack.contacts.url}/v1/devices", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["devices"]

    def fetch(self, device_id: str) -> requests.Response:
        return self.http.get(
            f"{self.stack.contacts.url}/v1/devices/{device_id}/contacts", timeout=30
        )


def log_in(app: MobileApp | WebRtcApp, as_form: bool) -> dict:
    """Post the account's SIP username, password and Cloud ID to the SSO (a form or JSON), then
    send the token with every later request of the app."""
    credentials = {
        "username": app.account.username,
        "password": app.account.password,
        "cloud_id": app.account.cloud_id,
    }
    encoded = {"data": credentials} if as_form else {"json": credentials}
    response = app.http.post(f"{app.stack.sso.url}/v1/tokens", **encoded, timeout=15)
    assert response.status_code == 200, response.text
    body = response.json()
    app.token = body["token"]
    app.http.headers["Authorization"] = f"Bearer {app.token}"
    return body


def without_checksum(contacts: list[dict]) -> dict[str, dict]:
    return {c["contactId"]: {k: v for k, v in c.items() if k != "checksum"} for c in contacts}


def two_synced_devices(stack: Stack, account: Account) -> tuple[MobileApp, MobileApp]:
    phone = MobileApp(stack, account, "phone-1", PHONE_BOOK)
    tablet = MobileApp(stack, account, "tablet-1", TABLET_BOOK)
    for app in (phone, tablet):
        app.login()
        assert app.register().status_code == 201
        app.sync()
    return phone, tablet


# --------------------------------------------------------------------------- the workflows


def test_a_mobile_app_logs_in_with_sip_credentials_and_cloud_id(stack, new_account):
    account = new_account(phone_numbers=["+1 555 700 0001"])
    phone = MobileApp(stack, account, "phone-1", PHONE_BOOK)

    body = phone.login()

    assert body["token_type"] == "Bearer"
    assert len(body["token"]) >= 43  # ≥ 256 bits, base64url
    assert body["expires_in"] > 0
    assert body["account"] == {
        "cloud_id": account.cloud_id,
        "username": account.username,
        "phone_numbers": ["+15557000001"],
        "sip_uri": account.sip_uri,
    }


def test_a_wrong_password_gets_no_token(stack, new_account):
    account = new_account()
    response = stack.session().post(
        f"{stack.sso.url}/v1/tokens",
        data={"username": account.username, "password": "wrong", "cloud_id": account.cloud_id},
        timeout=15,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"


def test_b_mobile_app_uploads_what_changed_and_a_second_device_its_own_book(stack, new_account):
    account = new_account()
    phone = MobileApp(stack, account, "phone-1", PHONE_BOOK)
    phone.login()

    registered = phone.register()
    assert registered.status_code == 201
    assert registered.json()["revision"] == 0
    assert phone.register().status_code == 200  # idempotent

    first = phone.sync()
    assert first == {
        "revision": 1,
        "upserted": 3,
        "unchanged": 0,
        "deleted": 0,
        "contact_count": 3,
    }

    # Edit the local book: change one, delete one, add one. Only those travel.
    phone.book["p-1"]["nick"] = "Annie"
    del phone.book["p-3"]
    phone.book["p-4"] = {"contactId": "p-4", "displayName": "Finn"}
    second = phone.sync()
    assert {c["contactId"] for c in phone.sent[-1]["upsert"]} == {"p-1", "p-4"}
    assert phone.sent[-1]["delete"] == ["p-3"]
    assert second == {
        "revision": 2,
        "upserted": 2,
        "unchanged": 0,
        "deleted": 1,
        "contact_count": 3,
    }
    assert phone.sync() is None  # in step: nothing to send

    tablet = MobileApp(stack, account, "tablet-1", TABLET_BOOK)
    tablet.login()
    assert tablet.register().status_code == 201
    assert tablet.sync()["upserted"] == 2

    for app in (phone, tablet):
        response = app.http.get(f"{app.contacts_url}/checksums", timeout=10)
        assert response.json()["checksums"] == app.local_checksums()


def test_c_webrtc_app_logs_in_to_the_same_account_and_gets_the_same_token(stack, new_account):
    account = new_account()
    phone = MobileApp(stack, account, "phone-1", PHONE_BOOK)
    mobile_login = phone.login()

    webrtc = WebRtcApp(stack, account)
    browser_login = webrtc.login()

    assert browser_login["token"] == mobile_login["token"]
    assert browser_login["account"] == mobile_login["account"]
    assert phone.register().status_code == 201  # the shared token still works for the phone


def test_d_webrtc_app_reads_the_book_of_the_master_device_it_picks(stack, new_account):
    alice = new_account(phone_numbers=["+15557000001"])
    bob = new_account(cloud_id=alice.cloud_id, phone_numbers=["+15557000102"])
    phone, tablet = two_synced_devices(stack, alice)
    bobs_phone = MobileApp(stack, bob, "bob-phone", [{"contactId": "b-1", "displayName": "X"}])
    bobs_phone.login()
    assert bobs_phone.register().status_code == 201  # Contacts learns bob's number

    webrtc = WebRtcApp(stack, alice)
    webrtc.login()
    devices = {device["id"]: device for device in webrtc.devices()}
    assert set(devices) == {"phone-1", "tablet-1"}
    assert devices["phone-1"]["contact_count"] == 3
    assert devices["tablet-1"]["contact_count"] == 2

    master = "phone-1"
    response = webrtc.fetch(master)
    assert response.status_code == 200
    body = response.json()
    assert without_checksum(body["contacts"]) == without_checksum(PHONE_BOOK)
    assert {c["contactId"]: c["checksum"] for c in body["contacts"]} == phone.local_checksums()
    # Smart Contacts: Ben's number is bob's verified number in the same Cloud ID.
    assert body["smart"] == {
        "p-2": [
            {
                "entryId": "e1",
                "number": "+15557000102",
                "username": bob.username,
                "sip_uri": bob.sip_uri,
            }
        ]
    }
    etag = response.headers["ETag"]
    assert webrtc.http.get(response.url, headers={"If-None-Match": etag}).status_code == 304

    master = "tablet-1"
    switched = webrtc.fetch(master)
    assert switched.status_code == 200
    assert without_checksum(switched.json()["contacts"]) == without_checksum(TABLET_BOOK)
    assert {
        c["contactId"]: c["checksum"] for c in switched.json()["contacts"]
    } == tablet.local_checksums()

    refused = webrtc.fetch("bob-phone")
    assert refused.status_code == 404
    assert refused.json()["error"] == "not_found"
    assert bobs_phone.http.get(f"{stack.contacts.url}/v1/devices/{master}").status_code == 404
    assert "bob-phone" not in {device["id"] for device in webrtc.devices()}


def test_an_unknown_token_is_refused_with_the_bearer_challenge(stack):
    response = stack.session().get(
        f"{stack.contacts.url}/v1/devices",
        headers={"Authorization": "Bearer not-a-token"},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")

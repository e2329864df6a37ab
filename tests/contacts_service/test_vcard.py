"""Acrobits contact → vCard 4.0 (contacts_service/vcard.py): FN, N, TEL, EMAIL, URL and UID,
checked by parsing the output back with vobject."""

from __future__ import annotations

import pytest
import vobject

from contacts_service.vcard import full_name, serialize


@pytest.mark.parametrize(
    ("contact", "fn"),
    [
        ({"displayName": "Shown", "fname": "F", "lname": "L"}, "Shown"),
        ({"displayName": "  ", "fname": "F", "lname": "L"}, "F L"),
        ({"displayName": None, "namePrefix": "Dr.", "fname": "F", "mname": "M", "lname": "L",
          "nameSuffix": "III"}, "Dr. F M L III"),
        ({"lname": "Only"}, "Only"),
        ({"nick": "Nick", "company": "Co"}, "Nick"),
        ({"company": "Co"}, "Co"),
        ({"fname": 5, "company": "Co"}, "Co"),  # not text: ignored
        ({}, ""),
    ],
)  # fmt: skip
def test_full_name(contact, fn):
    assert full_name(contact) == fn


def parse(contact: dict):
    text = serialize([{"contactId": "id-1", **contact}])
    assert text.startswith("BEGIN:VCARD\r\nVERSION:4.0\r\n")
    return vobject.readOne(text)


@pytest.mark.parametrize(
    "value",
    ["plain", "comma, semicolon; backslash \\ and\nnewline", "Zoë 日本 😀", "x" * 300],
)
def test_text_survives_escaping_and_folding(value):
    card = parse({"displayName": value, "contactEntries": [{"type": "tel", "uri": value}]})
    assert card.fn.value == value
    assert card.tel.value == value


def test_entries_become_tel_email_and_url_in_order():
    card = parse(
        {
            "contactEntries": [
                {"type": "tel", "uri": "+1 555 0100", "label": "Mobile"},
                {"type": "email", "uri": "a@example.com", "label": "work"},
                {"type": "tel", "uri": "tel:+44 20 7183 8750", "label": "something else"},
                {"type": "url", "uri": "https://example.com/a", "label": "home"},
                {"type": "tel", "uri": 12345},  # not text: skipped
                {"type": "sip", "uri": "sip:x@y"},  # not a vCard entry type: skipped
            ]
        }
    )
    tels = card.contents["tel"]
    assert [tel.value for tel in tels] == ["+1 555 0100", "tel:+44 20 7183 8750"]
    assert tels[0].params["TYPE"] == ["cell"]
    assert "TYPE" not in tels[1].params
    assert card.email.value == "a@example.com"
    assert card.email.params["TYPE"] == ["work"]
    assert card.url.value == "https://example.com/a"


def test_uid_is_the_contact_id_as_text():
    card = vobject.readOne(serialize([{"contactId": "a;b,c:d"}]))
    assert card.uid.value == "a;b,c:d"
    assert card.uid.params["VALUE"] == ["text"]


def test_n_and_org():
    card = parse({"fname": "Ann", "lname": "Lee", "company": "ACME, Inc"})
    assert (card.n.value.family, card.n.value.given) == ("Lee", "Ann")
    assert card.org.value == ["ACME, Inc"]
    assert "n" not in parse({"displayName": "Only a display name"}).contents


def test_one_card_per_contact():
    text = serialize([{"contactId": str(n), "fname": f"N{n}"} for n in range(3)])
    assert [card.uid.value for card in vobject.readComponents(text)] == ["0", "1", "2"]
    assert serialize([]) == ""

"""Acrobits Contacts JSON → vCard 4.0 (RFC 6350), with `vobject`, for the admin export.

One card per contact:
- `UID` = contactId (`VALUE=text`: a contactId is any text, not a URI);
- `FN` = displayName, else the name parts (namePrefix fname mname lname nameSuffix), else nick,
  else company, else empty (FN is required); `N` when any name part is set; `ORG` = company;
- one `TEL` per `tel` entry with its `uri` exactly as uploaded (a text value: not normalised,
  so what the phone stored is what the card says), one `EMAIL` per `email` entry and one `URL`
  per `url` entry; an entry's label becomes `TYPE` when it is one vCard knows (mobile → cell).

vobject escapes what the format needs (`,` `;` `\\` and newlines) and folds long lines.
"""

from __future__ import annotations

from collections.abc import Iterable

import vobject
from vobject.vcard import Name

_NAME_PARTS = ("namePrefix", "fname", "mname", "lname", "nameSuffix")

# Entry labels (case-insensitive) that name a vCard TYPE.
_TEL_TYPES = {
    "mobile": "cell",
    "cell": "cell",
    "iphone": "cell",
    "home": "home",
    "work": "work",
    "main": "voice",
    "voice": "voice",
    "fax": "fax",
    "home fax": "fax",
    "work fax": "fax",
    "pager": "pager",
}
_OTHER_TYPES = {"home": "home", "work": "work"}


def _text(contact: dict, key: str) -> str:
    value = contact.get(key)
    return value.strip() if isinstance(value, str) else ""


def full_name(contact: dict) -> str:
    """FN: displayName, else the name parts, else nick, else company, else empty."""
    display = _text(contact, "displayName")
    if display:
        return display
    parts = " ".join(part for part in (_text(contact, key) for key in _NAME_PARTS) if part)
    return parts or _text(contact, "nick") or _text(contact, "company")


def _entries(contact: dict) -> Iterable[dict]:
    entries = contact.get("contactEntries")
    if isinstance(entries, list):
        yield from (entry for entry in entries if isinstance(entry, dict))


def card(contact: dict) -> vobject.base.Component:
    """The vCard 4.0 of one stored contact."""
    vcard = vobject.vCard()
    vcard.add("version").value = "4.0"
    uid = vcard.add("uid")
    uid.value = str(contact["contactId"])
    uid.value_param = "text"  # a contactId is any text, not a URI
    vcard.add("fn").value = full_name(contact)
    if any(_text(contact, key) for key in _NAME_PARTS):
        vcard.add("n").value = Name(
            family=_text(contact, "lname"),
            given=_text(contact, "fname"),
            additional=_text(contact, "mname"),
            prefix=_text(contact, "namePrefix"),
            suffix=_text(contact, "nameSuffix"),
        )
    company = _text(contact, "company")
    if company:
        vcard.add("org").value = [company]
    for entry in _entries(contact):
        uri = entry.get("uri")
        if not isinstance(uri, str):
            continue
        kind = entry.get("type")
        label = entry.get("label").strip().lower() if isinstance(entry.get("label"), str) else ""
        if kind == "tel":
            line = vcard.add("tel")
            known = _TEL_TYPES.get(label)
        elif kind == "email":
            line = vcard.add("email")
            known = _OTHER_TYPES.get(label)
        elif kind == "url":
            line = vcard.add("url")
            known = _OTHER_TYPES.get(label)
        else:
            continue
        line.value = uri
        if known:
            line.type_param = known
    return vcard


def serialize(contacts: Iterable[dict]) -> str:
    """The cards of `contacts`, one after another (CRLF line ends, as the format says)."""
    return "".join(card(contact).serialize() for contact in contacts)

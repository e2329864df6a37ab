"""Deterministic address books for the benchmark: Acrobits contacts JSON and the same as vCard.

Names come in several scripts (Latin with accents, Cyrillic, Greek, Arabic, CJK, Devanagari),
each contact has 1-4 phone numbers in the formats phones really hold (E.164, national with
spaces, dashes or parentheses, resolved by the contact's `countryCode`), 0-2 emails and an
address given both as `contactAddresses` and as the flat Acrobits keys. The same seed always
gives the same book, so both servers receive the same data in every run.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

# (first names, last names, region, city, street, country) per script.
_LOCALES = [
    (
        ["José", "Zoë", "François", "Ångström", "Łukasz", "Søren", "Müller", "Inès", "Ștefan"],
        ["Álvarez", "Dvořák", "Nuñez", "Öztürk", "Lefèvre", "Kowalczyk", "Håkansson", "Brontë"],
        "DE", "München", "Maximilianstraße {n}", "Deutschland",
    ),
    (
        ["Анна", "Дмитрий", "Ёлка", "Сергей", "Наталья", "Юрий", "Ольга"],
        ["Иванова", "Петров", "Смирнов", "Кузнецова", "Попов", "Соколов"],
        "RU", "Москва", "ул. Тверская, д. {n}", "Россия",
    ),
    (
        ["Αλέξανδρος", "Ελένη", "Γιώργος", "Σοφία", "Δημήτρης", "Ζωή"],
        ["Παπαδόπουλος", "Οικονόμου", "Γεωργίου", "Νικολάου", "Βλάχου"],
        "GR", "Αθήνα", "Οδός Ερμού {n}", "Ελλάδα",
    ),
    (
        ["محمد", "فاطمة", "أحمد", "ليلى", "يوسف", "مريم"],
        ["العلي", "حسن", "الخطيب", "منصور", "الشامي"],
        "EG", "القاهرة", "شارع التحرير {n}", "مصر",
    ),
    (
        ["太郎", "花子", "健", "さくら", "翔太", "美咲"],
        ["山田", "佐藤", "鈴木", "高橋", "田中", "渡辺"],
        "JP", "東京", "千代田区丸の内{n}", "日本",
    ),
    (
        ["伟", "芳", "娜", "秀英", "敏", "静"],
        ["王", "李", "张", "刘", "陈", "杨"],
        "CN", "北京", "长安街{n}号", "中国",
    ),
    (
        ["अमित", "प्रिया", "राहुल", "अनीता", "विकास", "सुनीता"],
        ["शर्मा", "वर्मा", "गुप्ता", "सिंह", "पटेल"],
        "IN", "नई दिल्ली", "राजपथ {n}", "भारत",
    ),
    (
        ["Emily", "James", "Olivia", "Noah", "Chloé", "Liam"],
        ["Smith", "O'Brien", "Johnson", "García", "Brown"],
        "US", "San Francisco", "{n} Market St", "USA",
    ),
    (
        ["Oliver", "Amélie", "Harry", "Siobhán", "George"],
        ["Taylor", "Wilson", "Davies", "Ó Briain"],
        "GB", "London", "{n} Baker Street", "United Kingdom",
    ),
]  # fmt: skip

# Country calling code and a national trunk prefix per region, for plausible numbers.
_DIALLING = {
    "DE": ("49", "0"), "RU": ("7", "8"), "GR": ("30", ""), "EG": ("20", "0"), "JP": ("81", "0"),
    "CN": ("86", "0"), "IN": ("91", "0"), "US": ("1", ""), "GB": ("44", "0"),
}  # fmt: skip

_LABELS = ["mobile", "home", "work", "main", "iPhone", "other"]
_MAIL_DOMAINS = ["example.com", "example.org", "example.net", "mail.example"]


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _phone(rng: random.Random, region: str) -> str:
    """One number in one of the formats people store: E.164 or national, variously punctuated."""
    code, trunk = _DIALLING[region]
    if region == "US":
        area, head, tail = "415", "555", _digits(rng, 4)
    elif region == "GB":
        area, head, tail = "20", "7946", _digits(rng, 4)
    else:
        area, head, tail = str(rng.randint(20, 99)), _digits(rng, 3), _digits(rng, 4)
    style = rng.random()
    if style < 0.35:
        return f"+{code}{area}{head}{tail}"
    if style < 0.45:
        return f"+{code} {area} {head} {tail}"
    return rng.choice(
        (
            f"{trunk}{area} {head} {tail}",
            f"{trunk}{area}-{head}-{tail}",
            f"({trunk}{area}) {head}-{tail}",
            f"{trunk}{area}{head}{tail}",
        )
    )


def make_contact(rng: random.Random, index: int) -> dict:
    """One Acrobits contact; keys follow API.md, values exercise several scripts."""
    firsts, lasts, region, city, street, country = rng.choice(_LOCALES)
    fname, lname = rng.choice(firsts), rng.choice(lasts)
    contact_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    contact: dict = {
        "contactId": contact_id,
        "displayName": f"{fname} {lname}",
        "fname": fname,
        "lname": lname,
        "countryCode": region.lower() if rng.random() < 0.2 else region,
    }
    if rng.random() < 0.3:
        contact["company"] = f"{lname} & Co. {index % 97}"
        contact["jobTitle"] = rng.choice(["CEO", "Engineer", "Ingénieure", "Менеджер", "医師"])
    if rng.random() < 0.2:
        contact["nick"] = fname[:3]
    if rng.random() < 0.15:
        contact["notes"] = f"Met at conf #{index}; likes ☕ and 🎵. Línea 2: «ok»."
    if rng.random() < 0.1:
        contact["birthday"] = (
            f"19{rng.randint(50, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        )

    entries = []
    for n in range(rng.randint(1, 4)):
        entries.append(
            {
                "entryId": f"tel-{n}",
                "label": rng.choice(_LABELS),
                "type": "tel",
                "uri": _phone(rng, region),
            }
        )
    for n in range(rng.choice((0, 1, 1, 2))):
        local = f"user{index}.{n}"
        entries.append(
            {
                "entryId": f"email-{n}",
                "label": rng.choice(("home", "work")),
                "type": "email",
                "uri": f"{local}@{rng.choice(_MAIL_DOMAINS)}",
            }
        )
    contact["contactEntries"] = entries

    if rng.random() < 0.6:
        address = {
            "label": "home",
            "street": street.format(n=rng.randint(1, 250)),
            "city": city,
            "state": "",
            "zip": _digits(rng, 5),
            "country": country,
            "countryCode": region,
        }
        contact["contactAddresses"] = [address]
        for key in ("street", "city", "zip", "country"):
            contact[key] = address[key]
    return contact


def generate(count: int, seed: int = 20261127) -> list[dict]:
    """`count` contacts, the same for the same seed."""
    rng = random.Random(seed)
    return [make_contact(rng, index) for index in range(count)]


@dataclass
class Changes:
    """An incremental sync: edited contacts (same ids), deleted ids and new contacts."""

    edited: list[dict]
    deleted: list[str]
    added: list[dict]


def make_changes(
    book: list[dict], seed: int, edits: int = 50, deletes: int = 10, adds: int = 10
) -> Changes:
    """Pick disjoint contacts to edit and delete, and make new ones, deterministically."""
    rng = random.Random(seed)
    picked = rng.sample(range(len(book)), edits + deletes)
    edited = []
    for index in picked[:edits]:
        contact = dict(book[index])
        contact["notes"] = f"edited in sync {seed} ✎"
        contact["displayName"] = contact["displayName"] + " ✓"
        edited.append(contact)
    deleted = [book[index]["contactId"] for index in picked[edits:]]
    added = [make_contact(rng, len(book) + n) for n in range(adds)]
    return Changes(edited, deleted, added)


# --- vCard --------------------------------------------------------------------------------------


def _escape(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    """Fold a content line at 75 octets without splitting a UTF-8 sequence (RFC 6350 3.2)."""
    data = line.encode()
    if len(data) <= 75:
        return line
    parts, start, limit = [], 0, 75
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1
        parts.append(data[start:end].decode())
        start, limit = end, 74
    return "\r\n ".join(parts)


def to_vcard(contact: dict, version: str = "3.0") -> str:
    """The same contact as a vCard 3.0 or 4.0 (UID = contactId)."""
    v4 = version == "4.0"
    e = _escape
    lines = [
        "BEGIN:VCARD",
        f"VERSION:{version}",
        f"UID:{contact['contactId']}",
        f"FN:{e(contact.get('displayName', ''))}",
        "N:" + ";".join(e(contact.get(k, "")) for k in ("lname", "fname", "mname")) + ";;",
    ]
    if "nick" in contact:
        lines.append(f"NICKNAME:{e(contact['nick'])}")
    if "company" in contact:
        lines.append(f"ORG:{e(contact['company'])}")
    if "jobTitle" in contact:
        lines.append(f"TITLE:{e(contact['jobTitle'])}")
    if "birthday" in contact:
        lines.append(f"BDAY:{contact['birthday']}")
    if "notes" in contact:
        lines.append(f"NOTE:{e(contact['notes'])}")
    for entry in contact.get("contactEntries", []):
        label = entry["label"].lower()
        if entry["type"] == "tel":
            if v4:
                lines.append(f"TEL;VALUE=text;TYPE={label}:{e(entry['uri'])}")
            else:
                lines.append(f"TEL;TYPE={label.upper()}:{e(entry['uri'])}")
        elif entry["type"] == "email":
            kind = label if v4 else f"INTERNET,{label.upper()}"
            lines.append(f"EMAIL;TYPE={kind}:{e(entry['uri'])}")
        else:
            lines.append(f"URL:{e(entry['uri'])}")
    for address in contact.get("contactAddresses", []):
        parts = ["", "", *(address.get(k, "") for k in ("street", "city", "state", "zip"))]
        parts.append(address.get("country", ""))
        lines.append(f"ADR;TYPE={address.get('label', 'home')}:" + ";".join(map(e, parts)))
    if "countryCode" in contact:
        lines.append(f"X-ACROBITS-COUNTRY-CODE:{e(contact['countryCode'])}")
    lines.append("END:VCARD")
    return "".join(_fold(line) + "\r\n" for line in lines)


def to_vcards(contacts: list[dict], version: str = "3.0") -> str:
    """A whole address book as one vCard file (what a collection PUT or GET carries)."""
    return "".join(to_vcard(contact, version) for contact in contacts)

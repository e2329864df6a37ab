"""The checksum rules of API.md, checked against independent computations."""

from __future__ import annotations

import hashlib
import json

import pytest

from contacts_service import checksums


def test_contact_checksum_is_16_hex_of_sha256_over_canonical_json_without_checksum():
    contact = {"lname": "Ünal", "contactId": "1", "checksum": "ignored", "a": [1, {"z": 1, "b": 2}]}
    canonical = '{"a":[1,{"b":2,"z":1}],"contactId":"1","lname":"Ünal"}'
    expected = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    assert checksums.canonical_json(contact) == canonical
    assert checksums.contact_checksum(contact) == expected


def test_checksum_does_not_depend_on_key_order():
    one = {"contactId": "x", "fname": "A", "lname": "B"}
    two = json.loads('{"lname": "B", "fname": "A", "contactId": "x"}')
    assert checksums.contact_checksum(one) == checksums.contact_checksum(two)


@pytest.mark.parametrize("contact_id", ["a", "contact-1", "Ωμέγα", "🙂" * 10, "x" * 256])
def test_block_key_is_top_16_bits_of_sha256(contact_id):
    digest = hashlib.sha256(contact_id.encode("utf-8")).digest()
    assert checksums.block_key(contact_id) == int.from_bytes(digest[:2], "big")


@pytest.mark.parametrize(
    ("bits", "width"), [(1, 1), (3, 1), (4, 1), (5, 2), (8, 2), (9, 3), (12, 3), (13, 4), (16, 4)]
)
def test_block_ids_are_zero_padded_to_ceil_bits_over_4(bits, width):
    for contact_id in ("a", "b", "c", "d", "e"):
        digest = hashlib.sha256(contact_id.encode()).digest()
        top = int.from_bytes(digest, "big") >> (256 - bits)
        block = checksums.block_id(checksums.block_key(contact_id), bits)
        assert block == format(top, f"0{width}x")
        assert checksums.parse_block_id(block, bits) == top
        assert checksums.block_key_range(top, bits)[0] <= checksums.block_key(contact_id)
        assert checksums.block_key(contact_id) <= checksums.block_key_range(top, bits)[1]


@pytest.mark.parametrize(
    ("text", "bits"), [("", 4), ("10", 4), ("g", 4), ("2", 1), ("1ff", 8), ("-1", 8), ("zz", 8)]
)
def test_parse_block_id_rejects_what_is_not_a_block_id(text, bits):
    assert checksums.parse_block_id(text, bits) is None


def test_block_checksum_sorts_bytewise_by_contact_id():
    pairs = [("b", "2"), ("Z", "1"), ("é", "3"), ("a", "4")]
    lines = "".join(
        f"{cid}\t{cs}\n" for cid, cs in [("Z", "1"), ("a", "4"), ("b", "2"), ("é", "3")]
    )
    assert checksums.block_checksum(pairs) == hashlib.sha256(lines.encode()).hexdigest()

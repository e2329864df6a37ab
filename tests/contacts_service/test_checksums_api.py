"""GET /checksums with blocks: consistent with per-block listings, one block per edit."""

from __future__ import annotations

import hashlib

import pytest


def block_of(contact_id: str, bits: int) -> str:
    top = int.from_bytes(hashlib.sha256(contact_id.encode()).digest(), "big") >> (256 - bits)
    return format(top, f"0{(bits + 3) // 4}x")


def local_block_checksum(checksums: dict[str, str]) -> str:
    lines = b"".join(
        cid + b"\t" + checksums[cid.decode()].encode() + b"\n"
        for cid in sorted(c.encode() for c in checksums)
    )
    return hashlib.sha256(lines).hexdigest()


@pytest.fixture
def book(alice):
    alice.register("d")
    ids = [f"contact-{i}" for i in range(40)] + ["Ünïcode-ü", "日本", "Zebra", "apple"]
    alice.upsert("d", [{"contactId": cid, "fname": cid} for cid in ids])
    return alice, ids


@pytest.mark.parametrize("bits", [1, 3, 4, 5, 8, 16])
def test_blocks_agree_with_per_block_listings_and_local_computation(book, bits):
    alice, ids = book
    everything = alice.get("/v1/devices/d/checksums").json()["checksums"]
    assert sorted(everything) == sorted(ids)
    answer = alice.get("/v1/devices/d/checksums", params={"blocks": bits}).json()
    assert answer["revision"] == 1 and answer["bits"] == bits
    expected_blocks = {block_of(cid, bits) for cid in ids}
    assert set(answer["blocks"]) == expected_blocks  # empty blocks are omitted
    union = {}
    for block, digest in answer["blocks"].items():
        assert len(block) == (bits + 3) // 4
        listing = alice.get(
            "/v1/devices/d/checksums", params={"blocks": bits, "block": block}
        ).json()
        assert listing["revision"] == 1
        assert all(block_of(cid, bits) == block for cid in listing["checksums"])
        assert local_block_checksum(listing["checksums"]) == digest
        union.update(listing["checksums"])
    assert union == everything


def test_an_edit_changes_exactly_one_block(book):
    alice, _ = book
    before = alice.get("/v1/devices/d/checksums", params={"blocks": 4}).json()["blocks"]
    alice.upsert("d", [{"contactId": "contact-7", "fname": "edited"}])
    after = alice.get("/v1/devices/d/checksums", params={"blocks": 4}).json()["blocks"]
    changed = {block for block in before if before[block] != after.get(block)}
    assert changed == {block_of("contact-7", 4)}
    assert set(after) == set(before)


def test_an_empty_block_listing_and_an_empty_book(alice):
    alice.register("empty")
    assert alice.get("/v1/devices/empty/checksums").json() == {"revision": 0, "checksums": {}}
    assert alice.get("/v1/devices/empty/checksums", params={"blocks": 8}).json() == {
        "revision": 0, "bits": 8, "blocks": {}
    }  # fmt: skip
    listing = alice.get("/v1/devices/empty/checksums", params={"blocks": 8, "block": "ff"}).json()
    assert listing == {"revision": 0, "checksums": {}}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"blocks": 0}, "blocks"),
        ({"blocks": 17}, "blocks"),
        ({"blocks": "four"}, "blocks"),
        ({"blocks": 4, "block": "10"}, "block"),
        ({"blocks": 4, "block": "g"}, "block"),
        ({"block": "a"}, "block"),
    ],
)
def test_bad_blocks_or_block_is_422(alice, params, field):
    alice.register("d")
    response = alice.get("/v1/devices/d/checksums", params=params)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert field in response.json()["details"]

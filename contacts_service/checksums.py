"""Contact checksums and block checksums, exactly as API.md defines them.

A client computes the same values locally, so these functions are the protocol:

- contact checksum: lowercase hex, first 16 characters of SHA-256 over the contact's canonical
  JSON without its `checksum` key. Canonical JSON = json.dumps(sort_keys=True,
  separators=(",", ":"), ensure_ascii=False) encoded as UTF-8.
- block id: the top `bits` bits of SHA-256(UTF-8 contactId), lowercase hex zero-padded to
  ceil(bits / 4) digits. The database keeps the top 16 bits (the block key) of every contact so
  any `bits` from 1 to 16 is a shift of that integer.
- block checksum: lowercase hex SHA-256 over the lines `contactId + "\\t" + checksum + "\\n"` of
  the block's contacts, in bytewise order of contactId.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from contacts_service import json_numbers

MAX_BITS = 16


def canonical_json(contact: dict) -> str:
    """The canonical text of a contact (sorted keys, no spaces, raw Unicode), minus `checksum`."""
    body = {key: value for key, value in contact.items() if key != "checksum"}
    # A number kept as its text (json_numbers.RawNumber) is written as that text.
    return json_numbers.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def contact_checksum(contact: dict) -> str:
    return hashlib.sha256(canonical_json(contact).encode("utf-8")).hexdigest()[:16]


def block_key(contact_id: str) -> int:
    """The top 16 bits of SHA-256(contactId), stored with every contact."""
    digest = hashlib.sha256(contact_id.encode("utf-8")).digest()
    return (digest[0] << 8) | digest[1]


def block_id_width(bits: int) -> int:
    return (bits + 3) // 4


def block_id(key: int, bits: int) -> str:
    """The hex block id of a 16-bit block key at `bits` bits."""
    return format(key >> (MAX_BITS - bits), f"0{block_id_width(bits)}x")


def parse_block_id(text: str, bits: int) -> int | None:
    """The block number of a hex block id at `bits` bits, or None when it is not one."""
    if len(text) != block_id_width(bits):
        return None
    try:
        number = int(text, 16)
    except ValueError:
        return None
    if not all(c in "0123456789abcdefABCDEF" for c in text) or number >= (1 << bits):
        return None
    return number


def block_key_range(number: int, bits: int) -> tuple[int, int]:
    """Inclusive range of 16-bit block keys that fall into block `number` at `bits` bits."""
    shift = MAX_BITS - bits
    return number << shift, ((number + 1) << shift) - 1


def block_checksum(pairs: Iterable[tuple[str, str]]) -> str:
    """SHA-256 over `contactId\\tchecksum\\n` lines in bytewise contactId order."""
    encoded = sorted((cid.encode("utf-8"), checksum.encode("utf-8")) for cid, checksum in pairs)
    digest = hashlib.sha256()
    for cid, checksum in encoded:
        digest.update(cid + b"\t" + checksum + b"\n")
    return digest.hexdigest()

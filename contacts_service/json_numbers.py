"""JSON numbers of contacts, kept as the text they were sent as.

A contact is read back character for character (API.md), but Python's json reads `1e2` as
100.0 (written back `100.0`), `1.50` as 1.5, `3.141592653589793238` as the nearest double,
`1e-400` as 0.0 and `-0` as 0, and refuses integers of more than 4,300 digits. Numbers whose
text Python would write back differently are kept as `RawNumber` (their text) and written back
as that text; every other number stays a plain int or float, so the common case costs nothing.
"""

from __future__ import annotations

import json
import re
import secrets

# Python refuses int() of longer digit strings (sys.set_int_max_str_digits).
_INT_DIGITS = 4300


class RawNumber:
    """A JSON number that is kept as its text."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"RawNumber({self.text!r})"


def parse_float(text: str) -> float | RawNumber:
    value = float(text)
    return value if repr(value) == text else RawNumber(text)


def parse_int(text: str) -> int | RawNumber:
    # JSON integers have no leading zeros or "+", so str(int(text)) == text except for "-0".
    if text == "-0" or len(text) > _INT_DIGITS:
        return RawNumber(text)
    return int(text)


# A RawNumber is written as a string holding this per-process random mark and its index (json
# escapes the NUL as \u0000), then the quoted mark is replaced by the number's text. No text a
# client sends can hold the mark without knowing 128 random bits.
_NONCE = secrets.token_hex(16)
_MARKED = re.compile(r'"\\u0000' + _NONCE + r":(\d+)\\u0000\"")


def dumps(value, **options) -> str:
    """json.dumps(value, **options), with every RawNumber written as its text."""
    raw: list[str] = []

    def default(item):
        if isinstance(item, RawNumber):
            raw.append(item.text)
            return f"\x00{_NONCE}:{len(raw) - 1}\x00"
        raise TypeError(f"Object of type {type(item).__name__} is not JSON serializable")

    text = json.dumps(value, default=default, **options)
    if raw:
        text = _MARKED.sub(lambda match: raw[int(match.group(1))], text)
    return text


_DECODER = json.JSONDecoder(parse_float=parse_float, parse_int=parse_int)


def loads(text: str | bytes):
    """A stored document parsed back with the same number rules (an integer of 5,000 digits
    that was stored must not make reading it fail)."""
    return _DECODER.decode(text.decode("utf-8") if isinstance(text, bytes) else text)

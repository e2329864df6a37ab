"""Phone numbers to E.164, the way Smart Contacts compares them.

A number is kept when `phonenumbers` parses it as a *possible* number (the same rule the SSO
service applies to verified numbers), so test ranges such as +1 555 match too.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import phonenumbers

_E164 = phonenumbers.PhoneNumberFormat.E164


def normalise_region(code: object) -> str | None:
    """The region of a contact's countryCode (case-insensitive), if phonenumbers knows it."""
    if not isinstance(code, str):
        return None
    region = code.strip().upper()
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


def region_of_numbers(numbers: Iterable[str]) -> str | None:
    """The region of the first E.164 number whose country calling code maps to a region."""
    for number in numbers:
        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            continue
        region = phonenumbers.region_code_for_country_code(parsed.country_code)
        if region in phonenumbers.SUPPORTED_REGIONS:
            return region
    return None


@lru_cache(maxsize=65_536)
def to_e164(raw: str, region: str | None) -> str | None:
    """E.164 form of `raw` (a tel URI or a formatted number), or None when it cannot be one.

    A national number needs a region; without one it has no E.164 form and never matches.
    """
    text = raw.strip()
    if text[:4].lower() == "tel:":
        text = text[4:].split(";", 1)[0]
    if not text or len(text) > 64:
        return None
    if region is None and not text.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, _E164)

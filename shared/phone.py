"""Phone numbers to E.164: one rule for both services, the SSO's verified numbers and the
numbers in contacts that Smart Contacts compares with them.

A number is kept when `phonenumbers` parses it as a *possible* number, so test ranges such
as +1 555 match too, and it is stored in E.164 whatever its length (German and Japanese
numbers reach 18 characters).
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


# Longer than any formatted number (E.164 has at most 15 digits; separators, an extension and
# a "+" leave a generous margin). Anything longer is not a phone number and is never parsed.
MAX_NUMBER_LENGTH = 64


def number_text(raw: object) -> str | None:
    """The number part of a tel URI or a formatted number, or None when it cannot be one.

    Cheap and bounded by the input: strips whitespace, a `tel:` scheme and URI parameters, and
    refuses anything empty or over MAX_NUMBER_LENGTH characters, so only short strings ever
    reach the parser and its cache.
    """
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if text[:4].lower() == "tel:":
        text = text[4:].partition(";")[0].strip()
    if not text or len(text) > MAX_NUMBER_LENGTH:
        return None
    return text


def to_e164(raw: object, region: str | None) -> str | None:
    """E.164 form of `raw` (a tel URI or a formatted number), or None when it cannot be one.

    A national number needs a region; without one it has no E.164 form and never matches.
    """
    text = number_text(raw)
    if text is None or (region is None and not text.startswith("+")):
        return None
    return parse_e164(text, region)


@lru_cache(maxsize=4096)
def parse_e164(text: str, region: str | None) -> str | None:
    """E.164 form of a bare number of at most MAX_NUMBER_LENGTH characters (see to_e164).

    Cached for what repeats: the verified numbers every introspection brings, and the few
    numbers of an incremental sync. Not sized for a whole book: an upload's numbers are
    mostly new, and 65,536 entries cost a worker ≈ 10 MB for no hits. Keys are short by
    construction (to_e164 bounds them).
    """
    if len(text) > MAX_NUMBER_LENGTH:
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, _E164)


def normalise_numbers(raw: Iterable[object], region: str | None, limit: int) -> list[str]:
    """E.164 forms of the possible numbers among `raw`, in order, without duplicates, at most
    `limit`; the rest dropped. Only the first 2 x `limit` entries are looked at: each costs a
    parse, kept or not, and a 1 MiB list of junk would otherwise cost seconds of CPU."""
    normalised: dict[str, None] = {}  # ordered, without duplicates
    for position, value in enumerate(raw):
        if position >= limit * 2 or len(normalised) >= limit:
            break
        e164 = to_e164(value, region)
        if e164 is not None:
            normalised[e164] = None
    return list(normalised)

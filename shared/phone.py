"""Phone numbers to E.164: one rule for both services, the SSO's verified numbers and the
numbers in contacts that Smart Contacts compares with them.

A number is kept when `phonenumbers` parses it as a *possible* number, so test ranges such
as +1 555 match too, and it is stored in E.164 whatever its length (German and Japanese
numbers reach 18 characters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import phonenumbers

_E164 = phonenumbers.PhoneNumberFormat.E164


# Each region as one shared str: an upload keeps the region of every contact with a number
# until its numbers are normalised, and 20,000 copies of "DE" are 1 MB.
_REGIONS = {region: region for region in phonenumbers.SUPPORTED_REGIONS}


def normalise_region(code: object) -> str | None:
    """The region of a contact's countryCode (case-insensitive), if phonenumbers knows it."""
    if not isinstance(code, str):
        return None
    return _REGIONS.get(code.strip().upper())


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

    The answer is always the one phonenumbers gives (parse, is_possible_number, E.164 format);
    the shapes phone books mostly hold take a shortcut to it (see _fast_e164).
    """
    if len(text) > MAX_NUMBER_LENGTH:
        return None
    if _FAST_PATH:
        e164 = _fast_e164(text, region)
        if e164 is not _SLOW:
            return e164
    return _slow_e164(text, region)


def _slow_e164(text: str, region: str | None) -> str | None:
    """The reference: what phonenumbers makes of any text."""
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, _E164)


# --- The fast path ------------------------------------------------------------------------------
#
# phonenumbers.parse spends most of its time on work that is generic over any text: finding
# where a number starts and ends, an extension, an RFC 3966 phone-context, vanity letters,
# non-ASCII digits, and normalising all of it, with large regular expressions at each step.
# For text made only of ASCII digits, a leading "+" and the separators below, every one of
# those steps has a fixed outcome (argued step by step in _fast_e164), so the parse reduces
# to the digit string; from there the region-specific steps are followed in parse's order,
# calling phonenumbers' own helpers on the very strings parse would pass them. Anything else
# takes the slow path, unchanged.
#
# The restatement follows phonenumbers' parse() of the release below (phonenumberutil.py);
# another release may add or reorder steps, so there only the slow path runs, and
# tests/shared/test_phone.py fails until the fast path is reviewed against it.
_FAST_PATH_RELEASE = "9.0.43"
try:
    from phonenumbers.phonenumberutil import (
        _MAX_LENGTH_FOR_NSN,
        _MIN_LENGTH_FOR_NSN,
        COUNTRY_CODE_TO_REGION_CODE,
        ValidationResult,
        _extract_country_code,
        _match_national_number,
        _maybe_strip_national_prefix_carrier_code,
        _test_number_length,
    )
except ImportError:  # internals renamed: the slow path alone is still exact
    _FAST_PATH = False
else:
    _FAST_PATH = phonenumbers.__version__ == _FAST_PATH_RELEASE
    # Lengths after which parse keeps the national prefix, and is_possible_number's "yes".
    _KEEPS_NATIONAL_PREFIX = frozenset(
        (
            ValidationResult.TOO_SHORT,
            ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
            ValidationResult.INVALID_LENGTH,
        )
    )
    _POSSIBLE = frozenset((ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY))

_SLOW = object()  # "not this shape": _fast_e164 leaves the number to the slow path

# The separators the fast path accepts. Each is in phonenumbers' _VALID_PUNCTUATION (so the
# number stays viable), is no word character (so _extract_possible_number trims it at either
# end), can start neither an extension (_EXTN_PATTERN needs ";ext=", a label of letters, "x",
# "#", "~", "," or ";") nor a second number ("/" or "\\" only before an "x"), and is dropped by
# normalisation. Not tab, for one: it fails _VALID_PHONE_NUMBER.
_SEPARATORS = " -.()/\u00a0"
_SHAPE = re.compile(r"\+?[0-9" + re.escape(_SEPARATORS) + "]*")  # [0-9]: ASCII digits only
_DROP_SEPARATORS = str.maketrans("", "", "+" + _SEPARATORS)
_IDD_PATTERNS: dict[str, re.Pattern[str]] = {}  # by international_prefix: a few dozen


def _fast_e164(text: str, region: str | None) -> str | object | None:
    """parse_e164 for text of the common shapes, or _SLOW for any other text.

    Each step names the step of phonenumbers.parse it stands for and why its outcome is fixed.
    """
    # Shape: an optional "+" first, then ASCII digits and _SEPARATORS only.
    #  - _build_national_number_for_parsing: no ";" so no phone-context nor isub; the possible
    #    number runs from the first "+"/digit to the last digit (_UNWANTED_END_CHAR_PATTERN
    #    trims the non-word separators after it; _SECOND_NUMBER_START needs an "x").
    #  - _maybe_strip_extension: every extension pattern needs a letter, "#", "~", "," or ";".
    #  - _normalize: no letters, so normalize_digits_only, which keeps the ASCII digits in order
    #    and drops the rest, which is `digits` below.
    if _SHAPE.fullmatch(text) is None:
        return _SLOW
    digits = text.translate(_DROP_SEPARATORS)
    # _is_viable_phone_number: with at least three digits (and a "+" only first) the possible
    # number always fits _VALID_PHONE_NUMBER. Two digits are viable only when adjacent and
    # without "+"; rare enough to leave to the slow path.
    if len(digits) < 3:
        return _SLOW
    plus = text[0] == "+"
    # _check_region_for_parsing, then the region's metadata. A region phonenumbers does not
    # support, e.g. lower-case, is still upper-cased for metadata after a "+": slow path.
    if region is None:
        if not plus:
            return None
        metadata = None
    elif region in phonenumbers.SUPPORTED_REGIONS:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
    else:
        return _SLOW

    # _maybe_extract_country_code.
    if plus:
        # _maybe_strip_i18n_prefix_and_normalize strips the "+", leaving `digits`, at least 3,
        # so never TOO_SHORT_AFTER_IDD; then the leading country code, if any.
        country_code, national = _extract_country_code(digits)
        if country_code == 0:
            # INVALID_COUNTRY_CODE after a "+": parse tries again on the text after the "+",
            # which normalises to the same `digits`; this time only the region's IDD or its
            # own country code can give one, and parse raises when neither does.
            found = _country_code_without_plus(digits, metadata)
            if found is None or found[0] == 0:
                return None
            country_code, national = found
        from_number = True
    else:
        found = _country_code_without_plus(digits, metadata)
        if found is None:
            return None
        country_code, national = found
        from_number = country_code != 0
        if not from_number:
            # No country code in the number: the region's, and all the digits are national.
            country_code, national = metadata.country_code, digits
    if from_number:
        number_region = phonenumbers.region_code_for_country_code(country_code)
        if number_region != region:
            metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
                country_code, number_region
            )

    if len(national) < _MIN_LENGTH_FOR_NSN:  # TOO_SHORT_NSN
        return None
    if metadata is not None:
        # The national prefix (and carrier code) go only if what is left is a possible length.
        _, potential, _ = _maybe_strip_national_prefix_carrier_code(national, metadata)
        if _test_number_length(potential, metadata) not in _KEEPS_NATIONAL_PREFIX:
            national = potential
    if not _MIN_LENGTH_FOR_NSN <= len(national) <= _MAX_LENGTH_FOR_NSN:
        return None

    # is_possible_number: the national significant number it rebuilds from national_number
    # and the Italian leading zeros is `national` again (all digits, at least two), and it
    # measures it with the metadata of the calling code's main region.
    if country_code not in COUNTRY_CODE_TO_REGION_CODE:
        return None
    main = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        country_code, phonenumbers.region_code_for_country_code(country_code)
    )
    if main is None:  # never, for a known calling code; phonenumbers itself would fail here
        return _SLOW
    if _test_number_length(national, main) not in _POSSIBLE:
        return None
    # format_number(E164): "+", the calling code, the national significant number (no raw
    # input is kept, so a national_number of 0 formats the same way).
    return f"+{country_code}{national}"


def _country_code_without_plus(
    digits: str, metadata: phonenumbers.PhoneMetadata | None
) -> tuple[int, str] | None:
    """_maybe_extract_country_code for digits with no "+" before them: (code, national number),
    (0, "") when the number has none, or None where phonenumbers raises."""
    if metadata is None:
        # No region: the IDD pattern is "NonMatch", which digits never match, and there is no
        # default country code to look for.
        return (0, "")
    idd = metadata.international_prefix
    if idd is not None:  # every supported region has one; else "NonMatch", which never matches
        pattern = _IDD_PATTERNS.get(idd)
        if pattern is None:
            pattern = _IDD_PATTERNS[idd] = re.compile(idd)
        match = pattern.match(digits)
        # _parse_prefix_as_idd: an IDD followed by "0" is not one (no country code starts
        # with 0); one followed by nothing is stripped.
        if match is not None and digits[match.end() : match.end() + 1] != "0":
            rest = digits[match.end() :]
            if len(rest) <= _MIN_LENGTH_FOR_NSN:  # TOO_SHORT_AFTER_IDD
                return None
            found = _extract_country_code(rest)
            return found if found[0] != 0 else None  # INVALID_COUNTRY_CODE
    # The number may start with the region's own country code, without "+" or IDD: taken as
    # one when that turns an invalid number valid, or a too long one shorter.
    code = str(metadata.country_code)
    if digits.startswith(code):
        general = metadata.general_desc
        _, potential, _ = _maybe_strip_national_prefix_carrier_code(digits[len(code) :], metadata)
        if (
            not _match_national_number(digits, general, False)
            and _match_national_number(potential, general, False)
        ) or _test_number_length(digits, metadata) == ValidationResult.TOO_LONG:
            return (metadata.country_code, potential)
    return (0, "")


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

"""E.164 normalisation for Smart Contacts."""

from __future__ import annotations

import functools
import os

import phonenumbers
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from shared import phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 (555) 123-1234", None, "+15551231234"),
        ("tel:+15551231234", None, "+15551231234"),
        ("TEL:+44-20-7183-8750;ext=1", None, "+442071838750"),
        ("(555) 123-1234", "US", "+15551231234"),
        ("020 7183 8750", "GB", "+442071838750"),
        ("00442071838750", "DE", "+442071838750"),
        ("020 7183 8750", None, None),
        ("not a number", "US", None),
        ("", "US", None),
        ("+1 2", None, None),
    ],
)
def test_to_e164(raw, region, expected):
    assert phone.to_e164(raw, region) == expected


@pytest.mark.parametrize(
    ("code", "expected"), [("gb", "GB"), (" US ", "US"), ("xx", None), (None, None), (44, None)]
)
def test_normalise_region_is_case_insensitive_and_known_only(code, expected):
    assert phone.normalise_region(code) == expected


def test_region_of_numbers_uses_the_first_mappable_number():
    assert phone.region_of_numbers(["garbage", "+442071838750", "+15551230001"]) == "GB"
    assert phone.region_of_numbers([]) is None


# --------------------------------------------------------------------- the fast path is exact
#
# parse_e164 answers the common shapes without phonenumbers.parse (shared/phone.py,
# _fast_e164). These differential tests hold it to the answer of the implementation it
# replaced, kept here as the reference. PHONE_EXAMPLES raises the Hypothesis example count
# for a thorough local run (e.g. PHONE_EXAMPLES=20000); the default keeps the suite fast.

EXAMPLES = int(os.environ.get("PHONE_EXAMPLES", "150"))
DIFFERENTIAL = settings(max_examples=EXAMPLES, deadline=None, database=None)
E164 = phonenumbers.PhoneNumberFormat.E164


def reference_e164(text: str, region: str | None) -> str | None:
    """parse_e164 as it was before the fast path: all of phonenumbers (the slow path, which
    is that implementation unchanged), uncached."""
    if len(text) > phone.MAX_NUMBER_LENGTH:
        return None
    return phone._slow_e164(text, region)


def reference_to_e164(raw: object, region: str | None) -> str | None:
    text = phone.number_text(raw)
    if text is None or (region is None and not text.startswith("+")):
        return None
    return reference_e164(text, region)


def assert_same(text: str, region: str | None) -> str | None:
    """parse_e164 (its cache bypassed, so every call computes) agrees with the reference."""
    expected = reference_e164(text, region)
    assert phone.parse_e164.__wrapped__(text, region) == expected, (text, region)
    return expected


def assert_same_noted(text: str, region: str | None) -> None:
    """assert_same, counting the routes taken (--hypothesis-show-statistics lists them)."""
    expected = assert_same(text, region)
    route = "slow" if phone._fast_e164(text, region) is phone._SLOW else "fast"
    event(f"{route} path, {'E.164' if expected else 'None'}")


REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
regions = st.sampled_from([*REGIONS, None])

# What the fast path takes: ASCII digits, its separators and "+" (anywhere, so also where
# only the slow path may go) ...
FAST_CHARS = "0123456789" * 3 + " -.()/+\u00a0"
# ... and what must send a number to phonenumbers' full parse: extension marks and labels,
# letters (vanity numbers), RFC 3966 parts, non-ASCII digits and pluses, other punctuation.
OTHER_PIECES = [
    "x", "X", "#", ";", ",", ",,", "~", "*", "\t", "\n", "_", "[", "]", "a", "e", "o", "t",
    "ext", "ext.", " ext. ", "tel:", ";ext=", ";phone-context=+49", ";phone-context=a.b",
    ";isub=12", "\uff10", "\uff15", "\u0663", "\u06f5", "\uff0b", "\u2013", "\u2212", "\u3000",
    "\u2060", "\u00ad", "\\", "/x", "\uff58", "\u0434\u043e\u0431", "int", "FLOWERS", "ö", ":",
]  # fmt: skip
fast_texts = st.builds(
    str.__add__, st.sampled_from(["", "+"]), st.text(alphabet=FAST_CHARS, min_size=3, max_size=24)
)
sprinkled_texts = st.lists(st.sampled_from(list(FAST_CHARS) * 3 + OTHER_PIECES), max_size=24).map(
    "".join
)

SEPARATORS = [" ", "-", ".", "(", ")", "/", "\u00a0", " (", ") "]


def prefixes_for(region: str | None) -> list[str]:
    """Beginnings that make parse take each of its routes for `region`: "+" and a calling
    code, an IDD (the region's or another), the region's own code without "+", a national
    prefix, "(0)" after the code, "+" before an IDD, and none."""
    if region is None:
        cc, national_prefix = "49", "0"
    else:
        cc = str(phonenumbers.country_code_for_region(region))
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        national_prefix = metadata.national_prefix or "0"
    return [
        "", "+", f"+{cc}", f"+{cc} ", cc, f"00{cc}", f"011{cc}", f"810{cc}", f"0011{cc}",
        f"+00{cc}", f"+011{cc}", f"+{cc}{national_prefix}", f"+{cc} (0)", f"{cc}{national_prefix}",
        national_prefix, national_prefix * 2, "0", "00", "+0", "+1", "+7", "8", "1", "9", "15",
        "+800", "+979", "+882", "+999", "+39 0", "+54 9", "+52 1", "044", "045",
    ]  # fmt: skip


def spread(draw, digits: str) -> str:
    """`digits` with separators inserted at drawn places."""
    pieces = list(digits)
    for _ in range(draw(st.integers(0, 4))):
        where = draw(st.integers(0, len(pieces)))
        pieces.insert(where, draw(st.sampled_from(SEPARATORS)))
    return "".join(pieces)


@st.composite
def dialled(draw):
    """A region and a number in it, or near it: a prefix for its routes and up to 18 digits."""
    region = draw(regions)
    prefix = draw(st.sampled_from(prefixes_for(region)))
    body = draw(
        st.text(alphabet="0123456789", min_size=6, max_size=11)
        | st.text(alphabet="0123456789", max_size=18)
    )
    return spread(draw, prefix + body), draw(st.sampled_from([region, region, None, "US", "DE"]))


@functools.cache
def example_numbers() -> list[tuple[str, phonenumbers.PhoneNumber]]:
    """phonenumbers' own example number of every type in every region and non-geographic
    entity: real-looking numbers from everywhere (Italian leading zeros, Argentine and Mexican
    mobile prefixes, Russian trunk "8", carrier codes ...)."""
    found = []
    for region in REGIONS:
        for number_type in phonenumbers.PhoneNumberType.values():
            number = phonenumbers.example_number_for_type(region, number_type)
            if number is not None:
                found.append((region, number))
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            found.append(("001", number))
    return found


def written_forms(number: phonenumbers.PhoneNumber) -> list[str]:
    """The ways a phone book holds `number`: E.164, international, national, as dialled from
    the US and from Germany."""
    fmt = phonenumbers.PhoneNumberFormat
    return [
        phonenumbers.format_number(number, fmt.E164),
        phonenumbers.format_number(number, fmt.INTERNATIONAL),
        phonenumbers.format_number(number, fmt.NATIONAL),
        phonenumbers.format_out_of_country_calling_number(number, "US"),
        phonenumbers.format_out_of_country_calling_number(number, "DE"),
    ]


@st.composite
def near_examples(draw):
    """A written form of an example number, maybe with digits dropped or added, read in its
    own region or another."""
    home, number = draw(st.sampled_from(example_numbers()))
    text = draw(st.sampled_from(written_forms(number)))
    cut = draw(st.integers(0, 3))
    if cut and draw(st.booleans()):
        text = text[:-cut]
    elif cut:
        text += draw(st.text(alphabet="0123456789", min_size=cut, max_size=cut))
    own = home if home != "001" else None
    return text, draw(st.sampled_from([own, None]) | regions)


@DIFFERENTIAL
@given(text=fast_texts | sprinkled_texts, region=regions)
def test_parse_e164_equals_phonenumbers_on_generated_text(text, region):
    assert_same_noted(text, region)


@DIFFERENTIAL
@given(case=dialled())
def test_parse_e164_equals_phonenumbers_on_every_route_of_every_region(case):
    assert_same_noted(*case)


@DIFFERENTIAL
@given(case=near_examples())
def test_parse_e164_equals_phonenumbers_around_real_numbers(case):
    assert_same_noted(*case)


@DIFFERENTIAL
@given(
    raw=st.one_of(
        fast_texts,
        sprinkled_texts,
        st.builds(lambda t, p: f" tel:{t}{p} ", fast_texts, st.sampled_from(["", ";ext=1"])),
        st.integers(),
        st.none(),
    ),
    region=regions,
)
def test_to_e164_equals_phonenumbers(raw, region):
    assert phone.to_e164(raw, region) == reference_to_e164(raw, region)


@settings(DIFFERENTIAL, max_examples=max(EXAMPLES // 3, 1))  # a composition of the above
@given(raw=st.lists(fast_texts | sprinkled_texts, max_size=12), region=regions)
def test_normalise_numbers_equals_phonenumbers(raw, region):
    expected: dict[str, None] = {}
    for position, value in enumerate(raw):
        if position >= 10 or len(expected) >= 5:
            break
        e164 = reference_to_e164(value, region)
        if e164 is not None:
            expected[e164] = None
    assert phone.normalise_numbers(raw, region, 5) == list(expected)


def test_every_example_number_of_every_region_equals_phonenumbers():
    """Every written form of every example number, in its own region and with none."""
    kept = 0
    for home, number in example_numbers():
        for text in written_forms(number):
            for region in {home if home != "001" else None, None}:
                kept += assert_same(text, region) is not None
    assert kept > 3000  # most are possible: the comparison is not between two Nones


# Known answers, each also checked against the reference: shapes from phone books, and the
# routes of parse a shortcut could get wrong.
@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        # E.164 and national forms of the benchmark's regions.
        ("+4930123456", None, "+4930123456"),
        ("+49 30 123 4567", "DE", "+49301234567"),
        ("030 123 4567", "DE", "+49301234567"),
        ("030-123-4567", "DE", "+49301234567"),
        ("(030) 123-4567", "DE", "+49301234567"),
        ("0301234567", "DE", "+49301234567"),
        ("030/1234567", "DE", "+49301234567"),
        ("030.123.4567", "DE", "+49301234567"),
        ("030\u00a0123\u00a04567", "DE", "+49301234567"),
        ("(415) 555-1234", "US", "+14155551234"),
        ("1 415 555 1234", "US", "+14155551234"),
        ("415 555 1234", "CA", "+14155551234"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("+44 (0)20 7946 0018", None, "+442079460018"),  # national prefix after "+CC"
        ("+49 (0) 30 1234567", "US", "+49301234567"),
        ("8 (495) 123-45-67", "RU", "+74951234567"),  # Russia's trunk prefix "8"
        ("8 800 555 35 35", "RU", "+78005553535"),
        ("+7 8 495 123 45 67", None, "+74951234567"),
        ("090-1234-5678", "JP", "+819012345678"),
        ("010 5555 1234", "CN", "+861055551234"),
        ("02 2345 6789", "EG", "+20223456789"),
        ("21 2345 6789", "GR", "+302123456789"),
        # Italian leading zeros stay (06 is Rome, not a trunk prefix).
        ("+39 06 6982 1234", None, "+390669821234"),
        ("06 6982 1234", "IT", "+390669821234"),
        ("06 698", "IT", None),
        ("+39 0", None, None),
        # IDD prefixes: the region's, another region's, after a "+".
        ("0049 30 1234567", "DE", "+49301234567"),
        ("00 49 30 1234567", "FR", "+49301234567"),
        ("011 49 30 1234567", "US", "+49301234567"),
        ("011 49 30 1234567", "DE", "+491149301234567"),  # not an IDD there
        ("810 49 30 1234567", "RU", "+49301234567"),
        ("+0049 30 1234567", "DE", "+49301234567"),  # parse's retry without the "+"
        ("+011 44 20 7946 0018", "US", "+442079460018"),
        ("+0049 30 1234567", None, None),
        ("0049", "DE", None),
        ("00 1", "DE", None),
        # The region's own calling code written without "+".
        ("49 30 1234567", "DE", "+49301234567"),
        ("1 415 555 1234", "US", "+14155551234"),
        ("44 20 7946 0018", "GB", "+442079460018"),
        # Mobile prefixes: Argentina's 15 and 9, Mexico's 1, 044 and 045.
        ("011 15 2345-6789", "AR", "+5491123456789"),
        ("0341 15 555 1234", "AR", "+5493415551234"),
        ("+54 9 11 2345 6789", None, "+5491123456789"),
        ("+52 1 55 1234 5678", None, None),  # no longer dialled
        ("044 55 1234 5678", "MX", None),
        ("55 1234 5678", "MX", "+525512345678"),
        # Brazilian carrier code.
        ("0 21 (11) 2345-6789", "BR", "+551123456789"),
        # Short, minimal and maximal.
        ("112", "DE", "+49112"),  # possible, if only locally
        ("911", "US", None),
        ("5", "DE", None),
        ("12", "DE", "+4912"),
        ("(12)", "DE", "+4912"),
        ("1 2", "DE", None),  # two digits are a number only side by side
        ("+12", None, None),
        # A region sharing its calling code: lengths are those of the code's main region.
        ("2 1234", "TA", "+29021234"),  # possible on Saint Helena, not Tristan da Cunha
        ("1234567", "IM", "+441234567"),
        ("555 1234", "CA", "+15551234"),
        ("+1", None, None),
        ("12345678901234567", "DE", None),
        ("+12345678901234567", None, None),
        ("+49123456789012345", None, "+49123456789012345"),
        ("+81123456789012345", None, "+81123456789012345"),
        ("", "DE", None),
        ("", None, None),
        ("+", None, None),
        ("+", "DE", None),
        ("++49 30 1234567", None, "+49301234567"),
        ("()", "DE", None),
        ("9" * 64, "DE", None),
        ("9" * 65, "DE", None),
        ("+" + "4" * 63, None, None),
        # Not the fast path's shape: extensions, letters, URIs, other digits.
        ("030 1234567 x12", "DE", "+49301234567"),
        ("030 1234567 ext. 5", "DE", "+49301234567"),
        ("(415) 555-1234 - 503#", "US", "+14155551234"),
        ("1-800-FLOWERS", "US", "+18003569377"),
        ("tel:+49-30-1234567", None, "+49301234567"),
        ("+49 30 1234567;ext=7", None, "+49301234567"),
        ("\uff10\uff13\uff10 1234567", "DE", "+49301234567"),
        ("\u0660\u0663\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667", "DE", "+49301234567"),
        ("\uff0b49 30 1234567", None, "+49301234567"),
        ("030\t1234567", "DE", None),
        (" +49 30 1234567", "de", "+49301234567"),
        ("030 1234567", "de", None),
        ("030 1234567", "ZZ", None),
    ],
)
def test_parse_e164_known_answers(text, region, expected):
    assert assert_same(text, region) == expected
    assert phone.parse_e164(text, region) == expected


def test_the_fast_path_is_reviewed_for_the_installed_phonenumbers():
    """The fast path restates parse() of one phonenumbers release and is off for any other
    (exact, but slow again). After an upgrade: re-read parse() and its helpers against
    _fast_e164, run these tests with PHONE_EXAMPLES=20000, then bump _FAST_PATH_RELEASE."""
    assert phonenumbers.__version__ == phone._FAST_PATH_RELEASE
    assert phone._FAST_PATH


def test_the_common_shapes_take_the_fast_path():
    """The shapes of bench/data.py's phone books (and dots, slashes, no-break spaces): the
    differential tests above are about these, not only about the slow path."""
    shapes = [
        ("+4930123456", "DE"), ("+49 30 123 4567", "DE"), ("030 123 4567", "DE"),
        ("030-123-4567", "DE"), ("(030) 123-4567", "DE"), ("0301234567", "DE"),
        ("030.123.4567", "DE"), ("030/1234567", "DE"), ("030\u00a01234567", "DE"),
        ("8 (495) 123-45-67", "RU"), ("+1 (415) 555-1234", None), ("0049 30 1234567", "DE"),
    ]  # fmt: skip
    for text, region in shapes:
        assert phone._fast_e164(text, region) is not phone._SLOW, text

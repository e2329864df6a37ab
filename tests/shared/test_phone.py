"""E.164 normalisation for Smart Contacts."""

from __future__ import annotations

import pytest

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

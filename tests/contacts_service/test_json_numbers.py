"""Numbers kept as their text: parsed by the upload's decoder hooks, written back verbatim."""

from __future__ import annotations

import json

import pytest

from contacts_service import json_numbers
from contacts_service.json_numbers import RawNumber

DECODER = json.JSONDecoder(parse_float=json_numbers.parse_float, parse_int=json_numbers.parse_int)


@pytest.mark.parametrize(
    ("text", "kept_as_text"),
    [("4.5", False), ("10", False), ("-7", False), ("0.1", False), ("-0.0", False),
     ("1e2", True), ("1.50", True), ("-0", True), ("1e-400", True), ("7" * 4301, True)],
)  # fmt: skip
def test_only_numbers_python_would_write_differently_are_kept_as_text(text, kept_as_text):
    value = DECODER.decode(text)
    assert isinstance(value, RawNumber) is kept_as_text
    assert json_numbers.dumps(value) == text


def test_text_that_looks_like_the_mark_stays_a_string():
    # What a client could send in a string, even knowing the mark's shape (not its nonce).
    tricky = ["\x00deadbeef:0\x00", "\\u0000", '"\x00:0\x00"']
    value = {"a": RawNumber("1e2"), "s": tricky, "b": [RawNumber("-0"), 1.5]}
    text = json_numbers.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert text.startswith('{"a":1e2,"b":[-0,1.5],"s":')
    assert json.loads(text)["s"] == tricky


def test_other_objects_are_still_refused():
    with pytest.raises(TypeError):
        json_numbers.dumps({"x": object()})

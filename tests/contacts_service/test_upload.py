"""The upload reader (contacts_service/upload.py) parses the contacts array one contact at a
time. It must answer exactly what loading the whole body with the schema answers: same status,
error code and `details` for every body, and the same stored contacts for every valid one —
whatever the whitespace, key order or duplicate keys (Hypothesis differential tests)."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from contacts_service import json_numbers
from contacts_service.api import api
from contacts_service.schemas import PatchContactsSchema, PutContactsSchema
from contacts_service.upload import Documents, _Reader, prepare_contact
from shared.errors import ApiError
from tests.contacts_service.test_contact_fast_path import (
    ReferencePatch,
    ReferencePut,
    app,  # noqa: F401 - the fixture
    contacts,
    ids,
)

INDENTS = [None, 0, 2, "\t"]


def streamed(schema, text: str):
    try:
        return ("loaded", api.load(schema, text.encode(), loader=schema.load_json_body))
    except ApiError as exc:
        return (exc.status, exc.error, exc.details)


def reference(schema, text: str, key: str):
    try:
        # The whole body at once, with the numbers policy of any contacts upload.
        body = json.loads(
            text, parse_float=json_numbers.parse_float, parse_int=json_numbers.parse_int
        )
    except ValueError:
        return (400, "invalid_json")
    if not isinstance(body, dict):
        return (400, "invalid_json")
    try:
        loaded = api.load(schema, body)
    except ApiError as exc:
        return (exc.status, exc.error, exc.details)
    loaded[key] = [prepare_contact(c, key) for c in loaded[key]]
    return ("loaded", loaded)


def agree(schema, reference_schema, body, key, indent):
    text = json.dumps(body, ensure_ascii=False, indent=indent)
    ours, theirs = streamed(schema, text), reference(reference_schema, text, key)
    if theirs[:2] == (400, "invalid_json"):
        assert ours[:2] == theirs[:2]
    else:
        assert ours == theirs


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {}, optional={"upsert": st.lists(contacts, max_size=4) | ids, "delete": st.lists(ids)}
    ),
    st.sampled_from(INDENTS),
)
def test_patch_reader_agrees_with_the_schema(app, body, indent):  # noqa: F811
    with app.app_context():
        agree(PatchContactsSchema(), ReferencePatch(), body, "upsert", indent)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries({}, optional={"contacts": st.lists(contacts, max_size=4) | ids}),
    st.sampled_from(INDENTS),
)
def test_put_reader_agrees_with_the_schema(app, body, indent):  # noqa: F811
    with app.app_context():
        agree(PutContactsSchema(), ReferencePut(), body, "contacts", indent)


GOOD = '{"contactId":"a","fname":"A"}'


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "[]",
        "null",
        '"upsert"',
        "{",
        '{"upsert"',
        '{"upsert":',
        '{"upsert":[',
        '{"upsert":[' + GOOD,
        '{"upsert":[' + GOOD + ",",
        '{"upsert":[' + GOOD + "]",
        '{"upsert":[' + GOOD + "]}x",
        '{"upsert":[' + GOOD + "]}{}",
        '{"upsert":[' + GOOD + ",]}",
        '{"upsert":[,' + GOOD + "]}",
        '{"upsert":[' + GOOD + " " + GOOD + "]}",
        '{"upsert":[' + GOOD + "],}",
        "{upsert:[]}",
        "{'upsert':[]}",
        '{"upsert" []}',
        '{"upsert":[NaN]}',
        '{"upsert":[{"contactId":"a","n":Infinity}]}',
        '{"upsert":[' + "[" * 100_000 + "]" * 100_000 + "]}",
        '{"upsert":[],"delete":[NaN]}',
        '{"upsert":[{"contactId":"\\ud800"}]}',
        '{"upsert":[],"delete":["\\udfff"]}',
    ],
)
def test_broken_bodies_are_400_like_the_whole_body_parser(app, text):  # noqa: F811
    with app.app_context():
        assert streamed(PatchContactsSchema(), text)[:2] == (400, "invalid_json")


@pytest.mark.parametrize("raw", [b'{"upsert":[{"contactId":"\xff"}]}', '{"a":1}'.encode("utf-16")])
def test_bodies_that_are_not_utf8_are_400(app, raw):  # noqa: F811
    schema = PatchContactsSchema()
    with app.app_context(), pytest.raises(ApiError) as caught:
        api.load(schema, raw, loader=schema.load_json_body)
    assert (caught.value.status, caught.value.error) == (400, "invalid_json")


def test_duplicate_keys_keep_the_last_like_json_loads(app):  # noqa: F811
    text = '{"upsert":[{"contactId":"a"}],"upsert":[{"contactId":"b"}],"upsert":[]}'
    with app.app_context():
        status, loaded = streamed(PatchContactsSchema(), text)
    assert status == "loaded" and loaded["upsert"] == []
    text = '{"upsert":[{"contactId":"a"}],"upsert":[{"contactId":"b"}]}'
    with app.app_context():
        _, loaded = streamed(PatchContactsSchema(), text)
    assert [c.contact_id for c in loaded["upsert"]] == ["b"]


def test_more_contacts_than_a_device_holds_stop_the_reading_early(app):  # noqa: F811
    app.config["CONTACTS_MAX_CONTACTS_PER_DEVICE"] = 3
    try:
        # The fourth contact is refused before the (broken) rest of the body is even read.
        text = '{"upsert":[' + ",".join([GOOD.replace('"a"', f'"{i}"') for i in range(4)])
        with app.app_context():
            outcome = streamed(PatchContactsSchema(), text + ",{{{")
        assert outcome[:2] == (422, "too_many_contacts")
        assert outcome[2] == {"upsert": ["At most 3 items."]}
    finally:
        del app.config["CONTACTS_MAX_CONTACTS_PER_DEVICE"]


A, B = {"contactId": "a"}, {"contactId": "b", "fname": "B"}
BAD = {"contactId": "", "fname": 3}


@pytest.mark.parametrize(
    "body",
    [
        {"upsert": [A, B, A]},
        {"upsert": [A, A, A], "delete": ["a", "c"]},
        {"upsert": [A, B], "delete": ["b"]},
        {"upsert": [A, BAD, A], "delete": ["a"]},
        {"upsert": [BAD, BAD]},
        {"upsert": [A], "extra": 1},
        {"upsert": [A, A], "extra": 1},
        {"upsert": [A], "delete": [""]},
        {"upsert": "a"},
        {"upsert": None},
        {"delete": ["a"]},
        {},
    ],
)
def test_cross_field_rules_match_the_schema(app, body):  # noqa: F811
    with app.app_context():
        agree(PatchContactsSchema(), ReferencePatch(), body, "upsert", None)
        if "upsert" in body:
            put = {"contacts": body["upsert"]}
            agree(PutContactsSchema(), ReferencePut(), put, "contacts", None)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {}, optional={"upsert": st.lists(contacts, max_size=4) | ids, "delete": st.lists(ids)}
    ),
    st.sampled_from(INDENTS),
    st.sampled_from([1, 2, 3, 5, 8, 64]),
)
def test_windows_of_any_size_read_the_same(app, body, indent, window):  # noqa: F811
    """Large bodies are decoded a window (1 MiB) at a time; values, whitespace, numbers and
    multi-byte characters cut by a window's end must read as if the body were whole."""
    saved = _Reader.WINDOW
    _Reader.WINDOW = window
    try:
        with app.app_context():
            agree(PatchContactsSchema(), ReferencePatch(), body, "upsert", indent)
    finally:
        _Reader.WINDOW = saved


@pytest.mark.parametrize("window", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize(
    "text",
    [
        '{"upsert":[],"delete":[],"x":123456789}',
        '{"upsert":[{"contactId":"\U0001f600\u00e9x","n":1.5e10,"t":true,"f":false,"z":null}]}',
        '  {  "upsert"  :  [  {"contactId":"a"}  ,  {"contactId":"b"}  ]  }  ',
    ],
)
def test_values_cut_by_a_window_end_read_whole(app, text, window):  # noqa: F811
    saved = _Reader.WINDOW
    _Reader.WINDOW = window
    try:
        with app.app_context():
            ours = streamed(PatchContactsSchema(), text)
    finally:
        _Reader.WINDOW = saved
    with app.app_context():
        assert ours == reference(ReferencePatch(), text, "upsert")


# Found by the outside read of issue 10 (each failed before its fix).


def test_nesting_just_past_what_the_encoder_takes_is_a_clear_4xx(app):  # noqa: F811
    """The C decoder takes somewhat deeper nesting than json.dumps re-encodes: the contacts in
    between were a 500 (RecursionError)."""
    with app.app_context():
        for depth in range(940, 1010, 3):
            text = '{"upsert":[{"contactId":"deep","x":' + "[" * depth + "]" * depth + "}]}"
            assert streamed(PatchContactsSchema(), text)[0] in (400, 422), depth
            escaped = text.replace('"deep"', '"\\u00e9"')  # the surrogate check also dumps
            assert streamed(PatchContactsSchema(), escaped)[0] in (400, 422), depth


@pytest.mark.parametrize(
    "text",
    [
        '{"upsert":[{"contactId":""}],"upsert":[{"contactId":"x1"}]}',
        '{"upsert":[{"contactId":"\\ud800"}],"upsert":[]}',
        '{"upsert":[{"contactId":"\\ud800"}],"upsert":"x"}',
        '{"upsert":[{"contactId":1}],"upsert":[{"contactId":"a"}],"delete":["a"]}',
        '{"upsert":[{"contactId":"a"}],"upsert":[{"contactId":""}]}',
    ],
)
def test_an_earlier_duplicate_of_the_contacts_key_leaves_no_trace(app, text):  # noqa: F811
    with app.app_context():
        assert streamed(PatchContactsSchema(), text) == reference(ReferencePatch(), text, "upsert")
        put = text.replace('"upsert"', '"contacts"').replace(',"delete":["a"]', "")
        assert streamed(PutContactsSchema(), put) == reference(ReferencePut(), put, "contacts")


@pytest.mark.parametrize("number", ["1.5", "1e5", "-0.25E-3", "12345.678"])
def test_a_number_cut_by_the_window_end_reads_whole(app, number):  # noqa: F811
    saved = _Reader.WINDOW
    _Reader.WINDOW = 16
    try:
        for pad in range(0, 20):
            for text in (
                '{"upsert":[' + " " * pad + number + "]}",
                '{"upsert":' + " " * pad + number + "}",
                '{"delete":[],' + " " * pad + '"x":' + number + "}",
            ):
                with app.app_context():
                    ours = streamed(PatchContactsSchema(), text)
                    assert ours == reference(ReferencePatch(), text, "upsert"), (pad, text)
    finally:
        _Reader.WINDOW = saved


def test_details_keep_the_schema_order_under_the_cap(app):  # noqa: F811
    """Unknown keys come after the contacts' errors, as schema.load gives them, so the 100
    entries kept of a long list of errors are the same ones."""
    text = json.dumps({"aaa": 1, "upsert": [{"contactId": ""}] * 120, "delete": [""]})
    with app.app_context():
        ours = streamed(PatchContactsSchema(), text)
        assert ours == reference(ReferencePatch(), text, "upsert")
    assert ours[0] == 422


def test_the_value_cap_follows_the_contact_size_limit():
    """A provider that raises CONTACTS_MAX_CONTACT_BYTES (large photos in contacts) gets
    contacts up to it; the per-value cap is 16 times the limit, at least 1 MiB."""
    limits = Flask("cap-test")
    limits.config.update(
        CONTACTS_MAX_CONTACTS_PER_DEVICE=100,
        CONTACTS_MAX_ENTRIES_PER_CONTACT=500,
        CONTACTS_MAX_CONTACT_BYTES=4 * 1024 * 1024,
    )
    contact = {"contactId": "big", "notes": "x" * (1536 * 1024)}  # 1.5 MiB of JSON
    body = json.dumps({"upsert": [contact]}).encode()
    with limits.app_context():
        loaded = PatchContactsSchema().load_json_body(body)
    assert [c.contact_id for c in loaded["upsert"]] == ["big"]
    limits.config["CONTACTS_MAX_CONTACT_BYTES"] = 65536
    with limits.app_context(), pytest.raises(ValidationError) as refused:
        PatchContactsSchema().load_json_body(body)
    assert refused.value.messages == {"upsert.0": ["More than 1048576 bytes of JSON."]}


class SmallChunks(Documents):
    """The same store with chunks small enough for many of them in a test."""

    CHUNK_BYTES = 4096


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(max_size=3 * SmallChunks.CHUNK_BYTES // 2), max_size=12)
    | st.lists(st.binary(max_size=700), min_size=150, max_size=400),
    st.randoms(use_true_random=False),
)
def test_kept_documents_read_back_exactly_in_any_order(documents, rnd):
    """An upload's documents are kept compressed in chunks (whole documents each, a chunk closed
    once it reaches CHUNK_BYTES): every one reads back byte for byte, with its size, whether it
    is in a closed chunk or the open tail, the cached chunk or another."""
    kept = SmallChunks()
    at = [kept.add(document) for document in documents]
    assert at == list(range(len(documents)))
    order = list(range(len(documents)))
    rnd.shuffle(order)
    for index in order + list(range(len(documents))):
        assert kept.get(index) == documents[index]
        assert kept.size(index) == len(documents[index])


def test_a_large_upload_keeps_its_documents_compressed():
    """Many contacts' texts take a fraction of their size while they wait to be written, and
    each reads back as prepared."""
    kept = SmallChunks()
    texts = [
        json.dumps(
            {"contactId": f"c{n}", "displayName": f"Person {n}", "tel": f"+1555{n:07d}"}
        ).encode()
        for n in range(5000)
    ]
    contacts = [
        prepare_contact(json.loads(text), f"upsert.{n}", documents=kept)
        for n, text in enumerate(texts)
    ]
    assert [json.loads(c.document) for c in contacts[::97]] == [
        {**json.loads(text), "checksum": c.checksum}
        for text, c in zip(texts[::97], contacts[::97], strict=True)
    ]
    raw = sum(len(c.document) for c in contacts)
    assert kept.held_bytes < raw / 3

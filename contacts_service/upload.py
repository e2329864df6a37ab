"""Reading a contacts upload (PATCH and PUT bodies) one contact at a time.

A 20,000-contact book is ≈ 12 MB of JSON; parsed whole it becomes some 400,000 Python objects
(about 20 times the body) that all live until the request ends. Here the top-level object is
walked by hand and each element of the contacts array is parsed on its own (json's C scanner,
`raw_decode`), validated by the same rules as the schema (`ContactField`: the fast path, then
marshmallow for the exact messages), and reduced at once to a `PreparedContact`: its stored JSON
text, checksum, block key and tel entries. The parsed dict is then dropped, so memory stays
near the size of the body.

Everything else about the body — unknown keys, `delete`, a contacts value that is not an array,
duplicate ids — goes through the route's marshmallow schema, so the errors are the ones
`schema.load` gives for the same body (tests/contacts_service/test_upload.py compares them).
"""

from __future__ import annotations

import io
import json
import re
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, BinaryIO

from marshmallow import Schema, ValidationError

from contacts_service import json_numbers
from contacts_service.checksums import block_key, contact_checksum
from contacts_service.helper_threads import helper_threads
from shared.errors import ApiError
from shared.phone import normalise_region

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER_CHARACTERS = re.compile(r"[0-9.eE+-]*")


def _not_json(constant: str):
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) does not.
    raise ValueError(f"{constant} is not a JSON value")


# Numbers keep their text where Python would write them back differently (json_numbers).
_DECODER = json.JSONDecoder(
    parse_constant=_not_json, parse_float=json_numbers.parse_float, parse_int=json_numbers.parse_int
)


class Documents:
    """The stored JSON texts of one upload's contacts, in arrival order, zlib-compressed in
    chunks of about CHUNK_BYTES until they are written.

    They are the largest part of what an upload keeps between its parse and its writes (12.7
    MiB of a 20,000-contact upload's 22.7 MiB of Python objects); compressed at level 1 they
    take about a fifth of that (2.5 of 11.5 MiB), for ≈ 120 ms of CPU to compress and 60 ms to
    read back. A chunk holds whole documents, so one is read by decompressing one chunk; the
    writes read them slice by slice, in order, so the last decompressed chunk is kept for the
    next read.

    A full chunk is compressed in a helper thread (zlib lets go of the GIL, so on a second CPU)
    while the request's thread parses on. Why 1 MiB: an upload smaller than that (a phone's
    usual PATCH of up to ≈ 1,500 contacts) is never compressed, so it pays nothing; and every
    decompression lets go of the GIL, which a busy helper thread may then keep for up to a
    switch interval (5 ms): with 64 KiB chunks that cost a 20,000-contact upload ≈ 1 s. The
    price is up to 2 MiB more held (the open tail, the last chunk read).
    """

    CHUNK_BYTES = 1024 * 1024

    def __init__(self) -> None:
        self._chunks: list[bytes | Future] = []  # a Future while its compression runs
        self._chunk_starts = array("Q")  # offset of each chunk's first byte in the whole
        self._starts = array("Q")  # offset of each document's first byte in the whole
        self._pending = bytearray()  # the documents after the last chunk, not yet compressed
        self._pending_start = 0
        self._last: tuple[int, bytes] = (-1, b"")

    def add(self, document: bytes) -> int:
        """Keep `document`; its index."""
        self._starts.append(self._pending_start + len(self._pending))
        self._pending += document
        if len(self._pending) >= self.CHUNK_BYTES:
            self._chunk_starts.append(self._pending_start)
            # The bytearray is never touched again here, so the thread may read it unlocked.
            self._chunks.append(helper_threads().submit(zlib.compress, self._pending, 1))
            self._pending_start += len(self._pending)
            self._pending = bytearray()
        return len(self._starts) - 1

    @property
    def held_bytes(self) -> int:
        """What the texts take here: the compressed chunks and the open tail."""
        return sum(len(self._chunk(n)) for n in range(len(self._chunks))) + len(self._pending)

    def _chunk(self, number: int) -> bytes:
        chunk = self._chunks[number]
        if isinstance(chunk, Future):
            chunk = self._chunks[number] = chunk.result()
        return chunk

    def _end(self, index: int) -> int:
        if index + 1 < len(self._starts):
            return self._starts[index + 1]
        return self._pending_start + len(self._pending)

    def size(self, index: int) -> int:
        return self._end(index) - self._starts[index]

    def get(self, index: int) -> bytes:
        start, end = self._starts[index], self._end(index)
        if start >= self._pending_start:
            return bytes(self._pending[start - self._pending_start : end - self._pending_start])
        chunk = bisect_right(self._chunk_starts, start) - 1
        cached, text = self._last
        if cached != chunk:
            text = zlib.decompress(self._chunk(chunk))
            self._last = (chunk, text)
        offset = self._chunk_starts[chunk]
        return text[start - offset : end - offset]


@dataclass(slots=True, eq=False)
class PreparedContact:
    """One validated contact, as stored: nothing else of the parsed object is kept."""

    contact_id: str
    # The stored JSON text (with the computed checksum when none was sent), as UTF-8 (a str
    # holding one emoji would take 4 bytes per character), kept in `documents` at `at`.
    documents: Documents
    at: int
    checksum: str
    block_key: int
    region: str | None  # the region its own data names (countryCode, else an address's)
    # Its tel entries, flat: position in contactEntries, entryId, uri, position, ... (a tuple
    # per entry would cost 72 bytes more each; a 20,000-contact book has ≈ 50,000).
    tels: tuple[int | str | None, ...]

    @property
    def document(self) -> bytes:
        return self.documents.get(self.at)

    def _stored(self) -> tuple:
        return (
            self.contact_id,
            self.document,
            self.checksum,
            self.block_key,
            self.region,
            self.tels,
        )

    def __eq__(self, other: object) -> bool:
        """Equal when they would store the same rows, wherever their texts are kept."""
        if not isinstance(other, PreparedContact):
            return NotImplemented
        return self._stored() == other._stored()

    __hash__ = None  # mutable, like the dataclass it was

    @property
    def size(self) -> int:
        """len(self.document), without reading it."""
        return self.documents.size(self.at)

    def tel_entries(self) -> zip:
        """(position, entryId, uri) of each tel entry."""
        return zip(self.tels[0::3], self.tels[1::3], self.tels[2::3], strict=True)


def contact_region(contact: dict) -> str | None:
    """The region a contact's national numbers belong to, from its own data."""
    region = normalise_region(contact.get("countryCode"))
    if region:
        return region
    # The first address that names a usable country: a first address holding only a city
    # must not hide the country of the next one.
    for address in contact.get("contactAddresses") or ():
        if isinstance(address, dict):
            region = normalise_region(address.get("countryCode"))
            if region:
                return region
    return None


def prepare_contact(
    contact: dict,
    path: str,
    text: str | None = None,
    shared: dict | None = None,
    documents: Documents | None = None,
) -> PreparedContact:
    """A valid contact reduced to what is stored. A contact without a checksum gets the
    computed one appended as its last key, so it is read back with it; everything else keeps
    the key order and text it was uploaded with. `text`: the contact's compact JSON, when the
    caller has it already (schemas.plain_text). `shared`: one upload's memo of entry ids, so
    the thousands of "tel-0" in a book are one str, not one each. `documents`: where the
    upload keeps its contacts' texts (a new one when not given)."""
    if text is None:
        text = json_numbers.dumps(
            contact, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    if "checksum" in contact:
        checksum = contact["checksum"]
    else:
        checksum = contact_checksum(contact)
        # The same text json.dumps gives for {**contact, "checksum": ...}: a key appended last.
        text = text[:-1] + ',"checksum":' + json.dumps(checksum) + "}"
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        # "\ud800" is JSON by the grammar but not Unicode text: storable nowhere.
        raise ApiError(
            400,
            "invalid_json",
            "The request body is not valid Unicode text.",
            {path: ["Contains an unpaired surrogate (\\ud800-\\udfff escape)."]},
        ) from None
    tels: list = []
    for position, entry in enumerate(contact.get("contactEntries") or ()):
        if entry.get("type") == "tel":
            entry_id = entry.get("entryId")
            if shared is not None and entry_id is not None:
                entry_id = shared.setdefault(entry_id, entry_id)
            tels += (position, entry_id, entry["uri"])
    contact_id = contact["contactId"]
    documents = Documents() if documents is None else documents
    return PreparedContact(
        contact_id=contact_id,
        documents=documents,
        at=documents.add(raw),
        checksum=checksum,
        block_key=block_key(contact_id),
        region=contact_region(contact) if tels else None,
        tels=tuple(tels),
    )


def _syntax(message: str) -> ApiError:
    return ApiError(400, "invalid_json", "The request body is not valid JSON.", {"body": [message]})


# A single JSON value (one contact, one id to delete, any other field) of more bytes than
# value_cap(CONTACTS_MAX_CONTACT_BYTES) is refused as soon as that is known, without parsing it:
# parsing a 30 MiB value whole would cost up to 4 bytes per character for its text (one emoji
# in it is enough) and as much again for the parsed result. 16 times the contact limit (at
# least 1 MiB) leaves room for any indentation a client adds to its largest contact.
MIN_VALUE_CAP = 1 << 20


def value_cap(max_contact_bytes: int) -> int:
    return max(MIN_VALUE_CAP, 16 * max_contact_bytes)


class ValueTooLarge(Exception):
    """A JSON value longer than the reader's cap (see _Reader.value)."""


def _may_be_cut_off(error: json.JSONDecodeError, length: int) -> bool:
    """Whether a decode error of a window's text may only mean the value goes on past the
    window: a string still open, or an error at the very end (a cut literal, number, escape
    or surrogate pair is at most 12 characters). Any other error is in the body whatever
    follows, so reading on (growing the window up to the cap) would change nothing."""
    return error.msg.startswith("Unterminated string") or error.pos >= length - 16


class _Reader:
    """The body's text, decoded a window at a time, read from the connection as the windows
    move on: the body is never whole in memory (a 12 MB upload would otherwise be held
    beside the documents made from it), nor whole as a str (a book with one emoji is stored
    by Python as 4 bytes per character, so the whole body as one str would be ≈ 48 MB).
    Positions are indexes into the current window; every method returns the position to go on
    from, in the window it may have moved to. Windows only move forward, so the bytes before
    the current window are dropped.

    `escapes`: whether any window so far held a \\uD800-\\uDFFF escape (a value is parsed from
    one window, so the check sees every value's escapes before the value is handed on)."""

    WINDOW = 1 << 18  # bytes

    def __init__(self, read: Callable[[int], bytes], cap: int = MIN_VALUE_CAP):
        self._read = read
        self.cap = cap
        self._buffer = bytearray()
        self._buffer_start = 0  # the body offset of _buffer[0]
        self._ended = False
        self.escapes = False
        self._load(0, self.WINDOW)

    def _fill(self, end: int) -> None:
        """Read until the buffer reaches body offset `end` or the body ends."""
        while not self._ended and self._buffer_start + len(self._buffer) < end:
            data = self._read(max(end - self._buffer_start - len(self._buffer), 64 * 1024))
            if data:
                self._buffer += data
            else:
                self._ended = True

    def _load(self, start: int, size: int) -> None:
        del self._buffer[: start - self._buffer_start]
        self._buffer_start = start
        # + 4: room to move the end to a character boundary (a character has up to 4 bytes).
        self._fill(start + size + 4)
        raw, available = self._buffer, len(self._buffer)
        end = min(available, size)
        while 0 < end < available and raw[end] & 0xC0 == 0x80:
            end -= 1  # a UTF-8 continuation byte: the window ends before its character
        while end == 0 < available or (end < available and raw[end] & 0xC0 == 0x80):
            end += 1  # a window smaller than one character: take the whole character
        window = memoryview(raw)[:end]
        try:
            self.text = str(window, "utf-8")  # strictly UTF-8, as json_object()
        except UnicodeDecodeError as exc:
            raise _syntax(str(exc)) from None
        if not self.escapes and _ESCAPED_SURROGATE.search(window):
            self.escapes = True
        window.release()
        self.start, self.bytes = start, end
        self.final = self._ended and end == available

    def _move_to(self, position: int, size: int | None = None) -> int:
        """Start the window at `position`; returns 0, the same place in the new window."""
        start = self.start + len(self.text[:position].encode("utf-8"))
        self._load(start, size or self.WINDOW)
        return 0

    def skip(self, position: int) -> int:
        """The position of the next character that is not JSON whitespace."""
        while True:
            position = _WHITESPACE.match(self.text, position).end()
            if position < len(self.text) or self.final:
                return position
            position = self._move_to(position)

    def char(self, position: int) -> tuple[str, int]:
        """The next non-whitespace character ("" at the end of the body) and its position."""
        position = self.skip(position)
        return self.text[position : position + 1], position

    def value(self, position: int) -> tuple[Any, int]:
        """The JSON value at (or after whitespace from) `position` and the position after it.
        ValueTooLarge when it does not end within `cap` bytes."""
        position = self.skip(position)
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, position)
            except json.JSONDecodeError as exc:
                if self.final or not _may_be_cut_off(exc, len(self.text)):
                    raise _syntax(f"{exc.msg} (char {self.start + exc.pos})") from None
                value, end = None, None
            except (ValueError, RecursionError) as exc:
                raise _syntax(str(exc) or exc.__class__.__name__) from None
            # A value that ends where the window ends may continue in the next bytes
            # ("12" of "123"), and one that failed may be cut off: read on and try again. So
            # may a number followed only by number characters up to the window's end: "1" of
            # "1." + ".5" must read as 1.5.
            if end is not None and (
                self.final
                or (
                    end < len(self.text)
                    and not (
                        type(value) in (int, float, json_numbers.RawNumber)
                        and _NUMBER_CHARACTERS.match(self.text, end).end() == len(self.text)
                    )
                )
            ):
                return value, end
            if position == 0 and self.bytes >= self.cap:
                raise ValueTooLarge()
            # A window that already starts at the value is too small for it: double it (+ 4:
            # the end backs off to a character boundary, and a character has up to 4 bytes).
            size = min(2 * self.bytes, self.cap) + 4 if position == 0 else None
            position = self._move_to(position, size)

    def at_end(self, position: int) -> bool:
        return self.skip(position) == len(self.text) and self.final


def walk_object(
    reader: _Reader,
    array_key: str,
    on_item: Callable[[int, Any], Any],
    on_key: Callable[[], None] = lambda: None,
    other_arrays: Callable[[str], Callable[[int, Any], Any]] = lambda key: _as_is,
) -> tuple[dict, list | None]:
    """Parse the JSON object `reader` reads; the elements of `array_key`'s array are parsed one
    by one and handed to `on_item(index, value)`, whose results are returned in a list (None
    when the key is absent or its value is not an array; the value is then in the dict like
    any other). The dict holds every other key, and `array_key` mapped to [] when it was an
    array; other arrays are read item by item too, each item through `other_arrays(key)`
    (which may refuse an item too many, or keep nothing of an array the schema will refuse
    anyway), so only single values meet the reader's cap (a list of 50,000 ids to delete is
    fine, one 2 MiB id is not: ValidationError naming it).
    Duplicate keys: the last one wins, as with json.loads; `on_key()` is called each time
    `array_key` starts, so the caller can forget what it noted about an earlier one."""
    char, position = reader.char(0)
    if char != "{":
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    fields: dict[str, Any] = {}
    items: list | None = None
    char, position = reader.char(position + 1)
    if char == "}":
        position += 1
    else:
        while True:
            if char != '"':
                raise _syntax("Expecting property name enclosed in double quotes")
            key, position = _capped(reader, position, "body")
            path = key if len(key) <= 64 else "body"
            char, position = reader.char(position)
            if char != ":":
                raise _syntax("Expecting ':' delimiter")
            char, position = reader.char(position + 1)
            if key == array_key:
                on_key()
            if key == array_key and char == "[":
                items, position = _walk_array(reader, position + 1, on_item, path)
                fields[key] = []
            elif char == "[":
                fields[key], position = _walk_array(reader, position + 1, other_arrays(key), path)
                if key == array_key:
                    items = None
            else:
                fields[key], position = _capped(reader, position, path)
                if key == array_key:
                    items = None
            char, position = reader.char(position)
            if char == "}":
                position += 1
                break
            if char != ",":
                raise _syntax("Expecting ',' delimiter")
            char, position = reader.char(position + 1)
    if not reader.at_end(position):
        raise _syntax("Extra data after the JSON object")
    return fields, items


def _as_is(_index: int, value: Any) -> Any:
    return value


def _capped(reader: _Reader, position: int, path: str) -> tuple[Any, int]:
    """reader.value, a value over the reader's cap reported as a validation error at `path`."""
    try:
        return reader.value(position)
    except ValueTooLarge:
        raise ValidationError({path: [f"More than {reader.cap} bytes of JSON."]}) from None


def _walk_array(
    reader: _Reader, position: int, on_item: Callable[[int, Any], Any], path: str
) -> tuple[list, int]:
    results: list = []
    char, position = reader.char(position)
    if char == "]":
        return results, position + 1
    while True:
        value, position = _capped(reader, position, f"{path}.{len(results)}")
        results.append(on_item(len(results), value))
        del value  # the parsed contact is not kept past its preparation
        char, position = reader.char(position)
        if char == "]":
            return results, position + 1
        if char != ",":
            raise _syntax("Expecting ',' delimiter")
        position += 1


def load_upload(
    body: bytes | BinaryIO,
    schema: Schema,
    array_key: str,
    contact_field,
    limit: int,
    too_many: Callable[[str], ApiError],
    plain_text: Callable[[Any], str | None] | None = None,
    cap: int = MIN_VALUE_CAP,
) -> dict:
    """The body of a PATCH (`array_key` "upsert") or PUT ("contacts") as the schema would load
    it, with the contacts as PreparedContacts. `body`: its bytes, or anything with `read(n)`
    (shared.body.RequestBody, read as the parse goes). Raises ApiError (400 syntax, 422 too many) or
    ValidationError (the schema's field messages). `plain_text(contact)`: the fast path, the
    contact's JSON text when it is plainly valid (else None and `contact_field` decides)."""
    reader = _Reader(io.BytesIO(body).read if isinstance(body, bytes) else body.read, cap)
    # What was noted about the contacts array; a later duplicate of its key starts afresh (the
    # last one is the body's, as for json.loads).
    errors: dict[int, Any] = {}
    surrogates = False
    entry_ids: dict[str, str] = {}
    documents = Documents()

    def restart() -> None:
        nonlocal surrogates, documents
        errors.clear()
        surrogates = False
        documents = Documents()

    def prepare(index: int, value: Any) -> PreparedContact | None:
        nonlocal surrogates
        if index >= limit:
            # Refused without reading on, so a body of millions of tiny items costs little
            # (the rest of the body, even if malformed, is not looked at).
            raise too_many(array_key)
        if surrogates or (reader.escapes and _has_surrogates(value)):
            surrogates = True  # the body is refused as a whole: nothing more to prepare
            return None
        text = plain_text(value) if plain_text is not None else None
        if text is None:  # not plainly valid: the schema says why (or that it is valid)
            try:
                value = contact_field.deserialize(value)
            except ValidationError as exc:
                errors[index] = exc.messages
                return None
        return prepare_contact(value, f"{array_key}.{index}", text, entry_ids, documents)

    def other_array(key: str) -> Callable[[int, Any], Any]:
        """Items of another top-level array: kept for the schema's fields (`delete`), up to the
        same limit; of an unknown key (the schema refuses it whatever it holds) only counted."""
        keep = key in schema.fields

        def item(index: int, value: Any) -> Any:
            if index >= limit:
                raise too_many(key)
            return value if keep else None

        return item

    fields, prepared = walk_object(reader, array_key, prepare, restart, other_array)
    if (prepared is not None and surrogates) or (reader.escapes and _has_surrogates(fields)):
        raise _not_unicode()
    messages: dict = {}
    try:
        loaded = schema.load(fields)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        loaded = None
    if prepared is not None and errors:
        merged = messages.setdefault(array_key, {})
        if isinstance(merged, dict):
            merged.update(errors)
        messages = _in_schema_order(messages, schema)
    if not messages and prepared is not None:
        # The schema's own cross-field checks (marshmallow skips them after field errors).
        _mark_duplicates(prepared, array_key, messages)
        if array_key == "upsert":
            _mark_overlap(prepared, loaded.get("delete") or [], messages)
    if messages:
        raise ValidationError(messages)
    loaded[array_key] = prepared if prepared is not None else []
    return loaded


def _in_schema_order(messages: dict, schema: Schema) -> dict:
    """The messages in the order schema.load gives them (its fields as declared, then unknown
    keys), so the `details` of an answer, capped at 100 entries, keep the same ones."""
    declared = [name for name in schema.fields if name in messages]
    return {
        **{name: messages[name] for name in declared},
        **{name: value for name, value in messages.items() if name not in schema.fields},
    }


def _mark_duplicates(prepared: list, array_key: str, messages: dict) -> None:
    seen: set[str] = set()
    message = f"This contactId appears more than once in {array_key}."
    for index, item in enumerate(prepared):
        if item.contact_id in seen:
            messages.setdefault(array_key, {})[index] = {"contactId": [message]}
        seen.add(item.contact_id)


def _mark_overlap(prepared: list, delete_ids: list[str], messages: dict) -> None:
    upserted = {item.contact_id for item in prepared}
    for position, contact_id in enumerate(delete_ids):
        if contact_id in upserted:
            messages.setdefault("delete", {})[position] = [
                "This contactId is both upserted and deleted."
            ]


# Strict UTF-8 decoding leaves surrogates only one way in: a \uD800-\uDFFF escape.
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_surrogates(value: Any) -> bool:
    """ "\ud800" is JSON by the grammar but not Unicode text (RFC 7493 forbids it)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except RecursionError:
        return False  # too deep to be a contact: the depth rule refuses it (422)
    return False


def _not_unicode() -> ApiError:
    """A body with an unpaired surrogate is refused whole (400), before any field is judged,
    as json_object() does."""
    return ApiError(
        400,
        "invalid_json",
        "The request body is not valid Unicode text.",
        {"body": ["Contains an unpaired surrogate (\\ud800-\\udfff escape)."]},
    )

"""Persistence: every SQL statement the API's requests run — accounts, devices, contacts,
checksums, the change log and Smart Contacts — in bulk (a batch of N contacts is a constant
number of statements, never one per contact). The readiness probe's `SELECT 1` (app.py) and
the migrations are the only SQL elsewhere.

Functions run on the request's session; the one commit per request happens in app.py.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg2.extensions import BYTES, register_adapter, register_type
from sqlalchemy import text

from contacts_service import notifications
from contacts_service.extensions import db


def _execute(sql: str, **params):
    return db.session.execute(text(sql), params)


def _pyformat(sql: str) -> str:
    """The same statement with psycopg2's placeholders (`:name` → `%(name)s`), for the raw
    cursors of ReadSnapshot; a `::cast` is left alone."""
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)


class Utf8Text:
    """UTF-8 text (the JSON documents of an upload) sent to PostgreSQL as a string literal
    straight from its bytes. As a str it would be decoded first — up to 4 bytes per character
    when one character is outside the BMP, so a 2 MiB slice of documents with one emoji is an
    8 MiB str — and then encoded again by psycopg2. The connection's client encoding is UTF-8
    (app.init_database)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def getquoted(self) -> bytes:
        # E'' reads backslashes as escapes whatever standard_conforming_strings is, so both are
        # doubled; JSON text holds no NUL byte (json escapes it as \u0000).
        return b"E'" + self.data.replace(b"\\", b"\\\\").replace(b"'", b"''") + b"'"


def register_adapters() -> None:
    """Teach psycopg2 Utf8Text (process-wide, idempotent)."""
    register_adapter(Utf8Text, lambda value: value)


def pg_array(values) -> str:
    """A PostgreSQL array literal ('{"a","b",NULL}') for one bound parameter.

    psycopg2 sends a Python list as ARRAY['a', 'b', ...], one SQL constant per element, which
    PostgreSQL parses and plans element by element; a 50,000-element batch then costs more in
    the parser than in the insert. One literal string, cast to text[] in the statement, does not.
    """
    values = values if isinstance(values, list) else list(values)
    if all(type(value) is int for value in values):
        return "{" + ",".join(map(str, values)) + "}"
    if all(type(value) is str for value in values):
        joined = '","'.join(values)
        # No value holds a quote or a backslash (the usual case: ids, checksums, numbers):
        # nothing to escape, so one join instead of two replaces per element.
        if "\\" not in joined and joined.count('"') == 2 * (len(values) - 1):
            return '{"' + joined + '"}' if values else "{}"
    parts = []
    for value in values:
        if value is None:
            parts.append("NULL")
        else:
            value = str(value)
            parts.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


# --- accounts ---------------------------------------------------------------------------------


def sync_account(cloud_id: str, username: str, numbers: list[str], sip_uri: str | None) -> int:
    """The account's id; its row and verified numbers are rewritten only when they changed.

    A verified number belongs to the account whose introspection showed it last: claiming it
    takes it from any other account of the cloud, and an account whose introspection no longer
    lists a number loses it.
    """
    row = _execute(
        "SELECT id, sip_uri, phone_numbers FROM accounts WHERE cloud_id = :c AND username = :u",
        c=cloud_id,
        u=username,
    ).first()
    if row is not None and row.sip_uri == sip_uri and list(row.phone_numbers) == numbers:
        return row.id
    # Sorted, so concurrent claims of overlapping numbers lock rows in one order (no deadlock).
    numbers_in_order = sorted(numbers)
    account_id = _execute(
        """
        INSERT INTO accounts (cloud_id, username, sip_uri, phone_numbers)
        VALUES (:c, :u, :sip, CAST(:nums AS text[]))
        ON CONFLICT (cloud_id, username) DO UPDATE
        SET sip_uri = excluded.sip_uri, phone_numbers = excluded.phone_numbers, updated_at = now()
        RETURNING id
        """,
        c=cloud_id,
        u=username,
        sip=sip_uri,
        nums=pg_array(numbers),
    ).scalar_one()
    _execute(
        "DELETE FROM account_numbers "
        "WHERE account_id = :a AND NOT (e164 = ANY(CAST(:nums AS text[])))",
        a=account_id,
        nums=pg_array(numbers),
    )
    if numbers:
        _execute(
            """
            INSERT INTO account_numbers (cloud_id, e164, account_id)
            SELECT :c, n, :a FROM unnest(CAST(:nums AS text[])) AS n
            ON CONFLICT (cloud_id, e164) DO UPDATE
            SET account_id = excluded.account_id, updated_at = now()
            WHERE account_numbers.account_id <> excluded.account_id
            """,
            c=cloud_id,
            a=account_id,
            nums=pg_array(numbers_in_order),
        )
    notifications.cloud_changed(cloud_id)  # other accounts' Smart Contacts may differ now
    return account_id


# --- devices ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceRow:
    pk: int
    device_id: str
    name: str | None
    platform: str | None
    revision: int
    contact_count: int
    log_floor: int
    created_at: datetime
    updated_at: datetime


def _device(row) -> DeviceRow | None:
    if row is None:
        return None
    values = row._mapping
    return DeviceRow(**{name: values[name] for name in DeviceRow.__dataclass_fields__})


_DEVICE_COLUMNS = ", ".join(DeviceRow.__dataclass_fields__)
_DEVICES_OF_ACCOUNT = (
    f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE account_id = :a ORDER BY device_id"  # noqa: S608
)
ACCOUNT_ID = "SELECT id FROM accounts WHERE cloud_id = :c AND username = :u"


def list_devices(account_id: int) -> list[DeviceRow]:
    rows = _execute(_DEVICES_OF_ACCOUNT, a=account_id)
    return [_device(row) for row in rows]


_DEVICE_LOCK_NAMESPACE = 0x43534456  # "CSDV"


def lock_account(account_id: int) -> None:
    """Serialise registrations of one account's devices until commit (a transaction-scoped
    advisory lock: nothing outlives the transaction, so it also holds behind PgBouncer)."""
    _execute(
        "SELECT pg_advisory_xact_lock(:ns, CAST(:a AS integer))",
        ns=_DEVICE_LOCK_NAMESPACE,
        a=account_id % 2_147_483_647,
    )


def account_exists(account_id: int) -> bool:
    """Whether the account row is there, locked against deletion (FOR KEY SHARE) until commit,
    so a device inserted for it cannot lose its account before the insert's key check."""
    return (
        _execute("SELECT 1 FROM accounts WHERE id = :a FOR KEY SHARE", a=account_id).scalar()
        is not None
    )


def device_count(account_id: int) -> int:
    return _execute("SELECT count(*) FROM devices WHERE account_id = :a", a=account_id).scalar()


def get_device(account_id: int, device_id: str, lock: bool = False) -> DeviceRow | None:
    """The device of this account; with lock=True the row is locked until commit, which is
    what serialises concurrent writes to one address book."""
    if lock:
        sql = "SELECT * FROM devices WHERE account_id = :a AND device_id = :d FOR UPDATE"
    else:
        sql = "SELECT * FROM devices WHERE account_id = :a AND device_id = :d"
    return _device(_execute(sql, a=account_id, d=device_id).first())


def create_device(
    account_id: int, device_id: str, name: str | None, platform: str | None
) -> DeviceRow | None:
    """Insert the device; None when it already exists (also when a concurrent request won).

    A deleted device of this id gives the new one its log_floor: one past the highest revision
    the deleted book reached, so a `since` that may come from that book is a 410 (both books
    count from 0, so the numbers alone cannot tell them apart). The record is consumed."""
    row = _execute(
        """
        WITH retired AS (
            DELETE FROM retired_devices
            WHERE account_id = :a AND device_id = :d
            RETURNING revision
        )
        INSERT INTO devices (account_id, device_id, name, platform, log_floor)
        SELECT :a, :d, :name, :platform, COALESCE((SELECT revision + 1 FROM retired), 0)
        ON CONFLICT (account_id, device_id) DO NOTHING
        RETURNING *
        """,
        a=account_id,
        d=device_id,
        name=name,
        platform=platform,
    ).first()
    return _device(row)


# Deleted devices remembered per account (the most recent ones): ids that come and go cannot
# grow the table without bound.
RETIRED_DEVICES_KEPT = 1000


def update_device_fields(device_pk: int, fields: dict[str, str | None]) -> DeviceRow:
    """Set the given fields (name and/or platform; null clears one)."""
    row = _execute(
        """
        UPDATE devices
        SET name = CASE WHEN :set_name THEN :name ELSE name END,
            platform = CASE WHEN :set_platform THEN :platform ELSE platform END,
            updated_at = now()
        WHERE pk = :pk
        RETURNING *
        """,
        pk=device_pk,
        set_name="name" in fields,
        name=fields.get("name"),
        set_platform="platform" in fields,
        platform=fields.get("platform"),
    ).first()
    return _device(row)


def delete_device(account_id: int, device_id: str) -> bool:
    """Delete the device with its contacts, numbers and change log. The device row goes first:
    deleting it waits for a write that holds it and makes later writes find no device, so
    no row of the device can be written after its rows are deleted (they have no foreign key
    to cascade, see models.py).

    The highest revision its book reached is kept (retired_devices) for a new registration of
    the same id, see create_device; an account keeps the RETIRED_DEVICES_KEPT most recent."""
    row = _execute(
        "DELETE FROM devices WHERE account_id = :a AND device_id = :d "
        "RETURNING pk, GREATEST(revision, log_floor - 1) AS reached",
        a=account_id,
        d=device_id,
    ).first()
    if row is None:
        return False
    for table in ("contact_numbers", "deleted_contacts", "contacts"):
        _execute(f"DELETE FROM {table} WHERE device_pk = :pk", pk=row.pk)  # noqa: S608 - constants
    if row.reached > 0:  # revision 0 is the same empty book in every device: nothing to tell
        _execute(
            """
            INSERT INTO retired_devices (account_id, device_id, revision)
            VALUES (:a, :d, :reached)
            ON CONFLICT (account_id, device_id) DO UPDATE
            SET revision = GREATEST(retired_devices.revision, excluded.revision),
                retired_at = now()
            """,
            a=account_id,
            d=device_id,
            reached=row.reached,
        )
        _execute(
            """
            DELETE FROM retired_devices
            WHERE account_id = :a AND retired_at < (
                SELECT retired_at FROM retired_devices WHERE account_id = :a
                ORDER BY retired_at DESC OFFSET :kept LIMIT 1
            )
            """,
            a=account_id,
            kept=RETIRED_DEVICES_KEPT - 1,
        )
    return True


def finish_write(
    device_pk: int, revision: int, contact_count: int, log_floor: int | None
) -> DeviceRow:
    row = _execute(
        """
        UPDATE devices
        SET revision = :rev, contact_count = :count, updated_at = now(),
            log_floor = GREATEST(log_floor, COALESCE(CAST(:floor AS bigint), 0))
        WHERE pk = :pk
        RETURNING *
        """,
        pk=device_pk,
        rev=revision,
        count=contact_count,
        floor=log_floor,
    ).first()
    return _device(row)


# --- contacts ---------------------------------------------------------------------------------


def delete_contacts(device_pk: int, contact_ids: Sequence[str]) -> list[str]:
    """Delete these contacts; the ids that existed."""
    if not contact_ids:
        return []
    rows = _execute(
        "DELETE FROM contacts WHERE device_pk = :pk AND contact_id = ANY(CAST(:ids AS text[])) "
        "RETURNING contact_id",
        pk=device_pk,
        ids=pg_array(contact_ids),
    )
    return [row[0] for row in rows]


def delete_contacts_except(device_pk: int, keep_ids: Sequence[str]) -> list[str]:
    """Delete every contact of the device not in keep_ids (full replace); the ids deleted."""
    rows = _execute(
        "DELETE FROM contacts "
        "WHERE device_pk = :pk AND NOT (contact_id = ANY(CAST(:ids AS text[]))) "
        "RETURNING contact_id",
        pk=device_pk,
        ids=pg_array(keep_ids),
    )
    return [row[0] for row in rows]


def stored_checksums(device_pk: int, ids: list[str]) -> dict[str, str]:
    """{contactId: checksum} of those of `ids` the device has."""
    if not ids:
        return {}
    return dict(
        _execute(
            "SELECT contact_id, checksum FROM contacts "
            "WHERE device_pk = :pk AND contact_id = ANY(CAST(:ids AS text[]))",
            pk=device_pk,
            ids=pg_array(ids),
        ).all()
    )


def write_contact_rows(device_pk: int, revision: int, rows: list[tuple], new: bool) -> None:
    """Insert (`new`) or rewrite these contacts: (contact, document) pairs, the contact with
    contact_id, checksum and block_key, the document its UTF-8 JSON text. The caller holds the
    device row's lock (get_device(lock=True)), so no other request writes this book meanwhile
    and which ids exist was known before (stored_checksums): new contacts take a plain INSERT —
    `ON CONFLICT` would cost a speculative insertion per row, ≈ 3 times a plain one (measured
    on 42,000 rows).

    The documents travel as one JSON array, not an array literal: they are JSON already, so
    joining them costs nothing, where a text[] literal would escape every quote in Python and
    unescape it again in PostgreSQL. `json` keeps each element's text as sent, so what is
    stored is byte for byte what the upload reader produced."""
    if not rows:
        return
    _execute(
        _INSERT_CONTACTS if new else _UPDATE_CONTACTS,
        pk=device_pk,
        rev=revision,
        ids=pg_array([c.contact_id for c, _ in rows]),
        docs=Utf8Text(b"[" + b",".join([document for _, document in rows]) + b"]"),
        sums=pg_array([c.checksum for c, _ in rows]),
        keys=pg_array([c.block_key for c, _ in rows]),
    )


# Both read the rows to write from the same columns: ids, checksums and block keys as arrays,
# documents as one JSON array, matched by position.
_INSERT_CONTACTS = """
    INSERT INTO contacts (device_pk, contact_id, document, checksum, block_key, revision)
    SELECT :pk, u.contact_id, d.document, u.checksum, u.block_key, :rev
    FROM unnest(CAST(:ids AS text[]), CAST(:sums AS text[]), CAST(:keys AS integer[]))
         WITH ORDINALITY AS u(contact_id, checksum, block_key, n)
    JOIN json_array_elements(CAST(:docs AS json)) WITH ORDINALITY AS d(document, n) USING (n)
"""
_UPDATE_CONTACTS = """
    UPDATE contacts AS c
    SET document = r.document, checksum = r.checksum, block_key = r.block_key, revision = :rev
    FROM (
        SELECT u.contact_id, d.document, u.checksum, u.block_key
        FROM unnest(CAST(:ids AS text[]), CAST(:sums AS text[]), CAST(:keys AS integer[]))
             WITH ORDINALITY AS u(contact_id, checksum, block_key, n)
        JOIN json_array_elements(CAST(:docs AS json)) WITH ORDINALITY AS d(document, n) USING (n)
    ) AS r
    WHERE c.device_pk = :pk AND c.contact_id = r.contact_id
"""


def delete_contact_numbers(device_pk: int, contact_ids: list[str]) -> None:
    """Drop the numbers of these contacts (changed or deleted ones)."""
    if contact_ids:
        _execute(
            "DELETE FROM contact_numbers "
            "WHERE device_pk = :pk AND contact_id = ANY(CAST(:ids AS text[]))",
            pk=device_pk,
            ids=pg_array(contact_ids),
        )


def insert_contact_numbers(
    device_pk: int,
    ids: list[str],
    positions: list[int],
    entry_ids: list[str | None],
    numbers: list[str],
) -> None:
    """Insert the given (contact, position, entry, e164) rows, as columns."""
    if ids:
        _execute(
            """
            INSERT INTO contact_numbers (device_pk, contact_id, position, entry_id, e164)
            SELECT :pk, u.contact_id, u.position, u.entry_id, u.e164
            FROM unnest(CAST(:ids AS text[]), CAST(:positions AS smallint[]),
                        CAST(:entry_ids AS text[]), CAST(:numbers AS text[]))
                 AS u(contact_id, position, entry_id, e164)
            """,
            pk=device_pk,
            ids=pg_array(ids),
            positions=pg_array(positions),
            entry_ids=pg_array(entry_ids),
            numbers=pg_array(numbers),
        )


def record_deletions(device_pk: int, revision: int, deleted_ids: list[str]) -> None:
    if deleted_ids:
        _execute(
            """
            INSERT INTO deleted_contacts (device_pk, contact_id, revision)
            SELECT :pk, unnest(CAST(:ids AS text[])), :rev
            ON CONFLICT (device_pk, contact_id) DO UPDATE
            SET revision = excluded.revision, deleted_at = now()
            """,
            pk=device_pk,
            rev=revision,
            ids=pg_array(deleted_ids),
        )


def forget_deletions(device_pk: int, readded_ids: list[str]) -> None:
    """A contact deleted and added again is no longer reported as deleted."""
    if readded_ids:
        _execute(
            "DELETE FROM deleted_contacts "
            "WHERE device_pk = :pk AND contact_id = ANY(CAST(:ids AS text[]))",
            pk=device_pk,
            ids=pg_array(readded_ids),
        )


# Tombstones the change log no longer keeps; pruned by writes, honoured by reads before that.
_EXPIRED_TOMBSTONES = (
    "FROM deleted_contacts "
    "WHERE device_pk = :pk AND deleted_at < now() - make_interval(days => :days)"
)


def prune_deletions(device_pk: int, keep_days: int) -> int | None:
    """Forget tombstones older than keep_days; the newest revision forgotten (or None)."""
    return _execute(
        f"WITH gone AS (DELETE {_EXPIRED_TOMBSTONES} RETURNING revision) "  # noqa: S608
        "SELECT max(revision) FROM gone",
        pk=device_pk,
        days=keep_days,
    ).scalar()


def newest_expired_deletion(device_pk: int, keep_days: int) -> int | None:
    """The newest revision among tombstones older than keep_days (not yet pruned), if any."""
    return _execute(
        f"SELECT max(revision) {_EXPIRED_TOMBSTONES}",
        pk=device_pk,
        days=keep_days,
    ).scalar()


# --- checksums and reads ----------------------------------------------------------------------


def contact_checksums(device_pk: int) -> list[tuple[str, str]]:
    """(contactId, checksum) of every contact of the device, by contactId."""
    rows = _execute(
        "SELECT contact_id, checksum FROM contacts WHERE device_pk = :pk ORDER BY contact_id",
        pk=device_pk,
    )
    return [(row[0], row[1]) for row in rows]


def block_checksums(device_pk: int, bits: int) -> list[tuple[int, str]]:
    """(block number, block checksum) of every non-empty block, computed by PostgreSQL."""
    rows = _execute(
        """
        SELECT block_key >> :shift AS block,
               encode(sha256(convert_to(string_agg(contact_id || chr(9) || checksum || chr(10),
                                                   '' ORDER BY contact_id COLLATE "C"),
                                        'UTF8')), 'hex')
        FROM contacts WHERE device_pk = :pk
        GROUP BY 1 ORDER BY 1
        """,
        pk=device_pk,
        shift=16 - bits,
    )
    return [(row[0], row[1]) for row in rows]


def block_listing(device_pk: int, low: int, high: int) -> list[tuple[str, str]]:
    rows = _execute(
        """
        SELECT contact_id, checksum FROM contacts
        WHERE device_pk = :pk AND block_key BETWEEN :low AND :high
        ORDER BY contact_id
        """,
        pk=device_pk,
        low=low,
        high=high,
    )
    return [(row[0], row[1]) for row in rows]


def _text_as_bytes(cursor):
    """The cursor returns text columns as their UTF-8 bytes, not str: the documents are sent
    as bytes anyway, and as a str one character outside the BMP makes a whole document take 4
    bytes per character (a 64 KiB contact with one emoji: 256 KiB)."""
    register_type(BYTES, cursor)
    return cursor


def documents(device_pk: int, since: int | None = None) -> list[bytes]:
    """The stored JSON text of the device's contacts (changed after `since`, if given), as
    UTF-8 bytes, on the request's transaction."""
    sql = "SELECT CAST(document AS text) FROM contacts WHERE device_pk = %(pk)s"
    if since is not None:
        sql += " AND revision > %(since)s"
    connection = db.session.connection().connection  # the request's, in its transaction
    with _text_as_bytes(connection.cursor()) as cursor:
        cursor.execute(sql + " ORDER BY contact_id", {"pk": device_pk, "since": since})
        return [row[0] for row in cursor.fetchall()]


def deleted_since(device_pk: int, since: int) -> list[str]:
    rows = _execute(
        "SELECT contact_id FROM deleted_contacts WHERE device_pk = :pk AND revision > :since "
        "ORDER BY contact_id",
        pk=device_pk,
        since=since,
    )
    return [row[0] for row in rows]


# --- Smart Contacts (the policy is in address_book.py) -----------------------------------------

_GRANT_LOCK_NAMESPACE = 0x5C0


# Numbers per statement when recording the seen ones: a 32 MiB upload of 500-entry contacts
# holds ≈ 930,000 numbers, and one array literal of them (with its set, sorted copy and
# psycopg2's quoted copies) took the worker from 295 to 404 MiB.
SEEN_SLICE = 10_000


def record_seen_numbers(account_id: int, numbers: Sequence[str], per_day: int) -> None:
    """Remember numbers seen in the account's books (duplicates allowed); numbers it already
    had stay as they were. New numbers are granted at once, as far as the 24-hour allowance
    reaches, when none are waiting (else they wait behind the older ones): the same numbers, in
    the same order, that the next read's grant_oldest_pending would grant, without updating
    them all again there.

    Under the account's grant lock (held to commit; the only other writer of these rows is
    granting), so the numbers it lacks are known before inserting: a plain INSERT of those,
    where `ON CONFLICT DO NOTHING` cost a speculative insertion per row — 800 ms of a
    20,000-contact upload's 42,000 numbers. In ascending slices, each told how much allowance
    the slices before it left: together they grant what one statement over all would."""
    if not numbers:
        return
    lock_account_grants(account_id)
    budget = 0 if has_pending_numbers(account_id) else per_day - granted_in_last_day(account_id)
    budget = max(budget, 0)
    ordered = sorted(numbers)
    for start in range(0, len(ordered), SEEN_SLICE):
        # Unique within the slice (one statement cannot see its own rows); a number ending
        # one slice and starting the next is found by the next one's NOT EXISTS.
        part = list(dict.fromkeys(ordered[start : start + SEEN_SLICE]))
        # The account's rows are looked at only within the slice's range (E.164 numbers are
        # "+" and digits, which sort alike here and in PostgreSQL): without it, every slice
        # hashed all the rows the slices before it had added, and 930,000 numbers took 42 s
        # instead of 9.
        budget -= _execute(
            """
            WITH added AS (
                INSERT INTO smart_seen_numbers (account_id, e164, granted_at)
                SELECT :a, n, CASE WHEN row_number() OVER (ORDER BY n) <= :budget
                                   THEN now() END
                FROM unnest(CAST(:nums AS text[])) AS n
                WHERE NOT EXISTS (
                    SELECT 1 FROM smart_seen_numbers s
                    WHERE s.account_id = :a AND s.e164 = n AND s.e164 BETWEEN :low AND :high
                )
                RETURNING granted_at
            )
            SELECT count(granted_at) FROM added
            """,
            a=account_id,
            budget=budget,
            nums=pg_array(part),
            low=part[0],
            high=part[-1],
        ).scalar()


def has_pending_numbers(account_id: int) -> bool:
    """Whether any number seen in the account's books still waits to be granted."""
    return _execute(
        "SELECT EXISTS (SELECT 1 FROM smart_seen_numbers "
        "WHERE account_id = :a AND granted_at IS NULL)",
        a=account_id,
    ).scalar()


def granted_in_last_day(account_id: int) -> int:
    """How many of the account's numbers were granted in the last 24 hours."""
    return _execute(
        "SELECT count(*) FROM smart_seen_numbers "
        "WHERE account_id = :a AND granted_at > now() - interval '24 hours'",
        a=account_id,
    ).scalar()


def lock_account_grants(account_id: int) -> None:
    """Serialise granting for one account until commit (a transaction-scoped advisory lock)."""
    _execute(
        "SELECT pg_advisory_xact_lock(:ns, CAST(:a AS integer))",
        ns=_GRANT_LOCK_NAMESPACE,
        a=account_id % 2_147_483_647,
    )


def grant_oldest_pending(account_id: int, budget: int) -> None:
    """Grant up to `budget` waiting numbers, oldest first."""
    _execute(
        """
        WITH chosen AS (
            SELECT e164 FROM smart_seen_numbers
            WHERE account_id = :a AND granted_at IS NULL
            ORDER BY first_seen_at, e164
            LIMIT :budget
        )
        UPDATE smart_seen_numbers AS s SET granted_at = now()
        FROM chosen WHERE s.account_id = :a AND s.e164 = chosen.e164
        """,
        a=account_id,
        budget=budget,
    )


# The caller's granted numbers that are verified numbers of other accounts of the cloud (never
# its own), per tel entry of the device, in contactId and entry order. Run on the request's
# session (smart_matches) or inside a DocumentStream's snapshot.
_SMART_MATCHES = """
    SELECT cn.contact_id, cn.entry_id, cn.e164, a.username, a.sip_uri
    FROM contact_numbers AS cn
    JOIN smart_seen_numbers AS s
      ON s.account_id = :me AND s.e164 = cn.e164 AND s.granted_at IS NOT NULL
    JOIN account_numbers AS an
      ON an.cloud_id = :cloud AND an.e164 = cn.e164 AND an.account_id <> :me
    JOIN accounts AS a ON a.id = an.account_id
    WHERE cn.device_pk = :pk AND NOT (cn.e164 = ANY(CAST(:own AS text[])))
    ORDER BY cn.contact_id, cn.position
"""
# The same with psycopg2's placeholders, for a raw connection.
_SMART_MATCHES_RAW = _pyformat(_SMART_MATCHES)

SmartMatch = tuple[str, str | None, str, str, str | None]


@dataclass(frozen=True)
class SmartQuery:
    """Whose Smart Contacts: the caller's account, Cloud ID and own verified numbers."""

    account_id: int
    cloud_id: str
    own_numbers: tuple[str, ...]

    def params(self, device_pk: int) -> dict:
        return {
            "pk": device_pk,
            "me": self.account_id,
            "cloud": self.cloud_id,
            "own": pg_array(self.own_numbers),
        }


def smart_matches(device_pk: int, query: SmartQuery) -> list[SmartMatch]:
    """(contactId, entryId, e164, username, sip_uri) of each tel entry of the device whose
    granted number is a verified number of another account of the cloud."""
    return [tuple(row) for row in _execute(_SMART_MATCHES, **query.params(device_pk))]


# --- streamed reads ---------------------------------------------------------------------------


class ReadSnapshot:
    """A REPEATABLE READ, READ ONLY transaction on a pooled connection of its own, for answers
    streamed after the request's own transaction has ended (a full fetch, an account export):
    everything read through it agrees, and documents come from server-side cursors in batches,
    so a book or an account of any size is never in this process at once.

    A client that stops reading must not hold the snapshot open for long: PostgreSQL ends a
    transaction left idle past max(statement timeout, 60 s), and the stream then fails rather
    than waiting. `close()` rolls back and gives the connection back; it is safe to call twice.

    Batches are bounded in bytes as well as rows: the first fetch is FIRST_BATCH rows, and each
    next one as many rows as the last batch's average size fits in BATCH_BYTES (at most
    BATCH). A book of 64 KiB contacts is then read about 1 MiB at a time rather than 64 MiB,
    which bounds the worker's memory, and a slow client needs only that much read between two
    fetches before the idle snapshot's deadline.
    """

    BATCH = 1000
    FIRST_BATCH = 64
    BATCH_BYTES = 1 << 20

    def __init__(self, connection):
        self._connection = connection
        self._cursors = 0

    @classmethod
    def open(cls, statement_timeout_seconds: float) -> ReadSnapshot:
        connection = db.engine.raw_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
                    "SET LOCAL statement_timeout = %s;"
                    "SET LOCAL idle_in_transaction_session_timeout = %s",
                    (
                        int(statement_timeout_seconds * 1000),
                        int(max(statement_timeout_seconds, 60) * 1000),
                    ),
                )
        except BaseException:
            _discard(connection)
            raise
        return cls(connection)

    def _run(self, fetch, sql: str, params):
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(sql, params)
                return fetch(cursor)
        except BaseException:
            self.close(broken=True)
            raise

    def one(self, sql: str, params) -> tuple | None:
        return self._run(lambda cursor: cursor.fetchone(), sql, params)

    def all(self, sql: str, params) -> list[tuple]:
        return self._run(lambda cursor: cursor.fetchall(), sql, params)

    def account_id(self, cloud_id: str, username: str) -> int | None:
        row = self.one(_pyformat(ACCOUNT_ID), {"c": cloud_id, "u": username})
        return row[0] if row else None

    def devices(self, account_id: int) -> list[DeviceRow]:
        """The account's devices, as list_devices gives them."""
        rows = self.all(_pyformat(_DEVICES_OF_ACCOUNT), {"a": account_id})
        return [DeviceRow(*row) for row in rows]

    def documents(self, device_pk: int, *, last: bool = False):
        """The device's stored documents in contactId order, as lists of UTF-8 bytes. The
        cursor is declared now (so a failure is raised before any answer starts); rows are
        fetched as the result is iterated. `last`: nothing more will be read, so the snapshot
        ends as soon as the last row is fetched, before that batch is handed on (a client
        that then stops reading holds no connection)."""
        self._cursors += 1
        try:
            cursor = _text_as_bytes(self._connection.cursor(name=f"documents{self._cursors}"))
            cursor.itersize = self.BATCH
            cursor.execute(
                "SELECT CAST(document AS text) FROM contacts WHERE device_pk = %s "
                "ORDER BY contact_id",
                (device_pk,),
            )
        except BaseException:
            self.close(broken=True)
            raise
        return self._batches(cursor, last)

    def _batches(self, cursor, last: bool):
        count = self.FIRST_BATCH
        while self._connection is not None:
            try:
                rows = cursor.fetchmany(count)
            except BaseException:
                self.close(broken=True)
                raise
            done = len(rows) < count
            if done:
                if last:
                    self.close()
                else:
                    cursor.close()
            if rows:
                batch = [row[0] for row in rows]
                size = sum(map(len, batch))
                count = max(1, min(self.BATCH, len(batch) * self.BATCH_BYTES // max(size, 1)))
                yield batch
            if done:
                return

    def close(self, broken: bool = False) -> None:
        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        if broken:
            _discard(connection)
            return
        try:
            connection.rollback()  # read only: nothing to keep; also closes the cursors
            connection.close()  # back to the pool
        except Exception:
            _discard(connection)


class DocumentStream:
    """A device's full book for a streamed answer: its documents in batches (ReadSnapshot)
    with the device's `revision` and Smart Contacts matches (`smart`, as smart_matches gives
    them) read in the same snapshot, so the answer's revision, Smart Contacts and ETag always
    match the documents. The request's session must have committed first
    (address_book.open_book): a request never holds two connections, so concurrent big fetches
    cannot take the whole pool between them.

    `open()` returns None when the device is gone. Iterating yields lists of documents (UTF-8
    bytes); the snapshot ends as soon as the last row is read (before it is sent), or at
    `close()` (also when the stream was never iterated: the client went away, or the request
    was a HEAD or a 304).
    """

    BATCH = ReadSnapshot.BATCH
    FIRST_BATCH = ReadSnapshot.FIRST_BATCH
    BATCH_BYTES = ReadSnapshot.BATCH_BYTES

    def __init__(self, snapshot: ReadSnapshot, batches, revision: int, smart: list[SmartMatch]):
        self._snapshot, self._batches = snapshot, batches
        self.revision, self.smart = revision, smart

    @classmethod
    def open(
        cls, device_pk: int, smart: SmartQuery, statement_timeout_seconds: float
    ) -> DocumentStream | None:
        snapshot = ReadSnapshot.open(statement_timeout_seconds)
        row = snapshot.one("SELECT revision FROM devices WHERE pk = %s", (device_pk,))
        if row is None:
            snapshot.close()
            return None
        # Smart Contacts from the same snapshot as the documents, so they always agree.
        matches = [
            tuple(match) for match in snapshot.all(_SMART_MATCHES_RAW, smart.params(device_pk))
        ]
        batches = snapshot.documents(device_pk, last=True)
        return cls(snapshot, batches, row[0], matches)

    def __iter__(self):
        return self._batches

    def close(self) -> None:
        self._snapshot.close()


def _discard(connection) -> None:
    """Drop a connection in an unknown state: the pool replaces it."""
    with contextlib.suppress(Exception):
        connection.invalidate()
    with contextlib.suppress(Exception):
        connection.close()

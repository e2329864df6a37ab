"""Persistence: every SQL statement the API's requests run — accounts, devices, contacts,
checksums, the change log and Smart Contacts — in bulk (a batch of N contacts is a constant
number of statements, never one per contact). The readiness probe's `SELECT 1` (app.py) and
the migrations are the only SQL elsewhere.

Functions run on the request's session; the one commit per request happens in app.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from contacts_service import notifications
from contacts_service.extensions import db


def _execute(sql: str, **params):
    return db.session.execute(text(sql), params)


def pg_array(values) -> str:
    """A PostgreSQL array literal ('{"a","b",NULL}') for one bound parameter.

    psycopg2 sends a Python list as ARRAY['a', 'b', ...], one SQL constant per element, which
    PostgreSQL parses and plans element by element; a 50,000-element batch then costs more in
    the parser than in the insert. One literal string, cast to text[] in the statement, does not.
    """
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


def list_devices(account_id: int) -> list[DeviceRow]:
    rows = _execute("SELECT * FROM devices WHERE account_id = :a ORDER BY device_id", a=account_id)
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
    """Insert the device; None when it already exists (also when a concurrent request won)."""
    row = _execute(
        """
        INSERT INTO devices (account_id, device_id, name, platform)
        VALUES (:a, :d, :name, :platform)
        ON CONFLICT (account_id, device_id) DO NOTHING
        RETURNING *
        """,
        a=account_id,
        d=device_id,
        name=name,
        platform=platform,
    ).first()
    return _device(row)


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
    """Delete the device; its contacts, numbers and change log go with it (ON DELETE CASCADE)."""
    result = _execute(
        "DELETE FROM devices WHERE account_id = :a AND device_id = :d", a=account_id, d=device_id
    )
    return result.rowcount > 0


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


def upsert_contacts(
    device_pk: int,
    revision: int,
    ids: list[str],
    documents: list[str],
    checksums: list[str],
    block_keys: list[int],
) -> tuple[list[str], set[str]]:
    """Insert new contacts and rewrite those whose checksum differs; unchanged ones are left
    alone. Returns (changed ids, the subset that was newly inserted)."""
    if not ids:
        return [], set()
    rows = _execute(
        """
        INSERT INTO contacts AS c (device_pk, contact_id, document, checksum, block_key, revision)
        SELECT :pk, u.contact_id, CAST(u.document AS json), u.checksum, u.block_key, :rev
        FROM unnest(CAST(:ids AS text[]), CAST(:docs AS text[]), CAST(:sums AS text[]),
                    CAST(:keys AS integer[])) AS u(contact_id, document, checksum, block_key)
        ON CONFLICT (device_pk, contact_id) DO UPDATE
        SET document = excluded.document, checksum = excluded.checksum,
            block_key = excluded.block_key, revision = excluded.revision
        WHERE c.checksum IS DISTINCT FROM excluded.checksum
        RETURNING c.contact_id, (c.xmax = 0) AS inserted
        """,
        pk=device_pk,
        rev=revision,
        ids=pg_array(ids),
        docs=pg_array(documents),
        sums=pg_array(checksums),
        keys=pg_array(block_keys),
    )
    changed, inserted = [], set()
    for contact_id, was_inserted in rows:
        changed.append(contact_id)
        if was_inserted:
            inserted.add(contact_id)
    return changed, inserted


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


def documents(device_pk: int, since: int | None = None) -> list[str]:
    """The stored JSON text of the device's contacts (changed after `since`, if given)."""
    if since is None:
        rows = _execute(
            "SELECT CAST(document AS text) FROM contacts WHERE device_pk = :pk ORDER BY contact_id",
            pk=device_pk,
        )
    else:
        rows = _execute(
            "SELECT CAST(document AS text) FROM contacts WHERE device_pk = :pk "
            "AND revision > :since ORDER BY contact_id",
            pk=device_pk,
            since=since,
        )
    return [row[0] for row in rows]


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


def record_seen_numbers(account_id: int, numbers: set[str]) -> None:
    """Remember numbers seen in the account's books; numbers it already had stay as they were."""
    if numbers:
        _execute(
            """
            INSERT INTO smart_seen_numbers (account_id, e164)
            SELECT :a, unnest(CAST(:nums AS text[]))
            ON CONFLICT (account_id, e164) DO NOTHING
            """,
            a=account_id,
            nums=pg_array(sorted(numbers)),
        )


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


def smart_matches(
    device_pk: int, account_id: int, cloud_id: str, own_numbers: list[str]
) -> list[tuple[str, str | None, str, str, str | None]]:
    """(contactId, entryId, e164, username, sip_uri) of each tel entry of the device whose
    granted number is a verified number of another account of the cloud (never the caller's
    own numbers), in contactId and entry order."""
    rows = _execute(
        """
        SELECT cn.contact_id, cn.entry_id, cn.e164, a.username, a.sip_uri
        FROM contact_numbers AS cn
        JOIN smart_seen_numbers AS s
          ON s.account_id = :me AND s.e164 = cn.e164 AND s.granted_at IS NOT NULL
        JOIN account_numbers AS an
          ON an.cloud_id = :cloud AND an.e164 = cn.e164 AND an.account_id <> :me
        JOIN accounts AS a ON a.id = an.account_id
        WHERE cn.device_pk = :pk AND NOT (cn.e164 = ANY(CAST(:own AS text[])))
        ORDER BY cn.contact_id, cn.position
        """,
        pk=device_pk,
        me=account_id,
        cloud=cloud_id,
        own=pg_array(own_numbers),
    )
    return [tuple(row) for row in rows]


# --- streamed reads ---------------------------------------------------------------------------


class DocumentStream:
    """The stored JSON text of a device's contacts, read from a server-side cursor in batches
    (BATCH rows per round trip), in a REPEATABLE READ snapshot on a pooled connection of its
    own: the request's session commits before a streamed body is sent, and the whole book is
    never in this process at once.

    `open()` returns None when the device's revision in the snapshot is not `revision` (a
    write committed since the request read it): the caller then answers from the session.
    Iterating yields lists of documents; `close()` gives the connection back (also when the
    stream was never iterated, e.g. the client went away or the request was a HEAD).
    """

    BATCH = 1000

    def __init__(self, connection, cursor):
        self._connection, self._cursor = connection, cursor

    @classmethod
    def open(
        cls, device_pk: int, revision: int, statement_timeout_seconds: float
    ) -> DocumentStream | None:
        connection = db.engine.raw_connection()
        try:
            plain = connection.cursor()
            # A client that stops reading must not hold the snapshot open for long: PostgreSQL
            # ends a transaction left idle, and this stream then fails instead of waiting.
            plain.execute(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
                "SET LOCAL statement_timeout = %s;"
                "SET LOCAL idle_in_transaction_session_timeout = %s;"
                "SELECT revision FROM devices WHERE pk = %s",
                (
                    int(statement_timeout_seconds * 1000),
                    int(max(statement_timeout_seconds, 60) * 1000),
                    device_pk,
                ),
            )
            row = plain.fetchone()
            if row is None or row[0] != revision:
                connection.rollback()
                connection.close()
                return None
            cursor = connection.cursor(name="book")  # a server-side cursor (DECLARE)
            cursor.itersize = cls.BATCH
            cursor.execute(
                "SELECT CAST(document AS text) FROM contacts WHERE device_pk = %s "
                "ORDER BY contact_id",
                (device_pk,),
            )
        except BaseException:
            _discard(connection)
            raise
        return cls(connection, cursor)

    def __iter__(self):
        while True:
            rows = self._cursor.fetchmany(self.BATCH)
            if not rows:
                return
            yield [row[0] for row in rows]

    def close(self) -> None:
        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        try:
            connection.rollback()  # read only: nothing to keep; also closes the cursor
            connection.close()  # back to the pool
        except Exception:
            _discard(connection)


def _discard(connection) -> None:
    """Drop a connection in an unknown state: the pool replaces it."""
    with contextlib.suppress(Exception):
        connection.invalidate()
    with contextlib.suppress(Exception):
        connection.close()

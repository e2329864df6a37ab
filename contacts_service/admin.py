"""Operator actions on the Contacts database: erase or export one account, and a Cloud ID's
figures. Used by the admin routes (contacts_service/views/admin.py) and `python -m
contacts_service accounts` (contacts_service/admin_cli.py); they run on the Flask-SQLAlchemy
session of the current app context.

- erase: the account row and then its device rows are locked, then every row of the account
  goes, table by table, in one transaction: contact_numbers, deleted_contacts (tombstones),
  contacts, devices, smart_seen_numbers (enumeration records), account_numbers, accounts. The
  caller commits (all or nothing). The tables' ON DELETE CASCADE would do most of it; naming
  each table keeps the erase complete if a foreign key ever changes.
- export: devices as GET /v1/devices shows them, each with its contacts spliced in as stored
  (the JSON text PostgreSQL keeps, never re-encoded), read in one REPEATABLE READ snapshot;
  or one device's contacts as vCard 4.0 (contacts_service/vcard.py).
- stats: accounts, devices and contacts of a Cloud ID from the accounts and devices rows (the
  per-device contact_count; no contact is read), cached per process for STATS_CACHE_SECONDS.
- top_clouds: the same figures for every Cloud ID in one grouped query, for the per-Cloud-ID
  gauges of /metrics (`cloud_gauges`; shared/metrics.py CloudGauges refreshes them at most
  once a minute per worker process, never per scrape).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict

from sqlalchemy import text

from contacts_service import json_numbers, notifications, repository
from contacts_service.extensions import db
from shared.metrics import CloudFigures, CloudGauges

STATS_CACHE_SECONDS = 30.0  # API.md allows figures up to 60 s old
STATS_CACHE_ENTRIES = 1024


class NoSuchAccount(LookupError):
    """The service never saw this account (or it was erased)."""


class NoSuchDevice(LookupError):
    """The account has no device with this id."""


def _execute(sql: str, **params):
    return db.session.execute(text(sql), params)


def find_account(cloud_id: str, username: str, lock: bool = False) -> int:
    """The account's id (its row locked FOR NO KEY UPDATE with `lock`); NoSuchAccount when
    there is none (also when a concurrent erase just deleted it)."""
    sql = repository.ACCOUNT_ID
    lock_clause = " FOR NO KEY UPDATE" if lock else ""
    account_id = _execute(sql + lock_clause, c=cloud_id, u=username).scalar()
    if account_id is None:
        raise NoSuchAccount(cloud_id, username)
    return account_id


def erase(cloud_id: str, username: str) -> dict[str, int]:
    """Delete everything of the account; {"devices": n, "contacts": m} it had. Uncommitted.

    Locks in the order requests of the account take them: the account row (FOR NO KEY UPDATE,
    as the introspection sync's UPDATE does; it does not block the foreign-key checks of a
    write already under way), then its device rows, then the deletes."""
    account_id = find_account(cloud_id, username, lock=True)
    _execute("SELECT pk FROM devices WHERE account_id = :a ORDER BY pk FOR UPDATE", a=account_id)
    notifications.account_erasing(account_id, cloud_id)  # its streams end at commit
    by_device = "WHERE device_pk IN (SELECT pk FROM devices WHERE account_id = :a)"
    _execute(f"DELETE FROM contact_numbers {by_device}", a=account_id)  # noqa: S608
    _execute(f"DELETE FROM deleted_contacts {by_device}", a=account_id)  # noqa: S608
    contacts = _execute(f"DELETE FROM contacts {by_device}", a=account_id).rowcount  # noqa: S608
    devices = _execute("DELETE FROM devices WHERE account_id = :a", a=account_id).rowcount
    _execute("DELETE FROM retired_devices WHERE account_id = :a", a=account_id)
    _execute("DELETE FROM smart_seen_numbers WHERE account_id = :a", a=account_id)
    _execute("DELETE FROM account_numbers WHERE account_id = :a", a=account_id)
    _execute("DELETE FROM accounts WHERE id = :a", a=account_id)
    return {"devices": devices, "contacts": contacts}


def _snapshot() -> None:
    """Read what follows from one snapshot (when the transaction has not started yet)."""
    if not db.session().in_transaction():
        _execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


class JsonExport:
    """The account's devices (or the one named) with their contacts as stored, as JSON, in
    pieces of bytes: read from one snapshot on a connection of its own
    (repository.ReadSnapshot), a device's contacts in batches, so an account of any size (up
    to 100 devices of 50,000 contacts) is never in memory at once — built whole, a 277 MiB
    export took a worker past 3 GiB.

    `open()` raises NoSuchAccount or NoSuchDevice before anything is sent. Iterate to get the
    pieces; the snapshot ends with the last one, or at `close()` (the HTTP server calls it,
    also for a client that went away)."""

    def __init__(self, snapshot: repository.ReadSnapshot, head: bytes, devices: list):
        self._snapshot, self._head, self._devices = snapshot, head, devices

    @classmethod
    def open(
        cls,
        cloud_id: str,
        username: str,
        device_id: str | None,
        statement_timeout_seconds: float,
    ) -> JsonExport:
        snapshot = repository.ReadSnapshot.open(statement_timeout_seconds)
        try:
            account_id = snapshot.account_id(cloud_id, username)
            if account_id is None:
                raise NoSuchAccount(cloud_id, username)
            devices = snapshot.devices(account_id)
            if device_id is not None:
                devices = [device for device in devices if device.device_id == device_id]
                if not devices:
                    raise NoSuchDevice(device_id)
        except BaseException:
            snapshot.close()
            raise
        head = f'{{"cloud_id":{_dumps(cloud_id)},"username":{_dumps(username)},"devices":['
        return cls(snapshot, head.encode(), devices)

    def __iter__(self):
        from contacts_service.views.devices import device_json

        try:
            yield self._head
            for index, device in enumerate(self._devices):
                head = _dumps(device_json(device))[:-1] + ',"contacts":['
                yield (b"," if index else b"") + head.encode()
                last = index == len(self._devices) - 1
                separator = b""
                for batch in self._snapshot.documents(device.pk, last=last):
                    yield separator + b",".join(batch)
                    separator = b","
                yield b"]}"
            yield b"]}"
        finally:
            self.close()

    def close(self) -> None:
        self._snapshot.close()


def export_vcard(cloud_id: str, username: str, device_id: str) -> str:
    """One vCard 4.0 per contact of the account's device, in contactId order."""
    _snapshot()
    device = repository.get_device(find_account(cloud_id, username), device_id)
    if device is None:
        raise NoSuchDevice(device_id)
    # vobject (with dateutil, pytz, six) only where an export needs it: ≈ 2 MiB per process.
    from contacts_service.vcard import serialize

    return serialize(json_numbers.loads(document) for document in repository.documents(device.pk))


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def cloud_stats(cloud_id: str) -> dict:
    """Accounts, devices and contacts of the Cloud ID, from the accounts and devices rows."""
    row = _execute(
        """
        SELECT count(DISTINCT a.id), count(d.pk), COALESCE(sum(d.contact_count), 0)
        FROM accounts AS a LEFT JOIN devices AS d ON d.account_id = a.id
        WHERE a.cloud_id = :c
        """,
        c=cloud_id,
    ).one()
    return {"cloud_id": cloud_id, "accounts": row[0], "devices": row[1], "contacts": int(row[2])}


class StatsCache:
    """cloud_stats() per Cloud ID, kept `seconds` in this process (the oldest entries leave
    beyond `entries` Cloud IDs)."""

    def __init__(
        self, seconds: float = STATS_CACHE_SECONDS, entries: int = STATS_CACHE_ENTRIES, clock=None
    ):
        self.seconds = seconds
        self.entries = entries
        self.clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._figures: OrderedDict[str, tuple[float, dict]] = OrderedDict()

    def get(self, cloud_id: str) -> dict:
        now = self.clock()
        with self._lock:
            cached = self._figures.get(cloud_id)
        if cached is not None and now - cached[0] < self.seconds:
            return cached[1]
        figures = cloud_stats(cloud_id)
        with self._lock:
            self._figures[cloud_id] = (now, figures)
            self._figures.move_to_end(cloud_id)
            while len(self._figures) > self.entries:
                self._figures.popitem(last=False)
        return figures


CLOUD_FIGURES = {
    "accounts": "Accounts of the Cloud ID the service has seen.",
    "devices": "Devices registered by the Cloud ID's accounts.",
    "contacts": "Contacts stored on the Cloud ID's devices.",
}


def top_clouds(limit: int) -> CloudFigures:
    """cloud_stats() of the `limit` Cloud IDs with most accounts, and how many Cloud IDs there
    are: one grouped query over the accounts and devices rows, on its own connection (a scrape
    is no request's unit of work)."""
    with db.engine.connect() as connection:
        rows = connection.execute(
            text(
                """
                SELECT a.cloud_id, count(DISTINCT a.id), count(d.pk),
                       COALESCE(sum(d.contact_count), 0), count(*) OVER ()
                FROM accounts AS a LEFT JOIN devices AS d ON d.account_id = a.id
                GROUP BY a.cloud_id
                ORDER BY 2 DESC, 1
                LIMIT :n
                """
            ),
            {"n": limit},
        ).all()
    top = [
        (cloud_id, {"accounts": accounts, "devices": devices, "contacts": int(contacts)})
        for cloud_id, accounts, devices, contacts, _ in rows
    ]
    return CloudFigures(clouds=rows[0][4] if rows else 0, top=top)


def cloud_gauges(**options) -> CloudGauges:
    """The per-Cloud-ID gauges of /metrics: contacts_cloud_accounts, contacts_cloud_devices and
    contacts_cloud_contacts{cloud_id} (with contacts_cloud_ids and
    contacts_cloud_stats_age_seconds)."""
    return CloudGauges("contacts", CLOUD_FIGURES, top_clouds, **options)

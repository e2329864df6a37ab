"""The address book behind the views: prepare uploads and apply them in bulk under the device
lock, list checksums, read books back as the stored JSON text (with their ETag), and Smart
Contacts with its enumeration guard. The SQL it runs is in repository.py."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import Future
from dataclasses import dataclass, field

from contacts_service import notifications, repository
from contacts_service.checksums import (
    block_id,
    block_key_range,
)
from contacts_service.extensions import db
from contacts_service.helper_threads import helper_threads
from contacts_service.repository import DeviceRow
from contacts_service.schemas import valid_device_id
from contacts_service.settings import Settings
from contacts_service.upload import PreparedContact
from shared.errors import ApiError
from shared.phone import to_e164


@dataclass(frozen=True)
class Caller:
    """The authenticated account of the current request."""

    account_id: int
    cloud_id: str
    username: str
    phone_numbers: tuple[str, ...]
    sip_uri: str | None
    region: str | None


def not_found() -> ApiError:
    return ApiError(404, "not_found", "No such device.")


# Rows per bulk statement: each statement's parameters are one array literal per column, and
# the literal is copied a few times on its way to the socket (escaping, quoting, encoding), so
# a slice of at most WRITE_SLICE rows and about WRITE_SLICE_BYTES of documents bounds that
# text (a 32 MiB upload in one literal took a worker to 512 MiB) with few round trips.
WRITE_SLICE = 2000
WRITE_SLICE_BYTES = 2 * 1024 * 1024


def _slices(contacts: list[PreparedContact]):
    """(start, end) of consecutive slices within both limits (at least one contact each)."""
    start, size = 0, 0
    for index, contact in enumerate(contacts):
        if index > start and (
            index - start >= WRITE_SLICE or size + contact.size > WRITE_SLICE_BYTES
        ):
            yield start, index
            start, size = index, 0
        size += contact.size
    if start < len(contacts):
        yield start, len(contacts)


@dataclass
class NumberColumns:
    """The E.164 numbers of tel entries as four columns, one bulk insert each slice: a tuple
    per number would cost ≈ 4 times the memory for a 50,000-number upload."""

    contact_ids: list[str] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    entry_ids: list[str | None] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)

    @classmethod
    def joined(cls, parts: list[NumberColumns]) -> NumberColumns:
        if len(parts) == 1:
            return parts[0]
        whole = cls()
        for part in parts:
            whole.contact_ids += part.contact_ids
            whole.positions += part.positions
            whole.entry_ids += part.entry_ids
            whole.numbers += part.numbers
        return whole


def _numbers(contacts: list[PreparedContact], fallback_region: str | None) -> NumberColumns:
    """The tel entries of these contacts that have an E.164 form."""
    columns = NumberColumns()
    for contact in contacts:
        if not contact.tels:
            continue
        region = contact.region or fallback_region or None
        for position, entry_id, uri in contact.tel_entries():
            number = to_e164(uri, region)
            if number:
                columns.contact_ids.append(contact.contact_id)
                columns.positions.append(position)
                columns.entry_ids.append(entry_id)
                columns.numbers.append(number)
    return columns


# Phone numbers are normalised in a helper thread while the request's own thread waits for
# PostgreSQL to store the documents (psycopg2 lets go of the GIL while it waits), so the two
# overlap: on a 2-CPU machine a 1,000-contact PATCH spent ≈ 50 ms on each, one after the other.
# Slices smaller than this are done inline (handing them over would cost more than it saves).
OVERLAP_MIN_CONTACTS = 200


def _numbers_beside(contacts: list[PreparedContact], fallback_region: str | None) -> Future:
    """A future of _numbers(contacts, fallback_region), done at once for small slices."""
    if len(contacts) >= OVERLAP_MIN_CONTACTS:
        return helper_threads().submit(_numbers, contacts, fallback_region)
    done: Future = Future()
    done.set_result(_numbers(contacts, fallback_region))
    return done


def write_contacts(
    caller: Caller,
    device_id: str,
    contacts: list[PreparedContact],
    delete_ids: list[str],
    replace: bool,
    settings: Settings,
) -> dict:
    """Apply one PATCH (upsert + delete) or PUT (replace) to a device's book, all or nothing.

    The device row is locked first, so concurrent writes to one book queue up and each gets its
    own revision; the revision grows by one only when something changed. The contacts arrive
    validated and serialised (contacts_service/upload.py); an unknown device is a 404 before
    any SQL write and before phone-number normalisation.
    """
    if len(contacts) > settings.max_contacts_per_device:
        raise _too_many(settings)
    device = (
        repository.get_device(caller.account_id, device_id, lock=True)
        if valid_device_id(device_id)
        else None
    )
    if device is None:
        raise not_found()
    pk, revision = device.pk, device.revision + 1
    ids = [contact.contact_id for contact in contacts]
    if replace:
        deleted = repository.delete_contacts_except(pk, ids)
    else:
        deleted = repository.delete_contacts(pk, delete_ids)
    region = caller.region or settings.default_region
    changed: list[str] = []
    inserted: set[str] = set()
    numbers_of_slices = []
    for start, end in _slices(contacts):
        part = contacts[start:end]
        # The texts are read (decompressed) before this slice's phone numbers start in a helper
        # thread: a decompression beside that thread would wait for the GIL (upload.Documents).
        rows = [(contact, contact.document) for contact in part]
        stored = repository.stored_checksums(pk, [c.contact_id for c in part])
        new = [(c, text) for c, text in rows if c.contact_id not in stored]
        rewritten = [
            (c, text) for c, text in rows if stored.get(c.contact_id, c.checksum) != c.checksum
        ]
        del rows
        numbers_of_slices.append(_numbers_beside([c for c, _ in new + rewritten], region))
        repository.write_contact_rows(pk, revision, new, new=True)
        repository.write_contact_rows(pk, revision, rewritten, new=False)
        changed += [c.contact_id for c, _ in new]
        changed += [c.contact_id for c, _ in rewritten]
        inserted.update(c.contact_id for c, _ in new)
    numbers = NumberColumns.joined([future.result() for future in numbers_of_slices])
    contact_count = device.contact_count + len(inserted) - len(deleted)
    if changed or deleted:
        if contact_count > settings.max_contacts_per_device:
            raise _too_many(settings)
        repository.delete_contact_numbers(
            pk, [cid for cid in changed if cid not in inserted] + deleted
        )
        for start in range(0, len(numbers.numbers), WRITE_SLICE):
            end = start + WRITE_SLICE
            repository.insert_contact_numbers(
                pk,
                numbers.contact_ids[start:end],
                numbers.positions[start:end],
                numbers.entry_ids[start:end],
                numbers.numbers[start:end],
            )
        repository.record_seen_numbers(
            caller.account_id, numbers.numbers, settings.smart_new_numbers_per_day
        )
        repository.record_deletions(pk, revision, deleted)
        repository.forget_deletions(pk, sorted(inserted))
        floor = repository.prune_deletions(pk, settings.change_log_days)
        device = repository.finish_write(pk, revision, contact_count, floor)
        notifications.device_changed(pk, device.revision)
    return {
        "revision": device.revision,
        "upserted": len(changed),
        "unchanged": len(contacts) - len(changed),
        "deleted": len(deleted),
        "contact_count": device.contact_count,
    }


def _too_many(settings: Settings) -> ApiError:
    return ApiError(
        422,
        "too_many_contacts",
        f"A device holds at most {settings.max_contacts_per_device} contacts.",
        {"contact_count": [f"At most {settings.max_contacts_per_device}."]},
    )


def device_or_404(caller: Caller, device_id: str) -> DeviceRow:
    if not valid_device_id(device_id):
        raise not_found()  # it cannot exist
    device = repository.get_device(caller.account_id, device_id)
    if device is None:
        raise not_found()
    return device


def checksum_listing(caller: Caller, device_id: str, bits: int | None, block: str | None) -> dict:
    """Per-contact checksums, block checksums, or the per-contact checksums of one block."""
    device = device_or_404(caller, device_id)
    if bits is None:
        listing = repository.contact_checksums(device.pk)
        return {"revision": device.revision, "checksums": dict(listing)}
    if block is not None:
        low, high = block_key_range(int(block, 16), bits)
        listing = repository.block_listing(device.pk, low, high)
        # The same shape as the whole listing, narrowed to one block.
        return {"revision": device.revision, "checksums": dict(listing)}
    shift = 16 - bits
    blocks = {
        block_id(number << shift, bits): digest
        for number, digest in repository.block_checksums(device.pk, bits)
    }
    return {"revision": device.revision, "bits": bits, "blocks": blocks}


def contacts_etag(device: DeviceRow, since: int | None, smart_text: str) -> str:
    digest = hashlib.sha256(
        f"{device.pk}:{device.revision}:{since}:{smart_text}".encode()
    ).hexdigest()
    return f'"{digest[:32]}"'


def check_since(device: DeviceRow, since: int, settings: Settings) -> None:
    """410 when the change log no longer reaches back to `since`, when `since` may belong to a
    deleted device of the same id (log_floor starts past that book's revisions, see
    repository.create_device), or when it is from the future.

    Tombstones are pruned by writes; one that has aged out but is not pruned yet still counts
    as gone, so the answer does not depend on whether the device was written to lately.
    """
    floor = max(
        device.log_floor,
        repository.newest_expired_deletion(device.pk, settings.change_log_days) or 0,
    )
    if since > device.revision:
        raise ApiError(
            410,
            "revision_expired",
            "That revision is newer than this device's; read all contacts again.",
            {"since": [f"Current revision: {device.revision}."]},
        )
    # since=0 is always answerable: every book is empty at revision 0 (a deleted one of the same
    # id too), and deletions before it are nothing to a client that holds nothing.
    if 0 < since < floor:
        raise ApiError(
            410,
            "revision_expired",
            "That revision is older than the change log keeps; read all contacts again.",
            {"since": [f"Oldest revision still answerable: {floor}."]},
        )


class StreamedBook:
    """A full book as the body of a streamed answer: the same bytes render_book() gives, in
    the batches DocumentStream reads (at most BATCH contacts, about BATCH_BYTES). An iterable
    with close(), which the WSGI server calls whether or not the body was read, so the
    database connection always goes back."""

    def __init__(self, revision: int, smart_text: str, documents: repository.DocumentStream):
        self._head = f'{{"revision":{revision},"contacts":['.encode()
        self._tail = ('],"smart":' + smart_text + "}").encode()
        self._documents = documents

    def __iter__(self):
        yield self._head
        separator = b""
        for batch in self._documents:
            yield separator + b",".join(batch)
            separator = b","
        yield self._tail

    def close(self) -> None:
        self._documents.close()


# Books smaller than this are rendered whole: a snapshot and a cursor cost more round trips
# than the memory they would save, and a small body can still be sent with a Content-Length.
STREAM_FROM = 500


def open_book(
    caller: Caller, device: DeviceRow, settings: Settings
) -> repository.DocumentStream | None:
    """The full book's documents and Smart Contacts matches (no `since`) from one snapshot of
    their own; None when the device is gone. Grant what waits first (grant_pending), and end
    the request's transaction before (see DocumentStream). The stream's `revision` may be newer
    than `device.revision`: the answer uses it."""
    return repository.DocumentStream.open(
        device.pk, smart_query(caller), settings.db_statement_timeout_seconds
    )


def device_in_snapshot(caller: Caller, device_id: str, settings: Settings) -> DeviceRow:
    """Grant the Smart Contacts numbers that wait, end the request's transaction (keeping
    that and the sign-in's account sync), and start a REPEATABLE READ, READ ONLY one: the
    device as it is in that snapshot, for reads that must agree with each other. psycopg2
    opens it with `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`: no extra statement."""
    grant_pending(caller.account_id, settings.smart_new_numbers_per_day)
    db.session.commit()
    db.session.connection(
        execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    )
    return device_or_404(caller, device_id)


def snapshot_smart(caller: Caller, device: DeviceRow) -> dict[str, list[dict]]:
    """Smart Contacts in the snapshot of device_in_snapshot (granting happened before it)."""
    return smart_map(repository.smart_matches(device.pk, smart_query(caller)))


def render_book(device: DeviceRow, since: int | None, smart_text: str) -> bytes:
    """The response body: stored documents are spliced in verbatim, never re-parsed, with one
    copy of them (a single join, not a join of joins)."""
    documents = repository.documents(device.pk, since)
    pieces = [f'{{"revision":{device.revision},"contacts":['.encode()]
    for index, document in enumerate(documents):
        if index:
            pieces.append(b",")
        pieces.append(document)
    pieces.append(b"]")
    if since is not None:
        deleted = repository.deleted_since(device.pk, since)
        pieces.append(b',"deleted":' + json.dumps(deleted, ensure_ascii=False).encode())
    pieces.append(b',"smart":' + smart_text.encode() + b"}")
    return b"".join(pieces)


def smart_text(smart_map: dict) -> str:
    return json.dumps(smart_map, ensure_ascii=False, separators=(",", ":"))


# --- Smart Contacts ---------------------------------------------------------------------------
#
# Which tel entries of a device are verified numbers of other accounts of the caller's Cloud
# ID, behind the enumeration guard. Matching is one indexed join (repository.smart_matches):
# contact_numbers (the device's E.164 numbers) → smart_seen_numbers (only numbers the guard let
# through) → account_numbers (cloud_id, e164) → accounts.
#
# The guard: every distinct number that appears in an account's books is recorded once in
# smart_seen_numbers (write_contacts). At most `per_day` of them are let through (granted) in
# any 24 hours, oldest first; the rest wait for the window. So uploading a whole numbering plan
# reveals nothing beyond the daily allowance, and numbers the account already had never count
# again. A write grants its new numbers itself when nothing is waiting (the usual case), so the
# next read has nothing to grant; reads grant what waited.


def smart_query(caller: Caller) -> repository.SmartQuery:
    return repository.SmartQuery(caller.account_id, caller.cloud_id, tuple(caller.phone_numbers))


def smart_contacts(caller: Caller, device: DeviceRow, settings: Settings) -> dict[str, list[dict]]:
    """contactId → [{entryId, number, username, sip_uri}] for the device's matching entries."""
    grant_pending(caller.account_id, settings.smart_new_numbers_per_day)
    return smart_map(repository.smart_matches(device.pk, smart_query(caller)))


def smart_map(rows: list[repository.SmartMatch]) -> dict[str, list[dict]]:
    smart: dict[str, list[dict]] = {}
    for contact_id, entry_id, number, username, sip_uri in rows:
        smart.setdefault(contact_id, []).append(
            {"entryId": entry_id, "number": number, "username": username, "sip_uri": sip_uri}
        )
    return smart


def grant_pending(account_id: int, per_day: int) -> None:
    """Let waiting numbers through, oldest first, as far as the 24-hour allowance reaches."""
    if not repository.has_pending_numbers(account_id):
        return
    if per_day - repository.granted_in_last_day(account_id) <= 0:
        return
    # Two requests of one account granting at once must not both spend the same allowance:
    # take the account's lock, then look again.
    repository.lock_account_grants(account_id)
    budget = per_day - repository.granted_in_last_day(account_id)
    if budget > 0:
        repository.grant_oldest_pending(account_id, budget)

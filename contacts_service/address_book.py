"""The address book behind the views: prepare uploads and apply them in bulk under the device
lock, list checksums, read books back as the stored JSON text (with their ETag), and Smart
Contacts with its enumeration guard. The SQL it runs is in repository.py."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from contacts_service import repository
from contacts_service.checksums import (
    block_id,
    block_key,
    block_key_range,
    contact_checksum,
)
from contacts_service.repository import DeviceRow
from contacts_service.schemas import valid_device_id
from contacts_service.settings import Settings
from shared.errors import ApiError
from shared.phone import normalise_region, to_e164


@dataclass(frozen=True)
class Caller:
    """The authenticated account of the current request."""

    account_id: int
    cloud_id: str
    username: str
    phone_numbers: tuple[str, ...]
    sip_uri: str | None
    region: str | None


@dataclass
class PreparedBatch:
    """Uploaded contacts as column arrays, ready for one bulk statement each."""

    ids: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    checksums: list[str] = field(default_factory=list)
    block_keys: list[int] = field(default_factory=list)
    # tel entries with an E.164 form: (contactId, position in contactEntries, entryId, e164)
    numbers: list[tuple[str, int, str | None, str]] = field(default_factory=list)


def not_found() -> ApiError:
    return ApiError(404, "not_found", "No such device.")


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


def prepare(contacts: list[dict], fallback_region: str | None, path: str) -> PreparedBatch:
    """Serialise each validated contact once: stored text, checksum, block key, numbers.

    A contact without a checksum gets the computed one appended as its last key, so it is read
    back with it; everything else keeps the key order and text it was uploaded with.
    """
    batch = PreparedBatch()
    for position, contact in enumerate(contacts):
        try:
            _prepare_one(batch, contact, fallback_region)
        except UnicodeEncodeError:
            # json.loads accepts unpaired surrogates ("\ud800"); they are not Unicode text.
            raise ApiError(
                400,
                "invalid_json",
                "The request body contains text that is not valid Unicode.",
                {f"{path}.{position}": ["Contains an unpaired surrogate."]},
            ) from None
    return batch


def _prepare_one(batch: PreparedBatch, contact: dict, fallback_region: str | None) -> None:
    if "checksum" in contact:
        document, checksum = contact, contact["checksum"]
    else:
        checksum = contact_checksum(contact)
        document = {**contact, "checksum": checksum}
    raw = json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    raw.encode("utf-8")  # raises UnicodeEncodeError on unpaired surrogates (see prepare())
    contact_id = contact["contactId"]
    key = block_key(contact_id)
    region = None
    for index, entry in enumerate(contact.get("contactEntries") or ()):
        if entry.get("type") != "tel":
            continue
        if region is None:
            region = contact_region(contact) or fallback_region or ""
        number = to_e164(entry["uri"], region or None)
        if number:
            batch.numbers.append((contact_id, index, entry.get("entryId"), number))
    batch.ids.append(contact_id)
    batch.documents.append(raw)
    batch.checksums.append(checksum)
    batch.block_keys.append(key)


def write_contacts(
    caller: Caller,
    device_id: str,
    contacts: list[dict],
    delete_ids: list[str],
    replace: bool,
    settings: Settings,
) -> dict:
    """Apply one PATCH (upsert + delete) or PUT (replace) to a device's book, all or nothing.

    The device row is locked first, so concurrent writes to one book queue up and each gets its
    own revision; the revision grows by one only when something changed. An unknown device is a
    404 before any work on the upload (serialising, checksums, number normalisation).
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
    path = "contacts" if replace else "upsert"
    batch = prepare(contacts, caller.region or settings.default_region, path)
    pk, revision = device.pk, device.revision + 1
    if replace:
        deleted = repository.delete_contacts_except(pk, batch.ids)
    else:
        deleted = repository.delete_contacts(pk, delete_ids)
    changed, inserted = repository.upsert_contacts(
        pk, revision, batch.ids, batch.documents, batch.checksums, batch.block_keys
    )
    contact_count = device.contact_count + len(inserted) - len(deleted)
    if changed or deleted:
        if contact_count > settings.max_contacts_per_device:
            raise _too_many(settings)
        changed_set = set(changed)
        numbers = [row for row in batch.numbers if row[0] in changed_set]
        repository.replace_contact_numbers(
            pk,
            [cid for cid in changed if cid not in inserted] + deleted,
            [row[0] for row in numbers],
            [row[1] for row in numbers],
            [row[2] for row in numbers],
            [row[3] for row in numbers],
        )
        repository.record_seen_numbers(caller.account_id, {row[3] for row in numbers})
        repository.record_deletions(pk, revision, deleted)
        repository.forget_deletions(pk, sorted(inserted))
        floor = repository.prune_deletions(pk, settings.change_log_days)
        device = repository.finish_write(pk, revision, contact_count, floor)
    return {
        "revision": device.revision,
        "upserted": len(changed),
        "unchanged": len(batch.ids) - len(changed),
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
    """410 when the change log no longer reaches back to `since` (or it is from the future,
    e.g. a device deleted and registered again).

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
    if since < floor:
        raise ApiError(
            410,
            "revision_expired",
            "That revision is older than the change log keeps; read all contacts again.",
            {"since": [f"Oldest revision still answerable: {floor}."]},
        )


def render_book(device: DeviceRow, since: int | None, smart_text: str) -> str:
    """The response body as text: stored documents are spliced in verbatim, never re-parsed."""
    documents = repository.documents(device.pk, since)
    parts = [f'{{"revision":{device.revision},"contacts":[', ",".join(documents), "]"]
    if since is not None:
        deleted = repository.deleted_since(device.pk, since)
        parts.append(',"deleted":' + json.dumps(deleted, ensure_ascii=False))
    parts.append(',"smart":' + smart_text + "}")
    return "".join(parts)


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
# again.


def smart_contacts(caller: Caller, device: DeviceRow, settings: Settings) -> dict[str, list[dict]]:
    """contactId → [{entryId, number, username, sip_uri}] for the device's matching entries."""
    grant_pending(caller.account_id, settings.smart_new_numbers_per_day)
    rows = repository.smart_matches(
        device.pk, caller.account_id, caller.cloud_id, list(caller.phone_numbers)
    )
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

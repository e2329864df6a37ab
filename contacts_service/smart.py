"""Smart Contacts: which tel entries of a device are verified numbers of other accounts of the
caller's Cloud ID, behind the enumeration guard.

Matching is one indexed join: contact_numbers (the device's E.164 numbers) → smart_seen_numbers
(only numbers the guard let through) → account_numbers (cloud_id, e164) → accounts.

The guard: every distinct number that appears in an account's books is recorded once in
smart_seen_numbers. At most `per_day` of them are let through (granted) in any 24 hours, oldest
first; the rest wait for the window. So uploading a whole numbering plan reveals nothing beyond
the daily allowance, and numbers the account already had never count again.
"""

from __future__ import annotations

from sqlalchemy import text

from contacts_service.extensions import db
from contacts_service.repository import pg_array

_GRANT_LOCK_NAMESPACE = 0x5C0


def record_numbers(account_id: int, numbers: set[str]) -> None:
    """Remember numbers seen in the account's books; numbers it already had stay as they were."""
    if numbers:
        db.session.execute(
            text(
                """
                INSERT INTO smart_seen_numbers (account_id, e164)
                SELECT :a, unnest(CAST(:nums AS text[]))
                ON CONFLICT (account_id, e164) DO NOTHING
                """
            ),
            {"a": account_id, "nums": pg_array(sorted(numbers))},
        )


def _budget(account_id: int, per_day: int) -> int:
    """How many more numbers may be granted now (the allowance minus the last 24 hours')."""
    granted = db.session.execute(
        text(
            "SELECT count(*) FROM smart_seen_numbers "
            "WHERE account_id = :a AND granted_at > now() - interval '24 hours'"
        ),
        {"a": account_id},
    ).scalar()
    return per_day - granted


def grant_pending(account_id: int, per_day: int) -> None:
    """Let waiting numbers through, oldest first, as far as the 24-hour allowance reaches."""
    pending = db.session.execute(
        text(
            "SELECT EXISTS (SELECT 1 FROM smart_seen_numbers "
            "WHERE account_id = :a AND granted_at IS NULL)"
        ),
        {"a": account_id},
    ).scalar()
    if not pending or _budget(account_id, per_day) <= 0:
        return
    # Two requests of one account granting at once must not both spend the same allowance:
    # take the account's lock, then look again.
    db.session.execute(
        text("SELECT pg_advisory_xact_lock(:ns, CAST(:a AS integer))"),
        {"ns": _GRANT_LOCK_NAMESPACE, "a": account_id % 2_147_483_647},
    )
    budget = _budget(account_id, per_day)
    if budget <= 0:
        return
    db.session.execute(
        text(
            """
            WITH chosen AS (
                SELECT e164 FROM smart_seen_numbers
                WHERE account_id = :a AND granted_at IS NULL
                ORDER BY first_seen_at, e164
                LIMIT :budget
            )
            UPDATE smart_seen_numbers AS s SET granted_at = now()
            FROM chosen WHERE s.account_id = :a AND s.e164 = chosen.e164
            """
        ),
        {"a": account_id, "budget": budget},
    )


def matches(
    device_pk: int, account_id: int, cloud_id: str, own_numbers: list[str], per_day: int
) -> dict[str, list[dict]]:
    """contactId → [{entryId, number, username, sip_uri}] for the device's matching entries."""
    grant_pending(account_id, per_day)
    rows = db.session.execute(
        text(
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
            """
        ),
        {"pk": device_pk, "me": account_id, "cloud": cloud_id, "own": pg_array(own_numbers)},
    )
    smart: dict[str, list[dict]] = {}
    for contact_id, entry_id, number, username, sip_uri in rows:
        smart.setdefault(contact_id, []).append(
            {"entryId": entry_id, "number": number, "username": username, "sip_uri": sip_uri}
        )
    return smart

"""The PostgreSQL schema, designed for the queries the API makes (see docs/contacts.md).

- accounts / account_numbers: who holds which verified number, learned from introspection.
  account_numbers is keyed by (cloud_id, e164) so a Smart Contacts match is one index probe and a
  number belongs to exactly one account of a cloud (the latest introspection wins).
- devices: one address book each, keyed by (account, device_id); the row is the lock that
  serialises writes to the book, and carries the revision and the contact count.
- contacts: keyed by (device, contactId). `document` is PostgreSQL `json` (not `jsonb`) because
  json keeps the stored text verbatim: key order and `\\u0000` escapes survive (jsonb reorders
  keys and rejects `\\u0000`), which is the "what a client uploads is what it reads back" rule.
  Nothing queries inside the document (numbers live in contact_numbers), so jsonb would buy
  nothing; reads splice the text into the response without parsing it.
- deleted_contacts: the change log, folded per contact. A contact's own `revision` says when it
  last changed, so "changed since r" is a range scan on (device, revision); a deletion leaves a
  tombstone with the deleting revision. Tombstones older than CONTACTS_CHANGE_LOG_DAYS are
  pruned and devices.log_floor remembers the newest pruned revision (older `since` → 410).
- retired_devices: the highest revision a deleted device reached, consumed when its id is
  registered again (the new device's log_floor starts past it, so a `since` that belongs to the
  deleted book → 410 rather than the new book's changes), the 1,000 most recent per account
  (migration 0004).
- contact_numbers: the E.164 form of every tel entry, for the Smart Contacts join.
  E.164 columns are `text` (migration 0002): possible numbers reach 18 characters
  (+49123456789012345), and the code bounds what it parses (shared.phone).
- smart_seen_numbers: every number an account's books ever contained, with the time it was let
  through the enumeration guard (granted_at NULL = still waiting for the 24-hour window).

Foreign keys: the four tables an upload writes row by row (contacts, contact_numbers,
deleted_contacts, smart_seen_numbers) have none (migration 0003). PostgreSQL checks a foreign
key with a trigger per inserted row, and those checks were ≈ 45 % of the database time of an
upload (≈ 60 of 130 ms per 1,000 contacts). They are written only by a request that holds
their device row locked (FOR UPDATE, so the device cannot be deleted meanwhile), and deleted
explicitly with their device (repository.delete_device) or account (admin.erase) in the same
transaction, after taking the same lock; tests check that nothing is left behind, also when
writes and deletes race.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)

from contacts_service.extensions import db


def _now():
    return Column(DateTime(timezone=True), nullable=False, server_default=func.now())


class Account(db.Model):
    __tablename__ = "accounts"
    id = Column(BigInteger, primary_key=True)
    cloud_id = Column(String(64), nullable=False)
    username = Column(String(128), nullable=False)
    sip_uri = Column(Text, nullable=True)
    phone_numbers = Column(ARRAY(Text), nullable=False, server_default=text("'{}'"))
    created_at = _now()
    updated_at = _now()
    __table_args__ = (UniqueConstraint("cloud_id", "username", name="uq_accounts_cloud_user"),)


class AccountNumber(db.Model):
    __tablename__ = "account_numbers"
    cloud_id = Column(String(64), nullable=False)
    e164 = Column(Text, nullable=False)
    account_id = Column(BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)
    updated_at = _now()
    __table_args__ = (
        PrimaryKeyConstraint("cloud_id", "e164", name="pk_account_numbers"),
        Index("ix_account_numbers_account", "account_id"),
    )


class Device(db.Model):
    __tablename__ = "devices"
    pk = Column(BigInteger, primary_key=True)
    account_id = Column(BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)
    device_id = Column(String(128), nullable=False)
    name = Column(Text, nullable=True)
    platform = Column(Text, nullable=True)
    revision = Column(BigInteger, nullable=False, server_default=text("0"))
    contact_count = Column(Integer, nullable=False, server_default=text("0"))
    log_floor = Column(BigInteger, nullable=False, server_default=text("0"))
    created_at = _now()
    updated_at = _now()
    __table_args__ = (
        UniqueConstraint("account_id", "device_id", name="uq_devices_account_device"),
    )


class RetiredDevice(db.Model):
    __tablename__ = "retired_devices"
    account_id = Column(BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)
    device_id = Column(String(128), nullable=False)
    revision = Column(BigInteger, nullable=False)
    retired_at = _now()
    __table_args__ = (PrimaryKeyConstraint("account_id", "device_id", name="pk_retired_devices"),)


class Contact(db.Model):
    __tablename__ = "contacts"
    device_pk = Column(BigInteger, nullable=False)  # devices.pk (no foreign key: see above)
    contact_id = Column(String(256), nullable=False)
    document = Column(JSON(none_as_null=True), nullable=False)
    checksum = Column(Text, nullable=False)
    block_key = Column(Integer, nullable=False)
    revision = Column(BigInteger, nullable=False)
    __table_args__ = (
        PrimaryKeyConstraint("device_pk", "contact_id", name="pk_contacts"),
        Index("ix_contacts_device_revision", "device_pk", "revision"),
        Index("ix_contacts_device_block", "device_pk", "block_key"),
    )


class DeletedContact(db.Model):
    __tablename__ = "deleted_contacts"
    device_pk = Column(BigInteger, nullable=False)  # devices.pk
    contact_id = Column(String(256), nullable=False)
    revision = Column(BigInteger, nullable=False)
    deleted_at = _now()
    __table_args__ = (
        PrimaryKeyConstraint("device_pk", "contact_id", name="pk_deleted_contacts"),
        Index("ix_deleted_contacts_device_revision", "device_pk", "revision"),
        Index("ix_deleted_contacts_device_deleted_at", "device_pk", "deleted_at"),
    )


class ContactNumber(db.Model):
    __tablename__ = "contact_numbers"
    device_pk = Column(BigInteger, nullable=False)  # devices.pk
    contact_id = Column(String(256), nullable=False)
    position = Column(SmallInteger, nullable=False)
    entry_id = Column(Text, nullable=True)
    e164 = Column(Text, nullable=False)
    __table_args__ = (PrimaryKeyConstraint("device_pk", "contact_id", "position", name="pk_cn"),)


class SmartSeenNumber(db.Model):
    __tablename__ = "smart_seen_numbers"
    account_id = Column(BigInteger, nullable=False)  # accounts.id
    e164 = Column(Text, nullable=False)
    first_seen_at = _now()
    granted_at = Column(DateTime(timezone=True), nullable=True)
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "e164", name="pk_smart_seen_numbers"),
        Index("ix_smart_seen_numbers_granted", "account_id", "granted_at"),
    )

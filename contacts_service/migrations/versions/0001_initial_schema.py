"""Initial schema: accounts, account_numbers, devices, contacts, deleted_contacts,
contact_numbers, smart_seen_numbers (see contacts_service/models.py for the design).

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("cloud_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("sip_uri", sa.Text(), nullable=True),
        sa.Column(
            "phone_numbers", sa.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cloud_id", "username", name="uq_accounts_cloud_user"),
    )
    op.create_table(
        "account_numbers",
        sa.Column("cloud_id", sa.String(length=64), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cloud_id", "e164", name="pk_account_numbers"),
    )
    op.create_index("ix_account_numbers_account", "account_numbers", ["account_id"], unique=False)
    op.create_table(
        "devices",
        sa.Column("pk", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("platform", sa.Text(), nullable=True),
        sa.Column("revision", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("contact_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("log_floor", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("account_id", "device_id", name="uq_devices_account_device"),
    )
    op.create_table(
        "smart_seen_numbers",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "e164", name="pk_smart_seen_numbers"),
    )
    op.create_index(
        "ix_smart_seen_numbers_granted",
        "smart_seen_numbers",
        ["account_id", "granted_at"],
        unique=False,
    )
    op.create_table(
        "contact_numbers",
        sa.Column("device_pk", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.String(length=256), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("entry_id", sa.Text(), nullable=True),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["device_pk"], ["devices.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_pk", "contact_id", "position", name="pk_cn"),
    )
    op.create_table(
        "contacts",
        sa.Column("device_pk", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.String(length=256), nullable=False),
        sa.Column("document", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("checksum", sa.Text(), nullable=False),
        sa.Column("block_key", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["device_pk"], ["devices.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_pk", "contact_id", name="pk_contacts"),
    )
    op.create_index(
        "ix_contacts_device_block", "contacts", ["device_pk", "block_key"], unique=False
    )
    op.create_index(
        "ix_contacts_device_revision", "contacts", ["device_pk", "revision"], unique=False
    )
    op.create_table(
        "deleted_contacts",
        sa.Column("device_pk", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.String(length=256), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column(
            "deleted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["device_pk"], ["devices.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_pk", "contact_id", name="pk_deleted_contacts"),
    )
    op.create_index(
        "ix_deleted_contacts_device_deleted_at",
        "deleted_contacts",
        ["device_pk", "deleted_at"],
        unique=False,
    )
    op.create_index(
        "ix_deleted_contacts_device_revision",
        "deleted_contacts",
        ["device_pk", "revision"],
        unique=False,
    )


def downgrade():
    op.drop_index("ix_deleted_contacts_device_revision", table_name="deleted_contacts")
    op.drop_index("ix_deleted_contacts_device_deleted_at", table_name="deleted_contacts")
    op.drop_table("deleted_contacts")
    op.drop_index("ix_contacts_device_revision", table_name="contacts")
    op.drop_index("ix_contacts_device_block", table_name="contacts")
    op.drop_table("contacts")
    op.drop_table("contact_numbers")
    op.drop_index("ix_smart_seen_numbers_granted", table_name="smart_seen_numbers")
    op.drop_table("smart_seen_numbers")
    op.drop_table("devices")
    op.drop_index("ix_account_numbers_account", table_name="account_numbers")
    op.drop_table("account_numbers")
    op.drop_table("accounts")

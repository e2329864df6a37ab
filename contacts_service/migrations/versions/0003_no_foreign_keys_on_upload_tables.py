"""No foreign keys on the tables an upload writes row by row: contacts, contact_numbers,
deleted_contacts (→ devices) and smart_seen_numbers (→ accounts).

PostgreSQL checks a foreign key with a trigger per inserted row; for an upload those checks
were about 45 % of the database's time. The rows are written only under their device row's
lock and deleted explicitly with their device or account (see contacts_service/models.py).
Dropping a constraint takes a brief ACCESS EXCLUSIVE lock on both tables and rewrites nothing.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# (table, column, parent table, parent column), with PostgreSQL's default constraint names.
KEYS = (
    ("contacts", "device_pk", "devices", "pk"),
    ("contact_numbers", "device_pk", "devices", "pk"),
    ("deleted_contacts", "device_pk", "devices", "pk"),
    ("smart_seen_numbers", "account_id", "accounts", "id"),
)


def upgrade():
    for table, column, _, _ in KEYS:
        op.drop_constraint(f"{table}_{column}_fkey", table, type_="foreignkey")


def downgrade():
    for table, column, parent, parent_column in KEYS:
        # Rows whose parent is gone cannot satisfy the key again: they belonged to nothing.
        op.execute(
            f"DELETE FROM {table} t WHERE NOT EXISTS "  # noqa: S608 - constants
            f"(SELECT 1 FROM {parent} p WHERE p.{parent_column} = t.{column})"
        )
        op.create_foreign_key(
            f"{table}_{column}_fkey", table, parent, [column], [parent_column], ondelete="CASCADE"
        )

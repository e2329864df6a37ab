"""E.164 columns become `text`: phonenumbers accepts possible numbers of 18 characters
(+49123456789012345, +81123456789012345), which varchar(16) refused, failing whole requests.

`varchar(n)` → `text` is binary-coercible in PostgreSQL: no table rewrite, no index rebuild, so
this is quick on big tables. The length is bounded by the code instead (shared.phone
parses only strings of at most 64 characters).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("account_numbers", "contact_numbers", "smart_seen_numbers")


def upgrade():
    for table in TABLES:
        op.alter_column(
            table,
            "e164",
            type_=sa.Text(),
            existing_type=sa.String(length=16),
            existing_nullable=False,
        )


def downgrade():
    # Numbers longer than 16 characters cannot go back into varchar(16): they are dropped
    # (they only feed Smart Contacts; the contacts themselves keep them in their documents).
    for table in TABLES:
        op.execute(sa.text(f"DELETE FROM {table} WHERE length(e164) > 16"))  # noqa: S608 - constant
        op.alter_column(
            table,
            "e164",
            type_=sa.String(length=16),
            existing_type=sa.Text(),
            existing_nullable=False,
        )

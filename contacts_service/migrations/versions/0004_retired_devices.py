"""retired_devices: the highest revision a deleted device reached, so the device registered
again under the same id answers 410 to a `since` that belongs to the deleted one.

A new device starts at revision 0 (API.md), so after a delete and a new registration the
revisions of the two address books overlap: a client that had synced the old book at revision
3 would be sent the new book's changes after 3 as if they applied to what it holds. The new
device's log_floor is set past the old book's revisions instead (any such `since` → 410, the
client reads everything again). A row is consumed when the device id is registered again; an
account keeps its 1,000 most recent (repository.RETIRED_DEVICES_KEPT).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "retired_devices",
        sa.Column(
            "account_id",
            sa.BigInteger(),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column(
            "retired_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("account_id", "device_id", name="pk_retired_devices"),
    )


def downgrade():
    op.drop_table("retired_devices")

"""sync cursors: a position in (transaction id, outbox id) order, no gap timeout

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

The cursor no longer waits at a missing outbox id for a while and then gives up: it
never passes the oldest transaction still running (platform/linkage/sync.py). The
positions already reached are kept, with transaction id 0, which is what the rows
written before the village's migration ob0002 carry.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE exchange.cursors ADD COLUMN outbox_xid xid8 NOT NULL DEFAULT '0'")
    op.drop_column("cursors", "gap_at", schema="exchange")
    op.alter_column("cursors", "gap_since", new_column_name="waiting_since", schema="exchange")


def downgrade() -> None:
    op.alter_column("cursors", "waiting_since", new_column_name="gap_since", schema="exchange")
    op.add_column("cursors", sa.Column("gap_at", sa.BigInteger()), schema="exchange")
    op.drop_column("cursors", "outbox_xid", schema="exchange")

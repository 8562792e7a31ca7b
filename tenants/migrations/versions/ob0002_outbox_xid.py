"""outbox: each row's transaction id, the sync's position safe against slow transactions

Revision ID: ob0002
Revises: ob0001
Create Date: 2026-12-06

Rows written before this migration get transaction id 0: they come first, in id order,
which is the order the sync's cursor already went through them.
"""

import sqlalchemy as sa
from alembic import op

revision = "ob0002"
down_revision = "ob0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE outbox ADD COLUMN xid xid8 NOT NULL DEFAULT '0'")
    op.alter_column("outbox", "xid", server_default=sa.text("pg_current_xact_id()"))
    op.create_index("outbox_position", "outbox", ["xid", "id"])


def downgrade() -> None:
    op.drop_index("outbox_position", "outbox")
    op.drop_column("outbox", "xid")

"""structure: grids, buildings and households are archived, never deleted

Revision ID: st0001
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "st0001"
down_revision = "0001"
branch_labels = ("structure",)
depends_on = None

TABLES = ("grids", "buildings", "households")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "archived_at")

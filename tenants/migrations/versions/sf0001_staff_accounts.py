"""staff accounts: the login's username beside its subject, and disabled staff

Revision ID: sf0001
Revises: 0001
Create Date: 2026-12-06

Staff are disabled, never deleted: alerts, requests and the duty roster name them.
"""

import sqlalchemy as sa
from alembic import op

revision = "sf0001"
down_revision = "0001"
branch_labels = ("staff",)
depends_on = None


def upgrade() -> None:
    op.add_column("grid_staff", sa.Column("account_username", sa.Text(), nullable=True))
    op.add_column("grid_staff", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("grid_staff", "disabled_at")
    op.drop_column("grid_staff", "account_username")

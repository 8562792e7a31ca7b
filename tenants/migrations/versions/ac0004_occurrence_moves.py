"""activities: an occurrence moved by the village (本场改期) keeps where the series put it

Revision ID: ac0004
Revises: ac0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "ac0004"
down_revision = "ac0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "activity_occurrences",
        sa.Column("planned_starts_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("activity_occurrences", sa.Column("move_reason", sa.Text(), nullable=True))
    op.create_check_constraint(
        "activity_occurrences_moved",
        "activity_occurrences",
        "(planned_starts_at IS NULL) = (move_reason IS NULL)",
    )


def downgrade() -> None:
    op.drop_constraint("activity_occurrences_moved", "activity_occurrences")
    op.drop_column("activity_occurrences", "move_reason")
    op.drop_column("activity_occurrences", "planned_starts_at")

"""activities: sign-ups of residents of neighbouring villages (five-village linkage)

Revision ID: ac0002
Revises: ac0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "ac0002"
down_revision = "ac0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("activity_sign_ups", "resident_id", nullable=True)
    op.add_column("activity_sign_ups", sa.Column("guest_village", sa.Text(), nullable=True))
    op.add_column(
        "activity_sign_ups", sa.Column("guest_resident_id", sa.BigInteger(), nullable=True)
    )
    op.add_column("activity_sign_ups", sa.Column("guest_name", sa.Text(), nullable=True))
    op.add_column("activity_sign_ups", sa.Column("note", sa.Text(), nullable=True))
    op.create_check_constraint(
        "activity_sign_ups_participant",
        "activity_sign_ups",
        "(resident_id IS NULL) = (guest_village IS NOT NULL)"
        " AND (guest_village IS NULL) = (guest_resident_id IS NULL)"
        " AND (guest_village IS NULL) = (guest_name IS NULL)",
    )
    op.create_unique_constraint(
        "activity_sign_ups_guest_once",
        "activity_sign_ups",
        ["occurrence_id", "guest_village", "guest_resident_id"],
    )


def downgrade() -> None:
    op.execute("DELETE FROM activity_sign_ups WHERE resident_id IS NULL")
    op.drop_constraint("activity_sign_ups_guest_once", "activity_sign_ups")
    op.drop_constraint("activity_sign_ups_participant", "activity_sign_ups")
    for column in ("note", "guest_name", "guest_resident_id", "guest_village"):
        op.drop_column("activity_sign_ups", column)
    op.alter_column("activity_sign_ups", "resident_id", nullable=False)

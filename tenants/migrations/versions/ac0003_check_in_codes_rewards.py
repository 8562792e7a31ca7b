"""activities: the organising team, check-in codes, points rewards and redemptions

Revision ID: ac0003
Revises: ac0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "ac0003"
down_revision = "ac0002"
branch_labels = None
depends_on = None


def id_column() -> sa.Column:
    return sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False)


def _now(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.add_column("activities", sa.Column("team_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        "activities_team_id_fkey",
        "activities",
        "volunteer_teams",
        ["team_id"],
        ["id"],
        ondelete="SET NULL",
    )

    op.create_table(
        "activity_check_in_codes",
        sa.Column("occurrence_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("valid_on", sa.Date(), nullable=False),
        _now("issued_at"),
        sa.Column("issued_by", sa.Text(), nullable=False),
        sa.CheckConstraint("code ~ '^[0-9]{6}$'", name="activity_check_in_codes_code"),
        sa.ForeignKeyConstraint(["occurrence_id"], ["activity_occurrences.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("occurrence_id"),
    )
    op.create_table(
        "activity_check_in_failures",
        sa.Column("occurrence_id", sa.BigInteger(), nullable=False),
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("failures", sa.SmallInteger(), nullable=False),
        _now("last_failed_at"),
        sa.ForeignKeyConstraint(["occurrence_id"], ["activity_occurrences.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("occurrence_id", "principal"),
    )

    op.create_table(
        "points_rewards",
        id_column(),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("points_cost", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint("points_cost > 0", name="points_rewards_cost"),
        sa.CheckConstraint("stock >= 0", name="points_rewards_stock"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "points_redemptions",
        id_column(),
        sa.Column("reward_id", sa.BigInteger(), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        _now("created_at"),
        sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handed_over_by", sa.Text(), nullable=True),
        sa.CheckConstraint("points > 0", name="points_redemptions_points"),
        sa.CheckConstraint("state IN ('pending', 'handed_over')", name="points_redemptions_state"),
        sa.CheckConstraint(
            "(state = 'handed_over') = (handed_over_at IS NOT NULL)",
            name="points_redemptions_handed_over",
        ),
        sa.ForeignKeyConstraint(["reward_id"], ["points_rewards.id"]),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("points_redemptions_state", "points_redemptions", ["state", "id"])
    op.create_index("points_redemptions_resident", "points_redemptions", ["resident_id", "id"])


def downgrade() -> None:
    op.drop_table("points_redemptions")
    op.drop_table("points_rewards")
    op.drop_table("activity_check_in_failures")
    op.drop_table("activity_check_in_codes")
    op.drop_constraint("activities_team_id_fkey", "activities")
    op.drop_column("activities", "team_id")

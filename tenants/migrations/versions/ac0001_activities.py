"""activities: series and occurrences, sign-ups, volunteer teams, an append-only points ledger

Revision ID: ac0001
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "ac0001"
down_revision = "0001"
branch_labels = ("activities",)
depends_on = None


def id_column() -> sa.Column:
    return sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False)


def _now(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "activities",
        id_column(),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("place", sa.Text(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), server_default="draft", nullable=False),
        sa.Column(
            "open_to_neighbours", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("repeat", sa.Text(), server_default="once", nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=True),
        sa.Column("month_day", sa.SmallInteger(), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint(
            "kind IN ('weekend_class', 'service_day', 'talk', 'clinic', 'culture', "
            "'volunteer_service')",
            name="activities_kind",
        ),
        sa.CheckConstraint(
            "state IN ('draft', 'published', 'cancelled', 'finished')", name="activities_state"
        ),
        sa.CheckConstraint("repeat IN ('once', 'weekly', 'monthly')", name="activities_repeat"),
        sa.CheckConstraint("capacity > 0", name="activities_capacity"),
        sa.CheckConstraint("duration_minutes BETWEEN 1 AND 1440", name="activities_duration"),
        sa.CheckConstraint(
            "(repeat = 'weekly') = (weekday IS NOT NULL)"
            " AND (weekday IS NULL OR weekday BETWEEN 1 AND 7)",
            name="activities_weekday",
        ),
        sa.CheckConstraint(
            "(repeat = 'monthly') = (month_day IS NOT NULL)"
            " AND (month_day IS NULL OR month_day BETWEEN 1 AND 31)",
            name="activities_month_day",
        ),
        sa.CheckConstraint(
            "until IS NULL OR (repeat <> 'once' AND until >= starts_on)", name="activities_until"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("activities_kind_state", "activities", ["kind", "state"])

    op.create_table(
        "activity_occurrences",
        id_column(),
        sa.Column("activity_id", sa.BigInteger(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        _now("created_at"),
        sa.CheckConstraint("ends_at > starts_at", name="activity_occurrences_span"),
        sa.CheckConstraint("capacity > 0", name="activity_occurrences_capacity"),
        sa.ForeignKeyConstraint(["activity_id"], ["activities.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("activity_id", "starts_at", name="activity_occurrences_once"),
    )
    op.create_index("activity_occurrences_starts_at", "activity_occurrences", ["starts_at"])

    op.create_table(
        "activity_sign_ups",
        id_column(),
        sa.Column("occurrence_id", sa.BigInteger(), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("signed_up_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("volunteer_hours", sa.Numeric(5, 2), nullable=True),
        _now("updated_at"),
        sa.CheckConstraint(
            "state IN ('signed_up', 'waitlisted', 'cancelled', 'checked_in')",
            name="activity_sign_ups_state",
        ),
        sa.CheckConstraint(
            "volunteer_hours IS NULL OR volunteer_hours > 0 AND volunteer_hours <= 24",
            name="activity_sign_ups_hours",
        ),
        sa.ForeignKeyConstraint(["occurrence_id"], ["activity_occurrences.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("occurrence_id", "resident_id", name="activity_sign_ups_once"),
    )
    op.create_index(
        "activity_sign_ups_queue", "activity_sign_ups", ["occurrence_id", "state", "signed_up_at"]
    )
    op.create_index("activity_sign_ups_resident", "activity_sign_ups", ["resident_id"])

    op.create_table(
        "volunteer_teams",
        id_column(),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("leader_resident_id", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        _now("created_at"),
        _now("updated_at"),
        sa.ForeignKeyConstraint(["leader_resident_id"], ["residents.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )

    op.create_table(
        "volunteer_team_members",
        sa.Column("team_id", sa.BigInteger(), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("skills", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        _now("joined_at"),
        sa.ForeignKeyConstraint(["team_id"], ["volunteer_teams.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("team_id", "resident_id"),
    )
    op.create_index("volunteer_team_members_resident", "volunteer_team_members", ["resident_id"])

    op.create_table(
        "points_ledger",
        id_column(),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source_type", sa.Text(), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=True),
        _now("created_at"),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.CheckConstraint("points <> 0", name="points_ledger_points"),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("points_ledger_resident", "points_ledger", ["resident_id", "id"])
    op.create_index(
        "points_ledger_source",
        "points_ledger",
        ["resident_id", "source_type", "source_id"],
        unique=True,
        postgresql_where=sa.text("source_id IS NOT NULL"),
    )
    # Append-only, whoever asks: the village role owns the table, so a REVOKE
    # would not bind it, but a trigger does.
    op.execute(
        """
        CREATE FUNCTION points_ledger_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'points_ledger is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'record a correcting entry instead';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER points_ledger_no_change BEFORE UPDATE OR DELETE ON points_ledger"
        " FOR EACH ROW EXECUTE FUNCTION points_ledger_append_only()"
    )
    op.execute(
        "CREATE TRIGGER points_ledger_no_truncate BEFORE TRUNCATE ON points_ledger"
        " FOR EACH STATEMENT EXECUTE FUNCTION points_ledger_append_only()"
    )

    op.create_table(
        "points_rules",
        sa.Column("id", sa.SmallInteger(), server_default="1", autoincrement=False, nullable=False),
        sa.Column("points_per_volunteer_hour", sa.Integer(), nullable=False),
        _now("updated_at"),
        sa.CheckConstraint("id = 1", name="points_rules_single_row"),
        sa.CheckConstraint(
            "points_per_volunteer_hour BETWEEN 0 AND 1000", name="points_rules_rate"
        ),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("points_rules")
    op.drop_table("points_ledger")
    op.execute("DROP FUNCTION points_ledger_append_only()")
    op.drop_table("volunteer_team_members")
    op.drop_table("volunteer_teams")
    op.drop_table("activity_sign_ups")
    op.drop_table("activity_occurrences")
    op.drop_table("activities")

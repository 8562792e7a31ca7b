"""resident transfers: tombstones of residents who moved to a neighbouring village,
the transfers they left by, and the transfers a village received

Revision ID: tr0001
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "tr0001"
down_revision = "0001"
branch_labels = ("transfers",)
depends_on = None


def _now(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.add_column(
        "residents",
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
    )
    op.add_column("residents", sa.Column("moved_to", sa.Text(), nullable=True))
    op.add_column("residents", sa.Column("moved_on", sa.Date(), nullable=True))
    op.create_check_constraint("residents_status", "residents", "status IN ('active', 'moved_out')")
    op.create_table(
        "resident_transfers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("consent_given_by", sa.Text(), nullable=False),
        sa.Column("consent_method", sa.Text(), nullable=False),
        sa.Column("consent_recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consent_note", sa.Text(), nullable=True),
        sa.Column("moved_on", sa.Date(), nullable=False),
        sa.Column("points_balance", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), server_default="sent", nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        _now("created_at"),
        sa.CheckConstraint(
            "consent_method IN ('signed_form', 'in_person', 'phone', 'app')",
            name="resident_transfers_method",
        ),
        sa.CheckConstraint("state IN ('sent')", name="resident_transfers_state"),
        sa.CheckConstraint("points_balance >= 0", name="resident_transfers_points"),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("resident_transfers_resident", "resident_transfers", ["resident_id"])
    op.create_table(
        "incoming_transfers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("origin_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("moved_on", sa.Date(), nullable=True),
        sa.Column("points_balance", sa.Integer(), server_default="0", nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=True),
        _now("received_at"),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('received', 'pending_registration', 'conflict')",
            name="incoming_transfers_state",
        ),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("origin", "origin_id", name="incoming_transfers_once"),
    )


def downgrade() -> None:
    op.drop_table("incoming_transfers")
    op.drop_index("resident_transfers_resident", table_name="resident_transfers")
    op.drop_table("resident_transfers")
    op.drop_constraint("residents_status", "residents")
    for column in ("moved_on", "moved_to", "status"):
        op.drop_column("residents", column)

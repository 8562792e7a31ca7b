"""resources: shared resources (micro fire stations, venues, AEDs, vehicles) and bookings

Revision ID: rs0001
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "rs0001"
down_revision = "0001"
branch_labels = ("resources",)
depends_on = None


def _now(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "shared_resources",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("location_text", sa.Text(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("contact_name", sa.Text(), nullable=True),
        sa.Column("contact_phone", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="available", nullable=False),
        sa.Column("bookable", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("shared", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint(
            "kind IN ('micro_fire_station', 'venue', 'aed', 'vehicle')",
            name="shared_resources_kind",
        ),
        sa.CheckConstraint(
            "status IN ('available', 'unavailable', 'retired')", name="shared_resources_status"
        ),
        sa.CheckConstraint(
            "(latitude IS NULL) = (longitude IS NULL)"
            " AND (latitude IS NULL OR latitude BETWEEN -90 AND 90)"
            " AND (longitude IS NULL OR longitude BETWEEN -180 AND 180)",
            name="shared_resources_position",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "shared_resources_name",
        "shared_resources",
        ["name"],
        unique=True,
        postgresql_where=sa.text("status <> 'retired'"),
    )

    op.create_table(
        "resource_bookings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("resource_id", sa.BigInteger(), nullable=False),
        sa.Column("requester_village", sa.Text(), nullable=False),
        sa.Column("requester_name", sa.Text(), nullable=False),
        sa.Column("requester_phone", sa.Text(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column(
            "agreement_ids",
            postgresql.ARRAY(sa.BigInteger()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.Text(), nullable=True),
        sa.Column("cancelled_by_village", sa.Text(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint(
            "state IN ('pending', 'approved', 'rejected', 'cancelled')",
            name="resource_bookings_state",
        ),
        sa.CheckConstraint("ends_at > starts_at", name="resource_bookings_period"),
        sa.ForeignKeyConstraint(["resource_id"], ["shared_resources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "resource_bookings_resource", "resource_bookings", ["resource_id", "state", "starts_at"]
    )
    op.create_index("resource_bookings_requester", "resource_bookings", ["requester_village", "id"])


def downgrade() -> None:
    op.drop_table("resource_bookings")
    op.drop_table("shared_resources")

"""service orders: catalogue, time slots with capacity, orders and their timeline

Revision ID: so0001
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "so0001"
down_revision = "0001"
branch_labels = ("service_orders",)
depends_on = None


def timestamps() -> list[sa.Column]:
    return [
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "service_items",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        *timestamps(),
        sa.CheckConstraint(
            "category IN ('haircut', 'knife_sharpening', 'home_repair', 'free_clinic', "
            "'legal_advice', 'elderly_care', 'other')",
            name="service_items_category",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "service_slots",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("service_item_id", sa.BigInteger(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), server_default="0", nullable=False),
        *timestamps(),
        sa.CheckConstraint("ends_at > starts_at", name="service_slots_period"),
        sa.CheckConstraint("capacity > 0", name="service_slots_capacity"),
        sa.CheckConstraint("booked BETWEEN 0 AND capacity", name="service_slots_booked"),
        sa.ForeignKeyConstraint(["service_item_id"], ["service_items.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("service_slots_item_start", "service_slots", ["service_item_id", "starts_at"])
    op.create_table(
        "service_orders",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("service_item_id", sa.BigInteger(), nullable=False),
        sa.Column("service_slot_id", sa.BigInteger(), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Text(), server_default="ordered", nullable=False),
        # No foreign key: volunteer teams belong to the activities domain, which grows on
        # its own migration branch (ac0001); the dispatch action checks the team exists.
        sa.Column("volunteer_team_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("rating_comment", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        *timestamps(),
        sa.CheckConstraint(
            "state IN ('ordered', 'dispatched', 'accepted', 'declined', 'completed', "
            "'rated', 'cancelled')",
            name="service_orders_state",
        ),
        sa.CheckConstraint(
            "rating IS NULL OR rating BETWEEN 1 AND 5", name="service_orders_rating"
        ),
        sa.ForeignKeyConstraint(["service_item_id"], ["service_items.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["service_slot_id"], ["service_slots.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("service_orders_slot", "service_orders", ["service_slot_id"])
    op.create_index("service_orders_item", "service_orders", ["service_item_id"])
    op.create_index("service_orders_resident", "service_orders", ["resident_id"])
    op.create_index("service_orders_team", "service_orders", ["volunteer_team_id"])
    op.create_index("service_orders_state", "service_orders", ["state"])
    op.create_index(
        "service_orders_one_per_slot",
        "service_orders",
        ["service_slot_id", "resident_id"],
        unique=True,
        postgresql_where=sa.text("state <> 'cancelled'"),
    )
    op.create_table(
        "service_order_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("service_order_id", sa.BigInteger(), nullable=False),
        sa.Column("from_state", sa.Text(), nullable=True),
        sa.Column("to_state", sa.Text(), nullable=False),
        sa.Column("volunteer_team_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_sub", sa.Text(), nullable=False),
        sa.Column("actor_name", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["service_order_id"], ["service_orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "service_order_events_order", "service_order_events", ["service_order_id", "id"]
    )


def downgrade() -> None:
    op.drop_table("service_order_events")
    op.drop_table("service_orders")
    op.drop_table("service_slots")
    op.drop_table("service_items")

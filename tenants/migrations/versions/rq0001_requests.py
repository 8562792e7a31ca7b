"""requests: the request closed loop (诉求/工单) and action lists (行动清单)

Seeds the default category tree and the grade deadlines (24 h / 72 h / 15 days)
into the village it runs on; a village adds its own categories afterwards.

Revision ID: rq0001
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "rq0001"
down_revision = "0001"
branch_labels = ("requests",)
depends_on = None

# (stable code, name): the categories every village starts with, in this order.
DEFAULT_CATEGORIES = (
    ("property_service", "物业服务"),
    ("sanitation", "环境卫生"),
    ("parking", "停车管理"),
    ("noise", "噪音扰民"),
    ("neighbour_dispute", "邻里纠纷"),
    ("facility_repair", "设施维修"),
    ("legal_aid", "法律援助"),
    ("elderly_care", "养老服务"),
    ("safety_hazard", "安全隐患"),
    ("other", "其他"),
)


def _timestamp(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    categories = op.create_table(
        "request_categories",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("position", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(["parent_id"], ["request_categories.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
        sa.UniqueConstraint(
            "parent_id",
            "name",
            name="request_categories_sibling_name",
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_index("request_categories_parent", "request_categories", ["parent_id"])

    settings = op.create_table(
        "request_settings",
        sa.Column("id", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("simple_hours", sa.Integer(), server_default="24", nullable=False),
        sa.Column("complex_hours", sa.Integer(), server_default="72", nullable=False),
        sa.Column("hard_hours", sa.Integer(), server_default="360", nullable=False),
        _timestamp("updated_at"),
        sa.CheckConstraint("id = 1", name="request_settings_single_row"),
        sa.CheckConstraint(
            "simple_hours > 0 AND complex_hours > 0 AND hard_hours > 0",
            name="request_settings_positive",
        ),
        sa.PrimaryKeyConstraint("id"),
    )

    op.create_table(
        "requests",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("category_id", sa.BigInteger(), nullable=False),
        sa.Column("grade", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="submitted", nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=True),
        sa.Column("building_id", sa.BigInteger(), nullable=True),
        sa.Column("location_text", sa.Text(), nullable=True),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.Column("reporter_resident_id", sa.BigInteger(), nullable=True),
        sa.Column("reporter_name", sa.Text(), nullable=False),
        sa.Column("reporter_phone", sa.Text(), nullable=True),
        sa.Column("assignee_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalation_level", sa.Text(), server_default="grid", nullable=False),
        sa.Column(
            "needs_coordination", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("rating_comment", sa.Text(), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "channel IN ('mini_program', 'grid_worker', 'phone', 'walk_in', 'hotline_12345')",
            name="requests_channel",
        ),
        sa.CheckConstraint("grade IN ('simple', 'complex', 'hard')", name="requests_grade"),
        sa.CheckConstraint(
            "state IN ('submitted', 'accepted', 'assigned', 'in_progress', 'resolved', "
            "'closed', 'rejected', 'reopened')",
            name="requests_state",
        ),
        sa.CheckConstraint(
            "escalation_level IN ('grid', 'village', 'region')",
            name="requests_escalation_level",
        ),
        sa.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="requests_rating"),
        sa.ForeignKeyConstraint(["category_id"], ["request_categories.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["building_id"], ["buildings.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["reporter_resident_id"], ["residents.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["assignee_staff_id"], ["grid_staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("requests_state", "requests", ["state"])
    op.create_index("requests_category", "requests", ["category_id"])
    op.create_index("requests_grid", "requests", ["grid_id"])
    op.create_index("requests_assignee", "requests", ["assignee_staff_id"])
    op.create_index("requests_created_at", "requests", ["created_at"])
    op.create_index(
        "requests_open_due_at",
        "requests",
        ["due_at"],
        postgresql_where=sa.text(
            "state IN ('submitted', 'accepted', 'assigned', 'in_progress', 'reopened')"
        ),
    )

    op.create_table(
        "request_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("from_state", sa.Text(), nullable=True),
        sa.Column("to_state", sa.Text(), nullable=False),
        sa.Column("escalation_level", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor_sub", sa.Text(), nullable=False),
        sa.Column("actor_name", sa.Text(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("request_events_request", "request_events", ["request_id", "id"])

    op.create_table(
        "action_lists",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.Text(), server_default="planned", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "status IN ('planned', 'in_progress', 'done', 'cancelled')",
            name="action_lists_status",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("action_lists_status", "action_lists", ["status"])
    op.create_table(
        "action_list_requests",
        sa.Column("action_list_id", sa.BigInteger(), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["action_list_id"], ["action_lists.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("action_list_id", "request_id"),
    )
    op.create_index("action_list_requests_request", "action_list_requests", ["request_id"])

    op.bulk_insert(
        categories,
        [
            {"code": code, "name": name, "position": position}
            for position, (code, name) in enumerate(DEFAULT_CATEGORIES, start=1)
        ],
    )
    op.bulk_insert(settings, [{"id": 1}])


def downgrade() -> None:
    op.drop_table("action_list_requests")
    op.drop_table("action_lists")
    op.drop_table("request_events")
    op.drop_table("requests")
    op.drop_table("request_settings")
    op.drop_table("request_categories")

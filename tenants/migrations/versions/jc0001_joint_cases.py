"""joint cases (难事部门联动): cross-village cases of a request and their one timeline

Revision ID: jc0001
Revises: rq0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "jc0001"
# After the requests branch: a case is of a request.
down_revision = "rq0001"
branch_labels = ("joint_cases",)
depends_on = None


def _now(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "joint_cases",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="open", nullable=False),
        sa.Column("priority", sa.Text(), server_default="normal", nullable=False),
        sa.Column("villages", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("opened_by", sa.Text(), nullable=False),
        _now("opened_at"),
        _now("updated_at"),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint(
            "state IN ('open', 'in_progress', 'resolved', 'closed')", name="joint_cases_state"
        ),
        sa.CheckConstraint("priority IN ('normal', 'high', 'urgent')", name="joint_cases_priority"),
        sa.CheckConstraint("cardinality(villages) > 0", name="joint_cases_villages"),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_table(
        "joint_case_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("village", sa.Text(), nullable=False),
        sa.Column("actor_sub", sa.Text(), nullable=False),
        sa.Column("actor_name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=True),
        _now("occurred_at"),
        sa.CheckConstraint(
            "kind IN ('opened', 'note', 'state_change', 'village_added')",
            name="joint_case_events_kind",
        ),
        sa.ForeignKeyConstraint(["case_id"], ["joint_cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("joint_case_events_case", "joint_case_events", ["case_id", "id"])


def downgrade() -> None:
    op.drop_index("joint_case_events_case", table_name="joint_case_events")
    op.drop_table("joint_case_events")
    op.drop_table("joint_cases")

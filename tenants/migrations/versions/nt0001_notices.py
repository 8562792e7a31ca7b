"""notices: public notices (村务公开) and residents' reads of them

Revision ID: nt0001
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "nt0001"
down_revision = "0001"
branch_labels = ("notices",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), server_default="", nullable=False),
        sa.Column("body", sa.Text(), server_default="", nullable=False),
        sa.Column("state", sa.Text(), server_default="draft", nullable=False),
        sa.Column("publish_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("publish_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawal_reason", sa.Text(), nullable=True),
        sa.Column(
            "reader_salt",
            sa.LargeBinary(),
            server_default=sa.text("uuid_send(gen_random_uuid())"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
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
        sa.CheckConstraint(
            "category IN ('party_affairs', 'village_affairs', 'finances')",
            name="notices_category",
        ),
        sa.CheckConstraint("state IN ('draft', 'published', 'withdrawn')", name="notices_state"),
        sa.CheckConstraint(
            "publish_from IS NULL OR publish_until IS NULL OR publish_until > publish_from",
            name="notices_window",
        ),
        sa.CheckConstraint(
            "state = 'draft' OR published_at IS NOT NULL", name="notices_published_at"
        ),
        sa.CheckConstraint(
            "state <> 'withdrawn' OR (withdrawn_at IS NOT NULL AND withdrawal_reason IS NOT NULL)",
            name="notices_withdrawal",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "notice_reads",
        sa.Column("notice_id", sa.BigInteger(), nullable=False),
        sa.Column("reader_hash", sa.LargeBinary(), nullable=False),
        sa.Column("reads", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "first_read_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_read_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("notice_id", "reader_hash"),
    )


def downgrade() -> None:
    op.drop_table("notice_reads")
    op.drop_table("notices")

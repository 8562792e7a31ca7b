"""resident accounts: which account acts for which resident record (居民账号, 实名认证)

Revision ID: ra0001
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "ra0001"
down_revision = "0001"
branch_labels = ("resident_accounts",)
depends_on = None


def _now(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "resident_accounts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("account_sub", sa.Text(), nullable=False),
        sa.Column("username", sa.Text(), nullable=True),
        sa.Column("resident_id", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("verification", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint(
            "state IN ('pending', 'bound', 'rejected', 'unbound')",
            name="resident_accounts_state",
        ),
        sa.CheckConstraint("source IN ('admin', 'request')", name="resident_accounts_source"),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "resident_accounts_live_account",
        "resident_accounts",
        ["account_sub"],
        unique=True,
        postgresql_where=sa.text("state IN ('pending', 'bound')"),
    )
    op.create_index(
        "resident_accounts_bound_resident",
        "resident_accounts",
        ["resident_id"],
        unique=True,
        postgresql_where=sa.text("state = 'bound'"),
    )
    op.create_index("resident_accounts_state", "resident_accounts", ["state", "id"])


def downgrade() -> None:
    op.drop_table("resident_accounts")

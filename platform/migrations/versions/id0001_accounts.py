"""accounts: API clients' last use, the development issuer's accounts and client secrets

Revision ID: id0001
Revises: 0003
Create Date: 2026-12-06

A head of its own (like the village schema's domains), so that it does not race other
platform revisions for the next number.

The development issuer's tables hold what Keycloak holds when it is configured: accounts
with their roles and groups, and API clients' secrets, each password or secret as a salted
scrypt hash, never in plain text. Village roles get no grant on them. A client's secret
is written before its `api_clients` row commits (as Keycloak's client would be), so it has no
foreign key: API clients are disabled, never deleted.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "id0001"
down_revision = "0003"
branch_labels = ("identity",)
depends_on = None

SCHEMA = "platform"


def upgrade() -> None:
    op.add_column(
        "api_clients",
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_table(
        "dev_accounts",
        sa.Column("sub", sa.Text(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("roles", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("villages", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("sub"),
        sa.UniqueConstraint("username", name="dev_accounts_username"),
        schema=SCHEMA,
    )
    op.create_table(
        "dev_client_secrets",
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("client_id"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("dev_client_secrets", schema=SCHEMA)
    op.drop_table("dev_accounts", schema=SCHEMA)
    op.drop_column("api_clients", "last_used_at", schema=SCHEMA)

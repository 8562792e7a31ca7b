"""regions: the exports of a region's figures, kept until their download link expires

Revision ID: vi0002
Revises: vi0001
Create Date: 2026-12-06

As a village's resident exports are (tenants' resident_exports): a row per file in the
region's storage space, so that the removal job finds every expired one.
"""

import sqlalchemy as sa
from alembic import op

revision = "vi0002"
down_revision = "vi0001"
branch_labels = None
depends_on = None

SCHEMA = "platform"


def upgrade() -> None:
    op.create_table(
        "region_exports",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "region_id",
            sa.Text(),
            sa.ForeignKey("platform.regions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("object_key", sa.Text(), nullable=False, unique=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "region_exports_expires_at", "region_exports", ["region_id", "expires_at"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_table("region_exports", schema=SCHEMA)

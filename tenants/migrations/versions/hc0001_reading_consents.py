"""health: consents that an emergency contact may see a wearer's readings (家属查看授权)

Revision ID: hc0001
Revises: se0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "hc0001"
# After the sensing branch, which made the health tables.
down_revision = "se0001"
branch_labels = ("reading_consents",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reading_consents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("contact_resident_id", sa.BigInteger(), nullable=False),
        sa.Column("contact_phone", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.Text(), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_by", sa.Text(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("contact_resident_id <> resident_id", name="reading_consents_not_self"),
        sa.CheckConstraint(
            "(revoked_at IS NULL) = (revoked_by IS NULL)", name="reading_consents_revocation"
        ),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contact_resident_id"], ["residents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "reading_consents_live",
        "reading_consents",
        ["resident_id", "contact_resident_id"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.create_index(
        "reading_consents_contact",
        "reading_consents",
        ["contact_resident_id"],
        postgresql_where=sa.text("revoked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("reading_consents")

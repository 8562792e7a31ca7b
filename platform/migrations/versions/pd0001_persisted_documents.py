"""persisted documents: the GraphQL documents registered for the consoles' builds

Revision ID: pd0001
Revises: 0001
Create Date: 2026-12-06

A head of its own (like `identity`), so that it does not race other platform revisions
for the next number. Documents are keyed by the SHA-256 of their text, as clients send
it in `extensions.persistedQuery`; village roles get no grant on the table.
"""

import sqlalchemy as sa
from alembic import op

revision = "pd0001"
down_revision = "0001"
branch_labels = ("persisted_documents",)
depends_on = None

SCHEMA = "platform"


def upgrade() -> None:
    op.create_table(
        "persisted_documents",
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column(
            "registered_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("sha256"),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="persisted_documents_sha256"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("persisted_documents", schema=SCHEMA)

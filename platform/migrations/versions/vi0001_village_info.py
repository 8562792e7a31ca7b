"""villages: an address and a contact phone, kept by the village's admin (设置 → 村庄信息)

Revision ID: vi0001
Revises: 0001
Create Date: 2026-12-06

Both are optional: the villages provisioned so far have neither until their admin fills
them in. The village's own office, not a person: no masking, no audit of reads.
"""

import sqlalchemy as sa
from alembic import op

revision = "vi0001"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "platform"


def upgrade() -> None:
    op.add_column("tenants", sa.Column("address", sa.Text(), nullable=True), schema=SCHEMA)
    op.add_column("tenants", sa.Column("contact_phone", sa.Text(), nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("tenants", "contact_phone", schema=SCHEMA)
    op.drop_column("tenants", "address", schema=SCHEMA)

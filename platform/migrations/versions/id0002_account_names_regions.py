"""accounts: the development issuer's accounts get a display name and region groups

Revision ID: id0002
Revises: id0001
Create Date: 2026-12-06

The browser sign-in puts `name` into the ID token (the console shows who is signed in) and
a regional coordinator's `/regions/<id>` groups into the access token, as Keycloak does.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "id0002"
down_revision = "id0001"
branch_labels = None
depends_on = None

SCHEMA = "platform"


def upgrade() -> None:
    op.add_column("dev_accounts", sa.Column("name", sa.Text(), nullable=True), schema=SCHEMA)
    op.add_column(
        "dev_accounts",
        sa.Column("regions", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("dev_accounts", "regions", schema=SCHEMA)
    op.drop_column("dev_accounts", "name", schema=SCHEMA)

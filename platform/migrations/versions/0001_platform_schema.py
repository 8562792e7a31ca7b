"""platform schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 06:54:53.258908
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_clients",
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("villages", sa.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("scopes", sa.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("client_id"),
        schema="platform",
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("village", sa.Text(), nullable=True),
        sa.Column("actor_sub", sa.Text(), nullable=False),
        sa.Column("actor_name", sa.Text(), nullable=True),
        sa.Column(
            "actor_roles", sa.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("client_id", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject_type", sa.Text(), nullable=True),
        sa.Column("subject_id", sa.Text(), nullable=True),
        sa.Column("fields", sa.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        schema="platform",
    )
    op.create_index(
        "audit_log_village_time",
        "audit_log",
        ["village", "occurred_at"],
        unique=False,
        schema="platform",
    )
    op.create_table(
        "regions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        schema="platform",
    )
    op.create_table(
        "tenants",
        sa.Column("slug", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("region_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
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
        sa.CheckConstraint("status IN ('active', 'disabled')", name="tenants_status"),
        sa.ForeignKeyConstraint(
            ["region_id"],
            ["platform.regions.id"],
        ),
        sa.PrimaryKeyConstraint("slug"),
        schema="platform",
    )
    op.create_table(
        "neighbour_links",
        sa.Column("village_a", sa.Text(), nullable=False),
        sa.Column("village_b", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("village_a < village_b", name="neighbour_links_ordered"),
        sa.ForeignKeyConstraint(["village_a"], ["platform.tenants.slug"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["village_b"], ["platform.tenants.slug"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("village_a", "village_b"),
        schema="platform",
    )
    op.create_table(
        "village_stats",
        sa.Column("village", sa.Text(), nullable=False),
        sa.Column("residents", sa.Integer(), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("aged_60_plus", sa.Integer(), nullable=False),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["village"], ["platform.tenants.slug"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("village"),
        schema="platform",
    )
    # A village role may add audit entries about its own village only, and read none.
    op.execute("ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY audit_log_own_village ON audit_log FOR INSERT "
        "WITH CHECK (village IS NOT NULL AND current_user = 'vl_t_' || village)"
    )


def downgrade() -> None:
    op.execute("DROP POLICY audit_log_own_village ON audit_log")
    op.drop_table("village_stats", schema="platform")
    op.drop_table("neighbour_links", schema="platform")
    op.drop_table("tenants", schema="platform")
    op.drop_table("regions", schema="platform")
    op.drop_index("audit_log_village_time", table_name="audit_log", schema="platform")
    op.drop_table("audit_log", schema="platform")
    op.drop_table("api_clients", schema="platform")

"""sensing: neighbours' acknowledgements and sightings of shared alerts (走失协查), and
the counter of the village statistics published to the region

Revision ID: sg0001
Revises: se0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "sg0001"
# After the sensing branch: the reports point at its alerts.
down_revision = "se0001"
branch_labels = ("sightings",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_neighbour_reports",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "alert_id",
            sa.BigInteger(),
            sa.ForeignKey("alerts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("village", sa.Text(), nullable=False),
        sa.Column("agreement_ids", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("reporter_sub", sa.Text(), nullable=False),
        sa.Column("reporter_name", sa.Text(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True)),
        sa.Column("place", sa.Text()),
        sa.Column("latitude", sa.Float()),
        sa.Column("longitude", sa.Float()),
        sa.Column("note", sa.Text()),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('acknowledgement', 'sighting')", name="alert_neighbour_reports_kind"
        ),
        sa.CheckConstraint(
            "kind <> 'sighting' OR (seen_at IS NOT NULL AND place IS NOT NULL)",
            name="alert_neighbour_reports_sighting",
        ),
        sa.CheckConstraint(
            "(latitude IS NULL) = (longitude IS NULL)", name="alert_neighbour_reports_position"
        ),
    )
    op.create_index("alert_neighbour_reports_alert", "alert_neighbour_reports", ["alert_id", "id"])
    op.create_index(
        "alert_neighbour_reports_acknowledged_once",
        "alert_neighbour_reports",
        ["alert_id", "village"],
        unique=True,
        postgresql_where=sa.text("kind = 'acknowledgement'"),
    )
    op.create_table(
        "village_stats_publications",
        sa.Column("id", sa.SmallInteger(), primary_key=True, server_default="1"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "published_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("id = 1", name="village_stats_publications_single"),
    )


def downgrade() -> None:
    op.drop_table("village_stats_publications")
    op.drop_table("alert_neighbour_reports")

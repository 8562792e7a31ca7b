"""mediation: cases of the mediation room, their parties and sessions

Revision ID: md0001
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "md0001"
down_revision = "0001"
branch_labels = ("mediation",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mediation_case_numbers",
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year"),
    )
    op.create_table(
        "mediation_cases",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="registered", nullable=False),
        sa.Column("mediator_name", sa.Text(), nullable=True),
        sa.Column("mediator_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("agreement_text", sa.Text(), nullable=True),
        sa.Column("referred_to", sa.Text(), nullable=True),
        sa.Column("closing_note", sa.Text(), nullable=True),
        sa.Column("concluded_at", sa.DateTime(timezone=True), nullable=True),
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
            "category IN ('neighbour', 'family', 'property', 'land_housing', 'labour', 'other')",
            name="mediation_cases_category",
        ),
        sa.CheckConstraint(
            "status IN ('registered', 'in_mediation', 'resolved', 'referred', 'closed', "
            "'withdrawn')",
            name="mediation_cases_status",
        ),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('agreement', 'no_agreement', 'referred')",
            name="mediation_cases_outcome",
        ),
        sa.ForeignKeyConstraint(["mediator_staff_id"], ["grid_staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("year", "number", name="mediation_cases_number"),
    )
    op.create_index("mediation_cases_status", "mediation_cases", ["status"])
    op.create_table(
        "mediation_parties",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.CheckConstraint("role IN ('applicant', 'respondent')", name="mediation_parties_role"),
        sa.ForeignKeyConstraint(["case_id"], ["mediation_cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("mediation_parties_case", "mediation_parties", ["case_id"])
    op.create_index("mediation_parties_resident", "mediation_parties", ["resident_id"])
    op.create_table(
        "mediation_sessions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("place", sa.Text(), nullable=False),
        sa.Column("attendees", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["case_id"], ["mediation_cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("mediation_sessions_case", "mediation_sessions", ["case_id"])


def downgrade() -> None:
    op.drop_table("mediation_sessions")
    op.drop_table("mediation_parties")
    op.drop_table("mediation_cases")
    op.drop_table("mediation_case_numbers")

"""village schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 06:54:53.353376
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grid_staff",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("tier", sa.Text(), nullable=False),
        sa.Column("account_sub", sa.Text(), nullable=True),
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
            "tier IN ('grid_chief', 'grid_worker', 'micro_grid_worker')", name="grid_staff_tier"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_sub"),
    )
    op.create_table(
        "grids",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
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
        sa.CheckConstraint("level IN ('community', 'large', 'micro')", name="grids_level"),
        sa.ForeignKeyConstraint(["parent_id"], ["grids.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "buildings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("units", sa.SmallInteger(), nullable=False),
        sa.Column("floors", sa.SmallInteger(), nullable=False),
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
        sa.ForeignKeyConstraint(
            ["grid_id"],
            ["grids.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("buildings_grid", "buildings", ["grid_id"], unique=False)
    op.create_table(
        "grid_assignments",
        sa.Column("staff_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["grid_staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("staff_id", "grid_id"),
    )
    op.create_index("grid_assignments_grid", "grid_assignments", ["grid_id"], unique=False)
    op.create_table(
        "households",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("building_id", sa.BigInteger(), nullable=True),
        sa.Column("unit_no", sa.SmallInteger(), nullable=True),
        sa.Column("room_no", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("head_resident_id", sa.BigInteger(), nullable=True),
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
        sa.ForeignKeyConstraint(
            ["building_id"],
            ["buildings.id"],
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"],
            ["grids.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("households_building", "households", ["building_id"], unique=False)
    op.create_index("households_grid", "households", ["grid_id"], unique=False)
    op.create_table(
        "residents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("gender", sa.Text(), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("id_number", sa.Text(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("household_id", sa.BigInteger(), nullable=True),
        sa.Column("relation_to_head", sa.Text(), nullable=True),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
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
        sa.CheckConstraint("gender IN ('male', 'female')", name="residents_gender"),
        sa.CheckConstraint(
            "relation_to_head IS NULL OR relation_to_head IN "
            "('head', 'spouse', 'child', 'parent', 'grandchild', 'sibling', 'other')",
            name="residents_relation",
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"],
            ["grids.id"],
        ),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("id_number"),
    )
    op.create_index("residents_birth_date", "residents", ["birth_date"], unique=False)
    op.create_index("residents_grid", "residents", ["grid_id"], unique=False)
    op.create_index("residents_household", "residents", ["household_id"], unique=False)
    op.create_index("residents_name", "residents", ["name"], unique=False)
    op.create_table(
        "resident_tags",
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "tag IN ('elderly_living_alone', 'disabled', 'low_income', 'key_focus', "
            "'party_member', 'volunteer', 'relocated_villager', 'floating_population')",
            name="resident_tags_tag",
        ),
        sa.CheckConstraint("level IS NULL OR level BETWEEN 1 AND 4", name="resident_tags_level"),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("resident_id", "tag"),
    )
    op.create_index("resident_tags_tag", "resident_tags", ["tag"], unique=False)


def downgrade() -> None:
    op.drop_index("resident_tags_tag", table_name="resident_tags")
    op.drop_table("resident_tags")
    op.drop_index("residents_name", table_name="residents")
    op.drop_index("residents_household", table_name="residents")
    op.drop_index("residents_grid", table_name="residents")
    op.drop_index("residents_birth_date", table_name="residents")
    op.drop_table("residents")
    op.drop_index("households_grid", table_name="households")
    op.drop_index("households_building", table_name="households")
    op.drop_table("households")
    op.drop_index("grid_assignments_grid", table_name="grid_assignments")
    op.drop_table("grid_assignments")
    op.drop_index("buildings_grid", table_name="buildings")
    op.drop_table("buildings")
    op.drop_table("grids")
    op.drop_table("grid_staff")

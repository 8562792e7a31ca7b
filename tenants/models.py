"""Tables inside one village schema (`vl_t_<slug>`).

They carry no schema name: every village session sets `search_path` to its own
schema, so the same definitions serve each village. No foreign key leaves the
schema (DESIGN.md, Beyond one machine).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    func,
)

metadata = MetaData()

GRID_LEVELS = ("community", "large", "micro")
STAFF_TIERS = ("grid_chief", "grid_worker", "micro_grid_worker")
GENDERS = ("male", "female")
RELATIONS = ("head", "spouse", "child", "parent", "grandchild", "sibling", "other")
RESIDENT_TAGS = (
    "elderly_living_alone",
    "disabled",
    "low_income",
    "key_focus",
    "party_member",
    "volunteer",
    "relocated_villager",
    "floating_population",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _id() -> Column:
    return Column("id", BigInteger, Identity(), primary_key=True)


def _timestamps() -> list[Column]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


grids = Table(
    "grids",
    metadata,
    _id(),
    Column("parent_id", BigInteger, ForeignKey("grids.id", ondelete="RESTRICT")),
    Column("level", Text, nullable=False),
    Column("code", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    *_timestamps(),
    CheckConstraint(_in("level", GRID_LEVELS), name="grids_level"),
)

grid_staff = Table(
    "grid_staff",
    metadata,
    _id(),
    Column("name", Text, nullable=False),
    Column("phone", Text),
    Column("tier", Text, nullable=False),
    # The identity provider's subject of this person's account, if they have one.
    Column("account_sub", Text, unique=True),
    *_timestamps(),
    CheckConstraint(_in("tier", STAFF_TIERS), name="grid_staff_tier"),
)

grid_assignments = Table(
    "grid_assignments",
    metadata,
    Column("staff_id", BigInteger, ForeignKey("grid_staff.id", ondelete="CASCADE")),
    Column("grid_id", BigInteger, ForeignKey("grids.id", ondelete="CASCADE")),
    PrimaryKeyConstraint("staff_id", "grid_id"),
    Index("grid_assignments_grid", "grid_id"),
)

buildings = Table(
    "buildings",
    metadata,
    _id(),
    Column("name", Text, nullable=False),
    Column("grid_id", BigInteger, ForeignKey("grids.id"), nullable=False),
    Column("units", SmallInteger, nullable=False),
    Column("floors", SmallInteger, nullable=False),
    *_timestamps(),
    Index("buildings_grid", "grid_id"),
)

households = Table(
    "households",
    metadata,
    _id(),
    Column("building_id", BigInteger, ForeignKey("buildings.id")),
    Column("unit_no", SmallInteger),
    Column("room_no", Text),
    Column("address", Text, nullable=False),
    Column("grid_id", BigInteger, ForeignKey("grids.id"), nullable=False),
    Column("head_resident_id", BigInteger),
    *_timestamps(),
    Index("households_grid", "grid_id"),
    Index("households_building", "building_id"),
)

residents = Table(
    "residents",
    metadata,
    _id(),
    Column("name", Text, nullable=False),
    Column("gender", Text, nullable=False),
    Column("birth_date", Date, nullable=False),
    Column("id_number", Text, nullable=False, unique=True),
    Column("phone", Text),
    Column("household_id", BigInteger, ForeignKey("households.id", ondelete="SET NULL")),
    Column("relation_to_head", Text),
    # Copied from the household by the actions that place a resident, so that
    # grid scoping and filters need no join.
    Column("grid_id", BigInteger, ForeignKey("grids.id")),
    Column("version", Integer, nullable=False, server_default="1"),
    *_timestamps(),
    CheckConstraint(_in("gender", GENDERS), name="residents_gender"),
    CheckConstraint(
        f"relation_to_head IS NULL OR {_in('relation_to_head', RELATIONS)}",
        name="residents_relation",
    ),
    Index("residents_household", "household_id"),
    Index("residents_grid", "grid_id"),
    Index("residents_birth_date", "birth_date"),
    Index("residents_name", "name"),
)

resident_tags = Table(
    "resident_tags",
    metadata,
    Column("resident_id", BigInteger, ForeignKey("residents.id", ondelete="CASCADE")),
    Column("tag", Text),
    # Disability level 1-4 (残疾等级); other tags leave it empty.
    Column("level", SmallInteger),
    Column("note", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("resident_id", "tag"),
    CheckConstraint(_in("tag", RESIDENT_TAGS), name="resident_tags_tag"),
    CheckConstraint("level IS NULL OR level BETWEEN 1 AND 4", name="resident_tags_level"),
    Index("resident_tags_tag", "tag"),
)

"""Tables inside one village schema (`vl_t_<slug>`).

They carry no schema name: every village session sets `search_path` to its own
schema, so the same definitions serve each village. No foreign key leaves the
schema (docs/design.md, Beyond one machine).
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
# 迁出留档: a resident who moved to a neighbouring village stays as a tombstone in
# the village they left (tenants/residents/transfers.py).
ACTIVE_RESIDENT = "active"
MOVED_OUT = "moved_out"
RESIDENT_STATUSES = (ACTIVE_RESIDENT, MOVED_OUT)


def one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def id_column() -> Column:
    return Column("id", BigInteger, Identity(), primary_key=True)


def archived_at() -> Column:
    """When the record was archived (归档): never deleted, since residents, requests and
    the audit log point at it, but out of the default lists and closed to new uses."""
    return Column("archived_at", DateTime(timezone=True))


def timestamps() -> list[Column]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


grids = Table(
    "grids",
    metadata,
    id_column(),
    Column("parent_id", BigInteger, ForeignKey("grids.id", ondelete="RESTRICT")),
    Column("level", Text, nullable=False),
    Column("code", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    *timestamps(),
    archived_at(),
    CheckConstraint(one_of("level", GRID_LEVELS), name="grids_level"),
)

grid_staff = Table(
    "grid_staff",
    metadata,
    id_column(),
    Column("name", Text, nullable=False),
    Column("phone", Text),
    Column("tier", Text, nullable=False),
    # The identity provider's subject of this person's account, if they have one.
    Column("account_sub", Text, unique=True),
    # Its username, shown to the village admin (the subject is an opaque id).
    Column("account_username", Text),
    # Disabled staff keep their history (alerts, requests, the roster name them) and
    # their account is disabled with them.
    Column("disabled_at", DateTime(timezone=True)),
    *timestamps(),
    CheckConstraint(one_of("tier", STAFF_TIERS), name="grid_staff_tier"),
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
    id_column(),
    Column("name", Text, nullable=False),
    Column("grid_id", BigInteger, ForeignKey("grids.id"), nullable=False),
    Column("units", SmallInteger, nullable=False),
    Column("floors", SmallInteger, nullable=False),
    *timestamps(),
    archived_at(),
    Index("buildings_grid", "grid_id"),
)

households = Table(
    "households",
    metadata,
    id_column(),
    Column("building_id", BigInteger, ForeignKey("buildings.id")),
    Column("unit_no", SmallInteger),
    Column("room_no", Text),
    Column("address", Text, nullable=False),
    Column("grid_id", BigInteger, ForeignKey("grids.id"), nullable=False),
    Column("head_resident_id", BigInteger),
    *timestamps(),
    archived_at(),
    Index("households_grid", "grid_id"),
    Index("households_building", "building_id"),
)

residents = Table(
    "residents",
    metadata,
    id_column(),
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
    *timestamps(),
    Column("status", Text, nullable=False, server_default=ACTIVE_RESIDENT),
    # The destination village's slug and the date, kept on the tombstone.
    Column("moved_to", Text),
    Column("moved_on", Date),
    CheckConstraint(one_of("gender", GENDERS), name="residents_gender"),
    CheckConstraint(one_of("status", RESIDENT_STATUSES), name="residents_status"),
    CheckConstraint(
        f"relation_to_head IS NULL OR {one_of('relation_to_head', RELATIONS)}",
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
    CheckConstraint(one_of("tag", RESIDENT_TAGS), name="resident_tags_tag"),
    CheckConstraint("level IS NULL OR level BETWEEN 1 AND 4", name="resident_tags_level"),
    Index("resident_tags_tag", "tag"),
)

# Files attached to records (tenants/attachments). `removing`: detached, or its
# record deleted; the row stays until a job has removed the objects, so a lost
# job can be found again from here.
ATTACHMENT_STATUSES = ("active", "removing")

attachments = Table(
    "attachments",
    metadata,
    id_column(),
    Column("record_type", Text, nullable=False),
    # Text, not a number: any record type may attach files, whatever its key.
    Column("record_id", Text, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("object_key", Text, nullable=False, unique=True),
    Column("filename", Text, nullable=False),
    # The sniffed type, which the attach step checked against the declared one.
    Column("content_type", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("uploaded_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("thumbnail_key", Text),
    Column("status", Text, nullable=False, server_default="active"),
    CheckConstraint(one_of("status", ATTACHMENT_STATUSES), name="attachments_status"),
    Index("attachments_record", "record_type", "record_id"),
)

# Upload URLs this village handed out: attach accepts these keys only, with the
# type and size declared when the URL was asked for. Rows past their expiry are
# swept with their objects, whether attached or abandoned.
uploads = Table(
    "uploads",
    metadata,
    Column("object_key", Text, primary_key=True),
    Column("purpose", Text, nullable=False),
    Column("filename", Text, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("attached_at", DateTime(timezone=True)),
    Index("uploads_expires_at", "expires_at"),
)

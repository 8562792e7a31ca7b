"""Tables of the request closed loop (诉求/工单) and action lists (行动清单) in one village.

分类登记、分级处置、限时反馈、跟踪督办: a request is registered with a category,
graded (which sets its deadline), worked through its states with a timeline
entry for every change, escalated grid → village → region when overdue, and
rated by the resident. Action lists group requests into concrete actions.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)

# The village tables' own column helpers, so that every domain's tables look alike.
from villagelink.tenants.models import id_column, metadata, one_of, timestamps

# Residents' own reports (心声) come from the residents' app: the mini-program.
MINI_PROGRAM = "mini_program"
CHANNELS = (MINI_PROGRAM, "grid_worker", "phone", "walk_in", "hotline_12345")

SIMPLE = "simple"  # 简易当场处置
COMPLEX = "complex"  # 复杂多方联动
HARD = "hard"  # 疑难专项攻坚
GRADES = (SIMPLE, COMPLEX, HARD)

SUBMITTED = "submitted"
ACCEPTED = "accepted"
ASSIGNED = "assigned"
IN_PROGRESS = "in_progress"
RESOLVED = "resolved"
CLOSED = "closed"
REJECTED = "rejected"
REOPENED = "reopened"
REQUEST_STATES = (
    SUBMITTED,
    ACCEPTED,
    ASSIGNED,
    IN_PROGRESS,
    RESOLVED,
    CLOSED,
    REJECTED,
    REOPENED,
)
# States in which a request waits for someone to act: its deadline runs.
OPEN_STATES = (SUBMITTED, ACCEPTED, ASSIGNED, IN_PROGRESS, REOPENED)

# 小事不出网格、大事不出社区、难事部门联动.
GRID = "grid"
VILLAGE = "village"
REGION = "region"
ESCALATION_LEVELS = (GRID, VILLAGE, REGION)

PLANNED = "planned"
UNDERWAY = "in_progress"
DONE = "done"
CANCELLED = "cancelled"
ACTION_LIST_STATUSES = (PLANNED, UNDERWAY, DONE, CANCELLED)

# Deadline of each grade, in hours, until a village sets its own: 24 h / 72 h / 15 days.
DEFAULT_DEADLINE_HOURS = {SIMPLE: 24, COMPLEX: 72, HARD: 15 * 24}

# Categories are a tree of two levels: the seeded ones (and any a village adds at
# the top) and the sub-categories a village adds below them.
request_categories = Table(
    "request_categories",
    metadata,
    id_column(),
    # Stable across villages, so that coordinators can count by category region-wide.
    Column("code", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("parent_id", BigInteger, ForeignKey("request_categories.id", ondelete="RESTRICT")),
    Column("position", SmallInteger, nullable=False, server_default="0"),
    # A retired category keeps its requests but takes no new ones.
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Top-level names too must differ: NULL parents count as one.
    UniqueConstraint(
        "parent_id",
        "name",
        name="request_categories_sibling_name",
        postgresql_nulls_not_distinct=True,
    ),
    Index("request_categories_parent", "parent_id"),
)

# One row per village (id is always 1): the deadline of each grade.
request_settings = Table(
    "request_settings",
    metadata,
    Column("id", SmallInteger, primary_key=True, server_default="1"),
    Column("simple_hours", Integer, nullable=False, server_default="24"),
    Column("complex_hours", Integer, nullable=False, server_default="72"),
    Column("hard_hours", Integer, nullable=False, server_default="360"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("id = 1", name="request_settings_single_row"),
    CheckConstraint(
        "simple_hours > 0 AND complex_hours > 0 AND hard_hours > 0",
        name="request_settings_positive",
    ),
)

requests = Table(
    "requests",
    metadata,
    id_column(),
    Column("channel", Text, nullable=False),
    Column(
        "category_id",
        BigInteger,
        ForeignKey("request_categories.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("grade", Text, nullable=False),
    Column("state", Text, nullable=False, server_default=SUBMITTED),
    Column("description", Text, nullable=False),
    # Where: a household, a building, or words; the grid follows from the first two.
    Column("household_id", BigInteger, ForeignKey("households.id", ondelete="SET NULL")),
    Column("building_id", BigInteger, ForeignKey("buildings.id", ondelete="SET NULL")),
    Column("location_text", Text),
    Column("grid_id", BigInteger, ForeignKey("grids.id", ondelete="SET NULL")),
    # Who: a resident, or a name and phone. The name is kept either way, as reported.
    Column("reporter_resident_id", BigInteger, ForeignKey("residents.id", ondelete="SET NULL")),
    Column("reporter_name", Text, nullable=False),
    Column("reporter_phone", Text),
    Column("assignee_staff_id", BigInteger, ForeignKey("grid_staff.id", ondelete="SET NULL")),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("escalation_level", Text, nullable=False, server_default=GRID),
    # Reached the region: the region's coordinators are to take it up (难事部门联动).
    Column("needs_coordination", Boolean, nullable=False, server_default=text("false")),
    Column("escalated_at", DateTime(timezone=True)),
    Column("rejection_reason", Text),
    # What was done, as the resident is told (限时反馈).
    Column("resolution", Text),
    Column("resolved_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("rating", SmallInteger),
    Column("rating_comment", Text),
    Column("rated_at", DateTime(timezone=True)),
    # Raised by every change; neighbours receiving it keep the highest they saw.
    Column("version", Integer, nullable=False, server_default="1"),
    *timestamps(),
    CheckConstraint(one_of("channel", CHANNELS), name="requests_channel"),
    CheckConstraint(one_of("grade", GRADES), name="requests_grade"),
    CheckConstraint(one_of("state", REQUEST_STATES), name="requests_state"),
    CheckConstraint(
        one_of("escalation_level", ESCALATION_LEVELS), name="requests_escalation_level"
    ),
    CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="requests_rating"),
    Index("requests_state", "state"),
    Index("requests_category", "category_id"),
    Index("requests_grid", "grid_id"),
    Index("requests_assignee", "assignee_staff_id"),
    Index("requests_created_at", "created_at"),
    # The escalation sweep and the overdue counts look at open requests by deadline.
    Index(
        "requests_open_due_at",
        "due_at",
        postgresql_where=text(f"{one_of('state', OPEN_STATES)}"),
    ),
)

# The timeline (处置记录): one row per change of a request, never updated.
request_events = Table(
    "request_events",
    metadata,
    id_column(),
    Column(
        "request_id",
        BigInteger,
        ForeignKey("requests.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # The step: create, accept, assign, escalate, rate, add_to_action_list, ...
    Column("action", Text, nullable=False),
    Column("from_state", Text),
    Column("to_state", Text, nullable=False),
    # The level an escalation reached; empty for other steps.
    Column("escalation_level", Text),
    Column("note", Text),
    Column("actor_sub", Text, nullable=False),
    Column("actor_name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("request_events_request", "request_id", "id"),
)

action_lists = Table(
    "action_lists",
    metadata,
    id_column(),
    Column("title", Text, nullable=False),
    Column("description", Text),
    # Who answers for it: a person, a team or a department (e.g. 物业公司).
    Column("owner", Text, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("status", Text, nullable=False, server_default=PLANNED),
    Column("version", Integer, nullable=False, server_default="1"),
    *timestamps(),
    CheckConstraint(one_of("status", ACTION_LIST_STATUSES), name="action_lists_status"),
    Index("action_lists_status", "status"),
)

action_list_requests = Table(
    "action_list_requests",
    metadata,
    Column("action_list_id", BigInteger, ForeignKey("action_lists.id", ondelete="CASCADE")),
    Column("request_id", BigInteger, ForeignKey("requests.id", ondelete="CASCADE")),
    PrimaryKeyConstraint("action_list_id", "request_id"),
    Index("action_list_requests_request", "request_id"),
)

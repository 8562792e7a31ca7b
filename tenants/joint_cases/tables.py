"""Tables of joint cases (难事部门联动) in the village that opened them (the origin).

A joint case is a request of the origin village that spans villages: the origin
keeps the case and its one timeline; the involved villages and the region's
coordinators act on it there (GraphQL, `ctx.neighbour` or the coordinator's
reach) and read the copies the sync publishes to them.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    func,
)

from villagelink.tenants.models import id_column, metadata, one_of

OPEN = "open"
IN_PROGRESS = "in_progress"
RESOLVED = "resolved"
CLOSED = "closed"
STATES = (OPEN, IN_PROGRESS, RESOLVED, CLOSED)
# Which state may follow which: a resolved case may be taken up again, a closed one is done.
TRANSITIONS = {
    OPEN: (IN_PROGRESS, RESOLVED, CLOSED),
    IN_PROGRESS: (RESOLVED, CLOSED),
    RESOLVED: (IN_PROGRESS, CLOSED),
    CLOSED: (),
}
PRIORITIES = ("normal", "high", "urgent")

NOTE = "note"
STATE_CHANGE = "state_change"
VILLAGE_ADDED = "village_added"
OPENED = "opened"
EVENT_KINDS = (OPENED, NOTE, STATE_CHANGE, VILLAGE_ADDED)

joint_cases = Table(
    "joint_cases",
    metadata,
    id_column(),
    Column(
        "request_id",
        BigInteger,
        ForeignKey("requests.id", ondelete="RESTRICT"),
        nullable=False,
        unique=True,
    ),
    Column("title", Text, nullable=False),
    # The request category's code: stable across villages (requests.tables).
    Column("category", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("state", Text, nullable=False, server_default=OPEN),
    Column("priority", Text, nullable=False, server_default="normal"),
    # The involved villages besides the origin (slugs).
    Column("villages", ARRAY(Text), nullable=False),
    Column("opened_by", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Raised by every change; the copies keep the highest they saw.
    Column("version", Integer, nullable=False, server_default="1"),
    CheckConstraint(one_of("state", STATES), name="joint_cases_state"),
    CheckConstraint(one_of("priority", PRIORITIES), name="joint_cases_priority"),
    CheckConstraint("cardinality(villages) > 0", name="joint_cases_villages"),
)

# The one shared timeline: every village's and coordinator's step, never updated.
joint_case_events = Table(
    "joint_case_events",
    metadata,
    id_column(),
    Column(
        "case_id",
        BigInteger,
        ForeignKey("joint_cases.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # The village that acted (the origin, an involved village), or the region's id
    # for a coordinator.
    Column("village", Text, nullable=False),
    Column("actor_sub", Text, nullable=False),
    Column("actor_name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("note", Text),
    Column("state", Text),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(one_of("kind", EVENT_KINDS), name="joint_case_events_kind"),
    Index("joint_case_events_case", "case_id", "id"),
)

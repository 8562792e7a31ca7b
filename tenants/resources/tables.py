"""Tables of shared resources (共享资源) and their bookings (预约) inside one village
schema; created by migration `rs0001`.

A booking always lives in the village that owns the resource, whoever asked for
it: the owner's admins decide on it there, and the requesting village reads its
own requests back through the agreement that let it book (never a copy).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from villagelink.tenants.models import id_column, metadata, one_of

RESOURCE_KINDS = ("micro_fire_station", "venue", "aed", "vehicle")
RESOURCE_STATUSES = ("available", "unavailable", "retired")
RETIRED = "retired"
BOOKING_STATES = ("pending", "approved", "rejected", "cancelled")


def _now(name: str) -> Column:
    return Column(name, DateTime(timezone=True), nullable=False, server_default=func.now())


shared_resources = Table(
    "shared_resources",
    metadata,
    id_column(),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text),
    Column("location_text", Text),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("contact_name", Text),
    Column("contact_phone", Text),
    Column("status", Text, nullable=False, server_default="available"),
    # Whether it takes bookings at all (an AED on a wall is shown, not booked).
    Column("bookable", Boolean, nullable=False, server_default=text("true")),
    # Offered to neighbours: published through the outbox under an agreement.
    Column("shared", Boolean, nullable=False, server_default=text("false")),
    Column("version", Integer, nullable=False, server_default="1"),
    _now("created_at"),
    _now("updated_at"),
    CheckConstraint(one_of("kind", RESOURCE_KINDS), name="shared_resources_kind"),
    CheckConstraint(one_of("status", RESOURCE_STATUSES), name="shared_resources_status"),
    CheckConstraint(
        "(latitude IS NULL) = (longitude IS NULL)"
        " AND (latitude IS NULL OR latitude BETWEEN -90 AND 90)"
        " AND (longitude IS NULL OR longitude BETWEEN -180 AND 180)",
        name="shared_resources_position",
    ),
    # Two resources in service never share a name: admins and neighbours tell them apart by it.
    Index(
        "shared_resources_name",
        "name",
        unique=True,
        postgresql_where=text("status <> 'retired'"),
    ),
)

resource_bookings = Table(
    "resource_bookings",
    metadata,
    id_column(),
    Column(
        "resource_id",
        BigInteger,
        ForeignKey("shared_resources.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # The village the booking is for: this village's own slug or a neighbour's.
    Column("requester_village", Text, nullable=False),
    Column("requester_name", Text, nullable=False),
    Column("requester_phone", Text),
    Column("purpose", Text, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("requested_by", Text, nullable=False),  # the principal's subject
    # The agreements in force that let a neighbour book (empty for the owner's own).
    Column("agreement_ids", ARRAY(BigInteger), nullable=False, server_default="{}"),
    Column("decided_by", Text),
    Column("decided_at", DateTime(timezone=True)),
    Column("cancelled_by", Text),
    Column("cancelled_by_village", Text),
    Column("cancelled_at", DateTime(timezone=True)),
    # Why it was rejected or cancelled.
    Column("reason", Text),
    _now("created_at"),
    _now("updated_at"),
    CheckConstraint(one_of("state", BOOKING_STATES), name="resource_bookings_state"),
    CheckConstraint("ends_at > starts_at", name="resource_bookings_period"),
    # The overlap check reads the approved bookings of one resource around a period.
    Index("resource_bookings_resource", "resource_id", "state", "starts_at"),
    Index("resource_bookings_requester", "requester_village", "id"),
)

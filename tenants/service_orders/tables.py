"""Tables of the service orders (便民服务预约) inside one village schema.

基层点单 → 中心派单 → 志愿组织接单 → 群众评单: a catalogue of services, time slots
with a capacity, orders taking a place in a slot, and each order's timeline.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)

# The village tables' own column helpers, so that every domain's tables look alike.
from villagelink.tenants.models import id_column, metadata, one_of, timestamps

SERVICE_CATEGORIES = (
    "haircut",  # 理发
    "knife_sharpening",  # 磨刀磨剪
    "home_repair",  # 上门维修
    "free_clinic",  # 义诊
    "legal_advice",  # 法律咨询
    "elderly_care",  # 助老服务
    "other",  # 其他
)

ORDERED = "ordered"
DISPATCHED = "dispatched"
ACCEPTED = "accepted"
DECLINED = "declined"
COMPLETED = "completed"
RATED = "rated"
CANCELLED = "cancelled"
ORDER_STATES = (ORDERED, DISPATCHED, ACCEPTED, DECLINED, COMPLETED, RATED, CANCELLED)


service_items = Table(
    "service_items",
    metadata,
    id_column(),
    Column("name", Text, nullable=False, unique=True),
    Column("category", Text, nullable=False),
    Column("description", Text),
    # A withdrawn item keeps its slots and orders but takes no new ones.
    Column("active", Boolean, nullable=False, server_default=text("true")),
    # Neighbours receive the catalogue through the outbox and keep the highest version.
    Column("version", Integer, nullable=False, server_default="1"),
    *timestamps(),
    CheckConstraint(one_of("category", SERVICE_CATEGORIES), name="service_items_category"),
)

service_slots = Table(
    "service_slots",
    metadata,
    id_column(),
    Column(
        "service_item_id",
        BigInteger,
        ForeignKey("service_items.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("capacity", Integer, nullable=False),
    # Places taken; raised only by a conditional UPDATE (booked < capacity) when ordering.
    Column("booked", Integer, nullable=False, server_default="0"),
    *timestamps(),
    CheckConstraint("ends_at > starts_at", name="service_slots_period"),
    CheckConstraint("capacity > 0", name="service_slots_capacity"),
    # The last line of defence: even a faulty write cannot overbook.
    CheckConstraint("booked BETWEEN 0 AND capacity", name="service_slots_booked"),
    Index("service_slots_item_start", "service_item_id", "starts_at"),
)

service_orders = Table(
    "service_orders",
    metadata,
    id_column(),
    Column(
        "service_item_id",
        BigInteger,
        ForeignKey("service_items.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column(
        "service_slot_id",
        BigInteger,
        ForeignKey("service_slots.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column(
        "resident_id", BigInteger, ForeignKey("residents.id", ondelete="RESTRICT"), nullable=False
    ),
    Column("state", Text, nullable=False, server_default=ORDERED),
    # No foreign key: volunteer teams belong to the activities domain, which grows on
    # its own migration branch; the dispatch action checks the team exists instead.
    Column("volunteer_team_id", BigInteger),
    Column("note", Text),
    Column("rating", SmallInteger),
    Column("rating_comment", Text),
    Column("version", Integer, nullable=False, server_default="1"),
    *timestamps(),
    CheckConstraint(one_of("state", ORDER_STATES), name="service_orders_state"),
    CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="service_orders_rating"),
    Index("service_orders_slot", "service_slot_id"),
    Index("service_orders_item", "service_item_id"),
    Index("service_orders_resident", "resident_id"),
    Index("service_orders_team", "volunteer_team_id"),
    Index("service_orders_state", "state"),
    # One place per resident and slot, unless the earlier order was cancelled.
    Index(
        "service_orders_one_per_slot",
        "service_slot_id",
        "resident_id",
        unique=True,
        postgresql_where=text("state <> 'cancelled'"),
    ),
)

service_order_events = Table(
    "service_order_events",
    metadata,
    id_column(),
    Column(
        "service_order_id",
        BigInteger,
        ForeignKey("service_orders.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # Null for the entry that places the order.
    Column("from_state", Text),
    Column("to_state", Text, nullable=False),
    # The team the step concerned (dispatched to, accepted or declined by).
    Column("volunteer_team_id", BigInteger),
    Column("actor_sub", Text, nullable=False),
    Column("actor_name", Text),
    Column("note", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("service_order_events_order", "service_order_id", "id"),
)

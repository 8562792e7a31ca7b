"""Webhook tables of the platform schema: subscriptions, deliveries and every attempt.

They live beside `api_clients` (a subscription is a client's), not in a village
schema: one subscription covers every village the client is granted. Village
roles have no rights on them; the jobs and the API reach them as the
application role (`Database.platform()`).
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
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from villagelink.platform.models import metadata
from villagelink.tenants.models import id_column, one_of, timestamps

ACTIVE = "active"
# Failing too long: gets no new deliveries until the client resumes it.
PAUSED = "paused"
SUBSCRIPTION_STATES = (ACTIVE, PAUSED)

PENDING = "pending"  # waiting for its first or next attempt
DELIVERED = "delivered"  # a 2xx answer
FAILED = "failed"  # retries exhausted, or its subscription paused
DELIVERY_STATES = (PENDING, DELIVERED, FAILED)

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    id_column(),
    Column(
        "client_id",
        Text,
        ForeignKey("platform.api_clients.client_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("url", Text, nullable=False),
    Column("event_types", ARRAY(Text), nullable=False),
    # Kept as is: signing needs it. Shown only by subscribe and rotate.
    Column("secret", Text, nullable=False),
    Column("state", Text, nullable=False, server_default=ACTIVE),
    # Failure bookkeeping: a 2xx clears both.
    Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
    Column("failing_since", DateTime(timezone=True)),
    Column("paused_at", DateTime(timezone=True)),
    Column("pause_reason", Text),
    *timestamps(),
    CheckConstraint(one_of("state", SUBSCRIPTION_STATES), name="webhook_subscriptions_state"),
    # One subscription per endpoint of a client: a second would deliver everything twice.
    UniqueConstraint("client_id", "url", name="webhook_subscriptions_client_url"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    id_column(),
    Column(
        "subscription_id",
        BigInteger,
        ForeignKey("platform.webhook_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # The envelope's `id`: one per event, shared by its deliveries to every subscription
    # and by redeliveries, so that a receiver can drop what it has seen.
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("village", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("state", Text, nullable=False, server_default=PENDING),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # When the next attempt is due while pending (a job holding it pushes it on by a
    # lease); the sweep re-enqueues pending deliveries long past it.
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("delivered_at", DateTime(timezone=True)),
    # The failed delivery this one replays (same subscription, so no foreign key is
    # needed to keep it meaningful: both go when the subscription goes).
    Column("redelivery_of", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(one_of("state", DELIVERY_STATES), name="webhook_deliveries_state"),
    Index("webhook_deliveries_subscription", "subscription_id", "id"),
    Index(
        "webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("state = 'pending'"),
    ),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    id_column(),
    Column(
        "delivery_id",
        BigInteger,
        ForeignKey("platform.webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempted_at", DateTime(timezone=True), nullable=False),
    # The HTTP status, or null when there was none (refused, timed out) and `error` says why.
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
    Column("response_excerpt", Text),
    Index("webhook_attempts_delivery", "delivery_id", "id"),
)

"""Tables of the linkage: agreements (platform schema) and the exchange schema.

Agreements live beside the regions and neighbour links they build on. The exchange
schema holds the shared copies and the log of what crossed: written only by the
application role (the sync jobs), read by village and region roles through
row-level security (migration 0003).
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from villagelink.platform.models import metadata
from villagelink.tenants.outbox import Xid8

NEIGHBOUR = "neighbour"
REGION = "region"

# Agreement states.
PROPOSED = "proposed"
ACTIVE = "active"
DECLINED = "declined"
REVOKED = "revoked"
EXPIRED = "expired"

# A party's own answer.
PENDING = "pending"
ACCEPTED = "accepted"
LEFT = "left"  # a member that revoked its part of a region-wide agreement

agreements = Table(
    "agreements",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column(
        "proposer",
        Text,
        ForeignKey("platform.tenants.slug", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("region_id", Text, ForeignKey("platform.regions.id"), nullable=False),
    # A neighbour agreement has two parties; a region-wide one every village of the
    # region when proposed, each answering for itself.
    Column("scope", Text, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("record_types", ARRAY(Text), nullable=False),
    # {record type: [field, ...]}, each a subset of the catalogue's fields.
    Column("fields", JSONB, nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_until", DateTime(timezone=True)),
    Column("state", Text, nullable=False, server_default=PROPOSED),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("scope IN ('neighbour', 'region')", name="agreements_scope"),
    CheckConstraint(
        "state IN ('proposed', 'active', 'declined', 'revoked', 'expired')",
        name="agreements_state",
    ),
    CheckConstraint("valid_until IS NULL OR valid_until > valid_from", name="agreements_validity"),
    CheckConstraint("cardinality(record_types) > 0", name="agreements_record_types"),
)

agreement_parties = Table(
    "agreement_parties",
    metadata,
    Column("agreement_id", BigInteger, nullable=False),
    Column("village", Text, ForeignKey("platform.tenants.slug", ondelete="CASCADE")),
    Column("state", Text, nullable=False, server_default=PENDING),
    Column("decided_at", DateTime(timezone=True)),
    Column("decided_by", Text),
    PrimaryKeyConstraint("agreement_id", "village"),
    ForeignKeyConstraint(["agreement_id"], ["platform.agreements.id"], ondelete="CASCADE"),
    CheckConstraint(
        "state IN ('pending', 'accepted', 'declined', 'left')", name="agreement_parties_state"
    ),
    Index("agreement_parties_village", "village", "state"),
)

# The history both sides read: every proposal, answer, revocation and expiry.
agreement_events = Table(
    "agreement_events",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("agreement_id", BigInteger, nullable=False),
    Column("village", Text),
    Column("action", Text, nullable=False),
    Column("actor_sub", Text, nullable=False),
    Column("actor_name", Text),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(["agreement_id"], ["platform.agreements.id"], ondelete="CASCADE"),
    Index("agreement_events_agreement", "agreement_id", "id"),
)

EXCHANGE = "exchange"
exchange_metadata = MetaData(schema=EXCHANGE)

# The audience of the copies only the region's coordinators read.
REGION_AUDIENCE = "@region"

# One shared copy per (origin village, record type, origin id) and audience: each
# audience gets the fields its own agreements allow.
records = Table(
    "records",
    exchange_metadata,
    Column("origin", Text, nullable=False),
    Column("record_type", Text, nullable=False),
    Column("origin_id", BigInteger, nullable=False),
    Column("audience", Text, nullable=False),
    Column("region_id", Text, nullable=False),
    Column("agreement_ids", ARRAY(BigInteger), nullable=False),
    Column("version", Integer, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("payload_hash", Text, nullable=False),
    # When the change was written in the origin village (its outbox row).
    Column("committed_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("origin", "record_type", "origin_id", "audience"),
    Index("records_audience", "audience", "record_type", "committed_at"),
    Index("records_region", "region_id", "record_type", "committed_at"),
)

PUBLISH = "publish"
WITHDRAW = "withdraw"

log = Table(
    "log",
    exchange_metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("action", Text, nullable=False),
    Column("origin", Text, nullable=False),
    Column("audience", Text, nullable=False),
    Column("region_id", Text, nullable=False),
    Column("record_type", Text, nullable=False),
    Column("origin_id", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    Column("agreement_ids", ARRAY(BigInteger), nullable=False),
    Column("payload_hash", Text),
    # Why a copy was withdrawn (deleted at the origin, agreement revoked or expired...).
    Column("reason", Text),
    # Commit at the origin → visible to the audience, for what was published.
    Column("lag_ms", Integer),
    CheckConstraint("action IN ('publish', 'withdraw')", name="log_action"),
    Index("log_origin", "origin", "id"),
    Index("log_audience", "audience", "id"),
    Index("log_time", "occurred_at"),
)

# How far the sync has read each village's outbox, and what stopped it last.
cursors = Table(
    "cursors",
    exchange_metadata,
    Column("village", Text, primary_key=True),
    Column("outbox_id", BigInteger, nullable=False, server_default=text("0")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("failed_at", DateTime(timezone=True)),
    # The position is the last outbox row published in (transaction id, id) order.
    # Rows of transactions newer than the oldest one still running wait, committed or
    # not: `waiting_since` says since when the sync has been holding such rows back.
    Column("outbox_xid", Xid8(), nullable=False, server_default=text("'0'")),
    Column("waiting_since", DateTime(timezone=True)),
)

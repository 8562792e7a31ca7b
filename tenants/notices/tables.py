"""Tables of the public notices (村务公开) inside one village schema.

A notice is drafted, published (residents see it inside its publish window)
and withdrawn with a reason; a withdrawn notice may go back to draft to be
corrected. Residents' reads are counted per notice: one row per reader, who is
known only by a salted hash of what their app calls them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)

# The village tables' own column helpers, so that every domain's tables look alike.
from villagelink.tenants.models import id_column, metadata, one_of, timestamps

PARTY_AFFAIRS = "party_affairs"  # 党务公开
VILLAGE_AFFAIRS = "village_affairs"  # 村务公开
FINANCES = "finances"  # 财务公开
CATEGORIES = (PARTY_AFFAIRS, VILLAGE_AFFAIRS, FINANCES)

DRAFT = "draft"
PUBLISHED = "published"
WITHDRAWN = "withdrawn"
STATES = (DRAFT, PUBLISHED, WITHDRAWN)

notices = Table(
    "notices",
    metadata,
    id_column(),
    Column("category", Text, nullable=False),
    # Empty while drafting; publishing needs both.
    Column("title", Text, nullable=False, server_default=""),
    Column("body", Text, nullable=False, server_default=""),
    Column("state", Text, nullable=False, server_default=DRAFT),
    # The publish window: residents see a published notice only inside it (either end open).
    Column("publish_from", DateTime(timezone=True)),
    Column("publish_until", DateTime(timezone=True)),
    # When it was last published; a draft that has one was published before.
    Column("published_at", DateTime(timezone=True)),
    Column("withdrawn_at", DateTime(timezone=True)),
    Column("withdrawal_reason", Text),
    # Per notice, so that the hashes of one reader cannot be matched across notices.
    Column(
        "reader_salt",
        LargeBinary,
        nullable=False,
        server_default=text("uuid_send(gen_random_uuid())"),
    ),
    # Neighbours receive notices through the outbox and keep the highest version.
    Column("version", Integer, nullable=False, server_default="1"),
    *timestamps(),
    CheckConstraint(one_of("category", CATEGORIES), name="notices_category"),
    CheckConstraint(one_of("state", STATES), name="notices_state"),
    CheckConstraint(
        "publish_from IS NULL OR publish_until IS NULL OR publish_until > publish_from",
        name="notices_window",
    ),
    CheckConstraint("state = 'draft' OR published_at IS NOT NULL", name="notices_published_at"),
    CheckConstraint(
        "state <> 'withdrawn' OR (withdrawn_at IS NOT NULL AND withdrawal_reason IS NOT NULL)",
        name="notices_withdrawal",
    ),
)

notice_reads = Table(
    "notice_reads",
    metadata,
    Column("notice_id", BigInteger, ForeignKey("notices.id", ondelete="CASCADE"), nullable=False),
    # HMAC-SHA256 of the app's client id and its reader id, keyed by the notice's salt.
    Column("reader_hash", LargeBinary, nullable=False),
    Column("reads", Integer, nullable=False, server_default="1"),
    Column("first_read_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_read_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("notice_id", "reader_hash"),
)

"""Tables of the platform schema: who the villages are and how they relate.

Nothing in a village schema points here by foreign key (docs/design.md:
village schemas stay movable to a Citus worker); the platform refers to villages by slug.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
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
from sqlalchemy.dialects.postgresql import JSONB, UUID

SCHEMA = "platform"
metadata = MetaData(schema=SCHEMA)

regions = Table(
    "regions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

tenants = Table(
    "tenants",
    metadata,
    Column("slug", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("region_id", Text, ForeignKey("platform.regions.id"), nullable=False),
    Column("status", Text, nullable=False, server_default="active"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Kept by the village's admin (updateVillage); the office's, so neither is masked.
    Column("address", Text),
    Column("contact_phone", Text),
    CheckConstraint("status IN ('active', 'disabled')", name="tenants_status"),
)

# Moved by triggers with every change to villages, regions and API client grants
# (migration ac0001): what the gateway's kept reach of a caller is checked against.
access_epoch = Table(
    "access_epoch",
    metadata,
    Column("one", Boolean, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

neighbour_links = Table(
    "neighbour_links",
    metadata,
    Column("village_a", Text, ForeignKey("platform.tenants.slug", ondelete="CASCADE")),
    Column("village_b", Text, ForeignKey("platform.tenants.slug", ondelete="CASCADE")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("village_a", "village_b"),
    # One row per unordered pair: the smaller slug always comes first.
    CheckConstraint("village_a < village_b", name="neighbour_links_ordered"),
)

api_clients = Table(
    "api_clients",
    metadata,
    Column("client_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("villages", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("scopes", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Written by the gateway at most once a minute per client (platform/api_clients.py).
    Column("last_used_at", DateTime(timezone=True)),
)

# The development issuer's accounts and API client secrets: what Keycloak holds when it is
# configured (platform/identity/accounts.py). Passwords and secrets as scrypt hashes only.
dev_accounts = Table(
    "dev_accounts",
    metadata,
    Column("sub", Text, primary_key=True),
    Column("username", Text, nullable=False, unique=True),
    Column("password_hash", Text),
    Column("roles", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("villages", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Shown by the console as who is signed in (the ID token's `name`).
    Column("name", Text),
    Column("regions", ARRAY(Text), nullable=False, server_default=text("'{}'")),
)

dev_client_secrets = Table(
    "dev_client_secrets",
    metadata,
    Column("client_id", Text, primary_key=True),
    Column("secret_hash", Text, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid()),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("village", Text),
    Column("actor_sub", Text, nullable=False),
    Column("actor_name", Text),
    Column("actor_roles", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("client_id", Text),
    Column("action", Text, nullable=False),
    Column("subject_type", Text),
    Column("subject_id", Text),
    Column("fields", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("reason", Text),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("request_id", Text),
    Index("audit_log_village_time", "village", "occurred_at"),
    # Village roles may insert but not read entries, so no RETURNING.
    implicit_returning=False,
)

village_stats = Table(
    "village_stats",
    metadata,
    Column(
        "village", Text, ForeignKey("platform.tenants.slug", ondelete="CASCADE"), primary_key=True
    ),
    Column("residents", Integer, nullable=False),
    Column("households", Integer, nullable=False),
    Column("aged_60_plus", Integer, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# A region's figures as an .xlsx in the region's storage space, until the link expires
# (storage/exports.py; the village's own exports are its resident_exports).
region_exports = Table(
    "region_exports",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column(
        "region_id", Text, ForeignKey("platform.regions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("object_key", Text, nullable=False, unique=True),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("region_exports_expires_at", "region_id", "expires_at"),
)

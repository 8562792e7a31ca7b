"""Residents' own accounts (居民账号): which account acts for which resident record."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Table,
    Text,
    text,
)

from villagelink.tenants.models import id_column, metadata, one_of, timestamps

RESIDENT_ACCOUNT = "ResidentAccount"

PENDING = "pending"
BOUND = "bound"
REJECTED = "rejected"
UNBOUND = "unbound"
ACCOUNT_STATES = (PENDING, BOUND, REJECTED, UNBOUND)
# How the binding came about: the admin bound it at the counter, or approved a request.
BY_ADMIN = "admin"
BY_REQUEST = "request"
ACCOUNT_SOURCES = (BY_ADMIN, BY_REQUEST)

resident_accounts = Table(
    "resident_accounts",
    metadata,
    id_column(),
    # The account's subject (`sub` of its tokens) and name as the identity provider has them.
    Column("account_sub", Text, nullable=False),
    Column("username", Text),
    # Null on a request that matched no record; the admin then rejects it or binds directly.
    Column("resident_id", BigInteger, ForeignKey("residents.id", ondelete="CASCADE")),
    Column("state", Text, nullable=False),
    Column("source", Text, nullable=False),
    # How the admin checked who the person is (实名认证), e.g. 身份证原件核验.
    Column("verification", Text),
    Column("decided_by", Text),
    Column("decided_at", DateTime(timezone=True)),
    Column("reason", Text),
    *timestamps(),
    CheckConstraint(one_of("state", ACCOUNT_STATES), name="resident_accounts_state"),
    CheckConstraint(one_of("source", ACCOUNT_SOURCES), name="resident_accounts_source"),
    # One live request or binding per account, one bound account per resident.
    Index(
        "resident_accounts_live_account",
        "account_sub",
        unique=True,
        postgresql_where=text("state IN ('pending', 'bound')"),
    ),
    Index(
        "resident_accounts_bound_resident",
        "resident_id",
        unique=True,
        postgresql_where=text("state = 'bound'"),
    ),
    Index("resident_accounts_state", "state", "id"),
)

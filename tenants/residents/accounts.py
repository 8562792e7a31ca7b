"""Residents' own accounts (居民账号): which account acts for which resident record.

An account is bound to one resident by the village admin after checking who the
person is (实名认证), either directly or by approving the resident's own request
(ID number and phone). A request is matched to a record here, out of the
requester's sight: they hear the same answer whether a record matched or not.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Table,
    Text,
    func,
    select,
    text,
)

from villagelink.tenants import models as m
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


def bound_resident(conn: Connection, account_sub: str) -> dict | None:
    """The active resident record the account acts for, or None."""
    r = m.residents
    row = (
        conn.execute(
            select(r)
            .join(resident_accounts, resident_accounts.c.resident_id == r.c.id)
            .where(
                resident_accounts.c.account_sub == account_sub,
                resident_accounts.c.state == BOUND,
                r.c.status == m.ACTIVE_RESIDENT,
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def account_of(conn: Connection, account_sub: str) -> dict | None:
    """The account's live request or binding, if any."""
    row = (
        conn.execute(
            select(resident_accounts).where(
                resident_accounts.c.account_sub == account_sub,
                resident_accounts.c.state.in_((PENDING, BOUND)),
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def latest_account(conn: Connection, account_sub: str) -> dict | None:
    """The account's latest request or binding, whatever its state (what it hears of it)."""
    a = resident_accounts
    row = (
        conn.execute(
            select(a).where(a.c.account_sub == account_sub).order_by(a.c.id.desc()).limit(1)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def accounts_by_ids(conn: Connection, ids: list[int]) -> dict[int, dict]:
    rows = conn.execute(select(resident_accounts).where(resident_accounts.c.id.in_(ids)))
    return {row["id"]: dict(row) for row in rows.mappings()}


def account_page(
    conn: Connection, state: str | None, *, after_id: int | None, limit: int
) -> list[dict]:
    """Requests and bindings, oldest first: the console's 待审核 queue with state=pending."""
    a = resident_accounts
    query = select(a).order_by(a.c.id).limit(limit)
    if state is not None:
        query = query.where(a.c.state == state)
    if after_id is not None:
        query = query.where(a.c.id > after_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def account_count(conn: Connection, state: str | None) -> int:
    a = resident_accounts
    query = select(func.count()).select_from(a)
    if state is not None:
        query = query.where(a.c.state == state)
    return conn.execute(query).scalar_one()

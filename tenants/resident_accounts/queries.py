"""Reading residents' accounts (居民账号): the record an account acts for, an account's
request or binding, and the admin's queue."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from villagelink.tenants import models as m
from villagelink.tenants.querying import limit_of
from villagelink.tenants.resident_accounts.tables import BOUND, PENDING, resident_accounts


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


def bound_residents_with_phone(conn: Connection, phone: str) -> list[int]:
    """Active residents of this phone whose app account is bound, by id."""
    r = m.residents
    return list(
        conn.execute(
            select(r.c.id)
            .join(resident_accounts, resident_accounts.c.resident_id == r.c.id)
            .where(
                r.c.phone == phone,
                resident_accounts.c.state == BOUND,
                r.c.status == m.ACTIVE_RESIDENT,
            )
            .order_by(r.c.id)
        ).scalars()
    )


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
            select(a)
            .where(a.c.account_sub == account_sub)
            .order_by(a.c.id.desc())
            .limit(limit_of(1))
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
    query = select(a).order_by(a.c.id).limit(limit_of(limit))
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

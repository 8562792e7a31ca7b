"""Reading webhook subscriptions, deliveries and attempts: a page at a time, batched.

A subscription is read without its secret: only subscribe and rotate hand it out.
`client_id=None` reads every client's (a platform admin); otherwise only that client's.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ARRAY, BigInteger, Connection, cast, func, select, true

from villagelink.platform import models as pm
from villagelink.platform.webhooks.tables import (
    webhook_attempts,
    webhook_deliveries,
    webhook_subscriptions,
)
from villagelink.tenants.querying import limit_of

s, d, a = webhook_subscriptions, webhook_deliveries, webhook_attempts
SHOWN = [c for c in s.c if c.name != "secret"]


@dataclass(frozen=True)
class Client:
    """An enabled API client, as its grant reads now."""

    client_id: str
    villages: frozenset[str]
    scopes: frozenset[str]


def client_of(conn: Connection, client_id: str) -> Client | None:
    """The client if it is registered and enabled."""
    c = pm.api_clients
    row = conn.execute(
        select(c.c.villages, c.c.scopes).where(c.c.client_id == client_id, c.c.enabled.is_(True))
    ).first()
    return (
        None if row is None else Client(client_id, frozenset(row.villages), frozenset(row.scopes))
    )


def _own(query, client_id: str | None):
    return query if client_id is None else query.where(s.c.client_id == client_id)


def subscription_page(
    conn: Connection, client_id: str | None, *, after_id: int | None, limit: int
) -> list[dict]:
    query = _own(select(*SHOWN), client_id).order_by(s.c.id).limit(limit_of(limit))
    if after_id is not None:
        query = query.where(s.c.id > after_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def subscription_count(conn: Connection, client_id: str | None) -> int:
    return conn.execute(_own(select(func.count()).select_from(s), client_id)).scalar_one()


def subscription(conn: Connection, client_id: str | None, subscription_id: int) -> dict | None:
    row = conn.execute(_own(select(*SHOWN), client_id).where(s.c.id == subscription_id)).first()
    return None if row is None else dict(row._mapping)


def _ids(values: list[int]):
    return func.unnest(cast(values, ARRAY(BigInteger)))


def delivery_pages(
    conn: Connection,
    subscription_ids: list[int],
    *,
    state: str | None,
    after_id: int | None,
    limit: int,
) -> dict[int, list[dict]]:
    """Each subscription's newest deliveries (before `after_id`), up to `limit` each, in one
    statement: a LATERAL scan per subscription down its (subscription_id, id) index."""
    wanted = _ids(subscription_ids).table_valued("id").render_derived("wanted")
    inner = select(d).where(d.c.subscription_id == wanted.c.id)
    if state is not None:
        inner = inner.where(d.c.state == state)
    if after_id is not None:
        inner = inner.where(d.c.id < after_id)
    newest = inner.order_by(d.c.id.desc()).limit(limit_of(limit)).lateral("newest")
    rows = conn.execute(
        select(newest).select_from(wanted).join(newest, true()).order_by(newest.c.id.desc())
    ).mappings()
    pages: dict[int, list[dict]] = {sid: [] for sid in subscription_ids}
    for row in rows:
        pages[row["subscription_id"]].append(dict(row))
    return pages


def delivery_counts(
    conn: Connection, subscription_ids: list[int], *, state: str | None
) -> dict[int, int]:
    query = (
        select(d.c.subscription_id, func.count())
        .where(d.c.subscription_id.in_(subscription_ids))
        .group_by(d.c.subscription_id)
    )
    if state is not None:
        query = query.where(d.c.state == state)
    found = {sid: n for sid, n in conn.execute(query)}
    return {sid: found.get(sid, 0) for sid in subscription_ids}


def attempts_of(conn: Connection, delivery_ids: list[int]) -> dict[int, list[dict]]:
    """Every attempt of each delivery, oldest first (a delivery has at most a handful)."""
    found: dict[int, list[dict]] = {did: [] for did in delivery_ids}
    rows = conn.execute(
        select(a).where(a.c.delivery_id.in_(delivery_ids)).order_by(a.c.delivery_id, a.c.id)
    ).mappings()
    for row in rows:
        found[row["delivery_id"]].append(dict(row))
    return found


def owned_delivery(conn: Connection, client_id: str, delivery_id: int) -> dict | None:
    """A delivery of one of the client's subscriptions, with its subscription's state."""
    row = conn.execute(
        select(d, s.c.state.label("subscription_state"))
        .join(s, s.c.id == d.c.subscription_id)
        .where(d.c.id == delivery_id, s.c.client_id == client_id)
    ).first()
    return None if row is None else dict(row._mapping)

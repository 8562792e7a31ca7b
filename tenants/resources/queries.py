"""Reading shared resources and bookings in one village.

A booking is read with its resource's columns in the same statement (prefixed
`resource__`): the requesting neighbour cannot load the owner's resource on its
own, and the owner's lists need no second query for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, Select, and_, func, select

from villagelink.tenants.querying import limit_of
from villagelink.tenants.resources.tables import RETIRED, resource_bookings, shared_resources

PREFIX = "resource__"
HOLDING = "approved"  # the state whose period no other booking may overlap


def resources(conn: Connection, *, kind: str | None, include_retired: bool) -> list[dict]:
    r = shared_resources
    query = select(r).order_by(r.c.kind, r.c.name, r.c.id)
    if kind is not None:
        query = query.where(r.c.kind == kind)
    if not include_retired:
        query = query.where(r.c.status != RETIRED)
    return [dict(row) for row in conn.execute(query).mappings()]


def resources_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    query = select(shared_resources).where(shared_resources.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def resource_for_update(conn: Connection, resource_id: int) -> dict | None:
    """The resource, locked: every approval of its bookings holds this lock, so two
    overlapping approvals are decided one after the other."""
    row = (
        conn.execute(
            select(shared_resources).where(shared_resources.c.id == resource_id).with_for_update()
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def overlapping(
    conn: Connection,
    resource_id: int,
    starts_at: datetime,
    ends_at: datetime,
    *,
    besides: int | None = None,
) -> int | None:
    """The id of an approved booking of the resource overlapping the period (end
    exclusive: one booking may start when another ends)."""
    b = resource_bookings
    query = select(b.c.id).where(
        b.c.resource_id == resource_id,
        b.c.state == HOLDING,
        b.c.starts_at < ends_at,
        b.c.ends_at > starts_at,
    )
    if besides is not None:
        query = query.where(b.c.id != besides)
    return conn.execute(query.order_by(b.c.starts_at).limit(limit_of(1))).scalar()


def _with_resource() -> Select:
    b, r = resource_bookings, shared_resources
    return select(b, *(c.label(PREFIX + c.name) for c in r.columns)).join(
        r, r.c.id == b.c.resource_id
    )


def resource_of(booking: dict) -> dict:
    """The resource columns of a booking row read with `_with_resource`."""
    return {k[len(PREFIX) :]: v for k, v in booking.items() if k.startswith(PREFIX)}


def _booking_filters(
    query: Select, state: str | None, resource_id: int | None, requester: str | None
) -> Select:
    b = resource_bookings
    conditions = []
    if state is not None:
        conditions.append(b.c.state == state)
    if resource_id is not None:
        conditions.append(b.c.resource_id == resource_id)
    if requester is not None:
        conditions.append(b.c.requester_village == requester)
    return query.where(and_(*conditions)) if conditions else query


def booking_page(
    conn: Connection,
    *,
    state: str | None,
    resource_id: int | None,
    requester: str | None = None,
    after_id: int | None,
    limit: int | None,
) -> list[dict]:
    """Bookings newest first (keyset on id, descending)."""
    b = resource_bookings
    query = _booking_filters(_with_resource(), state, resource_id, requester).order_by(
        b.c.id.desc()
    )
    if after_id is not None:
        query = query.where(b.c.id < after_id)
    if limit is not None:
        query = query.limit(limit_of(limit))
    return [dict(row) for row in conn.execute(query).mappings()]


def booking_count(
    conn: Connection, *, state: str | None, resource_id: int | None, requester: str | None = None
) -> int:
    query = _booking_filters(
        select(func.count()).select_from(resource_bookings), state, resource_id, requester
    )
    return conn.execute(query).scalar_one()


def bookings_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    query = _with_resource().where(resource_bookings.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}

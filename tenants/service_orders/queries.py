"""Reading the service catalogue, time slots, orders and their timelines in one village.

`allowed_grids` (None: the whole village) keeps a grid worker to the orders of
residents living in their grids; the catalogue and the slots are public to
every reader of the village.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Select, func, select, text

from villagelink.tenants import models as m
from villagelink.tenants.querying import limit_of
from villagelink.tenants.residents.queries import Grids
from villagelink.tenants.service_orders.tables import (
    DECLINED,
    service_items,
    service_order_events,
    service_orders,
    service_slots,
)


@dataclass(frozen=True)
class ItemFilter:
    category: str | None = None
    active: bool | None = None


@dataclass(frozen=True)
class SlotFilter:
    item_id: int | None = None
    # Slots overlapping the window [window_from, window_to), as a calendar shows them.
    window_from: datetime | None = None
    window_to: datetime | None = None
    # True: places left and not yet started; False: full or already started.
    available: bool | None = None


@dataclass(frozen=True)
class OrderFilter:
    state: str | None = None
    item_id: int | None = None
    team_id: int | None = None
    resident_id: int | None = None
    # Dispatched to one of these teams (a team leader's orders); None: any.
    team_ids: frozenset[int] | None = None


def _page(conn: Connection, query: Select, table, after_id: int | None, limit: int) -> list[dict]:
    query = query.order_by(table.c.id).limit(limit_of(limit))
    if after_id is not None:
        query = query.where(table.c.id > after_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def _count(conn: Connection, query: Select) -> int:
    return conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()


# -- catalogue ----------------------------------------------------------------


def _items(flt: ItemFilter) -> Select:
    i = service_items
    query = select(i)
    if flt.category is not None:
        query = query.where(i.c.category == flt.category)
    if flt.active is not None:
        query = query.where(i.c.active.is_(flt.active))
    return query


def item_page(conn: Connection, flt: ItemFilter, *, after_id: int | None, limit: int) -> list[dict]:
    return _page(conn, _items(flt), service_items, after_id, limit)


def item_count(conn: Connection, flt: ItemFilter) -> int:
    return _count(conn, _items(flt))


def items_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    query = select(service_items).where(service_items.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


# -- time slots ---------------------------------------------------------------


def _slots(flt: SlotFilter, now: datetime) -> Select:
    s = service_slots
    query = select(s)
    if flt.item_id is not None:
        query = query.where(s.c.service_item_id == flt.item_id)
    if flt.window_from is not None:
        query = query.where(s.c.ends_at > flt.window_from)
    if flt.window_to is not None:
        query = query.where(s.c.starts_at < flt.window_to)
    if flt.available is not None:
        open_ = (s.c.booked < s.c.capacity) & (s.c.starts_at > now)
        query = query.where(open_ if flt.available else ~open_)
    return query


def slot_page(
    conn: Connection, flt: SlotFilter, *, now: datetime, after_id: int | None, limit: int
) -> list[dict]:
    return _page(conn, _slots(flt, now), service_slots, after_id, limit)


def slot_count(conn: Connection, flt: SlotFilter, *, now: datetime) -> int:
    return _count(conn, _slots(flt, now))


def slots_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    query = select(service_slots).where(service_slots.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


# -- orders -------------------------------------------------------------------


def _in_reach(query: Select, allowed_grids: Grids) -> Select:
    """Orders of residents in the grid worker's grids (where they live now)."""
    if allowed_grids is None:
        return query
    r = m.residents
    return query.where(
        service_orders.c.resident_id.in_(select(r.c.id).where(r.c.grid_id.in_(list(allowed_grids))))
    )


def _orders(flt: OrderFilter, allowed_grids: Grids) -> Select:
    o = service_orders
    query = _in_reach(select(o), allowed_grids)
    if flt.state is not None:
        query = query.where(o.c.state == flt.state)
    if flt.item_id is not None:
        query = query.where(o.c.service_item_id == flt.item_id)
    if flt.team_id is not None:
        query = query.where(o.c.volunteer_team_id == flt.team_id)
    if flt.resident_id is not None:
        query = query.where(o.c.resident_id == flt.resident_id)
    if flt.team_ids is not None:
        query = query.where(o.c.volunteer_team_id.in_(sorted(flt.team_ids)))
    return query


def order_page(
    conn: Connection,
    flt: OrderFilter,
    *,
    allowed_grids: Grids,
    after_id: int | None,
    limit: int,
) -> list[dict]:
    return _page(conn, _orders(flt, allowed_grids), service_orders, after_id, limit)


def order_count(conn: Connection, flt: OrderFilter, *, allowed_grids: Grids) -> int:
    return _count(conn, _orders(flt, allowed_grids))


def orders_by_ids(
    conn: Connection, ids: Iterable[int], *, allowed_grids: Grids, lock: bool = False
) -> dict[int, dict]:
    """Orders by id within reach; `lock` takes their row locks (FOR UPDATE) for a state change."""
    query = _in_reach(select(service_orders), allowed_grids).where(
        service_orders.c.id.in_(list(ids))
    )
    if lock:
        query = query.with_for_update(of=service_orders)
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def events_by_order(conn: Connection, order_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Each order's timeline, oldest first."""
    e = service_order_events
    query = select(e).where(e.c.service_order_id.in_(list(order_ids))).order_by(e.c.id)
    found: dict[int, list[dict]] = {}
    for row in conn.execute(query).mappings():
        found.setdefault(row["service_order_id"], []).append(dict(row))
    return found


def team_declined(conn: Connection, order_id: int, team_id: int) -> bool:
    """Whether this team has already declined this order (its timeline says so)."""
    e = service_order_events
    query = select(e.c.id).where(
        e.c.service_order_id == order_id,
        e.c.to_state == DECLINED,
        e.c.volunteer_team_id == team_id,
    )
    return conn.execute(query.exists().select()).scalar_one()


# -- volunteer teams (the activities domain's table) ---------------------------


def _teams_table_exists(conn: Connection) -> bool:
    # `volunteer_teams` comes with the activities domain's own migration branch; a
    # village without it yet simply has no teams to dispatch to.
    return conn.execute(text("SELECT to_regclass('volunteer_teams') IS NOT NULL")).scalar_one()


def team_exists(conn: Connection, team_id: int) -> bool:
    if not _teams_table_exists(conn):
        return False
    found = conn.execute(
        text("SELECT EXISTS (SELECT 1 FROM volunteer_teams WHERE id = :id)"), {"id": team_id}
    )
    return found.scalar_one()


def team_names(conn: Connection, team_ids: Iterable[int]) -> dict[int, str]:
    ids = list(team_ids)
    if not ids or not _teams_table_exists(conn):
        return {}
    rows = conn.execute(
        text("SELECT id, name FROM volunteer_teams WHERE id = ANY(:ids)"), {"ids": ids}
    )
    return {row.id: row.name for row in rows}

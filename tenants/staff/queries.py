"""Reading the village's grid staff: the staff list and the grids each looks after."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, Select, func, select

from villagelink.tenants import models as m
from villagelink.tenants.querying import limit_of


def _filtered(query: Select, *, tier: str | None, include_disabled: bool) -> Select:
    s = m.grid_staff
    if tier is not None:
        query = query.where(s.c.tier == tier)
    if not include_disabled:
        query = query.where(s.c.disabled_at.is_(None))
    return query


def staff_page(
    conn: Connection,
    *,
    tier: str | None,
    include_disabled: bool,
    after_id: int | None,
    limit: int,
) -> list[dict]:
    """Staff in id order. Like the grid map, the staff list is every reader's: residents
    and grid workers alike need to know who looks after a grid."""
    s = m.grid_staff
    query = select(s).order_by(s.c.id).limit(limit_of(limit))
    if after_id is not None:
        query = query.where(s.c.id > after_id)
    query = _filtered(query, tier=tier, include_disabled=include_disabled)
    return [dict(row) for row in conn.execute(query).mappings()]


def staff_count(conn: Connection, *, tier: str | None, include_disabled: bool) -> int:
    query = select(func.count()).select_from(m.grid_staff)
    return conn.execute(_filtered(query, tier=tier, include_disabled=include_disabled)).scalar_one()


def grids_by_staff(conn: Connection, staff_ids: Iterable[int]) -> dict[int, list[dict]]:
    """The grids assigned to each staff member, in id order."""
    g, a = m.grids, m.grid_assignments
    rows = conn.execute(
        select(g, a.c.staff_id)
        .join(a, a.c.grid_id == g.c.id)
        .where(a.c.staff_id.in_(list(staff_ids)))
        .order_by(g.c.id)
    ).mappings()
    found: dict[int, list[dict]] = {}
    for row in rows:
        grid = dict(row)
        found.setdefault(grid.pop("staff_id"), []).append(grid)
    return found

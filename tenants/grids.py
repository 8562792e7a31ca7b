"""Grid queries inside one village: the grid tree, its staff, and a grid worker's reach."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, func, select, text

from villagelink.tenants import models as m
from villagelink.tenants.querying import limit_of


def grids_of_account(conn: Connection, account_sub: str) -> frozenset[int]:
    """The grids a staff account covers: those assigned to it and every grid below them."""
    rows = conn.execute(
        text(
            """
            WITH RECURSIVE covered AS (
                SELECT a.grid_id AS id
                FROM grid_assignments a JOIN grid_staff s ON s.id = a.staff_id
                WHERE s.account_sub = :sub
                UNION
                SELECT g.id FROM grids g JOIN covered c ON g.parent_id = c.id
            )
            SELECT id FROM covered
            """
        ),
        {"sub": account_sub},
    ).scalars()
    return frozenset(rows)


def grids_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    rows = conn.execute(select(m.grids).where(m.grids.c.id.in_(list(ids)))).mappings()
    return {row["id"]: dict(row) for row in rows}


def _grid_filters(query, level: str | None, include_archived: bool):
    if level is not None:
        query = query.where(m.grids.c.level == level)
    if not include_archived:
        query = query.where(m.grids.c.archived_at.is_(None))
    return query


def grid_page(
    conn: Connection,
    *,
    level: str | None,
    include_archived: bool = False,
    after_id: int | None,
    limit: int,
) -> list[dict]:
    """Grids in id order, archived ones only when asked for. The grid map is not
    personal data: every reader of the village sees all of it, grid workers included."""
    query = _grid_filters(
        select(m.grids).order_by(m.grids.c.id).limit(limit_of(limit)), level, include_archived
    )
    if after_id is not None:
        query = query.where(m.grids.c.id > after_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def grid_count(conn: Connection, *, level: str | None, include_archived: bool = False) -> int:
    query = _grid_filters(select(func.count()).select_from(m.grids), level, include_archived)
    return conn.execute(query).scalar_one()


def staff_by_grid(conn: Connection, grid_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Staff assigned to each grid, chiefs first."""
    tier_order = {tier: i for i, tier in enumerate(m.STAFF_TIERS)}
    rows = conn.execute(
        select(m.grid_staff, m.grid_assignments.c.grid_id)
        .join(m.grid_assignments, m.grid_assignments.c.staff_id == m.grid_staff.c.id)
        .where(m.grid_assignments.c.grid_id.in_(list(grid_ids)))
    ).mappings()
    found: dict[int, list[dict]] = {}
    for row in rows:
        found.setdefault(row["grid_id"], []).append(dict(row))
    for staff in found.values():
        staff.sort(key=lambda s: (tier_order[s["tier"]], s["id"]))
    return found


def staff_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    rows = conn.execute(select(m.grid_staff).where(m.grid_staff.c.id.in_(list(ids)))).mappings()
    return {row["id"]: dict(row) for row in rows}


def active_staff_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    """Staff who may be given work (an alert, a request, a case, a shift): disabled staff
    keep their history but take nothing new."""
    rows = conn.execute(
        select(m.grid_staff).where(
            m.grid_staff.c.id.in_(list(ids)), m.grid_staff.c.disabled_at.is_(None)
        )
    ).mappings()
    return {row["id"]: dict(row) for row in rows}

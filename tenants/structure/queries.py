"""Reading the village's structure: buildings, and the live rows the structure
actions build on (locked, so that archiving and building on a record take turns)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, Table, func, select

from villagelink.tenants import models as m
from villagelink.tenants.querying import limit_of
from villagelink.tenants.user_errors import ARCHIVED, NOT_FOUND, refused

# What a record is called in a refusal.
LABELS = {"grids": "网格", "buildings": "楼栋", "households": "户"}


def live_row(
    conn: Connection, table: Table, row_id: int, field: str, *, for_update: bool = False
) -> dict:
    """The row `row_id` of `table`, refused NOT_FOUND if missing and ARCHIVED if archived.

    Locked FOR SHARE by whoever builds on it (a building in a grid, a resident in a
    household) and FOR UPDATE by whoever archives it: the two take turns, so nothing
    is placed on a record in the moment it is archived, and no record is archived
    under something placed on it."""
    query = select(table).where(table.c.id == row_id).with_for_update(read=not for_update)
    found = conn.execute(query).mappings().first()
    label = LABELS[table.name]
    if found is None:
        raise refused(field, f"{label}不存在", NOT_FOUND)
    if found["archived_at"] is not None:
        raise refused(field, f"该{label}已归档", ARCHIVED)
    return dict(found)


def buildings_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    b = m.buildings
    rows = conn.execute(select(b).where(b.c.id.in_(list(ids)))).mappings()
    return {row["id"]: dict(row) for row in rows}


def _buildings(grid_id: int | None, include_archived: bool, query):
    b = m.buildings
    if grid_id is not None:
        query = query.where(b.c.grid_id == grid_id)
    if not include_archived:
        query = query.where(b.c.archived_at.is_(None))
    return query


def building_page(
    conn: Connection,
    *,
    grid_id: int | None,
    include_archived: bool,
    after_id: int | None,
    limit: int,
) -> list[dict]:
    """Buildings in id order. Like the grid map, not personal data: every reader of
    the village sees all of them."""
    b = m.buildings
    query = _buildings(grid_id, include_archived, select(b).order_by(b.c.id).limit(limit_of(limit)))
    if after_id is not None:
        query = query.where(b.c.id > after_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def building_count(conn: Connection, *, grid_id: int | None, include_archived: bool) -> int:
    query = _buildings(grid_id, include_archived, select(func.count()).select_from(m.buildings))
    return conn.execute(query).scalar_one()


def live_dependants(conn: Connection, grid_id: int) -> list[str]:
    """What still hangs on a grid, as the refusal names it: live child grids,
    buildings, households, residents and assigned staff."""
    g, b, h, r, a = m.grids, m.buildings, m.households, m.residents, m.grid_assignments
    counts = {
        "下级网格": select(func.count())
        .select_from(g)
        .where(g.c.parent_id == grid_id, g.c.archived_at.is_(None)),
        "楼栋": select(func.count())
        .select_from(b)
        .where(b.c.grid_id == grid_id, b.c.archived_at.is_(None)),
        "住户": select(func.count())
        .select_from(h)
        .where(h.c.grid_id == grid_id, h.c.archived_at.is_(None)),
        "居民": select(func.count())
        .select_from(r)
        .where(r.c.grid_id == grid_id, r.c.status == m.ACTIVE_RESIDENT),
        "网格员": select(func.count()).select_from(a).where(a.c.grid_id == grid_id),
    }
    row = conn.execute(select(*(q.scalar_subquery() for q in counts.values()))).one()
    return [
        f"{label}{n}{DEPENDANT_UNITS[label]}" for label, n in zip(counts, row, strict=True) if n
    ]


DEPENDANT_UNITS = {"下级网格": "个", "楼栋": "栋", "住户": "户", "居民": "人", "网格员": "人"}

"""Reading residents and households inside one village schema.

`allowed_grids` is None for callers who see the whole village, or the set of
grids a grid worker covers: every query then keeps to those grids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    exists,
    func,
    select,
)

from villagelink.tenants import models as m
from villagelink.tenants.querying import grouped, like_pattern, limit_of

Grids = frozenset[int] | None


@dataclass(frozen=True)
class ResidentFilter:
    name: str | None = None
    tag: str | None = None
    grid_id: int | None = None
    age_min: int | None = None
    age_max: int | None = None


# No one is older; it also keeps the date arithmetic of age filters within the calendar.
MAX_AGE = 150


def _years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a year without one
        return today.replace(year=today.year - years, day=28)


# Every read here is built once per shape with its values bound at each call: building the
# joined statement and working out SQLAlchemy's cache key for it again on every call cost
# 0.34 ms of a 0.56 ms read. A shape is the set of names its values are bound to (which
# conditions it has) and whether it joins the places.
_IDS = bindparam("ids", expanding=True)
_GRIDS = bindparam("grids", expanding=True)


def _filter_params(flt: ResidentFilter, allowed_grids: Grids, today: date) -> dict:
    """The filter's values by the names its statement binds them to: which names there
    are is the statement's shape (`_resident_filters`)."""
    params: dict = {}
    if allowed_grids is not None:
        params["grids"] = list(allowed_grids)
    if flt.name:
        params["name"] = like_pattern(flt.name)
    if flt.grid_id is not None:
        params["grid"] = flt.grid_id
    if flt.tag:
        params["tag"] = flt.tag
    if flt.age_min is not None:
        # At least N years old: born on or before today N years ago.
        params["born_by"] = _years_before(today, flt.age_min)
    if flt.age_max is not None:
        # At most N years old: born after today N+1 years ago.
        params["born_after"] = _years_before(today, flt.age_max + 1)
    return params


def _resident_filters(query: Select, bound: frozenset[str]) -> Select:
    """`query` with the conditions whose values `_filter_params` binds under `bound`."""
    r = m.residents
    # Tombstones of residents who moved away are no longer the village's residents.
    query = query.where(r.c.status == m.ACTIVE_RESIDENT)
    if "grids" in bound:
        query = query.where(r.c.grid_id.in_(_GRIDS))
    if "name" in bound:
        query = query.where(r.c.name.like(bindparam("name"), escape="\\"))
    if "grid" in bound:
        query = query.where(r.c.grid_id == bindparam("grid"))
    if "tag" in bound:
        t = m.resident_tags
        tagged = and_(t.c.resident_id == r.c.id, t.c.tag == bindparam("tag"))
        query = query.where(exists().where(tagged))
    if "born_by" in bound:
        query = query.where(r.c.birth_date <= bindparam("born_by"))
    if "born_after" in bound:
        query = query.where(r.c.birth_date > bindparam("born_after"))
    return query


@cache
def _page(bound: frozenset[str], placed: bool) -> Select:
    r = m.residents
    query = _resident_filters(select(r), bound).order_by(r.c.id)
    query = query.limit(limit_of(key="limit"))
    if "after_id" in bound:
        query = query.where(r.c.id > bindparam("after_id"))
    return _placed(query, _GRIDS if "grids" in bound else None) if placed else query


def _page_query(
    flt: ResidentFilter,
    allowed_grids: Grids,
    after_id: int | None,
    limit: int,
    today: date,
    placed: bool,
) -> tuple[Select, dict]:
    params = {**_filter_params(flt, allowed_grids, today), "limit": limit}
    if after_id is not None:
        params["after_id"] = after_id
    return _page(frozenset(params), placed), params


def resident_page(
    conn: Connection,
    flt: ResidentFilter,
    *,
    allowed_grids: Grids,
    after_id: int | None,
    limit: int,
    today: date,
) -> list[dict]:
    query, params = _page_query(flt, allowed_grids, after_id, limit, today, placed=False)
    return [dict(row) for row in conn.execute(query, params).mappings()]


@dataclass(frozen=True)
class PlacedResident:
    """A resident with their household (None when the caller may not see it) and grid."""

    resident: dict
    household: dict | None
    grid: dict | None


# Prefixes of the household's and the grid's columns in a placed resident's row, which
# shares names (id, name, grid_id, ...) with the resident's own.
_HOUSEHOLD = "household__"
_GRID = "grid__"
# A placed row's columns in the order `_placed` selects them; each part starts with its id.
# A household's and a grid's bookkeeping times are shown nowhere (the API's Household and
# Grid have no such fields): a page does not read and decode 200 timestamps for nothing.
_BOOKKEEPING = {"created_at", "updated_at"}
_RESIDENT_COLUMNS = [c.name for c in m.residents.c]
_HOUSEHOLD_COLUMNS = [
    "id",
    *(c.name for c in m.households.c if c.name != "id" and c.name not in _BOOKKEEPING),
    "building",
]
_GRID_COLUMNS = [
    "id",
    *(c.name for c in m.grids.c if c.name != "id" and c.name not in _BOOKKEEPING),
]


def _placed(query: Select, allowed_grids: Grids | BindParameter) -> Select:
    """`query` over residents with each one's household (with its building's name, as
    `households_by_ids` reads it) and grid joined: a page and the places it shows in one
    statement rather than three."""
    r, h, b, g = m.residents, m.households, m.buildings, m.grids
    household_on = and_(h.c.id == r.c.household_id, *_household_grids(allowed_grids))
    return (
        query.add_columns(
            *(h.c[name].label(_HOUSEHOLD + name) for name in _HOUSEHOLD_COLUMNS[:-1]),
            b.c.name.label(_HOUSEHOLD + "building"),
            *(g.c[name].label(_GRID + name) for name in _GRID_COLUMNS),
        )
        .outerjoin(h, household_on)
        .outerjoin(b, b.c.id == h.c.building_id)
        .outerjoin(g, g.c.id == r.c.grid_id)
    )


def _placed_rows(
    conn: Connection, query: Select, params: dict | None = None
) -> list[PlacedResident]:
    # Read by position, in the order `_placed` selects them: a page's row is some 40
    # columns, and reading each by its label cost a tenth of the page's CPU.
    household_at = len(_RESIDENT_COLUMNS)
    grid_at = household_at + len(_HOUSEHOLD_COLUMNS)
    placed = []
    for row in conn.execute(query, params or {}).all():
        h, g = row[household_at:grid_at], row[grid_at:]
        placed.append(
            PlacedResident(
                dict(zip(_RESIDENT_COLUMNS, row[:household_at], strict=True)),
                dict(zip(_HOUSEHOLD_COLUMNS, h, strict=True)) if h[0] is not None else None,
                dict(zip(_GRID_COLUMNS, g, strict=True)) if g[0] is not None else None,
            )
        )
    return placed


def placed_resident_page(
    conn: Connection,
    flt: ResidentFilter,
    *,
    allowed_grids: Grids,
    after_id: int | None,
    limit: int,
    today: date,
) -> list[PlacedResident]:
    """`resident_page` with each resident's household and grid."""
    query, params = _page_query(flt, allowed_grids, after_id, limit, today, placed=True)
    return _placed_rows(conn, query, params)


@cache
def _count(bound: frozenset[str]) -> Select:
    return _resident_filters(select(func.count()).select_from(m.residents), bound)


def resident_count(
    conn: Connection, flt: ResidentFilter, *, allowed_grids: Grids, today: date
) -> int:
    params = _filter_params(flt, allowed_grids, today)
    return conn.execute(_count(frozenset(params)), params).scalar_one()


def _by_id_params(ids: Iterable[int], allowed_grids: Grids) -> dict:
    params: dict = {"ids": list(ids)}
    if allowed_grids is not None:
        params["grids"] = list(allowed_grids)
    return params


@cache
def _by_ids(bound: frozenset[str], placed: bool) -> Select:
    """Residents by id, kept to the grids when `bound` has them, with their households
    and grids when `placed`."""
    r = m.residents
    query = select(r).where(r.c.id.in_(_IDS))
    if "grids" in bound:
        query = query.where(r.c.grid_id.in_(_GRIDS))
    return _placed(query, _GRIDS if "grids" in bound else None) if placed else query


def residents_by_ids(
    conn: Connection, ids: Iterable[int], *, allowed_grids: Grids
) -> dict[int, dict]:
    params = _by_id_params(ids, allowed_grids)
    rows = conn.execute(_by_ids(frozenset(params), placed=False), params).mappings()
    return {row["id"]: dict(row) for row in rows}


def placed_residents_by_ids(
    conn: Connection, ids: Iterable[int], *, allowed_grids: Grids
) -> dict[int, PlacedResident]:
    """`residents_by_ids` with each resident's household and grid."""
    params = _by_id_params(ids, allowed_grids)
    placed = _placed_rows(conn, _by_ids(frozenset(params), placed=True), params)
    return {p.resident["id"]: p for p in placed}


def _household_grids(grids: Grids | BindParameter) -> list[ColumnElement[bool]]:
    """A grid worker sees the households of their own grids only: `grids` are their ids,
    or the parameter that will carry them; None for those who see every grid."""
    if grids is None:
        return []
    return [m.households.c.grid_id.in_(grids if isinstance(grids, BindParameter) else list(grids))]


def _households() -> Select:
    """Households with their building's name, which every reader of an address wants."""
    h, b = m.households, m.buildings
    return select(h, b.c.name.label("building")).outerjoin(b, b.c.id == h.c.building_id)


@cache
def _households_by_ids(bound: frozenset[str]) -> Select:
    h = m.households
    grids = _GRIDS if "grids" in bound else None
    return _households().where(h.c.id.in_(_IDS), *_household_grids(grids))


def households_by_ids(
    conn: Connection, ids: Iterable[int], *, allowed_grids: Grids
) -> dict[int, dict]:
    params = _by_id_params(ids, allowed_grids)
    rows = conn.execute(_households_by_ids(frozenset(params)), params).mappings()
    return {row["id"]: dict(row) for row in rows}


def _household_filters(query: Select, allowed_grids: Grids, include_archived: bool) -> Select:
    h = m.households
    query = query.where(*_household_grids(allowed_grids))
    if not include_archived:
        query = query.where(h.c.archived_at.is_(None))
    return query


def household_page(
    conn: Connection,
    *,
    allowed_grids: Grids,
    include_archived: bool = False,
    after_id: int | None,
    limit: int,
) -> list[dict]:
    """Households in id order, archived ones only when asked for."""
    h = m.households
    query = _household_filters(
        _households().order_by(h.c.id).limit(limit_of(limit)), allowed_grids, include_archived
    )
    if after_id is not None:
        query = query.where(h.c.id > after_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def household_count(
    conn: Connection, *, allowed_grids: Grids, include_archived: bool = False
) -> int:
    query = _household_filters(
        select(func.count()).select_from(m.households), allowed_grids, include_archived
    )
    return conn.execute(query).scalar_one()


def members_by_household(conn: Connection, household_ids: Iterable[int]) -> dict[int, list[dict]]:
    r = m.residents
    query = select(r).where(r.c.household_id.in_(list(household_ids))).order_by(r.c.id)
    return grouped(conn.execute(query).mappings(), "household_id")


def tags_by_resident(conn: Connection, resident_ids: Iterable[int]) -> dict[int, list[dict]]:
    t = m.resident_tags
    query = select(t).where(t.c.resident_id.in_(list(resident_ids))).order_by(t.c.tag)
    return grouped(conn.execute(query).mappings(), "resident_id")

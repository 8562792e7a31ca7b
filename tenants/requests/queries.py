"""Reading requests, their timelines, categories, deadlines and action lists in one village.

Every request query takes a `RequestScope`: the whole village for its admins, a
grid worker's grids, or, for read-only callers such as regional coordinators,
only the requests escalated to the region.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    and_,
    case,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import distinct_on

from villagelink.tenants import models as m
from villagelink.tenants.clock import day_start

# The residents' escaped LIKE pattern, so that every text filter treats % and _ alike.
from villagelink.tenants.querying import grouped, like_pattern, limit_of
from villagelink.tenants.requests.tables import (
    GRADES,
    OPEN_STATES,
    REGION,
    action_list_requests,
    action_lists,
    request_categories,
    request_events,
    request_settings,
    requests,
)
from villagelink.tenants.residents.queries import Grids

REQUEST = "Request"
REQUEST_PHOTO = "request_photo"


@dataclass(frozen=True)
class RequestScope:
    """Which of a village's requests a caller sees: those of `grids` (None: every
    grid, and requests with no grid), and with `escalated_only` just those that
    reached the region."""

    grids: Grids = None
    escalated_only: bool = False
    # A resident sees the requests they reported, and only those.
    reporter_resident_id: int | None = None


WHOLE_VILLAGE = RequestScope()


@dataclass(frozen=True)
class RequestFilter:
    states: tuple[str, ...] = ()
    # A category matches its sub-categories too; a grid the grids below it.
    category_id: int | None = None
    grade: str | None = None
    grid_id: int | None = None
    assignee_id: int | None = None
    action_list_id: int | None = None
    overdue: bool | None = None
    escalation_level: str | None = None
    # Local days (VILLAGE_TIME_ZONE), both inclusive.
    created_from: date | None = None
    created_to: date | None = None
    # Part of the description or of the location's words.
    text: str | None = None


def is_overdue(now: datetime) -> ColumnElement[bool]:
    """Still waiting for someone to act, and past its deadline."""
    return and_(requests.c.state.in_(OPEN_STATES), requests.c.due_at < now)


def _scoped(query: Select, scope: RequestScope) -> Select:
    r = requests
    if scope.grids is not None:
        query = query.where(r.c.grid_id.in_(list(scope.grids)))
    if scope.escalated_only:
        query = query.where(r.c.escalation_level == REGION)
    if scope.reporter_resident_id is not None:
        query = query.where(r.c.reporter_resident_id == scope.reporter_resident_id)
    return query


def _grid_and_below(grid_id: int) -> Select:
    g = m.grids
    tree = select(g.c.id).where(g.c.id == grid_id).cte("grid_tree", recursive=True)
    tree = tree.union_all(select(g.c.id).join(tree, g.c.parent_id == tree.c.id))
    return select(tree.c.id)


def _category_and_below(category_id: int) -> Select:
    c = request_categories
    return select(c.c.id).where(or_(c.c.id == category_id, c.c.parent_id == category_id))


def _filtered(query: Select, flt: RequestFilter, now: datetime) -> Select:
    r = requests
    conditions: list[ColumnElement[bool]] = []
    if flt.states:
        conditions.append(r.c.state.in_(flt.states))
    if flt.category_id is not None:
        conditions.append(r.c.category_id.in_(_category_and_below(flt.category_id)))
    if flt.grade:
        conditions.append(r.c.grade == flt.grade)
    if flt.grid_id is not None:
        conditions.append(r.c.grid_id.in_(_grid_and_below(flt.grid_id)))
    if flt.assignee_id is not None:
        conditions.append(r.c.assignee_staff_id == flt.assignee_id)
    if flt.action_list_id is not None:
        a = action_list_requests
        conditions.append(
            r.c.id.in_(select(a.c.request_id).where(a.c.action_list_id == flt.action_list_id))
        )
    if flt.overdue is not None:
        conditions.append(is_overdue(now) if flt.overdue else not_(is_overdue(now)))
    if flt.escalation_level:
        conditions.append(r.c.escalation_level == flt.escalation_level)
    if flt.created_from is not None:
        conditions.append(r.c.created_at >= day_start(flt.created_from))
    if flt.created_to is not None:
        conditions.append(r.c.created_at < day_start(flt.created_to + timedelta(days=1)))
    if flt.text:
        pattern = like_pattern(flt.text)
        conditions.append(
            or_(
                r.c.description.ilike(pattern, escape="\\"),
                r.c.location_text.ilike(pattern, escape="\\"),
            )
        )
    return query.where(*conditions)


def request_query(scope: RequestScope) -> Select:
    """The requests the scope shows, with their building's name, which every reader
    of a location wants."""
    r, b = requests, m.buildings
    query = select(r, b.c.name.label("building_name")).outerjoin(b, b.c.id == r.c.building_id)
    return _scoped(query, scope)


def request_page(
    conn: Connection,
    flt: RequestFilter,
    scope: RequestScope,
    *,
    now: datetime,
    after_id: int | None,
    limit: int,
) -> list[dict]:
    r = requests
    query = _filtered(request_query(scope), flt, now).order_by(r.c.id).limit(limit_of(limit))
    if after_id is not None:
        query = query.where(r.c.id > after_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def request_count(
    conn: Connection, flt: RequestFilter, scope: RequestScope, *, now: datetime
) -> int:
    query = _filtered(_scoped(select(func.count()).select_from(requests), scope), flt, now)
    return conn.execute(query).scalar_one()


def requests_by_ids(conn: Connection, ids: Iterable[int], scope: RequestScope) -> dict[int, dict]:
    query = request_query(scope).where(requests.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def request_exists(conn: Connection, key: str) -> bool:
    """Whether the request with this key is in the village (for attaching photos)."""
    if not key.isdigit():
        return False
    return conn.execute(select(requests.c.id).where(requests.c.id == int(key))).first() is not None


def request_stats(conn: Connection, scope: RequestScope, *, now: datetime) -> list[dict]:
    """Requests by category and state, with how many of each are overdue: one statement."""
    r = requests
    query = _scoped(
        select(
            r.c.category_id,
            r.c.state,
            func.count().label("count"),
            func.count().filter(is_overdue(now)).label("overdue"),
        ),
        scope,
    )
    query = query.group_by(r.c.category_id, r.c.state).order_by(r.c.category_id, r.c.state)
    return [dict(row) for row in conn.execute(query).mappings()]


def timelines(conn: Connection, request_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Each request's timeline, oldest first."""
    e = request_events
    query = select(e).where(e.c.request_id.in_(list(request_ids))).order_by(e.c.id)
    return grouped(conn.execute(query).mappings(), "request_id")


def last_events(conn: Connection, request_ids: Iterable[int]) -> dict[int, dict]:
    """Each request's latest timeline entry, in one statement for a whole page."""
    e = request_events
    query = (
        select(e)
        .ext(distinct_on(e.c.request_id))
        .where(e.c.request_id.in_(list(request_ids)))
        .order_by(e.c.request_id, e.c.id.desc())
    )
    return {row["request_id"]: dict(row) for row in conn.execute(query).mappings()}


def categories(conn: Connection) -> list[dict]:
    """The whole category tree, top level first, each level in its order."""
    c = request_categories
    query = select(c).order_by(c.c.parent_id.nulls_first(), c.c.position, c.c.id)
    return [dict(row) for row in conn.execute(query).mappings()]


def categories_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    c = request_categories
    rows = conn.execute(select(c).where(c.c.id.in_(list(ids)))).mappings()
    return {row["id"]: dict(row) for row in rows}


def deadline_settings(conn: Connection) -> dict:
    """The village's hours per grade (one row)."""
    return dict(conn.execute(select(request_settings)).mappings().one())


def grade_window(grade: str | ColumnElement[str]) -> ColumnElement:
    """The village's deadline for `grade` (a grade, or a request's grade column) as an
    interval, read from the settings row inside the statement that uses it."""
    s = request_settings
    if isinstance(grade, str):
        hours = s.c[f"{grade}_hours"]
    else:
        hours = case(*((grade == g, s.c[f"{g}_hours"]) for g in GRADES))
    return func.make_interval(0, 0, 0, 0, select(hours).scalar_subquery())


def auto_assignee(conn: Connection, grid_id: int) -> int | None:
    """Who gets a request of this grid: a micro-grid worker, else a grid worker, else a
    grid chief, assigned to the grid or to a grid above it (the nearest first)."""
    g, a, s = m.grids, m.grid_assignments, m.grid_staff
    up = select(g.c.id, g.c.parent_id, literal(0, Integer).label("depth"))
    up = up.where(g.c.id == grid_id).cte("grid_and_above", recursive=True)
    up = up.union_all(
        select(g.c.id, g.c.parent_id, up.c.depth + 1).join(up, g.c.id == up.c.parent_id)
    )
    tier_rank = case((s.c.tier == "micro_grid_worker", 0), (s.c.tier == "grid_worker", 1), else_=2)
    query = (
        select(s.c.id)
        .join(a, a.c.staff_id == s.c.id)
        .join(up, up.c.id == a.c.grid_id)
        .order_by(tier_rank, up.c.depth, s.c.id)
        .limit(limit_of(1))
    )
    return conn.execute(query).scalar()


# -- action lists -------------------------------------------------------------


def action_list_page(
    conn: Connection, *, status: str | None, after_id: int | None, limit: int
) -> list[dict]:
    t = action_lists
    query = select(t).order_by(t.c.id).limit(limit_of(limit))
    if status is not None:
        query = query.where(t.c.status == status)
    if after_id is not None:
        query = query.where(t.c.id > after_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def action_list_count(conn: Connection, *, status: str | None) -> int:
    query = select(func.count()).select_from(action_lists)
    if status is not None:
        query = query.where(action_lists.c.status == status)
    return conn.execute(query).scalar_one()


def action_lists_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    t = action_lists
    rows = conn.execute(select(t).where(t.c.id.in_(list(ids)))).mappings()
    return {row["id"]: dict(row) for row in rows}


def requests_by_action_list(
    conn: Connection, list_ids: Iterable[int], scope: RequestScope
) -> dict[int, list[dict]]:
    """The requests of each action list that the scope shows, in one statement."""
    a = action_list_requests
    query = (
        request_query(scope)
        .add_columns(a.c.action_list_id)
        .join(a, a.c.request_id == requests.c.id)
        .where(a.c.action_list_id.in_(list(list_ids)))
        .order_by(requests.c.id)
    )
    return grouped(conn.execute(query).mappings(), "action_list_id")


def request_ids_in_list(conn: Connection, list_id: int) -> set[int]:
    a = action_list_requests
    rows = conn.execute(select(a.c.request_id).where(a.c.action_list_id == list_id))
    return set(rows.scalars())

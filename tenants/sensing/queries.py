"""Reading alerts, their timelines, the alert rules and the duty roster of one village.

Every alert query takes an `AlertScope`: the whole village for its admins (and
for read-only callers such as regional coordinators and integrators with
`alerts:read`), or for a grid worker the alerts of their grids plus any assigned
to them by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Select,
    case,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import distinct_on

from villagelink.tenants import models as m
from villagelink.tenants.querying import grouped, limit_of
from villagelink.tenants.residents.queries import Grids
from villagelink.tenants.sensing.tables import (
    REGION,
    SEVERITIES,
    UNACKNOWLEDGED_STATES,
    alert_events,
    alert_rules,
    alerts,
    duty_shifts,
)


@dataclass(frozen=True)
class AlertScope:
    """Which alerts a caller sees: those of `grids` (None: all of them, and alerts with
    no grid) and those assigned to the grid staff member `staff_id`; with `level`, only
    the alerts at that level (a region's coordinators act on those risen to the region)."""

    grids: Grids = None
    staff_id: int | None = None
    level: str | None = None


WHOLE_VILLAGE = AlertScope()
RISEN_TO_REGION = AlertScope(level=REGION)


@dataclass(frozen=True)
class AlertFilter:
    states: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    # A grid matches the grids below it too.
    grid_id: int | None = None
    level: str | None = None


def staff_of_account(conn: Connection, account_sub: str) -> int | None:
    """The grid staff member signed in as `account_sub`, if any."""
    s = m.grid_staff
    return conn.execute(select(s.c.id).where(s.c.account_sub == account_sub)).scalar()


def _scoped(query: Select, scope: AlertScope) -> Select:
    a = alerts
    if scope.level is not None:
        query = query.where(a.c.level == scope.level)
    if scope.grids is None:
        return query
    mine = a.c.grid_id.in_(sorted(scope.grids))
    if scope.staff_id is not None:
        mine = or_(mine, a.c.assignee_staff_id == scope.staff_id)
    return query.where(mine)


def _grid_and_below(grid_id: int) -> Select:
    g = m.grids
    tree = select(g.c.id).where(g.c.id == grid_id).cte("grid_tree", recursive=True)
    tree = tree.union_all(select(g.c.id).join(tree, g.c.parent_id == tree.c.id))
    return select(tree.c.id)


def _filtered(query: Select, flt: AlertFilter) -> Select:
    a = alerts
    conditions: list[ColumnElement[bool]] = []
    if flt.states:
        conditions.append(a.c.state.in_(flt.states))
    if flt.kinds:
        conditions.append(a.c.kind.in_(flt.kinds))
    if flt.grid_id is not None:
        conditions.append(a.c.grid_id.in_(_grid_and_below(flt.grid_id)))
    if flt.level:
        conditions.append(a.c.level == flt.level)
    return query.where(*conditions)


def after(column: Column, after_id: int, *, descending: bool) -> ColumnElement[bool]:
    """Keyset condition for a list ordered by (`column`, id): the rows after the row
    `after_id` (a cursor carries only the id; its `column` is looked up in place)."""
    table = column.table
    cursor_row = table.alias("cursor_row")
    at = select(cursor_row.c[column.name]).where(cursor_row.c.id == after_id).scalar_subquery()
    pair, cursor = tuple_(column, table.c.id), tuple_(at, literal(after_id))
    return pair < cursor if descending else pair > cursor


def alert_query(scope: AlertScope) -> Select:
    return _scoped(select(alerts), scope)


def alert_page(
    conn: Connection, flt: AlertFilter, scope: AlertScope, *, after_id: int | None, limit: int
) -> list[dict]:
    """The live feed: newest raised first (the `alerts_raised_at` index), continuing
    after the alert `after_id`."""
    a = alerts
    query = _filtered(alert_query(scope), flt).order_by(a.c.raised_at.desc(), a.c.id.desc())
    if after_id is not None:
        query = query.where(after(a.c.raised_at, after_id, descending=True))
    return [dict(row) for row in conn.execute(query.limit(limit_of(limit))).mappings()]


def alert_count(conn: Connection, flt: AlertFilter, scope: AlertScope) -> int:
    query = _filtered(_scoped(select(func.count()).select_from(alerts), scope), flt)
    return conn.execute(query).scalar_one()


def alerts_by_ids(conn: Connection, ids: Iterable[int], scope: AlertScope) -> dict[int, dict]:
    query = alert_query(scope).where(alerts.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def timelines(conn: Connection, alert_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Each alert's timeline, oldest first."""
    e = alert_events
    query = select(e).where(e.c.alert_id.in_(list(alert_ids))).order_by(e.c.alert_id, e.c.id)
    return grouped(conn.execute(query).mappings(), "alert_id")


# -- rules and the roster ------------------------------------------------------------


def rules(conn: Connection) -> list[dict]:
    """The village's rule for each alert kind, most severe first."""
    r = alert_rules
    severity = case({s: n for n, s in enumerate(SEVERITIES)}, value=r.c.severity)
    query = select(r).order_by(severity, r.c.ack_minutes, r.c.kind)
    return [dict(row) for row in conn.execute(query).mappings()]


def rule(conn: Connection, kind: str) -> dict:
    """The rule of one of ALERT_KINDS (the migrations give every kind its row)."""
    return dict(
        conn.execute(select(alert_rules).where(alert_rules.c.kind == kind)).mappings().one()
    )


@dataclass(frozen=True)
class ShiftFilter:
    """Shifts overlapping [starts, ends) (either end open), of one staff member or all."""

    starts: datetime | None = None
    ends: datetime | None = None
    staff_id: int | None = None


def _shift_filter(query: Select, flt: ShiftFilter) -> Select:
    d = duty_shifts
    if flt.starts is not None:
        query = query.where(d.c.ends_at > flt.starts)
    if flt.ends is not None:
        query = query.where(d.c.starts_at < flt.ends)
    if flt.staff_id is not None:
        query = query.where(d.c.staff_id == flt.staff_id)
    return query


def shift_page(
    conn: Connection, flt: ShiftFilter, *, after_id: int | None, limit: int
) -> list[dict]:
    """The roster in time order, continuing after the shift `after_id`."""
    d = duty_shifts
    query = _shift_filter(select(d), flt).order_by(d.c.starts_at, d.c.id)
    if after_id is not None:
        query = query.where(after(d.c.starts_at, after_id, descending=False))
    return [dict(row) for row in conn.execute(query.limit(limit_of(limit))).mappings()]


def shift_count(conn: Connection, flt: ShiftFilter) -> int:
    query = _shift_filter(select(func.count()).select_from(duty_shifts), flt)
    return conn.execute(query).scalar_one()


def shifts_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    d = duty_shifts
    rows = conn.execute(select(d).where(d.c.id.in_(list(ids)))).mappings()
    return {row["id"]: dict(row) for row in rows}


def unnotified_alerts(
    conn: Connection, before: datetime, steps: list[str]
) -> list[tuple[int, str]]:
    """Alerts still waiting for an acknowledgement whose latest of `steps` (raise,
    reassign, escalate: the steps someone must be told of) happened before `before` and
    was never told (`notified_at` empty): (alert id, that step), oldest alert first."""
    a, e = alerts, alert_events
    latest = (
        select(e.c.alert_id, e.c.action, e.c.created_at)
        .ext(distinct_on(e.c.alert_id))
        .join(a, a.c.id == e.c.alert_id)
        .where(
            a.c.state.in_(UNACKNOWLEDGED_STATES),
            a.c.notified_at.is_(None),
            e.c.action.in_(steps),
        )
        .order_by(e.c.alert_id, e.c.id.desc())
        .subquery()
    )
    query = (
        select(latest.c.alert_id, latest.c.action)
        .where(latest.c.created_at <= before)
        .order_by(latest.c.alert_id)
    )
    return [(alert_id, step) for alert_id, step in conn.execute(query)]

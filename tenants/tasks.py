"""待办: what waits for one person in one village, read in one statement.

A staff account's tasks are the live alerts and open requests assigned to it (its
`grid_staff.account_sub`); a village admin's also those escalated to the village, the
service orders waiting for the centre's dispatch, and the joint cases the village
opened or is involved in (its own cases, and the copies its neighbours shared with
it). Counts per kind and the most pressing items come back together, so the cost is
one statement whatever the number of tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Select,
    Text,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)

from villagelink.platform.linkage.catalogue import JOINT_CASE
from villagelink.platform.linkage.tables import records
from villagelink.tenants import models as m
from villagelink.tenants.joint_cases.tables import IN_PROGRESS as CASE_IN_PROGRESS
from villagelink.tenants.joint_cases.tables import OPEN as CASE_OPEN
from villagelink.tenants.joint_cases.tables import joint_cases
from villagelink.tenants.querying import limit_of
from villagelink.tenants.requests.tables import OPEN_STATES, requests
from villagelink.tenants.requests.tables import VILLAGE as REQUEST_AT_VILLAGE
from villagelink.tenants.sensing.tables import LIVE_STATES, UNACKNOWLEDGED_STATES, alerts
from villagelink.tenants.sensing.tables import VILLAGE as ALERT_AT_VILLAGE
from villagelink.tenants.service_orders.tables import (
    ORDERED,
    service_items,
    service_orders,
    service_slots,
)

# Task kinds, as the API names them (lower-case inside, SCREAMING_SNAKE_CASE outside).
ALERT = "alert"
REQUEST = "request"
SERVICE_ORDER = "service_order"
AGREEMENT = "agreement"
JOINT_CASE_TASK = "joint_case"
TASK_KINDS = (ALERT, REQUEST, SERVICE_ORDER, AGREEMENT, JOINT_CASE_TASK)

# Joint cases still waiting for someone to act.
WAITING_CASE_STATES = (CASE_OPEN, CASE_IN_PROGRESS)
# A request's description stands for its title: the first words are enough to recognise it.
TITLE_LENGTH = 60


@dataclass(frozen=True)
class TaskItem:
    kind: str
    village: str
    # The record's key in `village` (its origin for a shared copy).
    key: int
    title: str
    since: datetime
    due_at: datetime | None


@dataclass
class TaskList:
    counts: dict[str, int]
    items: list[TaskItem]

    def merge(self, other: TaskList) -> None:
        for kind, count in other.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + count
        self.items.extend(other.items)

    def most_pressing(self, limit: int) -> list[TaskItem]:
        """The first `limit` items, soonest due first, then longest waiting."""
        return sorted(self.items, key=_urgency)[:limit]


def _urgency(item: TaskItem) -> tuple:
    return (item.due_at is None, item.due_at or item.since, item.since, item.kind, item.key)


def task_row(kind: str, origin, key, title, since, due_at) -> Select:
    return select(
        literal(kind, Text).label("kind"),
        cast(origin, Text).label("origin"),
        cast(key, BigInteger).label("key"),
        cast(title, Text).label("title"),
        cast(since, DateTime(timezone=True)).label("since"),
        cast(due_at, DateTime(timezone=True)).label("due_at"),
    )


def counted_page(parts: list[Select], limit: int) -> Select:
    """One statement over task rows of the same shape: the `limit` most pressing rows,
    then one row per kind with its count (`key` null). Shared by the village's and the
    region's lists (platform/linkage/tasks.py)."""
    every = union_all(*parts).cte("tasks")
    page = (
        select(every, null().cast(BigInteger).label("n"))
        .order_by(
            every.c.due_at.is_(None),
            func.coalesce(every.c.due_at, every.c.since),
            every.c.since,
            every.c.kind,
            every.c.key,
        )
        .limit(limit_of(limit))
        .subquery()
    )
    counts = select(
        every.c.kind,
        null().cast(Text),
        null().cast(BigInteger),
        null().cast(Text),
        null().cast(DateTime(timezone=True)),
        null().cast(DateTime(timezone=True)),
        func.count().label("n"),
    ).group_by(every.c.kind)
    return union_all(select(page), counts)


def read_counted_page(conn: Connection, statement: Select, default_origin: str) -> TaskList:
    found = TaskList({}, [])
    for row in conn.execute(statement).mappings():
        if row["key"] is None:
            found.counts[row["kind"]] = row["n"]
        else:
            found.items.append(
                TaskItem(
                    row["kind"],
                    row["origin"] or default_origin,
                    row["key"],
                    row["title"],
                    row["since"],
                    row["due_at"],
                )
            )
    return found


def village_tasks(
    conn: Connection, slug: str, account_sub: str, *, village_admin: bool, limit: int
) -> TaskList:
    """What waits in `slug` for the account `account_sub` (a village admin of it if
    `village_admin`): one statement on the village's transaction."""
    me = select(m.grid_staff.c.id).where(m.grid_staff.c.account_sub == account_sub)
    a, r = alerts, requests
    mine_alert = a.c.assignee_staff_id.in_(me.scalar_subquery())
    mine_request = r.c.assignee_staff_id.in_(me.scalar_subquery())
    if village_admin:
        mine_alert = or_(mine_alert, a.c.level == ALERT_AT_VILLAGE)
        mine_request = or_(mine_request, r.c.escalation_level == REQUEST_AT_VILLAGE)
    parts = [
        task_row(
            ALERT,
            null(),
            a.c.id,
            a.c.summary,
            a.c.raised_at,
            case((a.c.state.in_(UNACKNOWLEDGED_STATES), a.c.ack_due_at)),
        ).where(a.c.state.in_(LIVE_STATES), mine_alert),
        _open_requests(mine_request),
    ]
    if village_admin:
        parts += [_orders_to_dispatch(), *_joint_cases(slug)]
    return read_counted_page(conn, counted_page(parts, limit), slug)


def _open_requests(waiting_for) -> Select:
    """Open requests meeting `waiting_for`, as task rows: since their escalation (or
    their report), due by their deadline."""
    r = requests
    return task_row(
        REQUEST,
        null(),
        r.c.id,
        func.left(r.c.description, TITLE_LENGTH),
        func.coalesce(r.c.escalated_at, r.c.created_at),
        r.c.due_at,
    ).where(r.c.state.in_(OPEN_STATES), waiting_for)


def _orders_to_dispatch() -> Select:
    """Service orders waiting for the centre to dispatch them (中心派单), the slot's
    start their deadline. Once dispatched they wait for the team, not the village."""
    o, i, s = service_orders, service_items, service_slots
    return (
        task_row(SERVICE_ORDER, null(), o.c.id, i.c.name, o.c.created_at, s.c.starts_at)
        .join_from(o, i, i.c.id == o.c.service_item_id)
        .join(s, s.c.id == o.c.service_slot_id)
        .where(o.c.state == ORDERED)
    )


def _joint_cases(slug: str) -> list[Select]:
    """The joint cases waiting for `slug`'s admins: its own, and its neighbours' that
    involve it (the copies shared with it; the case itself stays with its origin)."""
    j, x = joint_cases, records
    return [
        # Opened here: the origin keeps the case.
        task_row(JOINT_CASE_TASK, null(), j.c.id, j.c.title, j.c.updated_at, null()).where(
            j.c.state.in_(WAITING_CASE_STATES)
        ),
        task_row(
            JOINT_CASE_TASK,
            x.c.origin,
            x.c.origin_id,
            x.c.payload["title"].astext,
            x.c.payload["updated_at"].astext,
            null(),
        ).where(
            x.c.record_type == JOINT_CASE,
            x.c.audience == slug,
            x.c.payload["state"].astext.in_(WAITING_CASE_STATES),
        ),
    ]

"""待办 outside one village's schema: agreements waiting for a village's answer
(platform schema) and what waits for a region's coordinators (the region's copies in
the exchange schema, never a village schema). One statement each, whatever the
number of tasks; the shape and the counting are tenants/tasks.py's.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, func, null, select
from sqlalchemy.dialects.postgresql import distinct_on

from villagelink.platform.linkage.catalogue import ALERT_BROADCAST, ESCALATED_REQUEST, JOINT_CASE
from villagelink.platform.linkage.tables import (
    PENDING,
    PROPOSED,
    REGION_AUDIENCE,
    agreement_parties,
    agreements,
    records,
)
from villagelink.tenants.requests.tables import OPEN_STATES
from villagelink.tenants.sensing.tables import LIVE_STATES
from villagelink.tenants.sensing.tables import REGION as ALERT_AT_REGION
from villagelink.tenants.tasks import (
    AGREEMENT,
    ALERT,
    JOINT_CASE_TASK,
    REQUEST,
    TITLE_LENGTH,
    WAITING_CASE_STATES,
    TaskList,
    counted_page,
    read_counted_page,
    task_row,
)


def agreements_awaiting(conn: Connection, villages: Iterable[str], limit: int) -> TaskList:
    """Proposed agreements that one of `villages` has not answered yet (platform schema)."""
    wanted = sorted(villages)
    if not wanted:
        return TaskList({}, [])
    a, p = agreements, agreement_parties
    waiting = (
        task_row(AGREEMENT, p.c.village, a.c.id, a.c.purpose, a.c.created_at, null())
        .join_from(a, p, p.c.agreement_id == a.c.id)
        .where(a.c.state == PROPOSED, p.c.state == PENDING, p.c.village.in_(wanted))
    )
    return read_counted_page(conn, counted_page([waiting], limit), "")


def region_tasks(conn: Connection, region_id: str, limit: int) -> TaskList:
    """What waits for the coordinators of the region `conn` reads as (row-level security
    shows that region's copies only): live alerts risen to the region, the joint cases
    still open and the open requests escalated to the region (as `region {
    escalatedRequests }` reads them), as fresh as the sync. `region_id` is the region of
    `conn`'s role, named so that the records_region index serves the reads."""
    x = records
    # Each audience holds its own copy of an alert: one per alert is enough here.
    alert_copies = (
        select(x)
        .where(x.c.region_id == region_id, x.c.record_type == ALERT_BROADCAST)
        .ext(distinct_on(x.c.origin, x.c.origin_id))
        .order_by(x.c.origin, x.c.origin_id, x.c.version.desc())
        .subquery()
    )
    c = alert_copies.c
    risen = task_row(
        ALERT,
        c.origin,
        c.origin_id,
        c.payload["summary"].astext,
        c.payload["raised_at"].astext,
        null(),
    ).where(
        c.payload["level"].astext == ALERT_AT_REGION,
        c.payload["state"].astext.in_(LIVE_STATES),
    )
    cases = task_row(
        JOINT_CASE_TASK,
        x.c.origin,
        x.c.origin_id,
        x.c.payload["title"].astext,
        x.c.payload["updated_at"].astext,
        null(),
    ).where(
        x.c.region_id == region_id,
        x.c.record_type == JOINT_CASE,
        x.c.audience == REGION_AUDIENCE,
        x.c.payload["state"].astext.in_(WAITING_CASE_STATES),
    )
    payload = x.c.payload
    escalated = task_row(
        REQUEST,
        x.c.origin,
        x.c.origin_id,
        func.left(payload["description"].astext, TITLE_LENGTH),
        func.coalesce(payload["escalated_at"].astext, payload["created_at"].astext),
        payload["due_at"].astext,
    ).where(
        x.c.region_id == region_id,
        x.c.record_type == ESCALATED_REQUEST,
        x.c.audience == REGION_AUDIENCE,
        payload["state"].astext.in_(OPEN_STATES),
    )
    return read_counted_page(conn, counted_page([risen, cases, escalated], limit), "")

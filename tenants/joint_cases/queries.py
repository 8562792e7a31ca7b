"""Reading joint cases in the origin village, and the copies shared with a village."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from villagelink.platform.linkage.catalogue import JOINT_CASE
from villagelink.platform.linkage.tables import records
from villagelink.tenants.joint_cases.tables import joint_case_events, joint_cases
from villagelink.tenants.querying import grouped


def cases(conn: Connection, *, state: str | None = None) -> list[dict]:
    """The village's own cases, most recently changed first."""
    c = joint_cases
    query = select(c).order_by(c.c.updated_at.desc(), c.c.id.desc())
    if state is not None:
        query = query.where(c.c.state == state)
    return [dict(row) for row in conn.execute(query).mappings()]


def cases_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    query = select(joint_cases).where(joint_cases.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def case_for_update(conn: Connection, case_id: int) -> dict | None:
    query = select(joint_cases).where(joint_cases.c.id == case_id).with_for_update()
    row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def case_of_request(conn: Connection, request_id: int) -> dict | None:
    row = (
        conn.execute(select(joint_cases).where(joint_cases.c.request_id == request_id))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def events_by_case(conn: Connection, case_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Each case's timeline, oldest first: one statement for any number of cases."""
    e = joint_case_events
    query = select(e).where(e.c.case_id.in_(list(case_ids))).order_by(e.c.case_id, e.c.id)
    return grouped(conn.execute(query).mappings(), "case_id")


def shared_copies(conn: Connection, audience: str, *, state: str | None = None) -> list[dict]:
    """The copies of neighbours' cases published to `audience`. Read under the
    audience's own role: row-level security shows it its copies only."""
    r = records
    query = (
        select(r.c.origin, r.c.origin_id, r.c.version, r.c.payload, r.c.published_at)
        .where(r.c.record_type == JOINT_CASE, r.c.audience == audience)
        .order_by(r.c.committed_at.desc())
    )
    if state is not None:
        query = query.where(r.c.payload["state"].astext == state)
    return [dict(row) for row in conn.execute(query).mappings()]

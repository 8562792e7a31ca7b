"""Reading mediation cases inside one village schema.

No grid scoping here: whoever may see mediation at all (the village admin)
sees every case of the village; the API decides who that is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Select, func, select

from villagelink.tenants.mediation.tables import (
    mediation_cases,
    mediation_parties,
    mediation_sessions,
)
from villagelink.tenants.querying import grouped, limit_of


@dataclass(frozen=True)
class CaseFilter:
    status: str | None = None
    category: str | None = None
    year: int | None = None


def case_number(case: dict) -> str:
    """The case's number as it is written on paper: 调〔2026〕第12号."""
    return f"调〔{case['year']}〕第{case['number']}号"


def _filtered(query: Select, flt: CaseFilter) -> Select:
    c = mediation_cases.c
    if flt.status is not None:
        query = query.where(c.status == flt.status)
    if flt.category is not None:
        query = query.where(c.category == flt.category)
    if flt.year is not None:
        query = query.where(c.year == flt.year)
    return query


def case_page(conn: Connection, flt: CaseFilter, *, after_id: int | None, limit: int) -> list[dict]:
    c = mediation_cases.c
    query = _filtered(select(mediation_cases), flt).order_by(c.id).limit(limit_of(limit))
    if after_id is not None:
        query = query.where(c.id > after_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def case_count(conn: Connection, flt: CaseFilter) -> int:
    return conn.execute(
        _filtered(select(func.count()).select_from(mediation_cases), flt)
    ).scalar_one()


def cases_by_ids(conn: Connection, ids: Iterable[int], *, lock: bool = False) -> dict[int, dict]:
    """Cases by id; `lock` holds them (FOR UPDATE) until the transaction ends, so two
    concurrent changes of one case's status happen one after the other."""
    query = select(mediation_cases).where(mediation_cases.c.id.in_(list(ids)))
    if lock:
        query = query.with_for_update()
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def parties_by_case(conn: Connection, case_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Each case's parties, applicants first, in the order they were registered."""
    p = mediation_parties.c
    query = (
        select(mediation_parties)
        .where(p.case_id.in_(list(case_ids)))
        .order_by(p.case_id, p.role, p.id)
    )
    return grouped(conn.execute(query).mappings(), "case_id")


def sessions_by_case(conn: Connection, case_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Each case's sessions in the order they were held."""
    s = mediation_sessions.c
    query = (
        select(mediation_sessions)
        .where(s.case_id.in_(list(case_ids)))
        .order_by(s.case_id, s.held_on, s.id)
    )
    return grouped(conn.execute(query).mappings(), "case_id")

"""Reading activities, occurrences, sign-ups and volunteer teams in one village.

Every "by" function takes many keys and answers with one statement, for the
batch loaders of the API. `allowed_grids` (None: the whole village) keeps a grid
worker to the sign-ups and team members who live in their grids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, Select, case, exists, func, select

from villagelink.tenants import models as m
from villagelink.tenants.activities.tables import (
    activities,
    activity_occurrences,
    activity_sign_ups,
    volunteer_team_members,
    volunteer_teams,
)
from villagelink.tenants.clock import day_start
from villagelink.tenants.querying import grouped, limit_of
from villagelink.tenants.residents.queries import Grids


@dataclass(frozen=True)
class ActivityFilter:
    kind: str | None = None
    state: str | None = None
    # Activities with an occurrence on one of these days (village time, both included).
    from_date: date | None = None
    to_date: date | None = None


def _in_days(query: Select, from_date: date | None, to_date: date | None) -> Select:
    o = activity_occurrences
    if from_date is not None:
        query = query.where(o.c.starts_at >= day_start(from_date))
    if to_date is not None:
        query = query.where(o.c.starts_at < day_start(to_date + timedelta(days=1)))
    return query


def _activity_filters(query: Select, flt: ActivityFilter) -> Select:
    a, o = activities, activity_occurrences
    if flt.kind:
        query = query.where(a.c.kind == flt.kind)
    if flt.state:
        query = query.where(a.c.state == flt.state)
    if flt.from_date is not None or flt.to_date is not None:
        query = query.where(
            _in_days(exists().where(o.c.activity_id == a.c.id), flt.from_date, flt.to_date)
        )
    return query


def activity_page(
    conn: Connection, flt: ActivityFilter, *, after_id: int | None, limit: int
) -> list[dict]:
    a = activities
    query = _activity_filters(select(a), flt).order_by(a.c.id).limit(limit_of(limit))
    if after_id is not None:
        query = query.where(a.c.id > after_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def activity_count(conn: Connection, flt: ActivityFilter) -> int:
    query = _activity_filters(select(func.count()).select_from(activities), flt)
    return conn.execute(query).scalar_one()


def activities_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    query = select(activities).where(activities.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def _occurrences_with_counts() -> Select:
    """Occurrences with how many sign-ups are in each state, in the same statement."""
    o, s = activity_occurrences, activity_sign_ups

    def counted(state: str):
        return func.count(s.c.id).filter(s.c.state == state).label(state)

    return (
        select(o, *(counted(state) for state in ("signed_up", "waitlisted", "checked_in")))
        .select_from(o.outerjoin(s, s.c.occurrence_id == o.c.id))
        .group_by(o.c.id)
    )


def occurrences_by_activity(
    conn: Connection, activity_ids: Iterable[int], from_date: date | None, to_date: date | None
) -> dict[int, list[dict]]:
    o = activity_occurrences
    query = _in_days(
        _occurrences_with_counts().where(o.c.activity_id.in_(list(activity_ids))),
        from_date,
        to_date,
    ).order_by(o.c.activity_id, o.c.starts_at)
    return grouped(conn.execute(query).mappings(), "activity_id")


def occurrences_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    query = _occurrences_with_counts().where(activity_occurrences.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def team_occurrences_on(
    conn: Connection, team_ids: Iterable[int], day: date, opened_before: datetime
) -> list[dict]:
    """The occurrences on `day` (village time) of the published activities these teams
    run, and those starting before `opened_before` (check-in opens before they start: at
    23:10 for a session at 00:10): what their leader (队长) shows a check-in code for, in
    the order they start."""
    o, a = activity_occurrences, activities
    query = (
        _in_days(
            _occurrences_with_counts()
            .join(a, a.c.id == o.c.activity_id)
            .where(a.c.team_id.in_(list(team_ids)), a.c.state == "published"),
            day,
            None,
        )
        .where(o.c.starts_at < max(day_start(day + timedelta(days=1)), opened_before))
        .order_by(o.c.starts_at, o.c.id)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def _sign_ups_ranked(occurrences: Select) -> Select:
    """Sign-ups of the given occurrences, each waitlisted one with its place in the queue."""
    s = activity_sign_ups
    position = case(
        (
            s.c.state == "waitlisted",
            func.row_number().over(
                partition_by=(s.c.occurrence_id, s.c.state),
                order_by=(s.c.signed_up_at, s.c.id),
            ),
        ),
    ).label("waitlist_position")
    return select(s, position).where(s.c.occurrence_id.in_(occurrences)).subquery("ranked")


def _in_grids(query: Select, resident_id, allowed_grids: Grids) -> Select:
    if allowed_grids is None:
        return query
    r = m.residents
    return query.where(resident_id.in_(select(r.c.id).where(r.c.grid_id.in_(list(allowed_grids)))))


def sign_ups_by_occurrence(
    conn: Connection, occurrence_ids: Iterable[int], *, state: str | None, allowed_grids: Grids
) -> dict[int, list[dict]]:
    ids = list(occurrence_ids)
    ranked = _sign_ups_ranked(
        select(activity_occurrences.c.id).where(activity_occurrences.c.id.in_(ids))
    )
    query = select(ranked).order_by(ranked.c.occurrence_id, ranked.c.signed_up_at, ranked.c.id)
    if state is not None:
        query = query.where(ranked.c.state == state)
    query = _in_grids(query, ranked.c.resident_id, allowed_grids)
    return grouped(conn.execute(query).mappings(), "occurrence_id")


def sign_ups_by_ids(
    conn: Connection, ids: Iterable[int], *, allowed_grids: Grids
) -> dict[int, dict]:
    ids = list(ids)
    s = activity_sign_ups
    ranked = _sign_ups_ranked(select(s.c.occurrence_id).where(s.c.id.in_(ids)))
    query = _in_grids(
        select(ranked).where(ranked.c.id.in_(ids)), ranked.c.resident_id, allowed_grids
    )
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def sign_ups_of_guests(conn: Connection, guest_village: str, *, state: str | None) -> list[dict]:
    """A neighbouring village's sign-ups here, each with the occurrence's times and the
    activity's title and place (that village cannot load them on its own)."""
    s, o, a = activity_sign_ups, activity_occurrences, activities
    ranked = _sign_ups_ranked(select(s.c.occurrence_id).where(s.c.guest_village == guest_village))
    query = (
        select(ranked, o.c.starts_at, o.c.ends_at, a.c.title.label("activity_title"), a.c.place)
        .join(o, o.c.id == ranked.c.occurrence_id)
        .join(a, a.c.id == o.c.activity_id)
        .where(ranked.c.guest_village == guest_village)
        .order_by(o.c.starts_at, ranked.c.id)
    )
    if state is not None:
        query = query.where(ranked.c.state == state)
    return [dict(row) for row in conn.execute(query).mappings()]


def volunteer_hours_by_resident(conn: Connection, resident_ids: Iterable[int]) -> dict[int, float]:
    """Hours served, from check-ins to volunteer activities."""
    s = activity_sign_ups
    rows = conn.execute(
        select(s.c.resident_id, func.sum(s.c.volunteer_hours))
        .where(s.c.resident_id.in_(list(resident_ids)), s.c.volunteer_hours.is_not(None))
        .group_by(s.c.resident_id)
    ).all()
    return {resident_id: float(hours) for resident_id, hours in rows}


def team_page(conn: Connection, *, after_id: int | None, limit: int) -> list[dict]:
    t = volunteer_teams
    query = select(t).order_by(t.c.id).limit(limit_of(limit))
    if after_id is not None:
        query = query.where(t.c.id > after_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def team_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(volunteer_teams)).scalar_one()


def teams_led_by(conn: Connection, resident_id: int) -> frozenset[int]:
    """The teams a resident leads (队长): whose dispatched service orders they answer."""
    t = volunteer_teams
    return frozenset(
        conn.execute(select(t.c.id).where(t.c.leader_resident_id == resident_id)).scalars()
    )


def teams_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    query = select(volunteer_teams).where(volunteer_teams.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def members_by_team(
    conn: Connection, team_ids: Iterable[int], *, allowed_grids: Grids
) -> dict[int, list[dict]]:
    t = volunteer_team_members
    query = select(t).where(t.c.team_id.in_(list(team_ids))).order_by(t.c.team_id, t.c.joined_at)
    query = _in_grids(query, t.c.resident_id, allowed_grids)
    return grouped(conn.execute(query).mappings(), "team_id")


def member_counts(conn: Connection, team_ids: Iterable[int]) -> dict[int, int]:
    t = volunteer_team_members
    rows = conn.execute(
        select(t.c.team_id, func.count())
        .where(t.c.team_id.in_(list(team_ids)))
        .group_by(t.c.team_id)
    ).all()
    return dict(rows)

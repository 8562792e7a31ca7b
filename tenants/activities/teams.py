"""Writes to volunteer teams (志愿服务队) and their members: the only place they change.

A team is a resource the village may share with its neighbours (a volunteer
team can be booked across the boundary), so every change appends the team to
the outbox: its name, description, how many members and which skills, never
who the members are. The leader is always a member. Callers manage the whole
village (grid workers do not run teams).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from villagelink.platform.audit import Actor, record
from villagelink.tenants.activities.tables import volunteer_team_members, volunteer_teams
from villagelink.tenants.activities.validation import TeamMemberSchema, TeamSchema
from villagelink.tenants.outbox import emit
from villagelink.tenants.residents.queries import residents_by_ids
from villagelink.tenants.user_errors import (
    DUPLICATE,
    NOT_FOUND,
    ActionFailed,
    UserError,
    refused,
    validated,
)

VOLUNTEER_TEAM = "VolunteerTeam"
DUPLICATE_NAME = UserError("name", "已有同名的志愿服务队", DUPLICATE)


def _team_for_update(conn: Connection, team_id: int) -> dict:
    t = volunteer_teams
    row = conn.execute(select(t).where(t.c.id == team_id).with_for_update()).mappings().first()
    if row is None:
        raise refused("team", "志愿服务队不存在", NOT_FOUND)
    return dict(row)


def _resident(conn: Connection, resident_id: int, field: str) -> None:
    if resident_id not in residents_by_ids(conn, [resident_id], allowed_grids=None):
        raise refused(field, "居民不存在", NOT_FOUND)


def _add_member(conn: Connection, team_id: int, resident_id: int, skills: list[str] | None) -> None:
    """Add a member, or replace their skills when `skills` is given."""
    statement = insert(volunteer_team_members).values(
        team_id=team_id, resident_id=resident_id, skills=skills or []
    )
    if skills is None:
        conn.execute(statement.on_conflict_do_nothing())
    else:
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["team_id", "resident_id"], set_={"skills": skills}
            )
        )


def _share(conn: Connection, team: dict) -> None:
    """Append the team as neighbours may see it: no member names, only what it can do."""
    m = volunteer_team_members
    skills_of_members = conn.execute(select(m.c.skills).where(m.c.team_id == team["id"])).scalars()
    skills_of_members = list(skills_of_members)
    emit(
        conn,
        VOLUNTEER_TEAM,
        team["id"],
        {
            "id": team["id"],
            "name": team["name"],
            "description": team["description"],
            "member_count": len(skills_of_members),
            "skills": sorted({skill for skills in skills_of_members for skill in skills}),
        },
        version=team["version"],
    )


def _save(conn: Connection, team_id: int, **values: Any) -> dict:
    t = volunteer_teams
    return dict(
        conn.execute(
            t.update()
            .where(t.c.id == team_id)
            .values(**values, version=t.c.version + 1, updated_at=func.now())
            .returning(*t.columns)
        )
        .mappings()
        .one()
    )


def _audit(
    conn: Connection, actor: Actor, village: str, action: str, team_id: int, **what: Any
) -> None:
    record(
        conn,
        actor,
        village=village,
        action=f"volunteer_team.{action}",
        subject_type=VOLUNTEER_TEAM,
        subject_id=team_id,
        **what,
    )


def do_create_volunteer_team(
    conn: Connection, actor: Actor, village: str, data: dict, *, leader_id: int | None
) -> dict:
    values = validated(TeamSchema(), data)
    if leader_id is not None:
        _resident(conn, leader_id, "leader")
    try:
        with conn.begin_nested():
            t = volunteer_teams
            team = dict(
                conn.execute(
                    t.insert().values(**values, leader_resident_id=leader_id).returning(*t.columns)
                )
                .mappings()
                .one()
            )
            if leader_id is not None:
                _add_member(conn, team["id"], leader_id, None)
            _audit(conn, actor, village, "create", team["id"], fields=sorted(values))
            _share(conn, team)
    except IntegrityError as exc:
        raise ActionFailed([DUPLICATE_NAME]) from exc
    return team


def do_update_volunteer_team(
    conn: Connection, actor: Actor, village: str, team_id: int, changes: dict
) -> dict:
    """Change name, description or leader (`leader_resident_id`, None to clear it)."""
    values = validated(
        TeamSchema(partial=True), {k: v for k, v in changes.items() if k != "leader_resident_id"}
    )
    if "leader_resident_id" in changes:
        values["leader_resident_id"] = changes["leader_resident_id"]
        if values["leader_resident_id"] is not None:
            _resident(conn, values["leader_resident_id"], "leader")
    try:
        with conn.begin_nested():
            before = _team_for_update(conn, team_id)
            changed = {k: v for k, v in values.items() if before[k] != v}
            if not changed:
                return before
            team = _save(conn, team_id, **changed)
            if changed.get("leader_resident_id") is not None:
                _add_member(conn, team_id, changed["leader_resident_id"], None)
            _audit(conn, actor, village, "update", team_id, fields=sorted(changed))
            _share(conn, team)
    except IntegrityError as exc:
        raise ActionFailed([DUPLICATE_NAME]) from exc
    return team


def do_add_team_member(
    conn: Connection, actor: Actor, village: str, team_id: int, resident_id: int, data: dict
) -> dict:
    """Add a resident to the team, or set the skills of one who is already in it."""
    skills = validated(TeamMemberSchema(), data)["skills"]
    skills = sorted({s.strip() for s in skills if s.strip()})
    _resident(conn, resident_id, "resident")
    with conn.begin_nested():
        _team_for_update(conn, team_id)
        _add_member(conn, team_id, resident_id, skills)
        team = _save(conn, team_id)
        _audit(
            conn,
            actor,
            village,
            "add_member",
            team_id,
            details={"resident_id": resident_id, "skills": skills},
        )
        _share(conn, team)
    return team


def do_remove_team_member(
    conn: Connection, actor: Actor, village: str, team_id: int, resident_id: int
) -> dict:
    """Remove a member; a leader who leaves leaves the team without one."""
    m = volunteer_team_members
    with conn.begin_nested():
        before = _team_for_update(conn, team_id)
        removed = conn.execute(
            m.delete()
            .where(m.c.team_id == team_id, m.c.resident_id == resident_id)
            .returning(m.c.resident_id)
        ).first()
        if removed is None:
            raise refused("resident", "该居民不是本队队员", NOT_FOUND)
        leader = {} if before["leader_resident_id"] != resident_id else {"leader_resident_id": None}
        team = _save(conn, team_id, **leader)
        _audit(conn, actor, village, "remove_member", team_id, details={"resident_id": resident_id})
        _share(conn, team)
    return team

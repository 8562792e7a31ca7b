"""Writes of the request closed loop and action lists: the only place they change.

分类登记、分级处置、限时反馈、跟踪督办: a request is registered with a category and
a grade (which sets its deadline), accepted, assigned to a grid worker, worked,
resolved, rated by the resident and closed, or rejected with a reason. Overdue
requests escalate grid → village → region (`do_escalate_overdue`, run by a job).

Every action validates its input, writes inside a savepoint of the caller's
village transaction, adds a timeline entry for every change of a request,
appends the request to the outbox (requests may become joint cases with
neighbours) and an audit entry, all in the same transaction. Steps between
states are decided by `states.py` alone. A refused input raises ActionFailed
and leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from villagelink.platform.audit import Actor, entry, record, record_many
from villagelink.platform.db import violated_constraint
from villagelink.tenants import live
from villagelink.tenants import models as m
from villagelink.tenants.grids import active_staff_by_ids
from villagelink.tenants.outbox import emit_many
from villagelink.tenants.places import place_of
from villagelink.tenants.querying import limit_of
from villagelink.tenants.requests import queries, states
from villagelink.tenants.requests.queries import REQUEST, WHOLE_VILLAGE, RequestScope
from villagelink.tenants.requests.tables import (
    ESCALATION_LEVELS,
    GRID,
    OPEN_STATES,
    REGION,
    SUBMITTED,
    VILLAGE,
    action_list_requests,
    action_lists,
    request_categories,
    request_events,
    request_settings,
    requests,
)
from villagelink.tenants.requests.validation import (
    CATEGORY_INACTIVE,
    NO_ASSIGNEE,
    AcceptSchema,
    ActionListSchema,
    CategoryChangeSchema,
    CategorySchema,
    DeadlinesSchema,
    DispatchSchema,
    NewRequestSchema,
    NoteSchema,
    RatingSchema,
    ReasonSchema,
    ResolutionSchema,
)
from villagelink.tenants.residents.queries import residents_by_ids
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID,
    INVALID_TRANSITION,
    NOT_FOUND,
    REQUIRED,
    refused,
    validated,
)

ACTION_LIST = "ActionList"
REQUEST_CATEGORY = "RequestCategory"
# An action list groups a handful of concrete requests, not a whole backlog.
MAX_REQUESTS_PER_LIST = 100
# Ratings at or below this reopen the request (the resident is not satisfied).
UNSATISFIED_AT_MOST = 2
TIER_LABELS = {"grid_chief": "网格长", "grid_worker": "专职网格员", "micro_grid_worker": "微网格员"}
LEVEL_LABELS = {GRID: "网格", VILLAGE: "村（社区）", REGION: "联动片区"}
# Not a step between states: it changes the level a request waits at.
DISPATCH = "dispatch"


def _announce(
    conn: Connection,
    village: str,
    request: Mapping[str, Any],
    *,
    note: str | None = None,
    previous_staff_id: int | None = None,
    at: datetime | None = None,
) -> None:
    """Tell the open consoles about `request` (its row after the change) once committed."""
    live.announce(
        conn,
        village,
        live.REQUEST_CHANGED,
        subject_type=REQUEST,
        subject=request,
        state=request["state"],
        text=request["description"],
        note=note,
        previous_staff_id=previous_staff_id,
        at=at,
    )


def _joined(*parts: str | None) -> str | None:
    return "；".join(p for p in parts if p) or None


# -- what every change of a request does --------------------------------------


def _locked_request(conn: Connection, request_id: int, scope: RequestScope) -> dict:
    """The request if the scope shows it, locked for the rest of the transaction, so
    that two concurrent steps cannot both start from the same state."""
    query = queries.request_query(scope).where(requests.c.id == request_id)
    found = conn.execute(query.with_for_update(of=requests)).mappings().first()
    if found is None:
        raise refused("id", "诉求不存在或不在您的管辖范围内", NOT_FOUND)
    return dict(found)


def _reread(conn: Connection, request_id: int) -> dict:
    return queries.requests_by_ids(conn, [request_id], WHOLE_VILLAGE)[request_id]


def _log(
    conn: Connection,
    actor: Actor,
    request_id: int,
    action: str,
    from_state: str | None,
    to_state: str,
    note: str | None,
) -> None:
    """One timeline entry: who changed the request, when, from which state to which, why."""
    conn.execute(
        request_events.insert().values(
            request_id=request_id,
            action=action,
            from_state=from_state,
            to_state=to_state,
            note=note,
            actor_sub=actor.principal.sub,
            actor_name=actor.principal.display_name,
        )
    )


def share(conn: Connection, request_ids: Iterable[int]) -> None:
    """Each change of a request goes to the outbox: requests may become joint cases
    with neighbours (跨村联办), and those escalated to the region are copied to its
    coordinators (the catalogue's `escalated_request`, with what their list shows).
    Neither the reporter's name nor phone is part of what may cross."""
    r, c, g, h, b, e = (
        requests,
        request_categories,
        m.grids,
        m.households,
        m.buildings,
        request_events,
    )
    last_event = (
        select(
            func.jsonb_build_object(
                "action",
                e.c.action,
                "from_state",
                e.c.from_state,
                "to_state",
                e.c.to_state,
                "escalation_level",
                e.c.escalation_level,
                "note",
                e.c.note,
                "actor_name",
                e.c.actor_name,
                "created_at",
                e.c.created_at,
            )
        )
        .where(e.c.request_id == r.c.id)
        .order_by(e.c.id.desc())
        .limit(limit_of(1))
        .scalar_subquery()
    )
    rows = conn.execute(
        select(
            r.c.id,
            r.c.version,
            r.c.channel,
            c.c.code.label("category"),
            c.c.name.label("category_name"),
            r.c.grade,
            r.c.state,
            r.c.description,
            r.c.location_text,
            b.c.name.label("building"),
            h.c.address.label("household_address"),
            g.c.code.label("grid"),
            g.c.name.label("grid_name"),
            r.c.escalation_level,
            r.c.needs_coordination,
            r.c.escalated_at,
            r.c.due_at,
            r.c.resolved_at,
            r.c.rating,
            last_event.label("last_event"),
            r.c.created_at,
            r.c.updated_at,
        )
        .join(c, c.c.id == r.c.category_id)
        .outerjoin(g, g.c.id == r.c.grid_id)
        .outerjoin(h, h.c.id == r.c.household_id)
        .outerjoin(b, b.c.id == r.c.building_id)
        .where(r.c.id.in_(list(request_ids)))
    ).mappings()
    changes = [
        (
            row["id"],
            {
                k: v.isoformat() if isinstance(v, datetime) else v
                for k, v in row.items()
                if k != "version"
            },
            row["version"],
        )
        for row in rows
    ]
    if changes:
        emit_many(conn, REQUEST, changes)


def _audit(
    conn: Connection, actor: Actor, village: str, action: str, request_id: int, **what: Any
) -> None:
    record(
        conn,
        actor,
        village=village,
        action=f"request.{action}",
        subject_type=REQUEST,
        subject_id=request_id,
        **what,
    )


# -- registration (分类登记) ---------------------------------------------------


def _active_category(conn: Connection, category_id: int | None, field: str) -> dict:
    found = (
        None
        if category_id is None
        else queries.categories_by_ids(conn, [category_id]).get(category_id)
    )
    if found is None:
        raise refused(field, "诉求分类不存在", NOT_FOUND)
    if not found["active"]:
        raise refused(field, "该分类已停用", CATEGORY_INACTIVE)
    return found


def _location(
    conn: Connection,
    *,
    household_id: int | None,
    building: str | None,
    grid_id: int | None,
    text: str | None,
    grids: queries.Grids,
) -> dict[str, Any]:
    """Household, building and grid of a location (`place_of`); words alone will do
    when no household or building is known. A grid worker registers requests of their
    own grids only."""
    if household_id is None and not building and not text:
        raise refused("locationText", "请选择户或楼栋，或填写位置描述", REQUIRED)
    return place_of(
        conn, household_id=household_id, building=building, grid_id=grid_id, grids=grids
    )


def _reporter(
    conn: Connection, resident_id: int | None, values: dict, grids: queries.Grids
) -> dict[str, Any]:
    """A resident (name and phone taken from the record unless given), or a name."""
    if resident_id is None:
        if not values["reporter_name"]:
            raise refused("reporterName", "请选择反映人或填写其姓名", REQUIRED)
        return {
            "reporter_resident_id": None,
            "reporter_name": values["reporter_name"],
            "reporter_phone": values["reporter_phone"],
        }
    resident = residents_by_ids(conn, [resident_id], allowed_grids=grids).get(resident_id)
    if resident is None:
        raise refused("reporterResident", "居民不存在或不在您的管辖范围内", NOT_FOUND)
    return {
        "reporter_resident_id": resident_id,
        "reporter_name": resident["name"],
        "reporter_phone": values["reporter_phone"] or resident["phone"],
    }


def do_create_request(
    conn: Connection,
    actor: Actor,
    village: str,
    data: dict[str, Any],
    *,
    category_id: int | None,
    household_id: int | None,
    building: str | None,
    grid_id: int | None,
    reporter_resident_id: int | None,
    scope: RequestScope,
) -> dict:
    """分类登记: a new request, its deadline set by its grade."""
    values = validated(NewRequestSchema(), data)
    category = _active_category(conn, category_id, "category")
    location_text = values["location_text"] or None
    place = _location(
        conn,
        household_id=household_id,
        building=building,
        grid_id=grid_id,
        text=location_text,
        grids=scope.grids,
    )
    reporter = _reporter(conn, reporter_resident_id, values, scope.grids)
    with conn.begin_nested():
        request_id = conn.execute(
            requests.insert()
            .values(
                channel=values["channel"],
                category_id=category["id"],
                grade=values["grade"],
                description=values["description"],
                location_text=location_text,
                due_at=func.now() + queries.grade_window(values["grade"]),
                **place,
                **reporter,
            )
            .returning(requests.c.id)
        ).scalar_one()
        _log(conn, actor, request_id, "create", None, SUBMITTED, values["note"])
        share(conn, [request_id])
    _audit(
        conn,
        actor,
        village,
        "create",
        request_id,
        details={"channel": values["channel"], "category": category["code"]},
    )
    created = _reread(conn, request_id)
    _announce(conn, village, created)
    return created


# -- steps between states ---------------------------------------------------------


def _take_step(
    conn: Connection,
    actor: Actor,
    village: str,
    request_id: int,
    step: str,
    *,
    scope: RequestScope,
    note: str | None,
    changes: dict[str, Any] | None = None,
    check: Callable[[dict], tuple[dict[str, Any], str | None]] | None = None,
) -> dict:
    """Move the request along `step` if its state allows it (states.py), with `changes`
    to its columns. `check(request)` may refuse, or add to the changes and the note,
    once the request is known and locked."""
    current = _locked_request(conn, request_id, scope)
    target = states.request_step(current["state"], step)
    changes = dict(changes or {})
    if check is not None:
        extra_changes, extra_note = check(current)
        changes.update(extra_changes)
        note = _joined(extra_note, note)
    r = requests
    with conn.begin_nested():
        conn.execute(
            update(r)
            .where(r.c.id == request_id)
            .values(state=target, version=r.c.version + 1, updated_at=func.now(), **changes)
        )
        _log(conn, actor, request_id, step, current["state"], target, note)
        share(conn, [request_id])
    _audit(
        conn,
        actor,
        village,
        step,
        request_id,
        fields=sorted(["state", *changes]),
        details={"from": current["state"], "to": target},
    )
    changed = _reread(conn, request_id)
    _announce(conn, village, changed, previous_staff_id=current["assignee_staff_id"])
    return changed


def do_accept_request(
    conn: Connection,
    actor: Actor,
    village: str,
    request_id: int,
    data: dict[str, Any],
    *,
    category_id: int | None,
    scope: RequestScope,
) -> dict:
    """受理, and 分级处置: a new grade sets the deadline again from registration; the
    category may be corrected."""
    values = validated(AcceptSchema(), data)
    changes: dict[str, Any] = {}
    if category_id is not None:
        changes["category_id"] = _active_category(conn, category_id, "category")["id"]
    if values["grade"] is not None:
        changes["grade"] = values["grade"]
        changes["due_at"] = requests.c.created_at + queries.grade_window(values["grade"])
    return _take_step(
        conn,
        actor,
        village,
        request_id,
        states.ACCEPT,
        scope=scope,
        note=values["note"],
        changes=changes,
    )


def do_reject_request(
    conn: Connection,
    actor: Actor,
    village: str,
    request_id: int,
    data: dict[str, Any],
    *,
    scope: RequestScope,
) -> dict:
    """不予受理, with the reason the reporter is told."""
    reason = validated(ReasonSchema(), data)["reason"]
    return _take_step(
        conn,
        actor,
        village,
        request_id,
        states.REJECT,
        scope=scope,
        note=reason,
        changes={"rejection_reason": reason},
    )


def do_assign_request(
    conn: Connection,
    actor: Actor,
    village: str,
    request_id: int,
    data: dict[str, Any],
    *,
    assignee_id: int | None,
    scope: RequestScope,
) -> dict:
    """派单 to `assignee_id`, or without one automatically: to a micro-grid worker,
    else a grid worker, else the grid chief of the request's grid or a grid above."""
    note = validated(NoteSchema(), data)["note"]

    def choose(request: dict) -> tuple[dict, str]:
        staff_id = assignee_id
        if staff_id is None:
            if request["grid_id"] is None:
                raise refused("assignee", "该诉求没有所属网格，请指定网格员", NO_ASSIGNEE)
            staff_id = queries.auto_assignee(conn, request["grid_id"])
            if staff_id is None:
                raise refused("assignee", "该网格及上级网格没有网格员，请指定网格员", NO_ASSIGNEE)
        staff = active_staff_by_ids(conn, [staff_id]).get(staff_id)
        if staff is None:
            raise refused("assignee", "网格员不存在", NOT_FOUND)
        how = "自动派单" if assignee_id is None else "派单"
        return (
            {"assignee_staff_id": staff_id},
            f"{how}：{staff['name']}（{TIER_LABELS[staff['tier']]}）",
        )

    return _take_step(
        conn, actor, village, request_id, states.ASSIGN, scope=scope, note=note, check=choose
    )


def do_start_request(
    conn: Connection,
    actor: Actor,
    village: str,
    request_id: int,
    data: dict[str, Any],
    *,
    scope: RequestScope,
) -> dict:
    note = validated(NoteSchema(), data)["note"]
    return _take_step(conn, actor, village, request_id, states.START, scope=scope, note=note)


def do_resolve_request(
    conn: Connection,
    actor: Actor,
    village: str,
    request_id: int,
    data: dict[str, Any],
    *,
    scope: RequestScope,
) -> dict:
    """办结, with what was done: the resident is told it (限时反馈) and rates it."""
    resolution = validated(ResolutionSchema(), data)["resolution"]
    return _take_step(
        conn,
        actor,
        village,
        request_id,
        states.RESOLVE,
        scope=scope,
        note=resolution,
        changes={"resolution": resolution, "resolved_at": func.now()},
    )


def do_close_request(
    conn: Connection,
    actor: Actor,
    village: str,
    request_id: int,
    data: dict[str, Any],
    *,
    scope: RequestScope,
) -> dict:
    """结案 without a rating (e.g. the resident could not be reached)."""
    note = validated(NoteSchema(), data)["note"]
    return _take_step(
        conn,
        actor,
        village,
        request_id,
        states.CLOSE,
        scope=scope,
        note=note,
        changes={"closed_at": func.now()},
    )


def do_dispatch_request(
    conn: Connection,
    actor: Actor,
    village: str,
    request_id: int,
    data: dict[str, Any],
    *,
    scope: RequestScope,
) -> dict:
    """派发 (a region's coordinators): hand an open request that reached the region back
    to its village with a note; the village gets a fresh deadline of the grade, and the
    request no longer waits for coordination."""
    note = validated(DispatchSchema(), data)["note"]
    current = _locked_request(conn, request_id, scope)
    if current["escalation_level"] != REGION or current["state"] not in OPEN_STATES:
        raise refused("state", states.TRANSITION_REFUSED, INVALID_TRANSITION)
    r = requests
    changes = {
        "escalation_level": VILLAGE,
        "needs_coordination": False,
        "due_at": func.now() + queries.grade_window(r.c.grade),
    }
    with conn.begin_nested():
        conn.execute(
            update(r)
            .where(r.c.id == request_id)
            .values(version=r.c.version + 1, updated_at=func.now(), **changes)
        )
        _log(
            conn,
            actor,
            request_id,
            DISPATCH,
            current["state"],
            current["state"],
            f"片区派发至{LEVEL_LABELS[VILLAGE]}：{note}",
        )
        share(conn, [request_id])
    _audit(
        conn,
        actor,
        village,
        DISPATCH,
        request_id,
        fields=sorted(changes),
        details={"from": REGION, "to": VILLAGE, "note": note},
    )
    dispatched = _reread(conn, request_id)
    _announce(conn, village, dispatched, note=f"由片区派发至{LEVEL_LABELS[VILLAGE]}")
    return dispatched


def _reopened() -> dict[str, Any]:
    """A reopened request gets a fresh deadline of its grade; its escalation stays."""
    return {
        "due_at": func.now() + queries.grade_window(requests.c.grade),
        "resolved_at": None,
        "closed_at": None,
    }


def do_reopen_request(
    conn: Connection,
    actor: Actor,
    village: str,
    request_id: int,
    data: dict[str, Any],
    *,
    scope: RequestScope,
) -> dict:
    reason = validated(ReasonSchema(), data)["reason"]
    return _take_step(
        conn,
        actor,
        village,
        request_id,
        states.REOPEN,
        scope=scope,
        note=reason,
        changes=_reopened(),
    )


def do_rate_request(
    conn: Connection,
    actor: Actor,
    village: str,
    request_id: int,
    data: dict[str, Any],
    *,
    scope: RequestScope,
) -> dict:
    """群众评单: 3-5 closes the request, 1-2 reopens it with a fresh deadline."""
    values = validated(RatingSchema(), data)
    rating, comment = values["rating"], values["comment"]
    changes: dict[str, Any] = {
        "rating": rating,
        "rating_comment": comment,
        "rated_at": func.now(),
    }
    if rating <= UNSATISFIED_AT_MOST:
        step = states.RATE_UNSATISFIED
        changes.update(_reopened())
    else:
        step = states.RATE_SATISFIED
        changes["closed_at"] = func.now()
    return _take_step(
        conn,
        actor,
        village,
        request_id,
        step,
        scope=scope,
        note=_joined(f"评分：{rating}分", comment),
        changes=changes,
    )


# -- escalation (跟踪督办) -------------------------------------------------------


def do_escalate_overdue(conn: Connection, actor: Actor, village: str, now: datetime) -> list[dict]:
    """Raise every overdue open request to the level its lateness calls for: the
    village once past its deadline, the region once past it by another whole
    deadline of its grade (flagged for the region's coordinators). Levels only
    rise and each is reached once, so a second run at the same `now` changes
    nothing. Returns what rose: id, from and to level."""
    r = requests
    late = conn.execute(
        select(
            r.c.id,
            r.c.state,
            r.c.escalation_level,
            r.c.grid_id,
            r.c.assignee_staff_id,
            r.c.description,
            (r.c.due_at + queries.grade_window(r.c.grade) <= now).label("region_due"),
        )
        .where(r.c.state.in_(OPEN_STATES), r.c.due_at <= now, r.c.escalation_level != REGION)
        .order_by(r.c.id)
        .with_for_update(of=r)
    ).mappings()
    judged = [{**row, "to": REGION if row["region_due"] else VILLAGE} for row in late]
    rising = [row for row in judged if row["to"] != row["escalation_level"]]
    if not rising:
        return []
    with conn.begin_nested():
        for level in (VILLAGE, REGION):
            ids = [row["id"] for row in rising if row["to"] == level]
            if ids:
                flag = {"needs_coordination": True} if level == REGION else {}
                conn.execute(
                    update(r)
                    .where(r.c.id.in_(ids))
                    .values(
                        escalation_level=level,
                        escalated_at=now,
                        version=r.c.version + 1,
                        updated_at=func.now(),
                        **flag,
                    )
                )
        conn.execute(request_events.insert(), _escalation_events(actor, rising, now))
        share(conn, [row["id"] for row in rising])
    record_many(
        conn,
        [
            entry(
                actor,
                village=village,
                action="request.escalate",
                subject_type=REQUEST,
                subject_id=row["id"],
                fields=["escalation_level"],
                details={"from": row["escalation_level"], "to": row["to"]},
            )
            for row in rising
        ],
    )
    for row in rising:
        _announce(conn, village, row, note=f"超期未办结，已升级至{LEVEL_LABELS[row['to']]}", at=now)
    return [{"id": row["id"], "from": row["escalation_level"], "to": row["to"]} for row in rising]


def _escalation_events(actor: Actor, rising: list[dict], now: datetime) -> list[dict]:
    """One timeline entry per level passed: a request that skipped the village (the
    job did not run for a while) still shows both steps."""
    events = []
    for row in rising:
        start = ESCALATION_LEVELS.index(row["escalation_level"]) + 1
        for level in ESCALATION_LEVELS[start : ESCALATION_LEVELS.index(row["to"]) + 1]:
            events.append(
                {
                    "request_id": row["id"],
                    "action": "escalate",
                    "from_state": row["state"],
                    "to_state": row["state"],
                    "escalation_level": level,
                    "note": f"逾期未办结，升级至{LEVEL_LABELS[level]}督办",
                    "actor_sub": actor.principal.sub,
                    "actor_name": actor.principal.display_name,
                    "created_at": now,
                }
            )
    return events


# -- categories and deadlines ---------------------------------------------------


def do_create_request_category(
    conn: Connection, actor: Actor, village: str, data: dict[str, Any], *, parent_id: int | None
) -> dict:
    """A village's own category, at the top or below a top-level one (two levels)."""
    values = validated(CategorySchema(), data)
    c = request_categories
    if parent_id is not None:
        parent = queries.categories_by_ids(conn, [parent_id]).get(parent_id)
        if parent is None:
            raise refused("parent", "上级分类不存在", NOT_FOUND)
        if parent["parent_id"] is not None:
            raise refused("parent", "只能在一级分类下添加子分类", INVALID)
    siblings = c.c.parent_id.is_(None) if parent_id is None else c.c.parent_id == parent_id
    last = select(func.coalesce(func.max(c.c.position), 0)).where(siblings).scalar_subquery()
    try:
        with conn.begin_nested():
            category = (
                conn.execute(
                    c.insert()
                    .values(
                        code=values["code"],
                        name=values["name"],
                        parent_id=parent_id,
                        position=last + 1,
                    )
                    .returning(*c.c)
                )
                .mappings()
                .one()
            )
    except IntegrityError as exc:
        if violated_constraint(exc) == "request_categories_sibling_name":
            raise refused("name", "同级已有同名分类", DUPLICATE) from exc
        raise refused("code", "分类代码已存在", DUPLICATE) from exc
    record(
        conn,
        actor,
        village=village,
        action="request_category.create",
        subject_type=REQUEST_CATEGORY,
        subject_id=category["id"],
        details={"code": category["code"], "parent": parent_id},
    )
    return dict(category)


def do_update_request_category(
    conn: Connection, actor: Actor, village: str, category_id: int, data: dict[str, Any]
) -> dict:
    """Rename a category, retire it or take it back into use. A retired top-level category
    takes its sub-categories with it (nothing new may be filed under it); a sub-category
    comes back only under a category in use. Requests keep their category either way."""
    values = validated(CategoryChangeSchema(), data)
    c = request_categories
    found = (
        conn.execute(select(c).where(c.c.id == category_id).with_for_update()).mappings().first()
    )
    if found is None:
        raise refused("id", "诉求分类不存在", NOT_FOUND)
    if values.get("active") and found["parent_id"] is not None:
        parent = queries.categories_by_ids(conn, [found["parent_id"]])[found["parent_id"]]
        if not parent["active"]:
            raise refused("active", "上级分类已停用，请先启用上级分类", INVALID)
    try:
        with conn.begin_nested():
            category = (
                conn.execute(
                    update(c).where(c.c.id == category_id).values(**values).returning(*c.c)
                )
                .mappings()
                .one()
            )
            if values.get("active") is False and found["parent_id"] is None:
                conn.execute(update(c).where(c.c.parent_id == category_id).values(active=False))
    except IntegrityError as exc:
        raise refused("name", "同级已有同名分类", DUPLICATE) from exc
    record(
        conn,
        actor,
        village=village,
        action="request_category.update",
        subject_type=REQUEST_CATEGORY,
        subject_id=category_id,
        fields=sorted(values),
        details=values,
    )
    return dict(category)


def do_update_request_deadlines(
    conn: Connection, actor: Actor, village: str, data: dict[str, Any]
) -> dict:
    """Hours per grade for requests graded from now on; set deadlines stay as they are."""
    values = validated(DeadlinesSchema(), data)
    with conn.begin_nested():
        conn.execute(update(request_settings).values(**values, updated_at=func.now()))
    record(
        conn,
        actor,
        village=village,
        action="request_settings.update",
        subject_type="RequestSettings",
        fields=sorted(values),
        details=values,
    )
    return queries.deadline_settings(conn)


# -- action lists (行动清单) -----------------------------------------------------


def _locked_action_list(conn: Connection, list_id: int) -> dict:
    query = select(action_lists).where(action_lists.c.id == list_id).with_for_update()
    found = conn.execute(query).mappings().first()
    if found is None:
        raise refused("id", "行动清单不存在", NOT_FOUND)
    return dict(found)


def _requests_named(conn: Connection, request_ids: list[int]) -> dict[int, dict]:
    found = queries.requests_by_ids(conn, request_ids, WHOLE_VILLAGE)
    if len(found) != len(set(request_ids)):
        raise refused("requests", "诉求不存在", NOT_FOUND)
    return found


def _log_list_change(
    conn: Connection, actor: Actor, listed: list[dict], action: str, note: str
) -> None:
    """Timeline entries of requests put on or taken off a list: their state stays."""
    if listed:
        conn.execute(
            request_events.insert(),
            [
                {
                    "request_id": request["id"],
                    "action": action,
                    "from_state": request["state"],
                    "to_state": request["state"],
                    "note": note,
                    "actor_sub": actor.principal.sub,
                    "actor_name": actor.principal.display_name,
                }
                for request in listed
            ],
        )


def _link(conn: Connection, actor: Actor, action_list: dict, found: dict[int, dict]) -> list[int]:
    """Put the requests on the list (those already on it stay as they are); each newly
    listed request's timeline says so. Call inside a savepoint: a list that would grow
    past its limit is refused. Returns the ids newly listed."""
    if not found:
        return []
    a = action_list_requests
    linked = (
        conn.execute(
            insert(a)
            .values([{"action_list_id": action_list["id"], "request_id": k} for k in sorted(found)])
            .on_conflict_do_nothing()
            .returning(a.c.request_id)
        )
        .scalars()
        .all()
    )
    if len(queries.request_ids_in_list(conn, action_list["id"])) > MAX_REQUESTS_PER_LIST:
        raise refused("requests", f"一个行动清单最多包含{MAX_REQUESTS_PER_LIST}项诉求", INVALID)
    _log_list_change(
        conn,
        actor,
        [found[k] for k in linked],
        "add_to_action_list",
        f"纳入行动清单：{action_list['title']}",
    )
    return sorted(linked)


def _audit_list(
    conn: Connection, actor: Actor, village: str, action: str, list_id: int, **what: Any
) -> None:
    record(
        conn,
        actor,
        village=village,
        action=f"action_list.{action}",
        subject_type=ACTION_LIST,
        subject_id=list_id,
        **what,
    )


def do_create_action_list(
    conn: Connection, actor: Actor, village: str, data: dict[str, Any], request_ids: list[int]
) -> dict:
    """心声清单 → 行动清单: a concrete action with an owner and a due date, grouping requests."""
    values = validated(ActionListSchema(), data)
    found = _requests_named(conn, request_ids)
    with conn.begin_nested():
        created = dict(
            conn.execute(action_lists.insert().values(**values).returning(*action_lists.c))
            .mappings()
            .one()
        )
        linked = _link(conn, actor, created, found)
    _audit_list(
        conn,
        actor,
        village,
        "create",
        created["id"],
        fields=sorted(values),
        details={"requests": linked},
    )
    return created


def do_update_action_list(
    conn: Connection, actor: Actor, village: str, list_id: int, changes: dict[str, Any]
) -> dict:
    values = validated(ActionListSchema(partial=True), changes)
    current = _locked_action_list(conn, list_id)
    states.require_action_list_editable(current["status"])
    changed = {k: v for k, v in values.items() if current[k] != v}
    if not changed:
        return current
    t = action_lists
    with conn.begin_nested():
        updated = (
            conn.execute(
                update(t)
                .where(t.c.id == list_id)
                .values(**changed, version=t.c.version + 1, updated_at=func.now())
                .returning(*t.c)
            )
            .mappings()
            .one()
        )
    _audit_list(conn, actor, village, "update", list_id, fields=sorted(changed))
    return dict(updated)


def do_add_requests_to_action_list(
    conn: Connection, actor: Actor, village: str, list_id: int, request_ids: list[int]
) -> dict:
    current = _locked_action_list(conn, list_id)
    states.require_action_list_editable(current["status"])
    found = _requests_named(conn, request_ids)
    with conn.begin_nested():
        linked = _link(conn, actor, current, found)
    if linked:
        _audit_list(conn, actor, village, "add_requests", list_id, details={"requests": linked})
    return current


def do_remove_request_from_action_list(
    conn: Connection, actor: Actor, village: str, list_id: int, request_id: int
) -> dict:
    current = _locked_action_list(conn, list_id)
    states.require_action_list_editable(current["status"])
    a = action_list_requests
    with conn.begin_nested():
        removed = conn.execute(
            a.delete()
            .where(a.c.action_list_id == list_id, a.c.request_id == request_id)
            .returning(a.c.request_id)
        ).first()
        if removed is None:
            raise refused("request", "该诉求不在此行动清单中", NOT_FOUND)
        request = _reread(conn, request_id)
        _log_list_change(
            conn, actor, [request], "remove_from_action_list", f"移出行动清单：{current['title']}"
        )
    _audit_list(conn, actor, village, "remove_request", list_id, details={"request": request_id})
    return current


def do_set_action_list_status(
    conn: Connection,
    actor: Actor,
    village: str,
    list_id: int,
    status: str,
    data: dict[str, Any],
) -> dict:
    """planned → in_progress → done, or cancelled before it is done (states.py)."""
    note = validated(NoteSchema(), data)["note"]
    current = _locked_action_list(conn, list_id)
    states.require_action_list_transition(current["status"], status)
    t = action_lists
    with conn.begin_nested():
        updated = (
            conn.execute(
                update(t)
                .where(t.c.id == list_id)
                .values(status=status, version=t.c.version + 1, updated_at=func.now())
                .returning(*t.c)
            )
            .mappings()
            .one()
        )
    _audit_list(
        conn,
        actor,
        village,
        "set_status",
        list_id,
        fields=["status"],
        reason=note,
        details={"from": current["status"], "to": status},
    )
    return dict(updated)

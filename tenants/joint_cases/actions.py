"""Writes to joint cases (难事部门联动): opened by the origin village's admins from one
of its requests, updated by the origin, the involved villages and the region's
coordinators, always in the origin village's schema.

Every change appends to the one timeline, raises the version and appends an outbox
row `JointCase` meant for the involved villages (the sync also gives the region's
coordinators their copy, whatever the agreements). Who may act is the caller's
business (GraphQL: `ctx.neighbour` for an involved village, the coordinator's
region); the action checks that the acting village is one of the case's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import Connection, func, select

from villagelink.platform.audit import Actor, record
from villagelink.platform.linkage.catalogue import AUDIENCE_KEY, JOINT_CASE, RECORD_TYPES
from villagelink.tenants.fields import choice, messages, optional_text
from villagelink.tenants.joint_cases import queries
from villagelink.tenants.joint_cases.tables import (
    CLOSED,
    NOTE,
    OPENED,
    PRIORITIES,
    STATE_CHANGE,
    STATES,
    TRANSITIONS,
    VILLAGE_ADDED,
    joint_case_events,
    joint_cases,
)
from villagelink.tenants.outbox import emit
from villagelink.tenants.requests.queries import WHOLE_VILLAGE, requests_by_ids
from villagelink.tenants.requests.tables import COMPLEX, HARD, request_categories
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID,
    INVALID_TRANSITION,
    NOT_FOUND,
    REQUIRED,
    Coded,
    refused,
    validated,
)

JOINT_CASE_TYPE = "JointCase"  # the outbox's record type and the API's type name
PAYLOAD_FIELDS = RECORD_TYPES[JOINT_CASE].fields
NO_AGREEMENT = "NO_AGREEMENT"
FORBIDDEN = "FORBIDDEN"
# A request's grade says how hard it is; the case starts at the matching priority.
PRIORITY_OF_GRADE = {HARD: "urgent", COMPLEX: "high"}
STATE_NAMES = {"open": "待办", "in_progress": "办理中", "resolved": "已办结", "closed": "已关闭"}
TITLE_LENGTH = 40


class OpenSchema(Schema):
    villages = fields.List(
        fields.String(error_messages=messages()),
        required=True,
        validate=validate.Length(min=1, max=20, error=Coded("请选择1到20个联办村", REQUIRED)),
        error_messages=messages(),
    )
    note = optional_text("说明", 1000)
    priority = choice(PRIORITIES, "紧急程度", load_default=None)


class UpdateSchema(Schema):
    note = optional_text("说明", 1000)
    state = choice(STATES, "状态", load_default=None)
    add_villages = fields.List(
        fields.String(error_messages=messages()),
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=20, error=Coded("联办村不能超过20个", INVALID)),
        error_messages=messages(),
    )

    @validates_schema
    def _something(self, data: dict, **_kwargs) -> None:
        if data.get("state") is None and not data.get("add_villages") and not data.get("note"):
            raise ValidationError(Coded("请填写说明或选择新状态", REQUIRED), field_name="note")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _event(conn: Connection, actor: Actor, case_id: int, acting: str, **what: Any) -> None:
    conn.execute(
        joint_case_events.insert().values(
            case_id=case_id,
            village=acting,
            actor_sub=actor.principal.sub,
            actor_name=actor.principal.display_name,
            **what,
        )
    )


def _share(conn: Connection, case: dict) -> None:
    """The case as the involved villages and the coordinators see it, timeline included."""
    timeline = queries.events_by_case(conn, [case["id"]]).get(case["id"], [])
    payload = {
        "title": case["title"],
        "category": case["category"],
        "description": case["description"],
        "state": case["state"],
        "priority": case["priority"],
        "villages": case["villages"],
        "timeline": [
            {
                "village": e["village"],
                "actor_name": e["actor_name"],
                "kind": e["kind"],
                "note": e["note"],
                "state": e["state"],
                "occurred_at": _iso(e["occurred_at"]),
            }
            for e in timeline
        ],
        "opened_at": _iso(case["opened_at"]),
        "updated_at": _iso(case["updated_at"]),
    }
    emit(
        conn,
        JOINT_CASE_TYPE,
        case["id"],
        {**payload, AUDIENCE_KEY: list(case["villages"])},
        version=case["version"],
    )


def do_open_joint_case(
    conn: Connection,
    actor: Actor,
    village: str,
    request_id: int,
    data: dict[str, Any],
    *,
    covered: dict[str, list[int]],
) -> dict:
    """Make a request of `village` a joint case with neighbouring villages. `covered`:
    {village: agreement ids} of those with an agreement in force with `village`
    covering joint_case (the caller asks the platform: `policy.covering`)."""
    values = validated(OpenSchema(), data)
    involved = sorted({v.strip() for v in values["villages"]} - {""})
    if village in involved or not involved:
        raise refused("villages", "联办村不能包含本村", INVALID)
    missing = [v for v in involved if not covered.get(v)]
    if missing:
        raise refused(
            "villages",
            f"与以下村没有生效的联办共享协议：{'、'.join(missing)}",
            NO_AGREEMENT,
        )
    with conn.begin_nested():
        request = requests_by_ids(conn, [request_id], WHOLE_VILLAGE).get(request_id)
        if request is None:
            raise refused("request", "诉求不存在", NOT_FOUND)
        if queries.case_of_request(conn, request_id) is not None:
            raise refused("request", "该诉求已发起联办", DUPLICATE)
        category = conn.execute(
            select(request_categories.c.code, request_categories.c.name).where(
                request_categories.c.id == request["category_id"]
            )
        ).one()
        description = request["description"]
        short = (
            description if len(description) <= TITLE_LENGTH else description[:TITLE_LENGTH] + "…"
        )
        c = joint_cases
        case = dict(
            conn.execute(
                c.insert()
                .values(
                    request_id=request_id,
                    title=f"{category.name}：{short}",
                    category=category.code,
                    description=description,
                    priority=values["priority"]
                    or PRIORITY_OF_GRADE.get(request["grade"], "normal"),
                    villages=involved,
                    opened_by=actor.principal.sub,
                )
                .returning(*c.columns)
            )
            .mappings()
            .one()
        )
        _event(
            conn, actor, case["id"], village, kind=OPENED, note=values["note"], state=case["state"]
        )
        record(
            conn,
            actor,
            village=village,
            action="joint_case.open",
            subject_type=JOINT_CASE_TYPE,
            subject_id=case["id"],
            details={
                "request_id": request_id,
                "villages": involved,
                "agreement_ids": sorted({a for v in involved for a in covered[v]}),
            },
        )
        _share(conn, case)
    return case


def do_update_joint_case(
    conn: Connection,
    actor: Actor,
    village: str,
    case_id: int,
    acting: str,
    data: dict[str, Any],
    *,
    as_coordinator: bool = False,
    covered: dict[str, list[int]] | None = None,
) -> dict:
    """A note, a state change and/or more villages, by `acting`: the origin
    `village`, one of the case's villages, or (`as_coordinator`) the region's
    coordinators, named by `acting` = the region's id. Villages are added by the
    origin or the coordinators only, each with an agreement in force with the origin
    covering joint_case (`covered`, as for opening)."""
    values = validated(UpdateSchema(), data)
    note = values["note"] or None
    with conn.begin_nested():
        case = queries.case_for_update(conn, case_id)
        if case is None:
            raise refused("case", "联办事项不存在", NOT_FOUND)
        if not as_coordinator and acting != village and acting not in case["villages"]:
            raise refused("village", "该村不是此联办事项的参与村", FORBIDDEN)
        if case["state"] == CLOSED:
            raise refused("case", "联办事项已关闭", INVALID_TRANSITION)
        added = _added_villages(case, village, acting, values, covered or {}, as_coordinator)
        state = values["state"] if values["state"] != case["state"] else None
        if state is not None and state not in TRANSITIONS[case["state"]]:
            raise refused(
                "state",
                f"联办事项{STATE_NAMES[case['state']]}，不能改为{STATE_NAMES[state]}",
                INVALID_TRANSITION,
            )
        if not (added or state or note):
            return case  # the state it already has, and nothing to say: nothing changes
        if added:
            _event(conn, actor, case_id, acting, kind=VILLAGE_ADDED, note="、".join(added))
        if state is not None:
            _event(conn, actor, case_id, acting, kind=STATE_CHANGE, note=note, state=state)
        elif note is not None:
            _event(conn, actor, case_id, acting, kind=NOTE, note=note)
        c = joint_cases
        changes: dict[str, Any] = {}
        if state is not None:
            changes["state"] = state
        if added:
            changes["villages"] = sorted([*case["villages"], *added])
        case = dict(
            conn.execute(
                c.update()
                .where(c.c.id == case_id)
                .values(**changes, version=c.c.version + 1, updated_at=func.now())
                .returning(*c.columns)
            )
            .mappings()
            .one()
        )
        record(
            conn,
            actor,
            village=village,
            action="joint_case.update",
            subject_type=JOINT_CASE_TYPE,
            subject_id=case_id,
            fields=sorted(changes),
            details={
                "acting": acting,
                "state": state,
                "added_villages": added,
                "coordinator": as_coordinator,
            },
        )
        _share(conn, case)
    return case


def _added_villages(
    case: dict,
    village: str,
    acting: str,
    values: dict,
    covered: dict[str, list[int]],
    as_coordinator: bool,
) -> list[str]:
    wanted = sorted({v.strip() for v in values["add_villages"] or ()} - {""})
    added = [v for v in wanted if v not in case["villages"]]
    if not added:
        return []
    if acting != village and not as_coordinator:
        raise refused("addVillages", "只有发起村或片区协调员可以增加联办村", FORBIDDEN)
    if village in added:
        raise refused("addVillages", "联办村不能包含发起村", INVALID)
    missing = [v for v in added if not covered.get(v)]
    if missing:
        raise refused(
            "addVillages", f"与以下村没有生效的联办共享协议：{'、'.join(missing)}", NO_AGREEMENT
        )
    return added

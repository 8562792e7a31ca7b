"""Writes of the safety alert loop after an alert is raised (tenants/sensing/alerting.py):
the only place alerts, the duty roster (值班表) and the alert rules change.

确认 → 处置 (or 误报): a grid worker of the alert's grid (or the one it is assigned
to, or the village admin) acknowledges it, which stops the clock, then resolves
it with an outcome, or marks it a false alarm with a note; the village admin may
reassign it. An alert nobody acknowledges in time rises grid → village → region
(逐级上报, `do_escalate_unacknowledged`, run every minute by a job).

Every change checks the step against ALERT_TRANSITIONS, is written inside a
savepoint with its timeline row and version bump, goes to the outbox for the
kinds neighbours see, and is audited, all in the caller's transaction. A refused
step or input raises ActionFailed and changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import Connection, case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from villagelink.platform.audit import Actor, entry, record, record_many
from villagelink.tenants import live
from villagelink.tenants import models as m
from villagelink.tenants.fields import MESSAGES, FreeText, choice, optional_text
from villagelink.tenants.grids import active_staff_by_ids
from villagelink.tenants.querying import limit_of
from villagelink.tenants.sensing import queries
from villagelink.tenants.sensing.alerting import ALERT, SHARED_KINDS, announce_alert, share
from villagelink.tenants.sensing.queries import WHOLE_VILLAGE, AlertScope
from villagelink.tenants.sensing.tables import (
    ACKNOWLEDGED,
    ALERT_KINDS,
    ASSIGNED,
    FALSE_ALARM,
    GRID,
    OPEN,
    REGION,
    RESOLVED,
    SEVERITIES,
    UNACKNOWLEDGED_STATES,
    VILLAGE,
    alert_events,
    alert_rules,
    alerts,
    duty_shifts,
)
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

DUTY_SHIFT = "DutyShift"
ALERT_RULE = "AlertRule"

# -- the state machine ---------------------------------------------------------------

ACKNOWLEDGE = "acknowledge"
RESOLVE = "resolve"
MARK_FALSE_ALARM = "mark_false_alarm"
REASSIGN = "reassign"
ALERT_STEPS = (ACKNOWLEDGE, RESOLVE, MARK_FALSE_ALARM, REASSIGN)
# Not a step of the table: it changes an alert's level, not its state.
DISPATCH = "dispatch"

# An alert's state -> the steps it may take there -> the state each leads to.
# Resolving takes an acknowledgement first: whoever went there said so, and the
# clock stopped. A false alarm may be told from the console (the camera's
# footage) before anyone goes. Reassigning hands the alert, acknowledged or not,
# to someone who must acknowledge it anew. Resolved and false alarms are final.
ALERT_TRANSITIONS: dict[str, dict[str, str]] = {
    OPEN: {ACKNOWLEDGE: ACKNOWLEDGED, MARK_FALSE_ALARM: FALSE_ALARM, REASSIGN: ASSIGNED},
    ASSIGNED: {ACKNOWLEDGE: ACKNOWLEDGED, MARK_FALSE_ALARM: FALSE_ALARM, REASSIGN: ASSIGNED},
    ACKNOWLEDGED: {RESOLVE: RESOLVED, MARK_FALSE_ALARM: FALSE_ALARM, REASSIGN: ASSIGNED},
    RESOLVED: {},
    FALSE_ALARM: {},
}

TRANSITION_REFUSED = "预警当前状态不允许此操作"
LEVEL_LABELS = {GRID: "网格", VILLAGE: "村（社区）", REGION: "联动片区"}
# Eight hours is a shift; a week of on-call is the longest a roster plans at once.
MAX_SHIFT = timedelta(days=7)
# A day: a deadline longer than that is a typing mistake, not a rule.
MAX_RULE_MINUTES = 24 * 60


def alert_step(current: str, step: str) -> str:
    """The state `step` leads to from `current`; refused (INVALID_TRANSITION) if none."""
    target = ALERT_TRANSITIONS[current].get(step)
    if target is None:
        raise refused("state", TRANSITION_REFUSED, INVALID_TRANSITION)
    return target


# -- input rules -----------------------------------------------------------------------


def _required_text(label: str, max_length: int) -> FreeText:
    return FreeText(
        label,
        max_length,
        required=True,
        error_messages={"required": Coded(f"请填写{label}", REQUIRED)},
    )


class NoteSchema(Schema):
    note = optional_text("备注", 500)


class OutcomeSchema(Schema):
    # How it ended, as told to the family and the village (e.g. "已送医，家属陪同").
    outcome = _required_text("处置结果", 500)


class FalseAlarmSchema(Schema):
    note = _required_text("误报说明", 500)


class DispatchSchema(Schema):
    # What the village is to do: the region has decided who acts.
    note = _required_text("派发说明", 500)


class ShiftSchema(Schema):
    starts_at = fields.AwareDateTime(required=True, error_messages=MESSAGES)
    ends_at = fields.AwareDateTime(required=True, error_messages=MESSAGES)

    @validates_schema(skip_on_field_errors=True)
    def _ordered_and_bounded(self, data: dict, **_kwargs) -> None:
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError(Coded("结束时间须晚于开始时间", INVALID), field_name="ends_at")
        if data["ends_at"] - data["starts_at"] > MAX_SHIFT:
            raise ValidationError(Coded("一次值班最长7天", INVALID), field_name="ends_at")


def _minutes(label: str, least: int) -> fields.Integer:
    return fields.Integer(
        strict=True,
        validate=validate.Range(
            least,
            MAX_RULE_MINUTES,
            error=Coded(f"{label}须为{least}到{MAX_RULE_MINUTES}分钟", INVALID),
        ),
        error_messages=MESSAGES,
    )


class RuleSchema(Schema):
    """Changes to one kind's rule; what is left out stays."""

    enabled = fields.Boolean(error_messages=MESSAGES)
    severity = choice(SEVERITIES, "严重程度")
    ack_minutes = _minutes("确认时限", 1)
    debounce_minutes = _minutes("去抖时间", 0)


# -- what every change of an alert does ------------------------------------------------


def _locked_alert(conn: Connection, alert_id: int, scope: AlertScope) -> dict:
    """The alert if the scope shows it, locked for the rest of the transaction, so that
    two people acting at once cannot both start from the same state."""
    query = queries.alert_query(scope).where(alerts.c.id == alert_id).with_for_update()
    found = conn.execute(query).mappings().first()
    if found is None:
        raise refused("id", "预警不存在或不在您的管辖范围内", NOT_FOUND)
    return dict(found)


def _reread(conn: Connection, alert_id: int) -> dict:
    return queries.alerts_by_ids(conn, [alert_id], WHOLE_VILLAGE)[alert_id]


def _log(conn: Connection, actor: Actor, rows: list[dict[str, Any]]) -> None:
    """Timeline rows (alert_id, action, from_state, to_state, level, staff_id, note, and
    created_at when the moment is not now), in one statement."""
    conn.execute(
        alert_events.insert(),
        [
            {
                "level": None,
                "staff_id": None,
                "note": None,
                **row,
                "actor_sub": actor.principal.sub,
                "actor_name": actor.principal.display_name,
            }
            for row in rows
        ],
    )


def _audit(
    conn: Connection, actor: Actor, village: str, action: str, alert_id: int, **what: Any
) -> None:
    record(
        conn,
        actor,
        village=village,
        action=f"alert.{action}",
        subject_type=ALERT,
        subject_id=alert_id,
        **what,
    )


def _take_step(
    conn: Connection,
    actor: Actor,
    village: str,
    alert_id: int,
    step: str,
    *,
    scope: AlertScope,
    note: str | None,
    changes: dict[str, Any],
    staff_id: int | None = None,
) -> dict:
    """Move the alert along `step` if its state allows it, with `changes` to its columns."""
    current = _locked_alert(conn, alert_id, scope)
    target = alert_step(current["state"], step)
    a = alerts
    with conn.begin_nested():
        conn.execute(
            update(a)
            .where(a.c.id == alert_id)
            .values(state=target, version=a.c.version + 1, updated_at=func.now(), **changes)
        )
        _log(
            conn,
            actor,
            [
                {
                    "alert_id": alert_id,
                    "action": step,
                    "from_state": current["state"],
                    "to_state": target,
                    "level": current["level"],
                    "staff_id": staff_id,
                    "note": note,
                }
            ],
        )
        if current["kind"] in SHARED_KINDS:
            share(conn, [alert_id])
    _audit(
        conn,
        actor,
        village,
        step,
        alert_id,
        fields=sorted(["state", *changes]),
        details={"from": current["state"], "to": target},
    )
    changed = _reread(conn, alert_id)
    announce_alert(
        conn,
        village,
        live.ALERT_CHANGED,
        changed,
        previous_staff_id=current["assignee_staff_id"],
    )
    return changed


def _ack_window(kind) -> Any:
    """The village's time to acknowledge an alert of `kind` (a column or a value), as an
    interval read from its rule inside the statement that uses it."""
    r = alert_rules
    minutes = select(r.c.ack_minutes).where(r.c.kind == kind).scalar_subquery()
    return func.make_interval(0, 0, 0, 0, 0, minutes)


# -- the steps ----------------------------------------------------------------------


def do_acknowledge_alert(
    conn: Connection,
    actor: Actor,
    village: str,
    alert_id: int,
    data: dict[str, Any],
    *,
    scope: AlertScope,
) -> dict:
    """确认: someone has it in hand; the clock stops. A grid worker who acknowledges an
    alert of their grid takes it over (it is assigned to them)."""
    note = validated(NoteSchema(), data)["note"]
    changes: dict[str, Any] = {
        "acknowledged_at": func.now(),
        "acknowledged_by": actor.principal.display_name,
    }
    if scope.staff_id is not None:
        changes["assignee_staff_id"] = scope.staff_id
    return _take_step(
        conn,
        actor,
        village,
        alert_id,
        ACKNOWLEDGE,
        scope=scope,
        note=note,
        changes=changes,
        staff_id=scope.staff_id,
    )


def do_resolve_alert(
    conn: Connection,
    actor: Actor,
    village: str,
    alert_id: int,
    data: dict[str, Any],
    *,
    scope: AlertScope,
) -> dict:
    """处置完毕, with the outcome (e.g. 已送医): acknowledged → resolved."""
    outcome = validated(OutcomeSchema(), data)["outcome"]
    return _take_step(
        conn,
        actor,
        village,
        alert_id,
        RESOLVE,
        scope=scope,
        note=outcome,
        changes={"outcome": outcome, "closed_at": func.now()},
    )


def do_mark_false_alarm(
    conn: Connection,
    actor: Actor,
    village: str,
    alert_id: int,
    data: dict[str, Any],
    *,
    scope: AlertScope,
) -> dict:
    """误报, with why (e.g. 摄像头把晾晒的衣物识别为烟雾). Deciding it is an acknowledgement."""
    note = validated(FalseAlarmSchema(), data)["note"]
    return _take_step(
        conn,
        actor,
        village,
        alert_id,
        MARK_FALSE_ALARM,
        scope=scope,
        note=note,
        changes={
            "outcome": note,
            "closed_at": func.now(),
            "acknowledged_at": func.coalesce(alerts.c.acknowledged_at, func.now()),
            "acknowledged_by": func.coalesce(
                alerts.c.acknowledged_by, actor.principal.display_name
            ),
        },
    )


def do_reassign_alert(
    conn: Connection,
    actor: Actor,
    village: str,
    alert_id: int,
    data: dict[str, Any],
    *,
    assignee_id: int | None,
) -> dict:
    """改派 (village admin): to another grid worker, who must acknowledge it anew within
    the kind's time; the alert keeps the level it reached."""
    note = validated(NoteSchema(), data)["note"]
    if assignee_id is None:
        raise refused("assignee", "请选择接手的网格员", REQUIRED)
    assignee = active_staff_by_ids(conn, [assignee_id]).get(assignee_id)
    if assignee is None:
        raise refused("assignee", "网格员不存在", NOT_FOUND)
    current = _locked_alert(conn, alert_id, WHOLE_VILLAGE)
    if current["assignee_staff_id"] == assignee_id and current["state"] == ASSIGNED:
        raise refused("assignee", "预警已由该网格员负责", DUPLICATE)
    return _take_step(
        conn,
        actor,
        village,
        alert_id,
        REASSIGN,
        scope=WHOLE_VILLAGE,
        note=f"改派给{assignee['name']}" + (f"：{note}" if note else ""),
        changes={
            "assignee_staff_id": assignee_id,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "ack_due_at": func.now() + _ack_window(alerts.c.kind),
            # The new assignee is still to be told (the notify job marks it again).
            "notified_at": None,
        },
        staff_id=assignee_id,
    )


def do_dispatch_alert(
    conn: Connection,
    actor: Actor,
    village: str,
    alert_id: int,
    data: dict[str, Any],
    *,
    scope: AlertScope,
) -> dict:
    """派发 (a region's coordinators): hand an alert risen to the region back to its
    village with a note, before anyone has it in hand. The village's admin gets the
    kind's acknowledgement time anew and is told again (the notify job)."""
    note = validated(DispatchSchema(), data)["note"]
    current = _locked_alert(conn, alert_id, scope)
    if current["level"] != REGION or current["state"] not in UNACKNOWLEDGED_STATES:
        raise refused("state", TRANSITION_REFUSED, INVALID_TRANSITION)
    a = alerts
    changes = {
        "level": VILLAGE,
        "ack_due_at": func.now() + _ack_window(a.c.kind),
        "notified_at": None,
    }
    with conn.begin_nested():
        conn.execute(
            update(a)
            .where(a.c.id == alert_id)
            .values(version=a.c.version + 1, updated_at=func.now(), **changes)
        )
        _log(
            conn,
            actor,
            [
                {
                    "alert_id": alert_id,
                    "action": DISPATCH,
                    "from_state": current["state"],
                    "to_state": current["state"],
                    "level": VILLAGE,
                    "note": f"片区派发至{LEVEL_LABELS[VILLAGE]}：{note}",
                }
            ],
        )
        if current["kind"] in SHARED_KINDS:
            share(conn, [alert_id])
    _audit(
        conn,
        actor,
        village,
        DISPATCH,
        alert_id,
        fields=sorted(changes),
        details={"from": REGION, "to": VILLAGE, "note": note},
    )
    dispatched = _reread(conn, alert_id)
    announce_alert(
        conn, village, live.ALERT_CHANGED, dispatched, note=f"由片区派发至{LEVEL_LABELS[VILLAGE]}"
    )
    return dispatched


# -- escalation (逐级上报) ------------------------------------------------------------


def do_escalate_unacknowledged(
    conn: Connection, actor: Actor, village: str, now: datetime
) -> list[dict]:
    """Raise every alert nobody acknowledged by its deadline one level: a grid's to the
    village, whose admin gets the kind's acknowledgement time anew (counted from
    `now`), and a village's to the region. One level per run: a second run at the same
    `now` changes nothing. Returns what rose: id, kind, from and to level."""
    a, r = alerts, alert_rules
    due = conn.execute(
        select(
            a.c.id,
            a.c.kind,
            a.c.state,
            a.c.level,
            a.c.grid_id,
            a.c.assignee_staff_id,
            a.c.summary,
            r.c.ack_minutes,
        )
        .join(r, r.c.kind == a.c.kind)
        .where(a.c.state.in_(UNACKNOWLEDGED_STATES), a.c.ack_due_at <= now, a.c.level != REGION)
        .order_by(a.c.id)
        .with_for_update(of=a)
    ).mappings()
    rising = [{**row, "to": VILLAGE if row["level"] == GRID else REGION} for row in due]
    if not rising:
        return []
    ids = [row["id"] for row in rising]
    with conn.begin_nested():
        conn.execute(
            update(a)
            .where(a.c.id.in_(ids))
            .values(
                # SET reads the row as it was: a grid's goes to the village with a fresh
                # deadline, a village's to the region (the top: its deadline stays).
                level=case((a.c.level == GRID, VILLAGE), else_=REGION),
                ack_due_at=case(
                    (a.c.level == GRID, now + _ack_window(a.c.kind)), else_=a.c.ack_due_at
                ),
                escalated_at=now,
                # The level above is still to be told (the notify job marks it).
                notified_at=None,
                version=a.c.version + 1,
                updated_at=now,
            )
        )
        _log(
            conn,
            actor,
            [
                {
                    "alert_id": row["id"],
                    "action": "escalate",
                    "from_state": row["state"],
                    "to_state": row["state"],
                    "level": row["to"],
                    "note": f"超时未确认，升级至{LEVEL_LABELS[row['to']]}",
                    "created_at": now,
                }
                for row in rising
            ],
        )
        share(conn, [row["id"] for row in rising if row["kind"] in SHARED_KINDS])
    record_many(
        conn,
        [
            entry(
                actor,
                village=village,
                action="alert.escalate",
                subject_type=ALERT,
                subject_id=row["id"],
                fields=["level", "ack_due_at"],
                details={"from": row["level"], "to": row["to"]},
            )
            for row in rising
        ],
    )
    for row in rising:
        announce_alert(
            conn,
            village,
            live.ALERT_CHANGED,
            row,
            note=f"超时未确认，已升级至{LEVEL_LABELS[row['to']]}",
            at=now,
        )
    return [
        {"id": row["id"], "kind": row["kind"], "from": row["level"], "to": row["to"]}
        for row in rising
    ]


# -- the duty roster (值班表) ---------------------------------------------------------


def do_schedule_duty_shift(
    conn: Connection, actor: Actor, village: str, data: dict[str, Any], *, staff_id: int | None
) -> dict:
    """A grid staff member on duty from `starts_at` to `ends_at`: alerts of their grids
    go to them first meanwhile. Shifts of one person do not overlap."""
    values = validated(ShiftSchema(), data)
    if staff_id is None or staff_id not in active_staff_by_ids(conn, [staff_id]):
        raise refused("staff", "网格员不存在", NOT_FOUND)
    d = duty_shifts
    # One roster change at a time per person, so two overlapping shifts cannot both pass.
    conn.execute(select(m.grid_staff.c.id).where(m.grid_staff.c.id == staff_id).with_for_update())
    overlapping = select(d.c.id).where(
        d.c.staff_id == staff_id,
        d.c.starts_at < values["ends_at"],
        d.c.ends_at > values["starts_at"],
    )
    if conn.execute(overlapping.limit(limit_of(1))).first() is not None:
        raise refused("startsAt", "与该网格员已有的值班时段重叠", DUPLICATE)
    with conn.begin_nested():
        shift = (
            conn.execute(insert(d).values(staff_id=staff_id, **values).returning(*d.c))
            .mappings()
            .one()
        )
    record(
        conn,
        actor,
        village=village,
        action="duty_shift.schedule",
        subject_type=DUTY_SHIFT,
        subject_id=shift["id"],
        details={
            "staff": staff_id,
            "starts_at": shift["starts_at"].isoformat(),
            "ends_at": shift["ends_at"].isoformat(),
        },
    )
    return dict(shift)


def do_cancel_duty_shift(
    conn: Connection, actor: Actor, village: str, shift_id: int, data: dict[str, Any]
) -> dict:
    """Take a shift off the roster. One that has ended is the record of who was on duty
    when an alert came: it stays (INVALID_TRANSITION). Returns the shift as it was."""
    note = validated(NoteSchema(), data)["note"]
    d = duty_shifts
    shift = conn.execute(select(d).where(d.c.id == shift_id).with_for_update()).mappings().first()
    if shift is None:
        raise refused("id", "值班安排不存在", NOT_FOUND)
    ended = conn.execute(select(shift["ends_at"] <= func.now())).scalar_one()
    if ended:
        raise refused("id", "已结束的值班不能取消", INVALID_TRANSITION)
    with conn.begin_nested():
        conn.execute(delete(d).where(d.c.id == shift_id))
    record(
        conn,
        actor,
        village=village,
        action="duty_shift.cancel",
        subject_type=DUTY_SHIFT,
        subject_id=shift_id,
        reason=note,
        details={
            "staff": shift["staff_id"],
            "starts_at": shift["starts_at"].isoformat(),
            "ends_at": shift["ends_at"].isoformat(),
        },
    )
    return dict(shift)


# -- the rules ----------------------------------------------------------------------


def do_update_alert_rule(
    conn: Connection, actor: Actor, village: str, kind: str, data: dict[str, Any]
) -> dict:
    """Switch a kind on or off, or change its severity, time to acknowledge or debounce
    window, for alerts raised from now on; raised alerts keep their deadline."""
    if kind not in ALERT_KINDS:
        raise refused("kind", "预警类型不存在", NOT_FOUND)
    values = validated(RuleSchema(), data)
    current = queries.rule(conn, kind)
    changed = {k: v for k, v in values.items() if current[k] != v}
    if not changed:
        return current
    r = alert_rules
    with conn.begin_nested():
        updated = (
            conn.execute(
                update(r)
                .where(r.c.kind == kind)
                .values(**changed, updated_at=func.now())
                .returning(*r.c)
            )
            .mappings()
            .one()
        )
    record(
        conn,
        actor,
        village=village,
        action="alert_rule.update",
        subject_type=ALERT_RULE,
        subject_id=kind,
        fields=sorted(changed),
        details={k: {"from": current[k], "to": v} for k, v in changed.items()},
    )
    return dict(updated)

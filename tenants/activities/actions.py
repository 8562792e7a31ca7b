"""Writes to activities and sign-ups: the only place they change.

An activity moves draft → published → cancelled | finished (a draft may also be
cancelled); any other step is refused with INVALID_TRANSITION and changes
nothing. A sign-up is signed_up or, when the occurrence is full, waitlisted;
cancelling a place promotes the first of the waitlist; a signed-up resident is
checked in once. Every sign-up change locks its occurrence row first, so the
count of places taken is read and written by one transaction at a time and
capacity holds under concurrency.

Activities open to neighbours are appended to the outbox (the five-village
linkage shares them) once published, and withdrawn when they stop being open.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert

from villagelink.platform.audit import Actor, record
from villagelink.tenants import clock
from villagelink.tenants.activities import places, points, queries
from villagelink.tenants.activities.recurrence import Rule, dates, span
from villagelink.tenants.activities.tables import (
    VOLUNTEER_SERVICE,
    activities,
    activity_check_in_codes,
    activity_check_in_failures,
    activity_occurrences,
    activity_sign_ups,
    volunteer_teams,
)
from villagelink.tenants.activities.validation import (
    CONFLICT,
    DEFAULT_HORIZON_DAYS,
    NOT_OPEN,
    ActivityDetailsSchema,
    CheckInSchema,
    MoveOccurrenceSchema,
    NeighbourSignUpSchema,
    NewActivitySchema,
    ScheduleSchema,
)
from villagelink.tenants.outbox import emit_shared
from villagelink.tenants.querying import limit_of
from villagelink.tenants.residents.queries import Grids, residents_by_ids
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID,
    INVALID_TRANSITION,
    NOT_FOUND,
    refused,
    validated,
)

ACTIVITY = "Activity"
OCCURRENCE = "ActivityOccurrence"
SIGN_UP = "ActivitySignUp"

STATE_NAMES = {"draft": "草稿", "published": "已发布", "cancelled": "已取消", "finished": "已结束"}
CLOSED = ("cancelled", "finished")
# step -> (states it may start from, state it leads to, what the step is called)
TRANSITIONS = {
    "publish": (("draft",), "published", "发布"),
    "cancel": (("draft", "published"), "cancelled", "取消"),
    "finish": (("published",), "finished", "结束"),
}
# Check-in opens this long before an occurrence starts (residents arrive early).
CHECK_IN_OPENS = timedelta(hours=1)


# --- activities ---------------------------------------------------------------


def _activity_for_update(conn: Connection, activity_id: int) -> dict:
    row = (
        conn.execute(select(activities).where(activities.c.id == activity_id).with_for_update())
        .mappings()
        .first()
    )
    if row is None:
        raise refused("activity", "活动不存在", NOT_FOUND)
    return dict(row)


def _require_not_closed(activity: dict) -> None:
    if activity["state"] in CLOSED:
        raise refused(
            "activity",
            f"活动{STATE_NAMES[activity['state']]}，不能再修改或排期",
            INVALID_TRANSITION,
        )


def _require_team(conn: Connection, values: dict) -> None:
    """The organising team named, if any, is one of the village's."""
    team_id = values.get("team_id")
    t = volunteer_teams
    if (
        team_id is not None
        and conn.execute(select(t.c.id).where(t.c.id == team_id)).first() is None
    ):
        raise refused("team", "志愿服务队不存在", NOT_FOUND)


def shared_with_neighbours(activity: dict) -> bool:
    """Neighbours see an activity once it is published, for as long as it is open to them."""
    return activity["open_to_neighbours"] and activity["state"] != "draft"


def _payload(conn: Connection, activity: dict) -> dict[str, Any]:
    o = activity_occurrences
    occurrences = conn.execute(
        select(o.c.id, o.c.starts_at, o.c.ends_at, o.c.capacity)
        .where(o.c.activity_id == activity["id"])
        .order_by(o.c.starts_at)
    ).mappings()
    return {
        "id": activity["id"],
        "kind": activity["kind"],
        "title": activity["title"],
        "description": activity["description"],
        "place": activity["place"],
        "capacity": activity["capacity"],
        "state": activity["state"],
        "occurrences": [
            {
                "id": row["id"],
                "starts_at": row["starts_at"].isoformat(),
                "ends_at": row["ends_at"].isoformat(),
                "capacity": row["capacity"],
            }
            for row in occurrences
        ],
    }


def _share(conn: Connection, before: dict | None, after: dict) -> None:
    emit_shared(
        conn,
        ACTIVITY,
        before,
        after,
        shared=shared_with_neighbours,
        payload=lambda activity: _payload(conn, activity),
    )


def _save(conn: Connection, activity_id: int, **values: Any) -> dict:
    """Change an activity and bump its version (what receivers of the outbox compare)."""
    a = activities
    return dict(
        conn.execute(
            a.update()
            .where(a.c.id == activity_id)
            .values(**values, version=a.c.version + 1, updated_at=func.now())
            .returning(*a.columns)
        )
        .mappings()
        .one()
    )


def _materialise(conn: Connection, activity: dict, horizon_days: int) -> int:
    """Insert the occurrences of the next `horizon_days` days that do not exist yet,
    nor were moved away from their slot by the village (本场改期)."""
    today = clock.today()
    days = dates(Rule.of(activity), today, today + timedelta(days=horizon_days))
    o = activity_occurrences
    moved = set(
        conn.execute(
            select(o.c.planned_starts_at).where(
                o.c.activity_id == activity["id"], o.c.planned_starts_at.is_not(None)
            )
        ).scalars()
    )
    rows = []
    for day in days:
        starts_at, ends_at = span(day, activity["start_time"], activity["duration_minutes"])
        if starts_at in moved:
            continue
        rows.append(
            {
                "activity_id": activity["id"],
                "starts_at": starts_at,
                "ends_at": ends_at,
                "capacity": activity["capacity"],
            }
        )
    if not rows:
        return 0
    added = conn.execute(
        insert(activity_occurrences)
        .values(rows)
        .on_conflict_do_nothing(constraint="activity_occurrences_once")
        .returning(activity_occurrences.c.id)
    ).all()
    return len(added)


def do_create_activity(conn: Connection, actor: Actor, village: str, data: dict) -> dict:
    """A new activity (a draft), with its occurrences of the coming months scheduled."""
    values = validated(NewActivitySchema(), data)
    _require_team(conn, values)
    with conn.begin_nested():
        activity = dict(
            conn.execute(activities.insert().values(**values).returning(*activities.columns))
            .mappings()
            .one()
        )
        added = _materialise(conn, activity, DEFAULT_HORIZON_DAYS)
        record(
            conn,
            actor,
            village=village,
            action="activity.create",
            subject_type=ACTIVITY,
            subject_id=activity["id"],
            fields=sorted(k for k, v in values.items() if v is not None),
            details={"occurrences": added},
        )
    return activity


def do_update_activity(
    conn: Connection, actor: Actor, village: str, activity_id: int, changes: dict
) -> dict:
    values = validated(ActivityDetailsSchema(partial=True), changes)
    with conn.begin_nested():
        before = _activity_for_update(conn, activity_id)
        _require_not_closed(before)
        changed = {k: v for k, v in values.items() if before[k] != v}
        if not changed:
            return before
        _require_team(conn, changed)
        after = _save(conn, activity_id, **changed)
        record(
            conn,
            actor,
            village=village,
            action="activity.update",
            subject_type=ACTIVITY,
            subject_id=activity_id,
            fields=sorted(changed),
        )
        _share(conn, before, after)
    return after


def do_schedule_activity(
    conn: Connection, actor: Actor, village: str, activity_id: int, data: dict
) -> dict:
    """Materialise the series' occurrences for the next `horizon_days` days (again:
    existing ones are kept as they are, with their sign-ups)."""
    horizon_days = validated(ScheduleSchema(), data)["horizon_days"]
    with conn.begin_nested():
        before = _activity_for_update(conn, activity_id)
        _require_not_closed(before)
        added = _materialise(conn, before, horizon_days)
        if not added:
            return before
        after = _save(conn, activity_id)
        record(
            conn,
            actor,
            village=village,
            action="activity.schedule",
            subject_type=ACTIVITY,
            subject_id=activity_id,
            details={"horizon_days": horizon_days, "occurrences": added},
        )
        _share(conn, before, after)
    return after


def do_move_occurrence(
    conn: Connection, actor: Actor, village: str, occurrence_id: int, data: dict
) -> dict:
    """本场改期: move one occurrence (the month's service day, for rain) to another time.
    Its sign-ups keep their places and waitlist positions; the residents signed up read
    the new time and the reason on their sign-up. Not once it has started, nor in a
    cancelled or finished activity, nor onto another occurrence of the same activity.
    A check-in code issued for the old day is void."""
    values = validated(MoveOccurrenceSchema(), data)
    o = activity_occurrences
    activity_id = read_occurrence(conn, occurrence_id, lock=False)["activity_id"]
    with conn.begin_nested():
        # The activity first, as every change to its schedule locks it.
        activity = _activity_for_update(conn, activity_id)
        if activity["state"] in CLOSED:
            message = f"活动{STATE_NAMES[activity['state']]}，不能改期"
            raise refused("occurrence", message, INVALID_TRANSITION)
        before = read_occurrence(conn, occurrence_id, lock=True)
        now = clock.now()
        if before["starts_at"] <= now:
            raise refused("occurrence", "该场次已开始或已举行，不能改期", INVALID_TRANSITION)
        starts_at = values["starts_at"]
        ends_at = values["ends_at"] or starts_at + (before["ends_at"] - before["starts_at"])
        if starts_at <= now:
            raise refused("startsAt", "改期后的开始时间已过，请选择以后的时间", INVALID)
        if ends_at <= starts_at:
            raise refused("endsAt", "结束时间应晚于开始时间", INVALID)
        if (starts_at, ends_at) == (before["starts_at"], before["ends_at"]):
            raise refused("startsAt", "新的时间与现在的安排相同，请选择另一个时间", INVALID)
        overlapping = conn.execute(
            select(o.c.starts_at)
            .where(
                o.c.activity_id == activity_id,
                o.c.id != occurrence_id,
                o.c.starts_at < ends_at,
                o.c.ends_at > starts_at,
            )
            .order_by(o.c.starts_at)
            .limit(limit_of(1))
        ).scalar()
        if overlapping is not None:
            when = clock.local(overlapping).strftime("%Y-%m-%d %H:%M")
            raise refused("startsAt", f"与本活动{when}的场次时间重叠", CONFLICT)
        conn.execute(
            o.update()
            .where(o.c.id == occurrence_id)
            .values(
                starts_at=starts_at,
                ends_at=ends_at,
                planned_starts_at=func.coalesce(o.c.planned_starts_at, before["starts_at"]),
                move_reason=values["reason"],
            )
        )
        for table in (activity_check_in_codes, activity_check_in_failures):
            conn.execute(table.delete().where(table.c.occurrence_id == occurrence_id))
        record(
            conn,
            actor,
            village=village,
            action="activity.occurrence_move",
            subject_type=OCCURRENCE,
            subject_id=occurrence_id,
            details={
                "from": before["starts_at"].isoformat(),
                "to": starts_at.isoformat(),
                "reason": values["reason"],
            },
        )
        # Neighbours signed up through an agreement see the new time in their feed.
        _share(conn, activity, _save(conn, activity_id))
    return queries.occurrences_by_ids(conn, [occurrence_id])[occurrence_id]


def _transition(conn: Connection, actor: Actor, village: str, activity_id: int, step: str) -> dict:
    sources, target, label = TRANSITIONS[step]
    with conn.begin_nested():
        before = _activity_for_update(conn, activity_id)
        if before["state"] not in sources:
            raise refused(
                "activity",
                f"活动当前为“{STATE_NAMES[before['state']]}”，不能{label}",
                INVALID_TRANSITION,
            )
        after = _save(conn, activity_id, state=target)
        record(
            conn,
            actor,
            village=village,
            action=f"activity.{step}",
            subject_type=ACTIVITY,
            subject_id=activity_id,
            fields=["state"],
            details={"from": before["state"], "to": target},
        )
        _share(conn, before, after)
    return after


def do_publish_activity(conn: Connection, actor: Actor, village: str, activity_id: int) -> dict:
    return _transition(conn, actor, village, activity_id, "publish")


def do_cancel_activity(conn: Connection, actor: Actor, village: str, activity_id: int) -> dict:
    return _transition(conn, actor, village, activity_id, "cancel")


def do_finish_activity(conn: Connection, actor: Actor, village: str, activity_id: int) -> dict:
    return _transition(conn, actor, village, activity_id, "finish")


# --- sign-ups -----------------------------------------------------------------


def read_occurrence(conn: Connection, occurrence_id: int, *, lock: bool) -> dict:
    """The occurrence with its activity's state, kind, title and team; `lock` takes its row
    lock, which every change to its sign-ups holds (the capacity check depends on it)."""
    o, a = activity_occurrences, activities
    query = (
        select(
            o,
            a.c.state.label("activity_state"),
            a.c.kind,
            a.c.title,
            a.c.open_to_neighbours,
            a.c.team_id,
        )
        .join(a, a.c.id == o.c.activity_id)
        .where(o.c.id == occurrence_id)
    )
    if lock:
        query = query.with_for_update(of=o)
    row = conn.execute(query).mappings().first()
    if row is None:
        raise refused("occurrence", "活动场次不存在", NOT_FOUND)
    return dict(row)


def require_published(occurrence: dict, field: str) -> None:
    """Sign-ups move only while their activity is published; `field` is the input at fault."""
    state = occurrence["activity_state"]
    if state == "draft":
        raise refused(field, "活动尚未发布，暂不能报名或签到", NOT_OPEN)
    if state in CLOSED:
        raise refused(field, f"活动{STATE_NAMES[state]}", NOT_OPEN)


def _places_taken(conn: Connection, occurrence_id: int) -> int:
    s = activity_sign_ups
    return conn.execute(
        select(func.count()).where(
            s.c.occurrence_id == occurrence_id, s.c.state.in_(places.HOLDING_A_PLACE)
        )
    ).scalar_one()


def _sign_up(conn: Connection, sign_up_id: int, allowed_grids: Grids) -> dict:
    found = queries.sign_ups_by_ids(conn, [sign_up_id], allowed_grids=allowed_grids)
    if sign_up_id not in found:
        raise refused("signUp", "报名记录不存在或不在您的管辖范围内", NOT_FOUND)
    return found[sign_up_id]


def _participant(conn: Connection, resident_id: int, allowed_grids: Grids) -> dict:
    """Who may sign up: a resident of this village (within a grid worker's grids), or,
    read the same way in their own village (`neighbour_participant`), a resident of a
    neighbouring one for an activity open to neighbours."""
    found = residents_by_ids(conn, [resident_id], allowed_grids=allowed_grids).get(resident_id)
    if found is None:
        raise refused("resident", "居民不存在或不在您的管辖范围内", NOT_FOUND)
    return found


def neighbour_participant(
    conn: Connection, village: str, resident_id: int, *, allowed_grids: Grids
) -> dict:
    """A resident of `village` (read in its own transaction, `conn`) as a neighbouring
    village's occurrence records them: the least that names them there."""
    found = _participant(conn, resident_id, allowed_grids)
    return {"guest_village": village, "guest_resident_id": found["id"], "guest_name": found["name"]}


def _audit_sign_up(
    conn: Connection, actor: Actor, village: str, action: str, sign_up: dict, **details: Any
) -> None:
    record(
        conn,
        actor,
        village=village,
        action=f"activity.{action}",
        subject_type=SIGN_UP,
        subject_id=sign_up["id"],
        fields=["state"],
        details={
            "occurrence_id": sign_up["occurrence_id"],
            "resident_id": sign_up["resident_id"],
            "state": sign_up["state"],
            # A neighbour's resident: the acting village and its own id for them.
            **(
                {
                    "guest_village": sign_up["guest_village"],
                    "guest_resident_id": sign_up["guest_resident_id"],
                }
                if sign_up["guest_village"]
                else {}
            ),
            **details,
        },
    )


def _set_state(conn: Connection, sign_up_id: int, expected: str, **values: Any) -> dict | None:
    """Move a sign-up on only if it is still in `expected` (None if it was not)."""
    s = activity_sign_ups
    row = (
        conn.execute(
            s.update()
            .where(s.c.id == sign_up_id, s.c.state == expected)
            .values(**values, updated_at=func.now())
            .returning(*s.columns)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def do_sign_up(
    conn: Connection,
    actor: Actor,
    village: str,
    occurrence_id: int,
    resident_id: int,
    *,
    allowed_grids: Grids,
) -> dict:
    """Take a place on an occurrence, or a place on its waitlist when it is full."""
    _participant(conn, resident_id, allowed_grids)
    return _take_place(conn, actor, village, occurrence_id, {"resident_id": resident_id})


def do_sign_up_neighbour(
    conn: Connection,
    actor: Actor,
    village: str,
    occurrence_id: int,
    guest: dict,
    data: dict,
    *,
    agreement_ids: list[int],
) -> dict:
    """Sign a neighbouring village's resident (`neighbour_participant`) up for an
    occurrence of this village's activity, under `agreement_ids` (agreements in force
    covering open activities, checked by the caller). Only an activity open to
    neighbours exists for them; places and waitlist are the same as for residents."""
    note = validated(NeighbourSignUpSchema(), data)["note"]
    return _take_place(
        conn,
        actor,
        village,
        occurrence_id,
        guest,
        note=note or None,
        agreement_ids=agreement_ids,
    )


def _take_place(
    conn: Connection,
    actor: Actor,
    village: str,
    occurrence_id: int,
    who: dict,
    *,
    note: str | None = None,
    agreement_ids: list[int] | None = None,
) -> dict:
    """Sign `who` (`resident_id`, or a neighbour's `guest_*` columns) up, under the
    occurrence's lock."""
    s = activity_sign_ups
    with conn.begin_nested():
        occurrence = read_occurrence(conn, occurrence_id, lock=True)
        shown = {"open_to_neighbours": occurrence["open_to_neighbours"]}
        if agreement_ids is not None and not shared_with_neighbours(
            {**shown, "state": occurrence["activity_state"]}
        ):
            raise refused("occurrence", "活动场次不存在", NOT_FOUND)
        require_published(occurrence, "occurrence")
        if occurrence["starts_at"] <= clock.now():
            raise refused("occurrence", "该场次已开始，不能再报名", NOT_OPEN)
        same = [s.c[column] == value for column, value in who.items() if column != "guest_name"]
        existing = (
            conn.execute(select(s).where(s.c.occurrence_id == occurrence_id, *same))
            .mappings()
            .first()
        )
        if existing is not None and existing["state"] != "cancelled":
            raise refused("resident", "该居民已报名此场次", DUPLICATE)
        values = {
            "state": places.sign_up_state(
                _places_taken(conn, occurrence_id), occurrence["capacity"]
            ),
            # The moment it got in, after the lock: the waitlist's order.
            "signed_up_at": func.clock_timestamp(),
            "cancelled_at": None,
        }
        if agreement_ids is not None:
            values["note"] = note
        sign_up: dict | None
        if existing is None:
            sign_up = dict(
                conn.execute(
                    s.insert()
                    .values(occurrence_id=occurrence_id, **who, **values)
                    .returning(*s.columns)
                )
                .mappings()
                .one()
            )
        else:
            sign_up = _set_state(conn, existing["id"], "cancelled", **values)
            # Nothing but signing up again moves a cancelled sign-up, and that takes the
            # occurrence's lock held here.
            assert sign_up is not None
        extra = {} if agreement_ids is None else {"agreement_ids": agreement_ids}
        _audit_sign_up(conn, actor, village, "sign_up", sign_up, **extra)
    return _sign_up(conn, sign_up["id"], None)


def _promote_first(conn: Connection, actor: Actor, village: str, occurrence: dict) -> int | None:
    """Give a freed place to the first of the waitlist (the occurrence is locked)."""
    if not places.has_free_place(_places_taken(conn, occurrence["id"]), occurrence["capacity"]):
        return None
    s = activity_sign_ups
    first = conn.execute(
        select(s.c.id)
        .where(s.c.occurrence_id == occurrence["id"], s.c.state == "waitlisted")
        .order_by(s.c.signed_up_at, s.c.id)
        .limit(limit_of(1))
    ).scalar()
    if first is None:
        return None
    promoted = _set_state(conn, first, "waitlisted", state="signed_up")
    # Only under the occurrence's lock (held here) does a sign-up leave the waitlist.
    assert promoted is not None
    _audit_sign_up(conn, actor, village, "sign_up_promote", promoted)
    return first


def do_cancel_sign_up(
    conn: Connection,
    actor: Actor,
    village: str,
    sign_up_id: int,
    *,
    allowed_grids: Grids,
    guest_village: str | None = None,
) -> tuple[dict, dict | None]:
    """Cancel a place or a waitlist entry; returns the sign-up and whoever was promoted.
    A neighbouring village (`guest_village`) cancels only its own residents' sign-ups."""
    found = _sign_up(conn, sign_up_id, allowed_grids)
    if guest_village is not None and found["guest_village"] != guest_village:
        raise refused("signUp", "报名记录不存在或不在您的管辖范围内", NOT_FOUND)
    with conn.begin_nested():
        occurrence = read_occurrence(conn, found["occurrence_id"], lock=True)
        require_published(occurrence, "signUp")
        # Read again under the lock: a concurrent cancel or check-in may have won. A
        # check-in takes no occurrence lock, so one may still win between this read and
        # the update, which then moves nothing: refused like a check-in seen here.
        state = _sign_up(conn, sign_up_id, None)["state"]
        cancelled = (
            _set_state(conn, sign_up_id, state, state="cancelled", cancelled_at=func.now())
            if state in ("signed_up", "waitlisted")
            else None
        )
        if cancelled is None:
            raise refused(
                "signUp",
                "报名已取消" if state == "cancelled" else "已签到的报名不能取消",
                INVALID_TRANSITION,
            )
        _audit_sign_up(
            conn,
            actor,
            village,
            "sign_up_cancel",
            cancelled,
            **({"acting_village": guest_village} if guest_village else {}),
        )
        promoted = (
            _promote_first(conn, actor, village, occurrence) if state == "signed_up" else None
        )
    sign_ups = queries.sign_ups_by_ids(
        conn, [sign_up_id, promoted] if promoted else [sign_up_id], allowed_grids=None
    )
    return sign_ups[sign_up_id], sign_ups.get(promoted) if promoted else None


def _volunteer_hours(occurrence: dict, given: Decimal | None) -> Decimal | None:
    if occurrence["kind"] != VOLUNTEER_SERVICE:
        if given is not None:
            raise refused("volunteerHours", "只有志愿服务活动记录志愿时长", INVALID)
        return None
    if given is not None:
        return given
    return points.session_hours(occurrence["starts_at"], occurrence["ends_at"])


def _award_volunteer_points(
    conn: Connection, actor: Actor, village: str, sign_up: dict, occurrence: dict
) -> dict | None:
    rate = points.rules(conn)["points_per_volunteer_hour"]
    earned = points.volunteer_points(sign_up["volunteer_hours"], rate)
    if earned <= 0:
        return None
    return points.award_for(
        conn,
        actor,
        village,
        resident_id=sign_up["resident_id"],
        points=earned,
        reason=points.volunteer_reason(occurrence["title"], sign_up["volunteer_hours"]),
        source_type=SIGN_UP,
        source_id=sign_up["id"],
    )


def do_check_in(
    conn: Connection,
    actor: Actor,
    village: str,
    sign_up_id: int,
    data: dict,
    *,
    allowed_grids: Grids,
) -> dict:
    """Check a signed-up resident in. At a volunteer_service activity this records
    their hours and earns them points. Checking in again changes nothing."""
    given = validated(CheckInSchema(), data)["volunteer_hours"]
    found = _sign_up(conn, sign_up_id, allowed_grids)
    if found["state"] == "checked_in":
        return found
    occurrence = read_occurrence(conn, found["occurrence_id"], lock=False)
    require_published(occurrence, "signUp")
    if clock.now() < occurrence["starts_at"] - CHECK_IN_OPENS:
        raise refused("signUp", "签到在活动开始前1小时开放", NOT_OPEN)
    hours = _volunteer_hours(occurrence, given)
    with conn.begin_nested():
        checked_in = _set_state(
            conn,
            sign_up_id,
            "signed_up",
            state="checked_in",
            checked_in_at=func.now(),
            volunteer_hours=hours,
        )
        if checked_in is None:
            state = _sign_up(conn, sign_up_id, None)["state"]
            if state == "checked_in":  # a concurrent check-in got there first
                return _sign_up(conn, sign_up_id, None)
            raise refused(
                "signUp",
                "候补中的报名不能签到" if state == "waitlisted" else "报名已取消，不能签到",
                INVALID_TRANSITION,
            )
        entry = None
        # Points are a village's own ledger: a neighbour's resident earns theirs at home.
        if hours is not None and checked_in["resident_id"] is not None:
            entry = _award_volunteer_points(conn, actor, village, checked_in, occurrence)
        _audit_sign_up(
            conn,
            actor,
            village,
            "check_in",
            checked_in,
            volunteer_hours=str(hours) if hours is not None else None,
            points=entry["points"] if entry else 0,
        )
    return _sign_up(conn, sign_up_id, None)

"""Activity, sign-up, volunteer team and points mutations: resolve IDs and reach,
call the action, shape the payload.

Activities, teams and points belong to the village as a whole: only whole-village
writers (village and platform admins) manage them. Grid workers sign residents
of their grids up, cancel and check them in; a resident (role `resident`, bound)
does the same for their own household.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from ariadne import MutationType

from villagelink.graphql.activities.types import ACTIVITY, OCCURRENCE, SIGN_UP
from villagelink.graphql.activities.volunteers import ENTRY, TEAM
from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import GlobalId, decode_id, input_key, int_key, target_id
from villagelink.graphql.core.nodes import as_node
from villagelink.graphql.core.payloads import act_on, node_payload, object_payload, payload
from villagelink.graphql.residents.acting import (
    require_household_member,
    require_household_record,
    staff_or_resident_target,
)
from villagelink.platform.linkage.catalogue import OPEN_ACTIVITY
from villagelink.tenants.activities import actions, check_in_codes, points, queries, teams
from villagelink.tenants.user_errors import INVALID, refused

mutation = MutationType()

TEAM_NOT_FOUND = "志愿服务队不存在"
# Why a grid worker is refused what only a whole-village writer does.
MANAGED = "activities, volunteer teams and points are managed by the village"


def _target(ctx: RequestContext, raw: str, type_name: str, *, manage: bool) -> GlobalId:
    """The ID the mutation acts on, checked for reach: writing there needs the right to."""
    check = (lambda village: ctx.require_manage(village, MANAGED)) if manage else ctx.require_write
    return target_id(raw, type_name, check)


# -- activities -----------------------------------------------------------------

ACTIVITY_FIELDS = (
    "kind",
    "title",
    "description",
    "place",
    "capacity",
    "open_to_neighbours",
    "repeat",
    "weekday",
    "month_day",
    "starts_on",
    "until",
    "start_time",
    "duration_minutes",
)


def _as_text(value: object) -> object:
    """Dates reach the action as text, the way marshmallow parses them."""
    return value.isoformat() if isinstance(value, date) else value


@mutation.field("createActivity")
def resolve_create_activity(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_manage(village, MANAGED)
    data = {k: _as_text(input[k]) for k in ACTIVITY_FIELDS if input.get(k) is not None}

    def run() -> dict:
        if input.get("team") is not None:
            data["team_id"] = input_key(village, input["team"], TEAM, "team", TEAM_NOT_FOUND)
        return actions.do_create_activity(ctx.tenant(village), ctx.actor, village, data)

    return node_payload("activity", ACTIVITY, village, run)


def _change_activity(info, raw_id: str, action: Callable, *arguments) -> dict:
    """Run `action` on the activity `raw_id` names; an argument that is a callable is
    given the village and called inside the payload (an input ID resolved badly is a
    userError)."""
    ctx: RequestContext = info.context
    gid = _target(ctx, raw_id, ACTIVITY, manage=True)
    return node_payload(
        "activity",
        ACTIVITY,
        gid.village,
        lambda: action(
            ctx.tenant(gid.village),
            ctx.actor,
            gid.village,
            int(gid.key),
            *(a(gid.village) if callable(a) else a for a in arguments),
        ),
    )


@mutation.field("updateActivity")
def resolve_update_activity(_obj, info, input: dict) -> dict:
    fields = ("title", "description", "place", "open_to_neighbours")

    def changes(village: str) -> dict:
        found = {k: input[k] for k in fields if k in input}
        if "team" in input:
            found["team_id"] = input_key(village, input["team"], TEAM, "team", TEAM_NOT_FOUND)
        return found

    return _change_activity(info, input["id"], actions.do_update_activity, changes)


@mutation.field("scheduleActivity")
def resolve_schedule_activity(_obj, info, input: dict) -> dict:
    data = {"horizon_days": input["horizon_days"]} if input.get("horizon_days") else {}
    return _change_activity(info, input["activity"], actions.do_schedule_activity, data)


@mutation.field("moveActivityOccurrence")
def resolve_move_occurrence(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = _target(ctx, input["occurrence"], OCCURRENCE, manage=True)
    data = {k: input.get(k) for k in ("starts_at", "ends_at", "reason")}
    return node_payload(
        "occurrence",
        OCCURRENCE,
        gid.village,
        act_on(ctx, gid, actions.do_move_occurrence, data),
    )


@mutation.field("publishActivity")
def resolve_publish_activity(_obj, info, input: dict) -> dict:
    return _change_activity(info, input["activity"], actions.do_publish_activity)


@mutation.field("cancelActivity")
def resolve_cancel_activity(_obj, info, input: dict) -> dict:
    return _change_activity(info, input["activity"], actions.do_cancel_activity)


@mutation.field("finishActivity")
def resolve_finish_activity(_obj, info, input: dict) -> dict:
    return _change_activity(info, input["activity"], actions.do_finish_activity)


# -- sign-ups -------------------------------------------------------------------


def _own_sign_up(ctx: RequestContext, village: str, resident: dict | None, sign_up_id: int) -> None:
    """A resident changes the sign-ups of their household only."""
    if resident is not None:
        found = queries.sign_ups_by_ids(ctx.tenant(village), [sign_up_id], allowed_grids=None)
        require_household_record(ctx, village, resident, found.get(sign_up_id), "signUp")


@mutation.field("signUpForActivity")
def resolve_sign_up(_obj, info, input: dict) -> dict:
    """Staff sign residents up; a resident signs up themselves and their household."""
    ctx: RequestContext = info.context
    gid, resident = staff_or_resident_target(ctx, input["occurrence"], OCCURRENCE)
    village = gid.village

    def run() -> dict:
        resident_id = input_key(village, input["resident"], "Resident", "resident")
        require_household_member(ctx, village, resident, resident_id, "resident")
        return actions.do_sign_up(
            ctx.tenant(village),
            ctx.actor,
            village,
            int(gid.key),
            resident_id,
            allowed_grids=ctx.allowed_grids(village),
        )

    return node_payload("sign_up", SIGN_UP, village, run)


@mutation.field("cancelActivitySignUp")
def resolve_cancel_sign_up(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid, resident = staff_or_resident_target(ctx, input["sign_up"], SIGN_UP)
    village = gid.village

    def run() -> dict:
        _own_sign_up(ctx, village, resident, int(gid.key))
        cancelled, promoted = actions.do_cancel_sign_up(
            ctx.tenant(village),
            ctx.actor,
            village,
            int(gid.key),
            allowed_grids=ctx.allowed_grids(village),
        )
        return {
            "sign_up": as_node(SIGN_UP, village, cancelled),
            "promoted": as_node(SIGN_UP, village, promoted),
        }

    return payload(run, "sign_up", "promoted")


@mutation.field("signUpNeighbourForActivity")
def resolve_sign_up_neighbour(_obj, info, input: dict) -> dict:
    """The resident is read in the acting village's own transaction (name and id only);
    the sign-up is written in the owner's, reached through the agreement."""
    ctx: RequestContext = info.context
    acting = input["village"]
    gid = decode_id(input["occurrence"], OCCURRENCE)
    occurrence_id, owner = int_key(gid), gid.village
    conn, agreement_ids = ctx.neighbour(owner, acting, OPEN_ACTIVITY)

    def run() -> dict:
        guest = actions.neighbour_participant(
            ctx.tenant(acting),
            acting,
            input_key(acting, input["resident"], "Resident", "resident"),
            allowed_grids=ctx.allowed_grids(acting),
        )
        return actions.do_sign_up_neighbour(
            conn,
            ctx.actor,
            owner,
            occurrence_id,
            guest,
            {"note": input.get("note")},
            agreement_ids=agreement_ids,
        )

    return node_payload("sign_up", SIGN_UP, owner, run)


@mutation.field("cancelNeighbourActivitySignUp")
def resolve_cancel_neighbour_sign_up(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    acting = input["village"]
    gid = decode_id(input["sign_up"], SIGN_UP)
    sign_up_id, owner = int_key(gid), gid.village
    conn, _agreements = ctx.neighbour(owner, acting, OPEN_ACTIVITY)

    def run() -> dict:
        cancelled, _promoted = actions.do_cancel_sign_up(
            conn, ctx.actor, owner, sign_up_id, allowed_grids=None, guest_village=acting
        )
        return {
            "sign_up": as_node(SIGN_UP, owner, cancelled),
            # Someone of the owner's waitlist, perhaps of another village: not the caller's to see.
            "promoted": None,
        }

    return payload(run, "sign_up", "promoted")


@mutation.field("checkInToActivity")
def resolve_check_in(_obj, info, input: dict) -> dict:
    """Staff check residents in; a resident checks in their household with the code the
    organiser shows on the day, without naming volunteer hours (those the session's
    length gives, or staff record)."""
    ctx: RequestContext = info.context
    gid, resident = staff_or_resident_target(ctx, input["sign_up"], SIGN_UP)
    village = gid.village
    data = {"volunteer_hours": input.get("volunteer_hours")}

    def run() -> dict:
        if resident is not None and data["volunteer_hours"] is not None:
            raise refused("volunteerHours", "志愿时长由村里登记，居民签到时无需填写", INVALID)
        _own_sign_up(ctx, village, resident, int(gid.key))
        if resident is not None:
            return check_in_codes.do_check_in_by_code(
                ctx.tenant(village),
                ctx.actor,
                village,
                int(gid.key),
                input.get("code"),
                allowed_grids=ctx.allowed_grids(village),
            )
        return actions.do_check_in(
            ctx.tenant(village),
            ctx.actor,
            village,
            int(gid.key),
            data,
            allowed_grids=ctx.allowed_grids(village),
        )

    return node_payload("sign_up", SIGN_UP, village, run)


# -- volunteer teams ------------------------------------------------------------


@mutation.field("createVolunteerTeam")
def resolve_create_team(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_manage(village, MANAGED)
    data = {k: input[k] for k in ("name", "description") if input.get(k) is not None}
    return node_payload(
        "team",
        TEAM,
        village,
        lambda: teams.do_create_volunteer_team(
            ctx.tenant(village),
            ctx.actor,
            village,
            data,
            leader_id=input_key(village, input.get("leader"), "Resident", "leader"),
        ),
    )


def _change_team(info, raw_id: str, action: Callable, arguments: Callable[[str], tuple]) -> dict:
    """Run `action` on the team `raw_id` names; `arguments(village)` runs inside the
    payload, so an input ID it resolves badly is a userError."""
    ctx: RequestContext = info.context
    gid = _target(ctx, raw_id, TEAM, manage=True)
    return node_payload(
        "team",
        TEAM,
        gid.village,
        lambda: action(
            ctx.tenant(gid.village),
            ctx.actor,
            gid.village,
            int(gid.key),
            *arguments(gid.village),
        ),
    )


@mutation.field("updateVolunteerTeam")
def resolve_update_team(_obj, info, input: dict) -> dict:
    def arguments(village: str) -> tuple:
        changes = {k: input[k] for k in ("name", "description") if k in input}
        if "leader" in input:
            changes["leader_resident_id"] = input_key(
                village, input["leader"], "Resident", "leader"
            )
        return (changes,)

    return _change_team(info, input["id"], teams.do_update_volunteer_team, arguments)


@mutation.field("addVolunteerTeamMember")
def resolve_add_member(_obj, info, input: dict) -> dict:
    data = {"skills": input["skills"]} if input.get("skills") is not None else {}
    return _change_team(
        info,
        input["team"],
        teams.do_add_team_member,
        lambda village: (input_key(village, input["resident"], "Resident", "resident"), data),
    )


@mutation.field("removeVolunteerTeamMember")
def resolve_remove_member(_obj, info, input: dict) -> dict:
    return _change_team(
        info,
        input["team"],
        teams.do_remove_team_member,
        lambda village: (input_key(village, input["resident"], "Resident", "resident"),),
    )


# -- points ---------------------------------------------------------------------


def _move_points(info, input: dict, action: Callable) -> dict:
    ctx: RequestContext = info.context
    gid = _target(ctx, input["resident"], "Resident", manage=True)
    village = gid.village
    data = {"points": input["points"], "reason": input["reason"]}
    return node_payload(
        "entry",
        ENTRY,
        village,
        lambda: action(
            ctx.tenant(village), ctx.actor, village, int(gid.key), data, allowed_grids=None
        ),
    )


@mutation.field("awardPoints")
def resolve_award_points(_obj, info, input: dict) -> dict:
    return _move_points(info, input, points.do_award_points)


@mutation.field("redeemPoints")
def resolve_redeem_points(_obj, info, input: dict) -> dict:
    return _move_points(info, input, points.do_redeem_points)


@mutation.field("updatePointsRules")
def resolve_update_points_rules(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_manage(village, MANAGED)
    data = {"points_per_volunteer_hour": input["points_per_volunteer_hour"]}
    return object_payload(
        "points_rules",
        lambda: points.do_update_points_rules(ctx.tenant(village), ctx.actor, village, data),
    )


bindables = [mutation]

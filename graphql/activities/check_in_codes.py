"""The organiser's check-in code (签到码) in the API: `ActivityOccurrence.checkInCode`
and `rotateActivityCheckInCode`, for the village's managers and the leader of the
team that runs the activity (a resident with the `resident` role)."""

from __future__ import annotations

from ariadne import MutationType, ObjectType

from villagelink.graphql.activities.types import (
    OCCURRENCE,
    activity_loader,
    page_of,
    remember_page,
)
from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden
from villagelink.graphql.core.ids import target_id
from villagelink.graphql.core.nodes import as_node
from villagelink.graphql.core.payloads import object_payload
from villagelink.tenants import clock
from villagelink.tenants.activities import check_in_codes, queries
from villagelink.tenants.activities.actions import CHECK_IN_OPENS

occurrence_type = ObjectType(OCCURRENCE)
mutation = MutationType()


def _teams_led(ctx: RequestContext, village: str, resident: dict) -> frozenset[int]:
    # Asked once a request however many occurrences are shown.
    led = ctx.loader(
        village,
        "activities:teams_led_by",
        lambda conn, ids: {i: queries.teams_led_by(conn, i) for i in ids},
    )
    return led.load(resident["id"]) or frozenset()


def _organises(ctx: RequestContext, village: str, activity_id: int) -> bool:
    """The caller manages the village, or leads the team that runs the activity."""
    if ctx.access.can_manage(village):
        return True
    resident = ctx.resident_of(village)
    if resident is None:
        return False
    activity = activity_loader(ctx, village).load(activity_id)
    if activity is None or activity["team_id"] is None:
        return False
    return activity["team_id"] in _teams_led(ctx, village, resident)


def resolve_team_occurrences_today(me: dict, info) -> list[dict]:
    """`ResidentSelf.teamOccurrencesToday`: where a team leader shows the 签到码."""
    ctx: RequestContext = info.context
    slug = me["village"]
    teams = _teams_led(ctx, slug, me)
    if not teams:
        return []
    found = queries.team_occurrences_on(
        ctx.tenant(slug), teams, clock.today(), clock.now() + CHECK_IN_OPENS
    )
    activity_loader(ctx, slug).expect(o["activity_id"] for o in found)
    remember_page(ctx, slug, OCCURRENCE, (o["id"] for o in found))
    return [as_node(OCCURRENCE, slug, o) for o in found]


@occurrence_type.field("checkInCode")
def resolve_check_in_code(occurrence: dict, info) -> dict | None:
    ctx: RequestContext = info.context
    slug = occurrence["village"]
    if not _organises(ctx, slug, occurrence["activity_id"]):
        return None
    loader = ctx.loader(slug, "activities:check_in_codes", check_in_codes.codes_by_occurrence)
    loader.expect(page_of(ctx, slug, OCCURRENCE, occurrence["id"]))
    return loader.load(occurrence["id"])


@mutation.field("rotateActivityCheckInCode")
def resolve_rotate_check_in_code(_obj, info, input: dict) -> dict:
    """The village's managers, or a resident acting as themselves for a team they lead
    (the action checks that the team runs the activity); FORBIDDEN for anyone else."""
    ctx: RequestContext = info.context

    def may_act(village: str) -> None:
        if ctx.resident_of(village) is None:
            ctx.require_write(village)

    gid = target_id(input["occurrence"], OCCURRENCE, may_act)
    village, occurrence_id = gid.village, int(gid.key)
    teams = None
    if not ctx.access.can_manage(village):
        resident = ctx.resident_of(village)
        teams = _teams_led(ctx, village, resident) if resident is not None else frozenset()
        if not teams:
            raise Forbidden(check_in_codes.NOT_ORGANISER)
    return object_payload(
        "check_in_code",
        lambda: check_in_codes.do_issue_check_in_code(
            ctx.tenant(village), ctx.actor, village, occurrence_id, teams=teams
        ),
    )


bindables = [occurrence_type, mutation]

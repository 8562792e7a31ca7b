"""Activities, their occurrences and sign-ups: the connection under Village,
batch loading, nodes.

Nested lists (an activity's occurrences, an occurrence's sign-ups) take field
arguments, so their loaders are per argument value and the parent list cannot
announce them in advance. Instead each parent row remembers the page it came in
(`remember_page`), and the first child field asked for loads the whole page.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from ariadne import ObjectType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import encode_id
from villagelink.graphql.core.loaders import BatchLoader
from villagelink.graphql.core.nodes import (
    announce_page,
    as_node,
    connection_object,
    fetch_by_int_key,
    node_object,
    register_node_type,
)
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.graphql.residents.types import resident_loader
from villagelink.platform.linkage.catalogue import OPEN_ACTIVITY
from villagelink.tenants import clock
from villagelink.tenants.activities import queries
from villagelink.tenants.residents.queries import members_by_household

ACTIVITY = "Activity"
OCCURRENCE = "ActivityOccurrence"
SIGN_UP = "ActivitySignUp"

village_type = ObjectType("Village")
activity_type = node_object(ACTIVITY)
occurrence_type = node_object(OCCURRENCE)
sign_up_type = node_object(SIGN_UP)
schedule_type = ObjectType("ActivitySchedule")
outgoing_type = ObjectType("OutgoingActivitySignUp")


# -- pages ----------------------------------------------------------------------


def _pages(ctx: RequestContext, slug: str, type_name: str) -> BatchLoader:
    # Only ever primed: a key that was not is a row shown on its own.
    return ctx.loader(slug, f"activities:page_of:{type_name}", lambda _conn, _keys: {})


def remember_page(ctx: RequestContext, slug: str, type_name: str, keys: Iterable[int]) -> None:
    """Note that these rows were shown together, for `page_of`."""
    page = tuple(keys)
    pages = _pages(ctx, slug, type_name)
    for key in page:
        pages.prime(key, page)


def page_of(ctx: RequestContext, slug: str, type_name: str, key: int) -> tuple[int, ...]:
    """The keys of the rows shown with this one (itself alone when it came on its own)."""
    return _pages(ctx, slug, type_name).load(key) or (key,)


# -- loaders --------------------------------------------------------------------


def activity_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    return ctx.loader(
        slug,
        ACTIVITY,
        lambda conn, ids: {
            k: as_node(ACTIVITY, slug, v) for k, v in queries.activities_by_ids(conn, ids).items()
        },
    )


def occurrence_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    def fetch(conn, ids: list[int]) -> dict[int, dict]:
        found = queries.occurrences_by_ids(conn, ids)
        activity_loader(ctx, slug).expect(o["activity_id"] for o in found.values())
        return {k: as_node(OCCURRENCE, slug, v) for k, v in found.items()}

    return ctx.loader(slug, OCCURRENCE, fetch)


def sign_up_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    grids = ctx.allowed_grids(slug)

    def fetch(conn, ids: list[int]) -> dict[int, dict]:
        found = queries.sign_ups_by_ids(conn, ids, allowed_grids=grids)
        announce_residents(ctx, slug, [s["resident_id"] for s in found.values()])
        return {k: as_node(SIGN_UP, slug, v) for k, v in found.items()}

    return ctx.loader(slug, SIGN_UP, fetch)


def announce_residents(ctx: RequestContext, slug: str, resident_ids: list[int]) -> None:
    """Residents about to be shown from one of this domain's lists: load them, and
    whatever other domains add to them, once for the lot."""
    # A neighbour's resident has none here (ActivitySignUp.neighbour instead).
    resident_ids = [r for r in resident_ids if r is not None]
    resident_loader(ctx, slug).expect(resident_ids)
    announce_page(ctx, "Resident", slug, resident_ids)


def _occurrences_loader(
    ctx: RequestContext, slug: str, from_date: date | None, to_date: date | None
) -> BatchLoader:
    def fetch(conn, activity_ids: list[int]) -> dict[int, list[dict]]:
        found = queries.occurrences_by_activity(conn, activity_ids, from_date, to_date)
        remember_page(ctx, slug, OCCURRENCE, (o["id"] for rows in found.values() for o in rows))
        return {k: [as_node(OCCURRENCE, slug, o) for o in rows] for k, rows in found.items()}

    return ctx.loader(slug, f"activities:occurrences:{from_date}:{to_date}", fetch)


def _household_members(ctx: RequestContext, slug: str) -> dict[int, dict] | None:
    """For a resident, their household's members by ID (themselves alone without a
    household): whose sign-ups they see, and who each is for. None for everyone else."""
    resident = ctx.resident_of(slug)
    if resident is None:
        return None
    household = resident["household_id"]
    if household is None:
        return {resident["id"]: resident}
    # Read once a request, however many occurrences and sign-ups ask.
    members = ctx.loader(slug, "residents:household_members", members_by_household)
    return {member["id"]: member for member in members.load(household) or []}


def _household_of(ctx: RequestContext, slug: str) -> frozenset[int] | None:
    """For a resident, the IDs of their household's members: whose sign-ups they see
    (who else comes is not theirs to read). None for everyone else."""
    members = _household_members(ctx, slug)
    return None if members is None else frozenset(members)


def _sign_ups_loader(ctx: RequestContext, slug: str, state: str | None) -> BatchLoader:
    grids = ctx.allowed_grids(slug)
    household = _household_of(ctx, slug)

    def fetch(conn, occurrence_ids: list[int]) -> dict[int, list[dict]]:
        found = queries.sign_ups_by_occurrence(
            conn, occurrence_ids, state=state, allowed_grids=grids
        )
        if household is not None:
            found = {
                k: [s for s in rows if s["resident_id"] in household] for k, rows in found.items()
            }
        announce_residents(ctx, slug, [s["resident_id"] for rows in found.values() for s in rows])
        return {k: [as_node(SIGN_UP, slug, s) for s in rows] for k, rows in found.items()}

    return ctx.loader(slug, f"activities:sign_ups:{state}", fetch)


# -- Village.activities ---------------------------------------------------------


def _activity_filter(raw: dict | None) -> queries.ActivityFilter:
    raw = raw or {}
    return queries.ActivityFilter(
        kind=raw.get("kind"),
        state=raw.get("state"),
        from_date=raw.get("from"),
        to_date=raw.get("to"),
    )


@village_type.field("activities")
def resolve_activities(village: dict, info, first=None, after=None, filter=None):
    ctx: RequestContext = info.context
    slug = village["slug"]
    page = page_args(first, after, ctx.settings.max_page_size)
    flt = _activity_filter(filter)
    conn = ctx.tenant(slug)

    def fetch(limit: int) -> list[dict]:
        rows = queries.activity_page(conn, flt, after_id=page.after_id, limit=limit)
        shown = rows[: page.first]
        loader = activity_loader(ctx, slug)
        for row in shown:
            loader.prime(row["id"], as_node(ACTIVITY, slug, row))
        remember_page(ctx, slug, ACTIVITY, (r["id"] for r in shown))
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: queries.activity_count(conn, flt),
        node=lambda row: as_node(ACTIVITY, slug, row),
    )


@village_type.field("outgoingActivitySignUps")
def resolve_outgoing_sign_ups(village: dict, info, state: str | None = None) -> list[dict]:
    """This village's residents' sign-ups in its neighbours' villages, read there
    through the agreements covering open activities."""
    slug = village["slug"]
    found = [
        {**row, "village": owner, "sign_up": as_node(SIGN_UP, owner, row)}
        for owner, conn in info.context.neighbours(slug, OPEN_ACTIVITY)
        for row in queries.sign_ups_of_guests(conn, slug, state=state)
    ]
    return sorted(found, key=lambda row: (row["starts_at"], row["village"], row["id"]))


# -- Activity -------------------------------------------------------------------


@activity_type.field("schedule")
def resolve_schedule(activity: dict, _info) -> dict:
    return activity


@schedule_type.field("startTime")
def resolve_start_time(activity: dict, _info) -> str:
    return activity["start_time"].strftime("%H:%M")


@activity_type.field("occurrences")
def resolve_occurrences(activity: dict, info, **window) -> list[dict]:
    ctx: RequestContext = info.context
    slug = activity["village"]
    loader = _occurrences_loader(ctx, slug, window.get("from"), window.get("to"))
    loader.expect(page_of(ctx, slug, ACTIVITY, activity["id"]))
    return loader.load(activity["id"]) or []


# -- ActivityOccurrence ---------------------------------------------------------


@occurrence_type.field("activity")
def resolve_occurrence_activity(occurrence: dict, info) -> dict | None:
    return activity_loader(info.context, occurrence["village"]).load(occurrence["activity_id"])


@occurrence_type.field("signUpCounts")
def resolve_sign_up_counts(occurrence: dict, _info) -> dict:
    return occurrence


def _village_time(column: str):
    """Occurrence times in the village's own zone, as the schedule was entered."""
    return lambda occurrence, *_: clock.local(occurrence[column])


occurrence_type.set_field("startsAt", _village_time("starts_at"))
occurrence_type.set_field(
    "movedFrom",
    lambda occurrence, *_: (
        None
        if occurrence["planned_starts_at"] is None
        else clock.local(occurrence["planned_starts_at"])
    ),
)
occurrence_type.set_field("endsAt", _village_time("ends_at"))
outgoing_type.set_field("startsAt", _village_time("starts_at"))
outgoing_type.set_field("endsAt", _village_time("ends_at"))


@occurrence_type.field("placesLeft")
def resolve_places_left(occurrence: dict, _info) -> int:
    taken = occurrence["signed_up"] + occurrence["checked_in"]
    return max(occurrence["capacity"] - taken, 0)


@occurrence_type.field("signUps")
def resolve_sign_ups(occurrence: dict, info, state: str | None = None) -> list[dict]:
    ctx: RequestContext = info.context
    slug = occurrence["village"]
    loader = _sign_ups_loader(ctx, slug, state)
    loader.expect(page_of(ctx, slug, OCCURRENCE, occurrence["id"]))
    return loader.load(occurrence["id"]) or []


# -- ActivitySignUp -------------------------------------------------------------


@sign_up_type.field("occurrence")
def resolve_sign_up_occurrence(sign_up: dict, info) -> dict | None:
    return occurrence_loader(info.context, sign_up["village"]).load(sign_up["occurrence_id"])


@sign_up_type.field("resident")
def resolve_sign_up_resident(sign_up: dict, info) -> dict | None:
    if sign_up["resident_id"] is None:
        return None
    return resident_loader(info.context, sign_up["village"]).load(sign_up["resident_id"])


@sign_up_type.field("householdMember")
def resolve_sign_up_household_member(sign_up: dict, info) -> dict | None:
    """Who of the caller's household a sign-up is for, to a resident (the Resident type
    is the staff's); null for staff, who read `resident`."""
    members = _household_members(info.context, sign_up["village"])
    member = None if members is None else members.get(sign_up["resident_id"])
    return None if member is None else {**member, "village": sign_up["village"]}


@sign_up_type.field("neighbour")
def resolve_sign_up_neighbour(sign_up: dict, _info) -> dict | None:
    if sign_up["guest_village"] is None:
        return None
    return {
        "village": sign_up["guest_village"],
        "resident": encode_id("Resident", sign_up["guest_village"], sign_up["guest_resident_id"]),
        "name": sign_up["guest_name"],
    }


@sign_up_type.field("volunteerHours")
def resolve_volunteer_hours(sign_up: dict, _info) -> float | None:
    hours = sign_up["volunteer_hours"]
    return None if hours is None else float(hours)


register_node_type(ACTIVITY, fetch_by_int_key(activity_loader))
register_node_type(OCCURRENCE, fetch_by_int_key(occurrence_loader))
register_node_type(SIGN_UP, fetch_by_int_key(sign_up_loader))

bindables = [
    village_type,
    activity_type,
    occurrence_type,
    sign_up_type,
    schedule_type,
    outgoing_type,
    connection_object("ActivityConnection"),
]

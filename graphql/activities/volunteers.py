"""Volunteer teams, the points ledger and what they add to Resident and Village.

Resident's points and hours are loaded for every resident of a page at once:
this module listens for pages of residents (`on_page`), whichever domain shows them.
"""

from __future__ import annotations

from ariadne import ObjectType

from villagelink.graphql.activities.types import announce_residents, page_of, remember_page
from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import encode_id
from villagelink.graphql.core.loaders import BatchLoader
from villagelink.graphql.core.nodes import (
    as_node,
    connection_object,
    fetch_by_int_key,
    node_object,
    on_page,
    register_node_type,
)
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.graphql.residents.types import resident_loader
from villagelink.tenants.activities import points, queries

TEAM = "VolunteerTeam"
ENTRY = "PointsEntry"
RESIDENT = "Resident"

village_type = ObjectType("Village")
activity_type = ObjectType("Activity")
resident_type = ObjectType(RESIDENT)
team_type = node_object(TEAM)
member_type = ObjectType("VolunteerTeamMember")
entry_type = node_object(ENTRY)


# -- loaders --------------------------------------------------------------------


def team_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    return ctx.loader(
        slug,
        TEAM,
        lambda conn, ids: {
            k: as_node(TEAM, slug, v) for k, v in queries.teams_by_ids(conn, ids).items()
        },
    )


def _members_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    grids = ctx.allowed_grids(slug)

    def fetch(conn, team_ids: list[int]) -> dict[int, list[dict]]:
        found = queries.members_by_team(conn, team_ids, allowed_grids=grids)
        announce_residents(ctx, slug, [m["resident_id"] for rows in found.values() for m in rows])
        return {k: [{**m, "village": slug} for m in rows] for k, rows in found.items()}

    return ctx.loader(slug, "activities:team_members", fetch)


def _member_count_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    return ctx.loader(slug, "activities:team_member_counts", queries.member_counts)


def entry_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    def fetch(conn, ids: list[int]) -> dict[int, dict]:
        found = points.entries_by_ids(conn, ids)
        # The ledger is the resident's: out of a grid worker's grids, it is not there.
        visible = resident_loader(ctx, slug)
        visible.expect(e["resident_id"] for e in found.values())
        return {
            k: as_node(ENTRY, slug, v)
            for k, v in found.items()
            if visible.load(v["resident_id"]) is not None
        }

    return ctx.loader(slug, ENTRY, fetch)


def _balance_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    return ctx.loader(slug, "activities:points_balance", points.balances)


def _hours_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    return ctx.loader(slug, "activities:volunteer_hours", queries.volunteer_hours_by_resident)


def _ledger_loader(ctx: RequestContext, slug: str, before_id: int | None, limit: int):
    def fetch(conn, resident_ids: list[int]) -> dict[int, list[dict]]:
        return points.ledger_by_resident(conn, resident_ids, before_id=before_id, limit=limit)

    return ctx.loader(slug, f"activities:ledger:{before_id}:{limit}", fetch)


def _ledger_count_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    return ctx.loader(slug, "activities:ledger_counts", points.entry_counts)


def _residents_shown(ctx: RequestContext, slug: str, keys: list[int]) -> None:
    _balance_loader(ctx, slug).expect(keys)
    _hours_loader(ctx, slug).expect(keys)
    _ledger_count_loader(ctx, slug).expect(keys)
    remember_page(ctx, slug, RESIDENT, keys)


on_page(RESIDENT, _residents_shown)


# -- Village --------------------------------------------------------------------


@village_type.field("volunteerTeams")
def resolve_volunteer_teams(village: dict, info, first=None, after=None):
    ctx: RequestContext = info.context
    slug = village["slug"]
    page = page_args(first, after, ctx.settings.max_page_size)
    conn = ctx.tenant(slug)

    def fetch(limit: int) -> list[dict]:
        rows = queries.team_page(conn, after_id=page.after_id, limit=limit)
        shown = rows[: page.first]
        _members_loader(ctx, slug).expect(r["id"] for r in shown)
        _member_count_loader(ctx, slug).expect(r["id"] for r in shown)
        resident_loader(ctx, slug).expect(r["leader_resident_id"] for r in shown)
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: queries.team_count(conn),
        node=lambda row: as_node(TEAM, slug, row),
    )


@village_type.field("pointsRules")
def resolve_points_rules(village: dict, info) -> dict:
    return points.rules(info.context.tenant(village["slug"]))


# -- Activity -------------------------------------------------------------------


@activity_type.field("team")
def resolve_activity_team(activity: dict, info) -> dict | None:
    return team_loader(info.context, activity["village"]).load(activity["team_id"])


# -- VolunteerTeam --------------------------------------------------------------


@team_type.field("leader")
def resolve_leader(team: dict, info) -> dict | None:
    return resident_loader(info.context, team["village"]).load(team["leader_resident_id"])


@team_type.field("members")
def resolve_members(team: dict, info) -> list[dict]:
    return _members_loader(info.context, team["village"]).load(team["id"]) or []


@team_type.field("memberCount")
def resolve_member_count(team: dict, info) -> int:
    return _member_count_loader(info.context, team["village"]).load(team["id"]) or 0


@member_type.field("resident")
def resolve_member_resident(member: dict, info) -> dict | None:
    return resident_loader(info.context, member["village"]).load(member["resident_id"])


# -- PointsEntry ----------------------------------------------------------------


@entry_type.field("resident")
def resolve_entry_resident(entry: dict, info) -> dict | None:
    return resident_loader(info.context, entry["village"]).load(entry["resident_id"])


@entry_type.field("source")
def resolve_entry_source(entry: dict, _info) -> str | None:
    if entry["source_id"] is None:
        return None
    return encode_id(entry["source_type"], entry["village"], entry["source_id"])


# -- Resident -------------------------------------------------------------------


@resident_type.field("pointsBalance")
def resolve_points_balance(resident: dict, info) -> int:
    return _balance_loader(info.context, resident["village"]).load(resident["id"]) or 0


@resident_type.field("volunteerHours")
def resolve_resident_volunteer_hours(resident: dict, info) -> float:
    return _hours_loader(info.context, resident["village"]).load(resident["id"]) or 0.0


@resident_type.field("pointsLedger")
def resolve_points_ledger(resident: dict, info, first=None, after=None):
    ctx: RequestContext = info.context
    slug = resident["village"]
    page = page_args(first, after, ctx.settings.max_page_size)
    ledger = _ledger_loader(ctx, slug, page.after_id, page.first + 1)
    ledger.expect(page_of(ctx, slug, RESIDENT, resident["id"]))
    counts = _ledger_count_loader(ctx, slug)
    return paginate(
        lambda _limit: ledger.load(resident["id"]) or [],
        page,
        count=lambda: counts.load(resident["id"]) or 0,
        node=lambda row: as_node(ENTRY, slug, row),
    )


register_node_type(TEAM, fetch_by_int_key(team_loader))
register_node_type(ENTRY, fetch_by_int_key(entry_loader))

bindables = [
    village_type,
    activity_type,
    resident_type,
    team_type,
    member_type,
    entry_type,
    connection_object("VolunteerTeamConnection"),
    connection_object("PointsEntryConnection"),
]

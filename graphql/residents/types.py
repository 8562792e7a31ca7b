"""Resident and household types: connections, masking, batch loading."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from ariadne import ObjectType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.executor import carried
from villagelink.graphql.core.ids import filter_key
from villagelink.graphql.core.loaders import BatchLoader
from villagelink.graphql.core.nodes import (
    announce_page,
    as_node,
    connection_object,
    fetch_by_int_key,
    node_object,
    register_node_type,
)
from villagelink.graphql.core.numbers import within
from villagelink.graphql.core.pagination import node_asks_for, page_args, paginate
from villagelink.graphql.villages.types import grid_loader, prime_grids
from villagelink.tenants.residents import queries

village_type = ObjectType("Village")
resident_type = node_object("Resident")
household_type = node_object("Household")


def _records_loader(ctx: RequestContext, slug: str, name: str, fetch) -> BatchLoader:
    """`ctx.loader` for resident records. Residents reach them through other objects
    too (a request's household): their own household they read through
    `me { resident }` only, so a fetch for them is refused. Checked when the loader
    fetches, not when a page announces what it may ask for."""

    def guarded(conn, keys: list) -> dict:
        ctx.village(slug)
        return fetch(conn, keys)

    return ctx.loader(slug, name, guarded)


def resident_loader(ctx: RequestContext, slug: str):
    grids = ctx.allowed_grids(slug)

    def fetch(conn, ids: list[int]) -> dict[int, dict]:
        placed = queries.placed_residents_by_ids(conn, ids, allowed_grids=grids)
        _keep_places(ctx, slug, placed.values())
        return {k: as_node("Resident", slug, p.resident) for k, p in placed.items()}

    return _records_loader(ctx, slug, "Resident", fetch)


def household_loader(ctx: RequestContext, slug: str):
    """Households by id, kept to a grid worker's grids."""
    grids = ctx.allowed_grids(slug)
    return _records_loader(
        ctx,
        slug,
        "Household",
        lambda conn, ids: {
            k: as_node("Household", slug, v)
            for k, v in queries.households_by_ids(conn, ids, allowed_grids=grids).items()
        },
    )


def _tags_loader(ctx: RequestContext, slug: str):
    return _records_loader(ctx, slug, "tags", queries.tags_by_resident)


def _members_loader(ctx: RequestContext, slug: str):
    grids = ctx.allowed_grids(slug)
    return _records_loader(
        ctx,
        slug,
        "members",
        lambda conn, ids: {
            k: [
                as_node("Resident", slug, r) for r in rows if grids is None or r["grid_id"] in grids
            ]
            for k, rows in queries.members_by_household(conn, ids).items()
        },
    )


def _keep_places(ctx: RequestContext, slug: str, placed: Iterable[queries.PlacedResident]) -> None:
    """Residents come with their households and grids in the same statement (a page, or
    the resident loader's batch). Each resident's row carries its own (`carried`: no
    resolver runs for them), and the household and grid loaders keep them for whoever
    else asks (a request's household): a selection of `household` and `grid` costs no
    statement of its own."""
    placed = list(placed)
    households = household_loader(ctx, slug)
    grids = prime_grids(
        ctx,
        slug,
        {p.resident["grid_id"]: p.grid for p in placed if p.resident["grid_id"] is not None},
    )
    for p in placed:
        household = as_node("Household", slug, p.household)
        if p.resident["household_id"] is not None:
            households.prime(p.resident["household_id"], household)
        p.resident["household"] = household
        p.resident["grid"] = grids.get(p.resident["grid_id"])


def _announce_residents(ctx: RequestContext, slug: str, rows: list[dict]) -> None:
    """Tell the loaders what this page's rows will ask for: one query each, not one per
    row. The rows carry their ages (`carried`), of the request's day."""
    ids = [r["id"] for r in rows]
    _tags_loader(ctx, slug).expect(ids)
    announce_page(ctx, "Resident", slug, ids)
    for row in rows:
        row["age"] = _age(row["birth_date"], ctx.today)


def resident_filter(ctx: RequestContext, slug: str, raw: dict | None) -> queries.ResidentFilter:
    """The API's ResidentFilter input as a query filter (also for exports)."""
    raw = raw or {}
    grid_id = None
    if raw.get("grid"):
        grid_id = filter_key(raw["grid"], "Grid", slug)
    return queries.ResidentFilter(
        name=raw.get("name"),
        tag=raw.get("tag"),
        grid_id=grid_id,
        age_min=within(raw.get("age_min"), "filter.ageMin", 0, queries.MAX_AGE),
        age_max=within(raw.get("age_max"), "filter.ageMax", 0, queries.MAX_AGE),
    )


@village_type.field("residents")
def resolve_residents(village: dict, info, first=None, after=None, filter=None):
    ctx: RequestContext = info.context
    slug = village["slug"]
    page = page_args(first, after, ctx.settings.max_page_size)
    flt = resident_filter(ctx, slug, filter)
    conn = ctx.tenant(slug)
    grids = ctx.allowed_grids(slug)

    # The page's places joined in its one statement when the nodes show them; a list of
    # names and ages (the elderly over 80) reads the residents alone.
    places = node_asks_for(info, "household", "grid")

    def fetch(limit: int) -> list[dict]:
        if places:
            placed = queries.placed_resident_page(
                conn, flt, allowed_grids=grids, after_id=page.after_id, limit=limit, today=ctx.today
            )
            _keep_places(ctx, slug, placed[: page.first])
            rows = [p.resident for p in placed]
        else:
            rows = queries.resident_page(
                conn, flt, allowed_grids=grids, after_id=page.after_id, limit=limit, today=ctx.today
            )
        _announce_residents(ctx, slug, rows[: page.first])
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: queries.resident_count(conn, flt, allowed_grids=grids, today=ctx.today),
        node=lambda row: as_node("Resident", slug, row),
    )


@village_type.field("households")
def resolve_households(village: dict, info, first=None, after=None, include_archived=False):
    ctx: RequestContext = info.context
    slug = village["slug"]
    page = page_args(first, after, ctx.settings.max_page_size)
    conn = ctx.tenant(slug)
    grids = ctx.allowed_grids(slug)

    def fetch(limit: int) -> list[dict]:
        rows = queries.household_page(
            conn,
            allowed_grids=grids,
            include_archived=include_archived,
            after_id=page.after_id,
            limit=limit,
        )
        shown = rows[: page.first]
        grid_loader(ctx, slug).expect(r["grid_id"] for r in shown)
        resident_loader(ctx, slug).expect(r["head_resident_id"] for r in shown)
        _members_loader(ctx, slug).expect(r["id"] for r in shown)
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: queries.household_count(
            conn, allowed_grids=grids, include_archived=include_archived
        ),
        node=lambda row: as_node("Household", slug, row),
    )


def _age(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@resident_type.field("age")
@carried
def resolve_age(resident: dict, info) -> int:
    return _age(resident["birth_date"], info.context.today)


@resident_type.field("household")
@carried
def resolve_resident_household(resident: dict, info) -> dict | None:
    return household_loader(info.context, resident["village"]).load(resident["household_id"])


@resident_type.field("grid")
@carried
def resolve_resident_grid(resident: dict, info) -> dict | None:
    return grid_loader(info.context, resident["village"]).load(resident["grid_id"])


@resident_type.field("tags")
def resolve_resident_tags(resident: dict, info) -> list[dict]:
    return _tags_loader(info.context, resident["village"]).load(resident["id"]) or []


@household_type.field("grid")
def resolve_household_grid(household: dict, info) -> dict | None:
    return grid_loader(info.context, household["village"]).load(household["grid_id"])


@household_type.field("head")
def resolve_household_head(household: dict, info) -> dict | None:
    return resident_loader(info.context, household["village"]).load(household["head_resident_id"])


@household_type.field("members")
def resolve_household_members(household: dict, info) -> list[dict]:
    return _members_loader(info.context, household["village"]).load(household["id"]) or []


register_node_type("Resident", fetch_by_int_key(resident_loader))
register_node_type("Household", fetch_by_int_key(household_loader))

bindables = [
    village_type,
    resident_type,
    household_type,
    connection_object("ResidentConnection"),
    connection_object("HouseholdConnection"),
]

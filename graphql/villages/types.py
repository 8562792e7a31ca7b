"""Roots and village-level types: me, villages, village, node, Village, Grid, GridStaff."""

from __future__ import annotations

from ariadne import ObjectType, QueryType
from sqlalchemy import or_, select

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import NotFound
from villagelink.graphql.core.ids import decode_id
from villagelink.graphql.core.nodes import (
    as_node,
    connection_object,
    fetch_by_int_key,
    fetch_node,
    node_object,
    register_node_type,
)
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.platform import models as pm
from villagelink.tenants import grids as grid_queries

query = QueryType()
village_type = node_object("Village")
grid_type = node_object("Grid")
grid_staff_type = node_object("GridStaff")
me_type = ObjectType("Me")
village_stats_type = ObjectType("VillageStats")


def village_node(row: dict) -> dict:
    # A village's key and village are both its slug.
    return {**row, "id": row["slug"], "village": row["slug"], "_type": "Village"}


def grid_loader(ctx: RequestContext, slug: str):
    def fetch(conn, ids: list[int]) -> dict[int, dict]:
        return _grid_nodes(ctx, slug, grid_queries.grids_by_ids(conn, ids))

    return ctx.loader(slug, "grids", fetch)


def _grid_nodes(ctx: RequestContext, slug: str, found: dict[int, dict]) -> dict[int, dict]:
    # Whoever asks for grids tends to ask for their parents and staff next:
    # announcing them keeps that to one query per level, not one per grid.
    grid_loader(ctx, slug).expect(g["parent_id"] for g in found.values())
    _staff_loader(ctx, slug).expect(found)
    return {k: as_node("Grid", slug, v) for k, v in found.items()}


def prime_grids(ctx: RequestContext, slug: str, found: dict[int, dict | None]) -> dict[int, dict]:
    """Grids read in another record's statement (a resident's), kept by the grid loader
    as if it had fetched them: None for a key that found no grid. Returns their nodes."""
    loader = grid_loader(ctx, slug)
    nodes = _grid_nodes(ctx, slug, {k: g for k, g in found.items() if g is not None})
    for key in found:
        loader.prime(key, nodes.get(key))
    return nodes


@query.field("me")
def resolve_me(_obj, info) -> dict:
    ctx: RequestContext = info.context
    p = ctx.principal
    return {
        "subject": p.sub,
        "username": p.username,
        "roles": sorted(p.roles),
        "client_id": p.client_id,
        "villages": [village_node(v) for v in ctx.villages.values()],
    }


@query.field("villages")
def resolve_villages(_obj, info) -> list[dict]:
    return [village_node(v) for v in info.context.villages.values()]


@query.field("village")
def resolve_village(_obj, info, slug: str) -> dict:
    return village_node(info.context.village(slug))


@query.field("node")
def resolve_node(_obj, info, id: str) -> dict:
    ctx: RequestContext = info.context
    gid = decode_id(id)
    ctx.village(gid.village)  # NOT_FOUND outside the caller's reach, before any lookup
    found = fetch_node(ctx, gid.type_name, gid.village, gid.key)
    if found is None:
        raise NotFound(gid.type_name)
    return found


def _fetch_village(ctx: RequestContext, village: str, key: str) -> dict | None:
    return village_node(ctx.village(village)) if key == village else None


register_node_type("Village", _fetch_village)


@village_type.field("region")
def resolve_region(village: dict, _info) -> dict:
    return {"id": village["region_id"], "name": village["region_name"]}


@village_type.field("neighbours")
def resolve_neighbours(village: dict, info) -> list[dict]:
    links = pm.neighbour_links
    slug = village["slug"]
    other = pm.tenants.alias("other")
    rows = info.context.platform_rows(
        select(other.c.slug, other.c.name)
        .select_from(links)
        .join(
            other,
            or_(
                (links.c.village_a == slug) & (other.c.slug == links.c.village_b),
                (links.c.village_b == slug) & (other.c.slug == links.c.village_a),
            ),
        )
        .order_by(other.c.slug)
    )
    return [dict(row) for row in rows]


@village_type.field("stats")
def resolve_stats(village: dict, info) -> dict | None:
    rows = info.context.platform_rows(
        select(pm.village_stats).where(pm.village_stats.c.village == village["slug"])
    )
    return dict(rows[0]) if rows else None


village_stats_type.set_field("aged60Plus", lambda stats, *_: stats["aged_60_plus"])


@village_type.field("grids")
def resolve_grids(village: dict, info, first=None, after=None, level=None, include_archived=False):
    ctx: RequestContext = info.context
    slug = village["slug"]
    page = page_args(first, after, ctx.settings.max_page_size)
    conn = ctx.tenant(slug)

    def fetch(limit: int) -> list[dict]:
        rows = grid_queries.grid_page(
            conn,
            level=level,
            include_archived=include_archived,
            after_id=page.after_id,
            limit=limit,
        )
        prime_grids(ctx, slug, {row["id"]: row for row in rows[: page.first]})
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: grid_queries.grid_count(conn, level=level, include_archived=include_archived),
        node=lambda row: as_node("Grid", slug, row),
    )


def _staff_loader(ctx: RequestContext, slug: str):
    return ctx.loader(
        slug,
        "staff_by_grid",
        lambda conn, ids: {
            grid_id: [as_node("GridStaff", slug, s) for s in staff]
            for grid_id, staff in grid_queries.staff_by_grid(conn, ids).items()
        },
    )


@grid_type.field("parent")
def resolve_grid_parent(grid: dict, info) -> dict | None:
    return grid_loader(info.context, grid["village"]).load(grid["parent_id"])


@grid_type.field("staff")
def resolve_grid_staff(grid: dict, info) -> list[dict]:
    return _staff_loader(info.context, grid["village"]).load(grid["id"]) or []


def grid_staff_loader(ctx: RequestContext, slug: str):
    return ctx.loader(
        slug,
        "GridStaff",
        lambda conn, ids: {
            k: as_node("GridStaff", slug, v)
            for k, v in grid_queries.staff_by_ids(conn, ids).items()
        },
    )


register_node_type("Grid", fetch_by_int_key(grid_loader))
register_node_type("GridStaff", fetch_by_int_key(grid_staff_loader))

bindables = [
    query,
    me_type,
    village_type,
    village_stats_type,
    grid_type,
    grid_staff_type,
    connection_object("GridConnection"),
]

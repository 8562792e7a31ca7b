"""Buildings: the village's list of them, and their grid."""

from __future__ import annotations

from ariadne import ObjectType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import filter_key
from villagelink.graphql.core.nodes import (
    as_node,
    connection_object,
    fetch_by_int_key,
    node_object,
    register_node_type,
)
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.graphql.villages.types import grid_loader
from villagelink.tenants.structure import queries

BUILDING = "Building"
village_type = ObjectType("Village")
building_type = node_object(BUILDING)


def building_loader(ctx: RequestContext, slug: str):
    return ctx.loader(
        slug,
        BUILDING,
        lambda conn, ids: {
            k: as_node(BUILDING, slug, v) for k, v in queries.buildings_by_ids(conn, ids).items()
        },
    )


@village_type.field("buildings")
def resolve_buildings(
    village: dict, info, first=None, after=None, grid=None, include_archived=False
):
    ctx: RequestContext = info.context
    slug = village["slug"]
    page = page_args(first, after, ctx.settings.max_page_size)
    grid_id = filter_key(grid, "Grid", slug)
    conn = ctx.tenant(slug)

    def fetch(limit: int) -> list[dict]:
        rows = queries.building_page(
            conn,
            grid_id=grid_id,
            include_archived=include_archived,
            after_id=page.after_id,
            limit=limit,
        )
        grid_loader(ctx, slug).expect(r["grid_id"] for r in rows[: page.first])
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: queries.building_count(
            conn, grid_id=grid_id, include_archived=include_archived
        ),
        node=lambda row: as_node(BUILDING, slug, row),
    )


@building_type.field("grid")
def resolve_building_grid(building: dict, info) -> dict | None:
    return grid_loader(info.context, building["village"]).load(building["grid_id"])


register_node_type(BUILDING, fetch_by_int_key(building_loader))

bindables = [village_type, building_type, connection_object("BuildingConnection")]

"""Grid staff as readers see them: the staff list, each one's grids, and (for the
village's managers only) the login they were invited to."""

from __future__ import annotations

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.nodes import as_node, connection_object
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.graphql.villages.types import grid_staff_loader, grid_staff_type, village_type
from villagelink.tenants.sensing.queries import staff_of_account
from villagelink.tenants.staff import queries


def _grids_loader(ctx: RequestContext, slug: str):
    return ctx.loader(
        slug,
        "grids_by_staff",
        lambda conn, ids: {
            staff_id: [as_node("Grid", slug, g) for g in grids]
            for staff_id, grids in queries.grids_by_staff(conn, ids).items()
        },
    )


@village_type.field("staff")
def resolve_staff(village: dict, info, first=None, after=None, tier=None, include_disabled=False):
    ctx: RequestContext = info.context
    slug = village["slug"]
    page = page_args(first, after, ctx.settings.max_page_size)
    conn = ctx.tenant(slug)
    grids = _grids_loader(ctx, slug)
    options = {"tier": tier, "include_disabled": bool(include_disabled)}

    def fetch(limit: int) -> list[dict]:
        rows = queries.staff_page(conn, after_id=page.after_id, limit=limit, **options)
        grids.expect(row["id"] for row in rows[: page.first])
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: queries.staff_count(conn, **options),
        node=lambda row: as_node("GridStaff", slug, row),
    )


@village_type.field("myStaff")
def resolve_my_staff(village: dict, info) -> dict | None:
    ctx: RequestContext = info.context
    slug = village["slug"]
    return grid_staff_loader(ctx, slug).load(staff_of_account(ctx.tenant(slug), ctx.principal.sub))


@grid_staff_type.field("grids")
def resolve_staff_grids(staff: dict, info) -> list[dict]:
    return _grids_loader(info.context, staff["village"]).load(staff["id"]) or []


@grid_staff_type.field("accountUsername")
def resolve_account_username(staff: dict, info) -> str | None:
    """An email address: the village's managers see it, other readers do not."""
    ctx: RequestContext = info.context
    return staff.get("account_username") if ctx.access.can_manage(staff["village"]) else None


bindables = [connection_object("GridStaffConnection")]

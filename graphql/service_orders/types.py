"""Service catalogue, slots and orders: connections under Village, batch loading, nodes."""

from __future__ import annotations

from ariadne import ObjectType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import encode_id, filter_key
from villagelink.graphql.core.nodes import (
    as_node,
    connection_object,
    fetch_by_int_key,
    node_object,
    register_node_type,
)
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.graphql.core.scalars import moment_argument
from villagelink.graphql.residents.types import resident_loader
from villagelink.tenants import clock
from villagelink.tenants.service_orders import queries

VOLUNTEER_TEAM = "VolunteerTeam"

village_type = ObjectType("Village")
item_type = node_object("ServiceItem")
slot_type = node_object("ServiceSlot")
order_type = node_object("ServiceOrder")
event_type = ObjectType("ServiceOrderEvent")


# -- loaders --------------------------------------------------------------------


def _rows_loader(ctx: RequestContext, slug: str, type_name: str, by_ids):
    return ctx.loader(
        slug,
        type_name,
        lambda conn, ids: {k: as_node(type_name, slug, v) for k, v in by_ids(conn, ids).items()},
    )


def item_loader(ctx: RequestContext, slug: str):
    return _rows_loader(ctx, slug, "ServiceItem", queries.items_by_ids)


def slot_loader(ctx: RequestContext, slug: str):
    return _rows_loader(ctx, slug, "ServiceSlot", queries.slots_by_ids)


def order_loader(ctx: RequestContext, slug: str):
    grids = ctx.allowed_grids(slug)
    return _rows_loader(
        ctx,
        slug,
        "ServiceOrder",
        lambda conn, ids: queries.orders_by_ids(conn, ids, allowed_grids=grids),
    )


def team_loader(ctx: RequestContext, slug: str):
    """Volunteer teams by id, as {id, name}; the ID is the activities domain's VolunteerTeam ID."""
    return ctx.loader(
        slug,
        "service_order_teams",
        lambda conn, ids: {
            k: {"id": encode_id(VOLUNTEER_TEAM, slug, k), "name": name}
            for k, name in queries.team_names(conn, ids).items()
        },
    )


def _timeline_loader(ctx: RequestContext, slug: str):
    def fetch(conn, ids: list[int]) -> dict[int, list[dict]]:
        found = queries.events_by_order(conn, ids)
        team_loader(ctx, slug).expect(
            e["volunteer_team_id"] for events in found.values() for e in events
        )
        return {k: [{**e, "village": slug} for e in events] for k, events in found.items()}

    return ctx.loader(slug, "service_order_timeline", fetch)


# -- filters --------------------------------------------------------------------


def _connection(ctx: RequestContext, first, after, fetch_page, count, node, announce=None):
    """A connection over `fetch_page(after_id, limit)`; `announce(rows)` tells the loaders
    what the shown rows will ask for."""
    page = page_args(first, after, ctx.settings.max_page_size)

    def fetch(limit: int) -> list[dict]:
        rows = fetch_page(page.after_id, limit)
        if announce is not None:
            announce(rows[: page.first])
        return rows

    return paginate(fetch, page, count=count, node=node)


# -- Village connections -----------------------------------------------------------


@village_type.field("serviceItems")
def resolve_service_items(village: dict, info, first=None, after=None, filter=None):
    ctx: RequestContext = info.context
    slug = village["slug"]
    raw = filter or {}
    flt = queries.ItemFilter(category=raw.get("category"), active=raw.get("active"))
    conn = ctx.tenant(slug)
    return _connection(
        ctx,
        first,
        after,
        lambda after_id, limit: queries.item_page(conn, flt, after_id=after_id, limit=limit),
        count=lambda: queries.item_count(conn, flt),
        node=lambda row: as_node("ServiceItem", slug, row),
    )


@village_type.field("serviceSlots")
def resolve_service_slots(village: dict, info, first=None, after=None, filter=None):
    ctx: RequestContext = info.context
    slug = village["slug"]
    raw = filter or {}
    flt = queries.SlotFilter(
        item_id=filter_key(raw.get("item"), "ServiceItem", slug),
        window_from=moment_argument(raw.get("from"), "from"),
        window_to=moment_argument(raw.get("to"), "to"),
        available=raw.get("available"),
    )
    now = clock.now()
    conn = ctx.tenant(slug)
    return _connection(
        ctx,
        first,
        after,
        lambda after_id, limit: queries.slot_page(
            conn, flt, now=now, after_id=after_id, limit=limit
        ),
        count=lambda: queries.slot_count(conn, flt, now=now),
        node=lambda row: as_node("ServiceSlot", slug, row),
        announce=lambda rows: item_loader(ctx, slug).expect(r["service_item_id"] for r in rows),
    )


def _announce_orders(ctx: RequestContext, slug: str, rows: list[dict]) -> None:
    """One query each for the page's items, slots, residents, teams and timelines."""
    item_loader(ctx, slug).expect(r["service_item_id"] for r in rows)
    slot_loader(ctx, slug).expect(r["service_slot_id"] for r in rows)
    resident_loader(ctx, slug).expect(r["resident_id"] for r in rows)
    team_loader(ctx, slug).expect(r["volunteer_team_id"] for r in rows)
    _timeline_loader(ctx, slug).expect(r["id"] for r in rows)


@village_type.field("serviceOrders")
def resolve_service_orders(village: dict, info, first=None, after=None, filter=None):
    ctx: RequestContext = info.context
    slug = village["slug"]
    raw = filter or {}
    flt = queries.OrderFilter(
        state=raw.get("state"),
        item_id=filter_key(raw.get("item"), "ServiceItem", slug),
        team_id=filter_key(raw.get("team"), VOLUNTEER_TEAM, slug),
        resident_id=filter_key(raw.get("resident"), "Resident", slug),
    )
    conn = ctx.tenant(slug)
    grids = ctx.allowed_grids(slug)
    return _connection(
        ctx,
        first,
        after,
        lambda after_id, limit: queries.order_page(
            conn, flt, allowed_grids=grids, after_id=after_id, limit=limit
        ),
        count=lambda: queries.order_count(conn, flt, allowed_grids=grids),
        node=lambda row: as_node("ServiceOrder", slug, row),
        announce=lambda rows: _announce_orders(ctx, slug, rows),
    )


# -- object fields ------------------------------------------------------------------


@slot_type.field("item")
def resolve_slot_item(slot: dict, info) -> dict | None:
    return item_loader(info.context, slot["village"]).load(slot["service_item_id"])


@slot_type.field("available")
def resolve_slot_available(slot: dict, _info) -> int:
    return slot["capacity"] - slot["booked"]


@order_type.field("item")
def resolve_order_item(order: dict, info) -> dict | None:
    return item_loader(info.context, order["village"]).load(order["service_item_id"])


@order_type.field("slot")
def resolve_order_slot(order: dict, info) -> dict | None:
    return slot_loader(info.context, order["village"]).load(order["service_slot_id"])


@order_type.field("resident")
def resolve_order_resident(order: dict, info) -> dict | None:
    return resident_loader(info.context, order["village"]).load(order["resident_id"])


@order_type.field("team")
def resolve_order_team(order: dict, info) -> dict | None:
    return team_loader(info.context, order["village"]).load(order["volunteer_team_id"])


@order_type.field("timeline")
def resolve_order_timeline(order: dict, info) -> list[dict]:
    return _timeline_loader(info.context, order["village"]).load(order["id"]) or []


@event_type.field("team")
def resolve_event_team(event: dict, info) -> dict | None:
    return team_loader(info.context, event["village"]).load(event["volunteer_team_id"])


event_type.set_field("at", lambda event, *_: event["created_at"])


register_node_type("ServiceItem", fetch_by_int_key(item_loader))
register_node_type("ServiceSlot", fetch_by_int_key(slot_loader))
register_node_type("ServiceOrder", fetch_by_int_key(order_loader))

bindables = [
    village_type,
    item_type,
    slot_type,
    order_type,
    event_type,
    connection_object("ServiceItemConnection"),
    connection_object("ServiceSlotConnection"),
    connection_object("ServiceOrderConnection"),
]

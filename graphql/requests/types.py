"""Request, category, timeline, stats and action-list types, batch-loaded per page.

Who sees which requests is decided once, by `request_scope`: a village's
writers see its requests (a grid worker those of their grids); read-only
callers, the region's coordinators, see those escalated to the region.
"""

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
from villagelink.graphql.residents.types import household_loader, resident_loader
from villagelink.graphql.storage.types import record_attachments_loader, seen_with_record
from villagelink.graphql.villages.types import grid_loader, grid_staff_loader
from villagelink.tenants import clock
from villagelink.tenants.attachments.declarations import any_writer, declare_attachments
from villagelink.tenants.requests import queries
from villagelink.tenants.requests.actions import ACTION_LIST, REQUEST_CATEGORY
from villagelink.tenants.requests.queries import REQUEST, REQUEST_PHOTO, RequestFilter, RequestScope
from villagelink.tenants.requests.tables import OPEN_STATES

village_type = ObjectType("Village")
request_type = node_object(REQUEST)
category_type = node_object(REQUEST_CATEGORY)
action_list_type = node_object(ACTION_LIST)
location_type = ObjectType("RequestLocation")
reporter_type = ObjectType("RequestReporter")
event_type = ObjectType("RequestEvent")
count_type = ObjectType("RequestCount")


def request_scope(ctx: RequestContext, slug: str) -> RequestScope:
    """What of the village's requests the caller sees (NOT_FOUND outside their reach)."""
    ctx.village(slug)
    if ctx.access.can_write(slug):
        return RequestScope(grids=ctx.allowed_grids(slug))
    return RequestScope(escalated_only=True)


# -- loaders ------------------------------------------------------------------


def request_loader(ctx: RequestContext, slug: str):
    scope = request_scope(ctx, slug)
    return ctx.loader(
        slug,
        REQUEST,
        lambda conn, ids: {
            k: as_node(REQUEST, slug, v)
            for k, v in queries.requests_by_ids(conn, ids, scope).items()
        },
    )


def _category_loader(ctx: RequestContext, slug: str):
    """Categories by id. The tree is small and every page asks for several: the first
    use loads all of it, so parents and children cost nothing more."""

    def fetch(conn, _ids: list[int]) -> dict[int, dict]:
        return {c["id"]: as_node(REQUEST_CATEGORY, slug, c) for c in queries.categories(conn)}

    return ctx.loader(slug, REQUEST_CATEGORY, fetch)


def _children_loader(ctx: RequestContext, slug: str):
    def fetch(conn, _ids: list[int]) -> dict[int, list[dict]]:
        found: dict[int, list[dict]] = {}
        for c in queries.categories(conn):
            if c["parent_id"] is not None:
                found.setdefault(c["parent_id"], []).append(as_node(REQUEST_CATEGORY, slug, c))
        return found

    return ctx.loader(slug, "request_category_children", fetch)


def _timeline_loader(ctx: RequestContext, slug: str):
    return ctx.loader(slug, "request_timeline", queries.timelines)


def _last_event_loader(ctx: RequestContext, slug: str):
    return ctx.loader(slug, "request_last_event", queries.last_events)


def _photos_loader(ctx: RequestContext, slug: str):
    return record_attachments_loader(ctx, slug, REQUEST)


def action_list_loader(ctx: RequestContext, slug: str):
    return ctx.loader(
        slug,
        ACTION_LIST,
        lambda conn, ids: {
            k: as_node(ACTION_LIST, slug, v)
            for k, v in queries.action_lists_by_ids(conn, ids).items()
        },
    )


def _listed_requests_loader(ctx: RequestContext, slug: str):
    scope = request_scope(ctx, slug)

    def fetch(conn, list_ids: list[int]) -> dict[int, list[dict]]:
        found = queries.requests_by_action_list(conn, list_ids, scope)
        rows = [r for listed in found.values() for r in listed]
        _announce_requests(ctx, slug, rows)
        return {k: [as_node(REQUEST, slug, r) for r in listed] for k, listed in found.items()}

    return ctx.loader(slug, "action_list_requests", fetch)


def _announce_requests(ctx: RequestContext, slug: str, rows: list[dict]) -> None:
    """Tell the loaders what this page's rows will ask for: one query each, not one per row."""
    _category_loader(ctx, slug).expect(r["category_id"] for r in rows)
    grid_loader(ctx, slug).expect(r["grid_id"] for r in rows)
    grid_staff_loader(ctx, slug).expect(r["assignee_staff_id"] for r in rows)
    household_loader(ctx, slug).expect(r["household_id"] for r in rows)
    resident_loader(ctx, slug).expect(r["reporter_resident_id"] for r in rows)
    ids = [r["id"] for r in rows]
    _last_event_loader(ctx, slug).expect(ids)
    _timeline_loader(ctx, slug).expect(ids)
    _photos_loader(ctx, slug).expect(str(k) for k in ids)


# -- village fields -------------------------------------------------------------


def _request_filter(slug: str, raw: dict | None) -> RequestFilter:
    raw = raw or {}
    return RequestFilter(
        states=tuple(raw.get("states") or ()),
        category_id=filter_key(raw.get("category"), REQUEST_CATEGORY, slug),
        grade=raw.get("grade"),
        grid_id=filter_key(raw.get("grid"), "Grid", slug),
        assignee_id=filter_key(raw.get("assignee"), "GridStaff", slug),
        action_list_id=filter_key(raw.get("action_list"), ACTION_LIST, slug),
        overdue=raw.get("overdue"),
        escalation_level=raw.get("escalation_level"),
        created_from=raw.get("created_from"),
        created_to=raw.get("created_to"),
        text=raw.get("text"),
    )


@village_type.field("requests")
def resolve_requests(village: dict, info, first=None, after=None, filter=None):
    ctx: RequestContext = info.context
    slug = village["slug"]
    page = page_args(first, after, ctx.settings.max_page_size)
    flt = _request_filter(slug, filter)
    scope = request_scope(ctx, slug)
    conn = ctx.tenant(slug)
    now = clock.now()

    def fetch(limit: int) -> list[dict]:
        rows = queries.request_page(conn, flt, scope, now=now, after_id=page.after_id, limit=limit)
        _announce_requests(ctx, slug, rows[: page.first])
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: queries.request_count(conn, flt, scope, now=now),
        node=lambda row: as_node(REQUEST, slug, row),
    )


@village_type.field("requestStats")
def resolve_request_stats(village: dict, info) -> dict:
    ctx: RequestContext = info.context
    slug = village["slug"]
    rows = queries.request_stats(ctx.tenant(slug), request_scope(ctx, slug), now=clock.now())
    for row in rows:
        row["village"] = slug
    return {"by_category_and_state": rows, "overdue": sum(row["overdue"] for row in rows)}


@village_type.field("requestCategories")
def resolve_request_categories(village: dict, info) -> list[dict]:
    slug = village["slug"]
    rows = queries.categories(info.context.tenant(slug))
    return [as_node(REQUEST_CATEGORY, slug, c) for c in rows if c["parent_id"] is None]


@village_type.field("requestSettings")
def resolve_request_settings(village: dict, info) -> dict:
    return queries.deadline_settings(info.context.tenant(village["slug"]))


@village_type.field("actionLists")
def resolve_action_lists(village: dict, info, first=None, after=None, status=None):
    ctx: RequestContext = info.context
    slug = village["slug"]
    page = page_args(first, after, ctx.settings.max_page_size)
    conn = ctx.tenant(slug)

    def fetch(limit: int) -> list[dict]:
        rows = queries.action_list_page(conn, status=status, after_id=page.after_id, limit=limit)
        _listed_requests_loader(ctx, slug).expect(r["id"] for r in rows[: page.first])
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: queries.action_list_count(conn, status=status),
        node=lambda row: as_node(ACTION_LIST, slug, row),
    )


# -- request fields ----------------------------------------------------------


@request_type.field("category")
def resolve_category(request: dict, info) -> dict | None:
    return _category_loader(info.context, request["village"]).load(request["category_id"])


@request_type.field("grid")
def resolve_grid(request: dict, info) -> dict | None:
    return grid_loader(info.context, request["village"]).load(request["grid_id"])


@request_type.field("assignee")
def resolve_assignee(request: dict, info) -> dict | None:
    return grid_staff_loader(info.context, request["village"]).load(request["assignee_staff_id"])


@request_type.field("overdue")
def resolve_overdue(request: dict, _info) -> bool:
    return request["state"] in OPEN_STATES and request["due_at"] < clock.now()


@request_type.field("timeline")
def resolve_timeline(request: dict, info) -> list[dict]:
    return _timeline_loader(info.context, request["village"]).load(request["id"]) or []


@request_type.field("lastEvent")
def resolve_last_event(request: dict, info) -> dict | None:
    return _last_event_loader(info.context, request["village"]).load(request["id"])


@request_type.field("photos")
def resolve_photos(request: dict, info) -> list[dict]:
    return _photos_loader(info.context, request["village"]).load(str(request["id"])) or []


# The location and the reporter are parts of the request's own row.
request_type.set_field("location", lambda request, *_: request)
request_type.set_field("reporter", lambda request, *_: request)
location_type.set_field("building", lambda request, *_: request["building_name"])
location_type.set_field("text", lambda request, *_: request["location_text"])
reporter_type.set_field("name", lambda request, *_: request["reporter_name"])


@location_type.field("household")
def resolve_location_household(request: dict, info) -> dict | None:
    return household_loader(info.context, request["village"]).load(request["household_id"])


@reporter_type.field("resident")
def resolve_reporter_resident(request: dict, info) -> dict | None:
    return resident_loader(info.context, request["village"]).load(request["reporter_resident_id"])


# The whole number; graphql/core/sensitive.py decides what the caller sees.
reporter_type.set_field("phone", lambda request, *_: request["reporter_phone"])


event_type.set_field("actor", lambda event, *_: event["actor_name"])
event_type.set_field("at", lambda event, *_: event["created_at"])


# -- categories, counts, action lists -------------------------------------------


@category_type.field("parent")
def resolve_category_parent(category: dict, info) -> dict | None:
    return _category_loader(info.context, category["village"]).load(category["parent_id"])


@category_type.field("children")
def resolve_category_children(category: dict, info) -> list[dict]:
    return _children_loader(info.context, category["village"]).load(category["id"]) or []


@count_type.field("category")
def resolve_count_category(count: dict, info) -> dict | None:
    return _category_loader(info.context, count["village"]).load(count["category_id"])


@action_list_type.field("requests")
def resolve_action_list_requests(action_list: dict, info) -> list[dict]:
    loader = _listed_requests_loader(info.context, action_list["village"])
    return loader.load(action_list["id"]) or []


register_node_type(REQUEST, fetch_by_int_key(request_loader))
# Photos of a request (现场照片): seen by whoever sees the request (`request_scope`),
# added and taken off by the village's writers who see it (a grid worker: in their grids).
declare_attachments(
    REQUEST,
    [REQUEST_PHOTO],
    queries.request_exists,
    visible=seen_with_record(request_loader),
    writable=any_writer,
)
register_node_type(REQUEST_CATEGORY, fetch_by_int_key(_category_loader))
register_node_type(ACTION_LIST, fetch_by_int_key(action_list_loader))

bindables = [
    village_type,
    request_type,
    category_type,
    action_list_type,
    location_type,
    reporter_type,
    event_type,
    count_type,
    connection_object("RequestConnection"),
    connection_object("ActionListConnection"),
]

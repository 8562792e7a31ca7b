"""Devices in the API: the `devices` root list, node lookup, and the device mutations.

Who reaches which devices is decided once, by `device_scope`: an integrator (a device
platform with `devices:write`) its own; the village admin all of the village's; a grid
worker those of their grids; a regional coordinator all, read-only. The list is a root
field rather than a Village connection because a device platform reaches the village
by its scope without reading the village's residents.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from ariadne import MutationType, QueryType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden
from villagelink.graphql.core.ids import GlobalId, decode_id, filter_key, input_key, int_key
from villagelink.graphql.core.nodes import (
    as_node,
    connection_object,
    fetch_by_int_key,
    node_object,
    register_node_type,
)
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.graphql.core.payloads import act_on, node_payload
from villagelink.graphql.residents.types import household_loader, resident_loader
from villagelink.graphql.villages.types import grid_loader
from villagelink.platform.identity.principal import INTEGRATOR
from villagelink.tenants.sensing import devices as actions
from villagelink.tenants.sensing.devices import DEVICE, DeviceFilter, DeviceScope

query = QueryType()
mutation = MutationType()
device_type = node_object(DEVICE)

NO_RESIDENT = "居民不存在"


def device_scope(ctx: RequestContext, slug: str) -> DeviceScope:
    """The devices of `slug` the caller sees. NOT_FOUND outside their reach; FORBIDDEN
    for an integrator whose client may not run devices there."""
    ctx.village(slug, also=ctx.access.device_writers)
    if ctx.principal.has(INTEGRATOR):
        # Whatever else its client may read, an integrator sees the devices it runs.
        if slug not in ctx.access.device_writers:
            raise Forbidden("this client may not run devices here (it needs devices:write)")
        return DeviceScope(owner=ctx.principal.client_id)
    return DeviceScope(grids=ctx.allowed_grids(slug))


def managed_scope(ctx: RequestContext, slug: str) -> DeviceScope:
    """The devices of `slug` the caller may change: an integrator its own, the village's
    admins all; FORBIDDEN for everyone else (grid workers and coordinators read)."""
    scope = device_scope(ctx, slug)
    if scope.owner is None and not ctx.access.can_manage(slug):
        raise Forbidden("only the village's admin or the device's integrator manages devices")
    return scope


# -- loaders ------------------------------------------------------------------


def device_loader(ctx: RequestContext, slug: str):
    def fetch(conn, ids: list[int]) -> dict[int, dict]:
        try:
            scope = device_scope(ctx, slug)
        except Forbidden:
            return {}
        found = actions.devices_by_ids(conn, ids, scope)
        _announce_devices(ctx, slug, list(found.values()))
        return {k: as_node(DEVICE, slug, v) for k, v in found.items()}

    return ctx.loader(slug, DEVICE, fetch)


def _reads_people(ctx: RequestContext, slug: str) -> bool:
    """Households and residents are shown to those who may read the village's records,
    not to a device platform that only runs devices there."""
    return ctx.access.can_read(slug)


def _announce_devices(ctx: RequestContext, slug: str, rows: list[dict]) -> None:
    """Tell the loaders what these devices will ask for: one query each, not one per row."""
    grid_loader(ctx, slug).expect(r["grid_id"] for r in rows)
    if _reads_people(ctx, slug):
        household_loader(ctx, slug).expect(r["household_id"] for r in rows)
        resident_loader(ctx, slug).expect(r["resident_id"] for r in rows)


# -- the list -----------------------------------------------------------------


@query.field("devices")
def resolve_devices(_obj, info, village: str, first=None, after=None, filter=None):
    ctx: RequestContext = info.context
    page = page_args(first, after, ctx.settings.max_page_size)
    scope = device_scope(ctx, village)
    raw = filter or {}
    flt = DeviceFilter(
        kind=raw.get("kind"),
        status=raw.get("status"),
        grid_id=filter_key(raw.get("grid"), "Grid", village),
        serial_number=raw.get("serial_number"),
    )
    conn = ctx.tenant(village)

    def fetch(limit: int) -> list[dict]:
        rows = actions.device_page(conn, flt, scope, after_id=page.after_id, limit=limit)
        _announce_devices(ctx, village, rows[: page.first])
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: actions.device_count(conn, flt, scope),
        node=lambda row: as_node(DEVICE, village, row),
    )


# -- fields -------------------------------------------------------------------


@device_type.field("grid")
def resolve_device_grid(device: dict, info) -> dict | None:
    return grid_loader(info.context, device["village"]).load(device["grid_id"])


@device_type.field("household")
def resolve_device_household(device: dict, info) -> dict | None:
    if not _reads_people(info.context, device["village"]):
        return None
    return household_loader(info.context, device["village"]).load(device["household_id"])


@device_type.field("resident")
def resolve_device_resident(device: dict, info) -> dict | None:
    if not _reads_people(info.context, device["village"]):
        return None
    return resident_loader(info.context, device["village"]).load(device["resident_id"])


register_node_type(DEVICE, fetch_by_int_key(device_loader))


# -- mutations ----------------------------------------------------------------


_payload = partial(node_payload, "device", DEVICE)


def _links(village: str, input: dict) -> dict[str, Any]:
    """The IDs an input names, as this village's keys (a userError NOT_FOUND for an ID
    of another village or type); only those the input carries."""
    found: dict[str, Any] = {}
    for field, type_name, message in (
        ("household", "Household", "户不存在或不在您的管辖范围内"),
        ("grid", "Grid", "网格不存在"),
        ("resident", "Resident", NO_RESIDENT),
    ):
        if field in input:
            found[f"{field}_id"] = input_key(village, input[field], type_name, field, message)
    return found


PLAIN_FIELDS = ("name", "building", "location_text", "latitude", "longitude")


@mutation.field("registerDevice")
def resolve_register_device(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    scope = managed_scope(ctx, village)
    data = {k: input[k] for k in ("kind", "serial_number", *PLAIN_FIELDS) if k in input}
    return _payload(
        village,
        lambda: actions.do_register_device(
            ctx.tenant(village),
            ctx.actor,
            village,
            {**data, **_links(village, input)},
            owner_client_id=scope.owner,
        ),
    )


def _device_id(ctx: RequestContext, raw: str) -> tuple[GlobalId, DeviceScope]:
    """The device an input names and what the caller may change there."""
    gid = decode_id(raw, DEVICE)
    scope = managed_scope(ctx, gid.village)
    int_key(gid)  # checked after the scope: outside it, every ID is refused alike
    return gid, scope


@mutation.field("updateDevice")
def resolve_update_device(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid, scope = _device_id(ctx, input["id"])
    changes = {k: input[k] for k in PLAIN_FIELDS if k in input}
    return _payload(
        gid.village,
        lambda: actions.do_update_device(
            ctx.tenant(gid.village),
            ctx.actor,
            gid.village,
            int(gid.key),
            {**changes, **_links(gid.village, input)},
            scope=scope,
        ),
    )


def _step(info, input: dict, action: Callable) -> dict:
    ctx: RequestContext = info.context
    gid, scope = _device_id(ctx, input["id"])
    data = {"reason": input.get("reason")}
    return _payload(
        gid.village,
        act_on(ctx, gid, action, data, scope=scope),
    )


@mutation.field("disableDevice")
def resolve_disable_device(_obj, info, input: dict) -> dict:
    return _step(info, input, actions.do_disable_device)


@mutation.field("enableDevice")
def resolve_enable_device(_obj, info, input: dict) -> dict:
    return _step(info, input, actions.do_enable_device)


bindables = [query, mutation, device_type, connection_object("DeviceConnection")]

"""Structure mutations: grids, buildings and households, created, changed and archived.

Who may: the village's admins and platform admins, who keep the village's map. Grid
workers read the map but get FORBIDDEN here (their writes stay in their grids, and
the map is the whole village's); coordinators and integrators get FORBIDDEN; another
village's admin, NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Callable

from ariadne import MutationType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import GlobalId, input_key, target_id
from villagelink.graphql.core.payloads import act_on, node_payload
from villagelink.tenants.structure import actions

mutation = MutationType()

GRID, BUILDING, HOUSEHOLD = "Grid", "Building", "Household"
# The payload field each type comes back in.
FIELDS = {GRID: "grid", BUILDING: "building", HOUSEHOLD: "household"}


MANAGED = "only the village's admins may change its grids, buildings and households"


def _require_manager(ctx: RequestContext, village: str) -> None:
    ctx.require_manage(village, MANAGED)


def _payload(type_name: str, village: str, run: Callable[[], dict]) -> dict:
    return node_payload(FIELDS[type_name], type_name, village, run)


def _target(ctx: RequestContext, raw: str, type_name: str) -> GlobalId:
    return target_id(raw, type_name, lambda village: _require_manager(ctx, village))


def _given(input: dict, *names: str) -> dict:
    """The fields the input sets (a null is no change: none of these may be emptied)."""
    return {k: input[k] for k in names if input.get(k) is not None}


def _key(village: str, input: dict, name: str, type_name: str) -> int | None:
    return input_key(village, input.get(name), type_name, name)


# -- grids ---------------------------------------------------------------------


@mutation.field("createGrid")
def resolve_create_grid(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    _require_manager(ctx, village)
    return _payload(
        GRID,
        village,
        lambda: actions.do_create_grid(
            ctx.tenant(village),
            ctx.actor,
            village,
            _given(input, "level", "code", "name"),
            parent_id=_key(village, input, "parent", GRID),
        ),
    )


@mutation.field("updateGrid")
def resolve_update_grid(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = _target(ctx, input["id"], GRID)
    return _payload(
        GRID,
        gid.village,
        lambda: actions.do_update_grid(
            ctx.tenant(gid.village),
            ctx.actor,
            gid.village,
            int(gid.key),
            _given(input, "code", "name"),
            parent_id=_key(gid.village, input, "parent", GRID),
        ),
    )


# -- buildings -----------------------------------------------------------------


@mutation.field("createBuilding")
def resolve_create_building(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    _require_manager(ctx, village)
    return _payload(
        BUILDING,
        village,
        lambda: actions.do_create_building(
            ctx.tenant(village),
            ctx.actor,
            village,
            _given(input, "name", "units", "floors"),
            grid_id=_key(village, input, "grid", GRID),
        ),
    )


@mutation.field("updateBuilding")
def resolve_update_building(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = _target(ctx, input["id"], BUILDING)
    return _payload(
        BUILDING,
        gid.village,
        lambda: actions.do_update_building(
            ctx.tenant(gid.village),
            ctx.actor,
            gid.village,
            int(gid.key),
            _given(input, "name", "units", "floors"),
            grid_id=_key(gid.village, input, "grid", GRID),
            village_name=ctx.village(gid.village)["name"],
        ),
    )


# -- households ----------------------------------------------------------------


@mutation.field("createHousehold")
def resolve_create_household(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    _require_manager(ctx, village)
    return _payload(
        HOUSEHOLD,
        village,
        lambda: actions.do_create_household(
            ctx.tenant(village),
            ctx.actor,
            village,
            _given(input, "unit_no", "room_no", "address"),
            building_id=_key(village, input, "building", BUILDING),
            grid_id=_key(village, input, "grid", GRID),
            village_name=ctx.village(village)["name"],
        ),
    )


@mutation.field("updateHousehold")
def resolve_update_household(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = _target(ctx, input["id"], HOUSEHOLD)
    return _payload(
        HOUSEHOLD,
        gid.village,
        lambda: actions.do_update_household(
            ctx.tenant(gid.village),
            ctx.actor,
            gid.village,
            int(gid.key),
            _given(input, "unit_no", "room_no", "address"),
            village_name=ctx.village(gid.village)["name"],
        ),
    )


# -- archiving -----------------------------------------------------------------


def _archive(type_name: str, archive: Callable) -> Callable:
    def resolve(_obj, info, input: dict) -> dict:
        ctx: RequestContext = info.context
        gid = _target(ctx, input["id"], type_name)
        return _payload(
            type_name,
            gid.village,
            act_on(ctx, gid, archive),
        )

    return resolve


mutation.set_field("archiveGrid", _archive(GRID, actions.do_archive_grid))
mutation.set_field("archiveBuilding", _archive(BUILDING, actions.do_archive_building))
mutation.set_field("archiveHousehold", _archive(HOUSEHOLD, actions.do_archive_household))

bindables = [mutation]

"""Grid staff mutations: the village's managers (its admins, platform admins) only.

Grid workers and every other role get FORBIDDEN; a staff ID outside the caller's reach is
NOT_FOUND. The account directory is the one `account_directory` picks from the settings,
Keycloak or the development issuer's.
"""

from __future__ import annotations

from ariadne import MutationType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.directory import with_directory
from villagelink.graphql.core.ids import input_key, int_key, target_id
from villagelink.graphql.core.nodes import as_node
from villagelink.graphql.core.payloads import payload
from villagelink.platform.identity.accounts import AccountDirectory
from villagelink.tenants.staff import actions

mutation = MutationType()

STAFF = "GridStaff"
STAFF_FIELDS = ("name", "phone", "tier")


def _require_manager(ctx: RequestContext, village: str) -> None:
    ctx.require_manage(village, "only the village's admins manage its grid staff")


def _target(ctx: RequestContext, raw: str) -> tuple[str, int]:
    gid = target_id(raw, STAFF, lambda village: _require_manager(ctx, village))
    return gid.village, int_key(gid)


def _grid_keys(village: str, raw: list[str] | None) -> list[int]:
    return [input_key(village, g, "Grid", "grids") or 0 for g in raw or ()]


def _staff(village: str, row: dict) -> dict:
    return {"grid_staff": as_node(STAFF, village, row)}


@mutation.field("addGridStaff")
def resolve_add(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    _require_manager(ctx, village)
    data = {k: input[k] for k in STAFF_FIELDS if k in input}

    def run() -> dict:
        grids = _grid_keys(village, input.get("grids"))
        return _staff(
            village, actions.do_add_staff(ctx.tenant(village), ctx.actor, village, data, grids)
        )

    return payload(run, "grid_staff")


@mutation.field("updateGridStaff")
def resolve_update(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village, staff_id = _target(ctx, input["id"])
    data = {k: input[k] for k in STAFF_FIELDS if k in input}
    return payload(
        lambda: _staff(
            village,
            actions.do_update_staff(ctx.tenant(village), ctx.actor, village, staff_id, data),
        ),
        "grid_staff",
    )


@mutation.field("assignGridStaff")
def resolve_assign(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village, staff_id = _target(ctx, input["id"])

    def run() -> dict:
        grids = _grid_keys(village, input["grids"])
        row = actions.do_assign_staff(ctx.tenant(village), ctx.actor, village, staff_id, grids)
        return _staff(village, row)

    return payload(run, "grid_staff")


@mutation.field("inviteGridStaff")
def resolve_invite(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village, staff_id = _target(ctx, input["id"])
    data = {"email": input.get("email")}

    def act(directory: AccountDirectory) -> dict:
        row, login = actions.do_invite_staff(
            ctx.tenant(village), ctx.actor, village, staff_id, data, directory
        )
        return {**_staff(village, row), "login": login}

    return payload(lambda: with_directory(ctx, act), "grid_staff", "login")


@mutation.field("disableGridStaff")
def resolve_disable(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village, staff_id = _target(ctx, input["id"])
    data = {"reason": input.get("reason")}
    return payload(
        lambda: with_directory(
            ctx,
            lambda directory: _staff(
                village,
                actions.do_disable_staff(
                    ctx.tenant(village), ctx.actor, village, staff_id, data, directory
                ),
            ),
        ),
        "grid_staff",
    )


@mutation.field("enableGridStaff")
def resolve_enable(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village, staff_id = _target(ctx, input["id"])
    return payload(
        lambda: with_directory(
            ctx,
            lambda directory: _staff(
                village,
                actions.do_enable_staff(
                    ctx.tenant(village), ctx.actor, village, staff_id, directory
                ),
            ),
        ),
        "grid_staff",
    )


bindables = [mutation]

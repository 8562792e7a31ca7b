"""Service order mutations: resolve IDs and reach, call the action, shape the payload.

Who may do what: the catalogue, the slots and the centre's steps (dispatch, and
accept / decline / complete, which the centre records for the volunteer team) need
a whole-village writer (village admin, platform admin). Ordering, cancelling and
rating may also be done by a grid worker, for residents of their grids. Read-only
roles, integrators included, get FORBIDDEN.
"""

from __future__ import annotations

from collections.abc import Callable

from ariadne import MutationType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import input_key, target_id
from villagelink.graphql.core.payloads import node_payload
from villagelink.graphql.service_orders.types import VOLUNTEER_TEAM
from villagelink.tenants.service_orders import actions

mutation = MutationType()


# The village's service centre is whoever manages the whole village.
CENTRE_ONLY = "only the village's service centre (village admin) may do this"


def _target(ctx: RequestContext, raw: str, type_name: str, *, centre: bool) -> tuple[str, int]:
    """The village and key of the object a mutation changes, once the caller may write there."""
    check = (
        (lambda village: ctx.require_manage(village, CENTRE_ONLY)) if centre else ctx.require_write
    )
    gid = target_id(raw, type_name, check)
    return gid.village, int(gid.key)


def _fields(input: dict, names: tuple[str, ...]) -> dict:
    return {k: input[k] for k in names if k in input}


# -- catalogue and slots --------------------------------------------------------------


@mutation.field("createServiceItem")
def resolve_create_service_item(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_manage(village, CENTRE_ONLY)
    data = _fields(input, ("name", "category", "description"))
    return node_payload(
        "service_item",
        "ServiceItem",
        village,
        lambda: actions.do_create_service_item(ctx.tenant(village), ctx.actor, village, data),
    )


@mutation.field("updateServiceItem")
def resolve_update_service_item(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village, item_id = _target(ctx, input["id"], "ServiceItem", centre=True)
    changes = _fields(input, ("name", "category", "description", "active"))
    return node_payload(
        "service_item",
        "ServiceItem",
        village,
        lambda: actions.do_update_service_item(
            ctx.tenant(village), ctx.actor, village, item_id, changes
        ),
    )


@mutation.field("createServiceSlot")
def resolve_create_service_slot(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village, item_id = _target(ctx, input["item"], "ServiceItem", centre=True)
    data = _fields(input, ("starts_at", "ends_at", "capacity"))
    return node_payload(
        "service_slot",
        "ServiceSlot",
        village,
        lambda: actions.do_create_service_slot(
            ctx.tenant(village), ctx.actor, village, item_id, data
        ),
    )


# -- orders ------------------------------------------------------------------------------


def _order_payload(village: str, run: Callable[[], dict]) -> dict:
    return node_payload("service_order", "ServiceOrder", village, run)


@mutation.field("orderService")
def resolve_order_service(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village, slot_id = _target(ctx, input["slot"], "ServiceSlot", centre=False)

    def run() -> dict:
        resident_id = input_key(
            village, input["resident"], "Resident", "resident", "居民不存在或不在您的管辖范围内"
        )
        return actions.do_order_service(
            ctx.tenant(village),
            ctx.actor,
            village,
            slot_id,
            resident_id,
            _fields(input, ("note",)),
            allowed_grids=ctx.allowed_grids(village),
        )

    return _order_payload(village, run)


@mutation.field("dispatchServiceOrder")
def resolve_dispatch_service_order(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village, order_id = _target(ctx, input["order"], "ServiceOrder", centre=True)

    def run() -> dict:
        team_id = input_key(village, input["team"], VOLUNTEER_TEAM, "team", "志愿服务队不存在")
        return actions.do_dispatch_service_order(
            ctx.tenant(village), ctx.actor, village, order_id, team_id, _fields(input, ("note",))
        )

    return _order_payload(village, run)


def _centre_step(action: Callable) -> Callable:
    """accept / decline / complete: the centre records the team's answer."""

    def resolve(_obj, info, input: dict) -> dict:
        ctx: RequestContext = info.context
        village, order_id = _target(ctx, input["order"], "ServiceOrder", centre=True)
        return _order_payload(
            village,
            lambda: action(
                ctx.tenant(village), ctx.actor, village, order_id, _fields(input, ("note",))
            ),
        )

    return resolve


def _resident_step(action: Callable, names: tuple[str, ...]) -> Callable:
    """cancel / rate: for the resident, by staff who reach them (grid workers: their grids)."""

    def resolve(_obj, info, input: dict) -> dict:
        ctx: RequestContext = info.context
        village, order_id = _target(ctx, input["order"], "ServiceOrder", centre=False)
        return _order_payload(
            village,
            lambda: action(
                ctx.tenant(village),
                ctx.actor,
                village,
                order_id,
                _fields(input, names),
                allowed_grids=ctx.allowed_grids(village),
            ),
        )

    return resolve


mutation.set_field("acceptServiceOrder", _centre_step(actions.do_accept_service_order))
mutation.set_field("declineServiceOrder", _centre_step(actions.do_decline_service_order))
mutation.set_field("completeServiceOrder", _centre_step(actions.do_complete_service_order))
mutation.set_field("cancelServiceOrder", _resident_step(actions.do_cancel_service_order, ("note",)))
mutation.set_field(
    "rateServiceOrder", _resident_step(actions.do_rate_service_order, ("rating", "comment"))
)

bindables = [mutation]

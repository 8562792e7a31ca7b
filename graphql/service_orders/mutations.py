"""Service order mutations: resolve IDs and reach, call the action, shape the payload.

Who may do what: the catalogue, the slots and dispatching need a whole-village
writer (village admin, platform admin). Accept / decline / complete are the
volunteer team's: its leader's own account (a bound resident who leads the team)
for the orders dispatched to their team, or the centre recording the team's answer.
Ordering, cancelling and rating may also be done by a grid worker, for residents of
their grids, and by a resident (role `resident`, bound) for their own household.
Read-only roles, integrators included, get FORBIDDEN.
"""

from __future__ import annotations

from collections.abc import Callable

from ariadne import MutationType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden
from villagelink.graphql.core.ids import input_key, target_id
from villagelink.graphql.core.payloads import node_payload
from villagelink.graphql.residents.acting import (
    require_household_member,
    require_household_record,
    staff_or_resident_target,
)
from villagelink.graphql.service_orders.types import VOLUNTEER_TEAM
from villagelink.tenants.activities.queries import teams_led_by
from villagelink.tenants.service_orders import actions, queries

mutation = MutationType()


# The village's service centre is whoever manages the whole village.
CENTRE_ONLY = "only the village's service centre (village admin) may do this"


def _target(ctx: RequestContext, raw: str, type_name: str) -> tuple[str, int]:
    """The village and key of the object a centre's mutation changes, once the caller
    is the village's centre."""
    gid = target_id(raw, type_name, lambda village: ctx.require_manage(village, CENTRE_ONLY))
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
    village, item_id = _target(ctx, input["id"], "ServiceItem")
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
    village, item_id = _target(ctx, input["item"], "ServiceItem")
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
    """基层点单: staff order for a resident they reach; a resident for their household."""
    ctx: RequestContext = info.context
    gid, resident = staff_or_resident_target(ctx, input["slot"], "ServiceSlot")
    village, slot_id = gid.village, int(gid.key)

    def run() -> dict:
        resident_id = input_key(
            village, input["resident"], "Resident", "resident", "居民不存在或不在您的管辖范围内"
        )
        require_household_member(ctx, village, resident, resident_id, "resident")
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
    village, order_id = _target(ctx, input["order"], "ServiceOrder")

    def run() -> dict:
        team_id = input_key(village, input["team"], VOLUNTEER_TEAM, "team", "志愿服务队不存在")
        return actions.do_dispatch_service_order(
            ctx.tenant(village), ctx.actor, village, order_id, team_id, _fields(input, ("note",))
        )

    return _order_payload(village, run)


def _team_step(action: Callable) -> Callable:
    """accept / decline / complete: the team's leader (a resident whose account is bound
    to the team's leader) answers for their team, so the timeline names who acted; or
    the centre records the team's answer given by phone."""

    def resolve(_obj, info, input: dict) -> dict:
        ctx: RequestContext = info.context
        gid, resident = staff_or_resident_target(ctx, input["order"], "ServiceOrder")
        village, order_id = gid.village, int(gid.key)
        teams = None
        if resident is None:
            ctx.require_manage(village, CENTRE_ONLY)
        else:
            teams = teams_led_by(ctx.tenant(village), resident["id"])
            if not teams:
                raise Forbidden("只有志愿服务队队长可以接单、拒单和完成订单")
        return _order_payload(
            village,
            lambda: action(
                ctx.tenant(village),
                ctx.actor,
                village,
                order_id,
                _fields(input, ("note",)),
                teams=teams,
            ),
        )

    return resolve


def _resident_step(action: Callable, names: tuple[str, ...]) -> Callable:
    """cancel / rate: for the resident, by staff who reach them (grid workers: their
    grids), or by the resident themselves for their household's orders (群众评单)."""

    def resolve(_obj, info, input: dict) -> dict:
        ctx: RequestContext = info.context
        gid, resident = staff_or_resident_target(ctx, input["order"], "ServiceOrder")
        village, order_id = gid.village, int(gid.key)

        def run() -> dict:
            if resident is not None:
                found = queries.orders_by_ids(ctx.tenant(village), [order_id], allowed_grids=None)
                require_household_record(ctx, village, resident, found.get(order_id), "order")
            return action(
                ctx.tenant(village),
                ctx.actor,
                village,
                order_id,
                _fields(input, names),
                allowed_grids=ctx.allowed_grids(village),
            )

        return _order_payload(village, run)

    return resolve


mutation.set_field("acceptServiceOrder", _team_step(actions.do_accept_service_order))
mutation.set_field("declineServiceOrder", _team_step(actions.do_decline_service_order))
mutation.set_field("completeServiceOrder", _team_step(actions.do_complete_service_order))
mutation.set_field("cancelServiceOrder", _resident_step(actions.do_cancel_service_order, ("note",)))
mutation.set_field(
    "rateServiceOrder", _resident_step(actions.do_rate_service_order, ("rating", "comment"))
)

bindables = [mutation]

"""Shared resource and booking mutations: resolve IDs and reach, call the action,
shape the payload.

Resources and decisions on bookings belong to the village as a whole: only
whole-village writers (village and platform admins) manage them. Anyone who may
write in a village books for it, its own resources or, through `ctx.neighbour`
under an agreement covering `shared_resource`, a neighbour's.
"""

from __future__ import annotations

from collections.abc import Callable

from ariadne import MutationType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import GlobalId, decode_id, int_key, target_id
from villagelink.graphql.core.payloads import act_on, node_payload
from villagelink.platform.linkage.catalogue import SHARED_RESOURCE
from villagelink.tenants.resources import actions
from villagelink.tenants.resources.actions import BOOKING, RESOURCE

mutation = MutationType()

RESOURCE_FIELDS = (
    "name",
    "description",
    "location_text",
    "latitude",
    "longitude",
    "contact_name",
    "contact_phone",
    "status",
    "bookable",
    "shared",
)


# Why a grid worker is refused what only a whole-village writer does.
MANAGED = "shared resources and their bookings are managed by the village"


def _managed(ctx: RequestContext, raw: str, type_name: str) -> GlobalId:
    return target_id(raw, type_name, lambda village: ctx.require_manage(village, MANAGED))


# -- resources ------------------------------------------------------------------


@mutation.field("createSharedResource")
def resolve_create_resource(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_manage(village, MANAGED)
    data = {k: input[k] for k in ("kind", *RESOURCE_FIELDS) if input.get(k) is not None}
    return node_payload(
        "resource",
        RESOURCE,
        village,
        lambda: actions.do_create_resource(ctx.tenant(village), ctx.actor, village, data),
    )


@mutation.field("updateSharedResource")
def resolve_update_resource(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = _managed(ctx, input["id"], RESOURCE)
    changes = {k: input[k] for k in RESOURCE_FIELDS if k in input}
    return node_payload(
        "resource",
        RESOURCE,
        gid.village,
        act_on(ctx, gid, actions.do_update_resource, changes),
    )


@mutation.field("retireSharedResource")
def resolve_retire_resource(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = _managed(ctx, input["id"], RESOURCE)
    data = {"reason": input.get("reason")}
    return node_payload(
        "resource",
        RESOURCE,
        gid.village,
        act_on(ctx, gid, actions.do_retire_resource, data),
    )


# -- bookings -------------------------------------------------------------------


@mutation.field("bookSharedResource")
def resolve_book_resource(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    acting = input["village"]
    # A neighbour's ID: its reach is the agreement's business (`ctx.neighbour`, below).
    gid = decode_id(input["resource"], RESOURCE)
    resource_id, owner = int_key(gid), gid.village
    if owner == acting:
        ctx.require_write(acting)
        conn, agreement_ids = ctx.tenant(owner), []
    else:
        conn, agreement_ids = ctx.neighbour(owner, acting, SHARED_RESOURCE)
    data = {
        "from": input["from"],
        "to": input["to"],
        "purpose": input["purpose"],
        "contact_name": input["contact_name"],
        "contact_phone": input.get("contact_phone"),
    }
    return node_payload(
        "booking",
        BOOKING,
        owner,
        lambda: actions.do_book_resource(
            conn, ctx.actor, owner, resource_id, acting, data, agreement_ids=agreement_ids
        ),
    )


def _decide(info, input: dict, action: Callable, *arguments) -> dict:
    ctx: RequestContext = info.context
    gid = _managed(ctx, input["booking"], BOOKING)
    return node_payload(
        "booking",
        BOOKING,
        gid.village,
        act_on(ctx, gid, action, *arguments),
    )


@mutation.field("approveResourceBooking")
def resolve_approve_booking(_obj, info, input: dict) -> dict:
    return _decide(info, input, actions.do_approve_booking)


@mutation.field("rejectResourceBooking")
def resolve_reject_booking(_obj, info, input: dict) -> dict:
    return _decide(info, input, actions.do_reject_booking, {"reason": input["reason"]})


@mutation.field("cancelResourceBooking")
def resolve_cancel_booking(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = decode_id(input["booking"], BOOKING)
    booking_id, owner = int_key(gid), gid.village
    acting = input.get("village") or owner
    if acting == owner:
        ctx.require_write(owner)
        conn = ctx.tenant(owner)
    else:
        conn, _agreements = ctx.neighbour(owner, acting, SHARED_RESOURCE)
    data = {"reason": input.get("reason")}
    return node_payload(
        "booking",
        BOOKING,
        owner,
        lambda: actions.do_cancel_booking(conn, ctx.actor, owner, booking_id, acting, data),
    )


bindables = [mutation]

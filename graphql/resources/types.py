"""Shared resources and bookings: the lists under Village, loaders and nodes.

A booking row carries its resource's columns (tenants.resources.queries), so the
`resource` of a booking costs nothing more, in the owner's lists and in the
requesting neighbour's `outgoingResourceBookings` alike, where the resource's
village is not one the caller could load it from.
"""

from __future__ import annotations

from ariadne import ObjectType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import filter_key
from villagelink.graphql.core.loaders import BatchLoader
from villagelink.graphql.core.nodes import (
    as_node,
    connection_object,
    fetch_by_int_key,
    node_object,
    register_node_type,
)
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.platform.linkage.catalogue import SHARED_RESOURCE
from villagelink.tenants.resources import queries
from villagelink.tenants.resources.actions import BOOKING, RESOURCE

village_type = ObjectType("Village")
resource_type = node_object(RESOURCE)
booking_type = node_object(BOOKING)


def resource_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    return ctx.loader(
        slug,
        RESOURCE,
        lambda conn, ids: {
            k: as_node(RESOURCE, slug, v) for k, v in queries.resources_by_ids(conn, ids).items()
        },
    )


def booking_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    return ctx.loader(
        slug,
        BOOKING,
        lambda conn, ids: {
            k: as_node(BOOKING, slug, v) for k, v in queries.bookings_by_ids(conn, ids).items()
        },
    )


# -- Village --------------------------------------------------------------------


@village_type.field("sharedResources")
def resolve_shared_resources(village: dict, info, kind=None, include_retired=False) -> list:
    ctx: RequestContext = info.context
    slug = village["slug"]
    rows = queries.resources(ctx.tenant(slug), kind=kind, include_retired=include_retired)
    return [as_node(RESOURCE, slug, row) for row in rows]


@village_type.field("resourceBookings")
def resolve_resource_bookings(
    village: dict, info, state=None, resource=None, first=None, after=None
):
    ctx: RequestContext = info.context
    slug = village["slug"]
    page = page_args(first, after, ctx.settings.max_page_size)
    resource_id = filter_key(resource, RESOURCE, slug)
    conn = ctx.tenant(slug)
    return paginate(
        lambda limit: queries.booking_page(
            conn, state=state, resource_id=resource_id, after_id=page.after_id, limit=limit
        ),
        page,
        count=lambda: queries.booking_count(conn, state=state, resource_id=resource_id),
        node=lambda row: as_node(BOOKING, slug, row),
    )


@village_type.field("outgoingResourceBookings")
def resolve_outgoing_bookings(village: dict, info, state=None) -> list[dict]:
    slug = village["slug"]
    found = [
        as_node(BOOKING, owner, row)
        for owner, conn in info.context.neighbours(slug, SHARED_RESOURCE)
        for row in queries.booking_page(
            conn, state=state, resource_id=None, requester=slug, after_id=None, limit=None
        )
    ]
    return sorted(found, key=lambda b: b["created_at"], reverse=True)


# -- ResourceBooking ------------------------------------------------------------


@booking_type.field("resource")
def resolve_booking_resource(booking: dict, _info) -> dict:
    return as_node(RESOURCE, booking["village"], queries.resource_of(booking))


booking_type.set_field("from", lambda booking, *_: booking["starts_at"])
booking_type.set_field("to", lambda booking, *_: booking["ends_at"])

register_node_type(RESOURCE, fetch_by_int_key(resource_loader))
register_node_type(BOOKING, fetch_by_int_key(booking_loader))

bindables = [
    village_type,
    resource_type,
    booking_type,
    connection_object("ResourceBookingConnection"),
]

"""Region and neighbour-link mutations: platform admins only, each in a platform
transaction of its own, committed before the payload is built."""

from __future__ import annotations

from collections.abc import Callable

from ariadne import MutationType
from sqlalchemy import Connection

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden
from villagelink.graphql.core.payloads import payload
from villagelink.graphql.villages.types import village_node
from villagelink.platform import regions

mutation = MutationType()


def _as_platform_admin(info, fields: tuple[str, ...], act: Callable[[Connection], dict]) -> dict:
    ctx: RequestContext = info.context
    if not ctx.access.is_platform_admin:
        raise Forbidden("only a platform admin keeps regions and neighbour links")

    def run() -> dict:
        with ctx.runtime.db.platform() as conn:
            return act(conn)

    return payload(run, *fields)


@mutation.field("createRegion")
def resolve_create_region(_obj, info, input: dict) -> dict:
    def act(conn: Connection) -> dict:
        region = regions.do_create_region(conn, info.context.actor, input["id"], input["name"])
        return {"region": region}

    return _as_platform_admin(info, ("region",), act)


def _link_step(step: Callable) -> Callable:
    def resolve(_obj, info, input: dict) -> dict:
        ctx: RequestContext = info.context

        def act(conn: Connection) -> dict:
            step(conn, ctx.actor, input["village"], input["neighbour"])
            return {}

        result = _as_platform_admin(info, ("village",), act)
        if not result["user_errors"]:
            result["village"] = village_node(ctx.village(input["village"]))
        return result

    return resolve


mutation.set_field("linkNeighbours", _link_step(regions.do_link_neighbours))
mutation.set_field("unlinkNeighbours", _link_step(regions.do_unlink_neighbours))

bindables = [mutation]

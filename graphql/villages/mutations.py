"""Village mutations: platform admins create, disable and enable villages, through the
same provisioning as `villagelink tenants create|disable|enable` (platform/villages.py);
a village's admins keep its name, address and contact phone."""

from __future__ import annotations

from collections.abc import Callable

from ariadne import MutationType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden
from villagelink.graphql.core.payloads import object_payload
from villagelink.graphql.villages.types import village_node
from villagelink.platform import villages
from villagelink.storage.factory import object_store

mutation = MutationType()


def _as_platform_admin(info, act: Callable[[RequestContext], dict]) -> dict:
    ctx: RequestContext = info.context
    if not ctx.access.is_platform_admin:
        raise Forbidden("only a platform admin creates, disables and enables villages")

    def run() -> dict:
        row = act(ctx)
        # The caller's reach changed with the village: its fields are read afresh.
        ctx.reload_platform()
        return village_node(row)

    return object_payload("village", run)


@mutation.field("createVillage")
def resolve_create_village(_obj, info, input: dict) -> dict:
    return _as_platform_admin(
        info,
        lambda ctx: villages.provision_village(
            ctx.settings, ctx.runtime.db, object_store(ctx.settings), ctx.actor, dict(input)
        ),
    )


@mutation.field("disableVillage")
def resolve_disable_village(_obj, info, input: dict) -> dict:
    return _as_platform_admin(
        info,
        lambda ctx: villages.disable_village(
            ctx.settings, ctx.runtime.db, ctx.actor, input["slug"]
        )[0],
    )


@mutation.field("enableVillage")
def resolve_enable_village(_obj, info, input: dict) -> dict:
    return _as_platform_admin(
        info,
        lambda ctx: villages.enable_village(ctx.settings, ctx.runtime.db, ctx.actor, input["slug"])[
            0
        ],
    )


@mutation.field("updateVillage")
def resolve_update_village(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    slug = input["slug"]
    ctx.require_manage(slug, "only the village's admin may change this")
    data = {k: input[k] for k in ("name", "address", "contact_phone") if k in input}

    def run() -> dict:
        row = villages.update_village(ctx.settings, ctx.runtime.db, ctx.actor, slug, data)
        # The village's name is part of the caller's reach, read at the request's start.
        ctx.reload_platform()
        return village_node(row)

    return object_payload("village", run)


bindables = [mutation]

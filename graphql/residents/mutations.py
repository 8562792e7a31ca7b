"""Resident mutations: resolve IDs and reach, call the action, shape the payload."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ariadne import MutationType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import GlobalId, input_key, target_id
from villagelink.graphql.core.payloads import node_payload
from villagelink.tenants.residents import actions

mutation = MutationType()


_payload = partial(node_payload, "resident", "Resident")


def _resident_id(ctx: RequestContext, raw: str) -> GlobalId:
    """The resident's ID, checked for reach: a write needs the right to write there."""
    return target_id(raw, "Resident", ctx.require_write)


@mutation.field("createResident")
def resolve_create_resident(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_write(village)
    data = {
        k: input[k]
        for k in ("name", "id_number", "gender", "birth_date", "phone", "relation_to_head")
        if input.get(k) is not None
    }

    def run() -> dict:
        household = input_key(
            village,
            input.get("household"),
            "Household",
            "household",
            "户不存在或不在您的管辖范围内",
        )
        return actions.do_create_resident(
            ctx.tenant(village),
            ctx.actor,
            village,
            data,
            household_id=household,
            allowed_grids=ctx.allowed_grids(village),
        )

    return _payload(village, run)


def _change_resident(info, raw_id: str, action: Callable, arguments: Callable[[str], tuple]):
    """Run `action` on the resident `raw_id` names, once the caller may write there.
    `arguments(village)` runs inside the payload, so an ID it resolves badly is a userError."""
    ctx: RequestContext = info.context
    gid = _resident_id(ctx, raw_id)
    return _payload(
        gid.village,
        lambda: action(
            ctx.tenant(gid.village),
            ctx.actor,
            gid.village,
            int(gid.key),
            *arguments(gid.village),
            allowed_grids=ctx.allowed_grids(gid.village),
        ),
    )


@mutation.field("updateResident")
def resolve_update_resident(_obj, info, input: dict) -> dict:
    changes = {k: input[k] for k in ("name", "phone", "relation_to_head") if k in input}
    return _change_resident(info, input["id"], actions.do_update_resident, lambda _v: (changes,))


@mutation.field("moveResidentToHousehold")
def resolve_move_resident(_obj, info, input: dict) -> dict:
    return _change_resident(
        info,
        input["resident"],
        actions.do_move_resident_to_household,
        lambda village: (
            input_key(
                village,
                input["household"],
                "Household",
                "household",
                "户不存在或不在您的管辖范围内",
            ),
            input.get("relation_to_head"),
        ),
    )


@mutation.field("tagResident")
def resolve_tag_resident(_obj, info, input: dict) -> dict:
    data = {k: input[k] for k in ("tag", "level", "note") if input.get(k) is not None}
    return _change_resident(info, input["resident"], actions.do_tag_resident, lambda _v: (data,))


@mutation.field("untagResident")
def resolve_untag_resident(_obj, info, input: dict) -> dict:
    return _change_resident(
        info, input["resident"], actions.do_untag_resident, lambda _v: (input["tag"],)
    )


bindables = [mutation]

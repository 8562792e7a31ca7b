"""Mediation mutations: the village admin's only (NOT_FOUND for anyone else, as for
reads), IDs resolved within the case's village, then the action."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ariadne import MutationType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import decode_id, input_key, int_key
from villagelink.graphql.core.payloads import node_payload
from villagelink.graphql.mediation.types import require_mediation
from villagelink.tenants.mediation import actions
from villagelink.tenants.mediation.actions import MEDIATION_CASE

mutation = MutationType()


_payload = partial(node_payload, "mediation_case", MEDIATION_CASE)


def _mediator(village: str, raw: dict | None) -> dict | None:
    if raw is None:
        return None
    mediator = {k: v for k, v in raw.items() if v is not None}
    if "staff" in mediator:
        mediator["staff"] = input_key(
            village, mediator["staff"], "GridStaff", "mediator.staff", "网格人员不存在"
        )
    return mediator


def _party(village: str, raw: dict, index: int) -> dict:
    party = {k: v for k, v in raw.items() if v is not None}
    if "resident" in party:
        party["resident"] = input_key(
            village, party["resident"], "Resident", f"parties.{index}.resident", "居民不存在"
        )
    return party


def _picked(input: dict, *names: str) -> dict:
    return {k: input[k] for k in names if k in input}


@mutation.field("createMediationCase")
def resolve_create_mediation_case(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    require_mediation(ctx, village)

    def run() -> dict:
        data = {
            **_picked(input, "category", "summary"),
            "parties": [_party(village, p, i) for i, p in enumerate(input["parties"])],
            "mediator": _mediator(village, input.get("mediator")),
        }
        return actions.do_create_mediation_case(
            ctx.tenant(village), ctx.actor, village, data, today=ctx.today
        )

    return _payload(village, run)


def _change_case(info, input: dict, action: Callable, data: Callable[[str], dict]) -> dict:
    """Run `action` on the case `input.id` names, once the caller may see mediation
    there. `data(village)` runs inside the payload: an ID it resolves badly is a userError."""
    ctx: RequestContext = info.context
    gid = decode_id(input["id"], MEDIATION_CASE)
    require_mediation(ctx, gid.village)
    case_id = int_key(gid)
    return _payload(
        gid.village,
        lambda: action(ctx.tenant(gid.village), ctx.actor, gid.village, case_id, data(gid.village)),
    )


@mutation.field("updateMediationCase")
def resolve_update_mediation_case(_obj, info, input: dict) -> dict:
    def data(village: str) -> dict:
        changes = _picked(input, "category", "summary")
        if "mediator" in input:
            changes["mediator"] = _mediator(village, input["mediator"])
        return changes

    return _change_case(info, input, actions.do_update_mediation_case, data)


@mutation.field("startMediation")
def resolve_start_mediation(_obj, info, input: dict) -> dict:
    return _change_case(
        info,
        input,
        actions.do_start_mediation,
        lambda village: {"mediator": _mediator(village, input.get("mediator"))},
    )


@mutation.field("addMediationSession")
def resolve_add_mediation_session(_obj, info, input: dict) -> dict:
    return _change_case(
        info,
        input,
        actions.do_add_mediation_session,
        lambda _village: _picked(input, "held_on", "place", "attendees", "notes"),
    )


@mutation.field("concludeMediation")
def resolve_conclude_mediation(_obj, info, input: dict) -> dict:
    return _change_case(
        info,
        input,
        actions.do_conclude_mediation,
        lambda _village: _picked(input, "outcome", "agreement_text", "referred_to", "note"),
    )


@mutation.field("withdrawMediationCase")
def resolve_withdraw_mediation_case(_obj, info, input: dict) -> dict:
    return _change_case(
        info, input, actions.do_withdraw_mediation_case, lambda _village: _picked(input, "reason")
    )


bindables = [mutation]

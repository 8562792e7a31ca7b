"""A mutation's payload: what it changed, or why its action refused (`userErrors`).

Every mutation returns its objects next to `userErrors { field message code }`. An
action that refuses its input raises ActionFailed before it writes anything; the
payload then carries each object as null and the action's reasons. Everything a
mutation does only on success (shaping nodes, enqueueing after commit) belongs in
`run`, so a refusal skips it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ariadne import ObjectType

from villagelink.graphql.core.ids import GlobalId
from villagelink.graphql.core.messages import localized, request_language
from villagelink.graphql.core.nodes import as_node
from villagelink.tenants.user_errors import ActionFailed

if TYPE_CHECKING:
    from villagelink.graphql.core.context import RequestContext


def payload(run: Callable[[], dict], *fields: str) -> dict:
    """`run()`'s fields with no userErrors, or each of `fields` null with the
    action's userErrors when it refused."""
    try:
        found = run()
    except ActionFailed as failed:
        return {**dict.fromkeys(fields, None), "user_errors": failed.errors}
    return {**found, "user_errors": []}


def object_payload(field: str, run: Callable[[], Any]) -> dict:
    """`payload` of one object: `{field: run()}`, or `field` null when refused."""
    return payload(lambda: {field: run()}, field)


def node_payload(field: str, type_name: str, village: str, run: Callable[[], dict]) -> dict:
    """`payload` of one object: the row `run()` returns, as a `type_name` node of `village`."""
    return object_payload(field, lambda: as_node(type_name, village, run()))


def act_on(
    ctx: RequestContext, gid: GlobalId, action: Callable[..., Any], *arguments: Any, **options: Any
) -> Callable[[], Any]:
    """`action` on the object `gid` names, called as every village action takes it (the
    village's transaction, the caller, the village, the row's key, then its own
    arguments), for a payload helper to run."""
    return lambda: action(
        ctx.tenant(gid.village), ctx.actor, gid.village, int(gid.key), *arguments, **options
    )


def _localized_message(obj: Any, _info) -> str | None:
    """A refusal's or a notice's message in the caller's language (the actions write
    it in Chinese); its code, where it has one, names the fallback."""
    if isinstance(obj, dict):
        message, code = obj.get("message"), obj.get("code")
    else:
        message, code = obj.message, getattr(obj, "code", None)
    return None if message is None else localized(message, code, request_language())[0]


def _with_localized_message(type_name: str) -> ObjectType:
    bindable = ObjectType(type_name)
    bindable.set_field("message", _localized_message)
    return bindable


# Every type whose `message` a person reads: a mutation's userErrors, an ingested
# batch's refused items, what a resident hears after asking for an account.
bindables = [
    _with_localized_message(type_name)
    for type_name in ("UserError", "IngestItemError", "RequestResidentAccountPayload")
]

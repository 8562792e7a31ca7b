"""A mutation's payload: what it changed, or why its action refused (`userErrors`).

Every mutation returns its objects next to `userErrors { field message code }`. An
action that refuses its input raises ActionFailed before it writes anything; the
payload then carries each object as null and the action's reasons. Everything a
mutation does only on success (shaping nodes, enqueueing after commit) belongs in
`run`, so a refusal skips it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ariadne import ObjectType

from villagelink.graphql.core.messages import localized, request_language
from villagelink.graphql.core.nodes import as_node
from villagelink.tenants.user_errors import ActionFailed, UserError


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


user_error = ObjectType("UserError")


@user_error.field("message")
def resolve_message(error: UserError, _info) -> str:
    """The refusal in the caller's language (the actions write it in Chinese)."""
    return localized(error.message, error.code, request_language())[0]


bindables = [user_error]

"""Text PostgreSQL refuses: NUL characters and lone surrogates.

A text or jsonb column takes neither (and UTF-8 cannot encode a lone surrogate), so a
string carrying one would fail deep inside an action as a database error. Every string
a resolver can read comes from the document's literals or from the variables; this
gateway checks both before anything executes, so no resolver is missed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import orjson

from graphql import GraphQLError, StringValueNode, ValidationRule
from villagelink.graphql.core.errors import BAD_USER_INPUT

_REFUSED = re.compile("[\x00\ud800-\udfff]")
REFUSED_MESSAGE = "含有无法保存的字符（NUL 或不成对的代理码位）"


# Where a string sits in the variables, as (where its parent sits, key or index) pairs
# from the root's name: spelt out only for a refusal. Spelling every path cost a batch of
# a thousand device readings a fifth of its time.
Where = str | tuple["Where", str | int]


def _strings(value: object, root: str) -> Iterator[tuple[Where, str]]:
    """(where, string) for every string in a JSON value, keys included; iterative, so
    however deep the value the walk cannot overflow the stack."""
    pending: list[tuple[Where, object]] = [(root, value)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            for key, inner in item.items():
                pending.append((where, key))
                pending.append(((where, key), inner))
        elif isinstance(item, list):
            pending.extend(((where, i), inner) for i, inner in enumerate(item))


def _may_refuse(variables: dict | None) -> bool:
    """Whether the variables may hold a string to refuse. orjson refuses a lone surrogate
    and writes a NUL as `\\u0000`, so variables it writes without that escape hold neither,
    and the walk (a tenth of a device batch's time) is left out."""
    try:
        return b"\\u0000" in orjson.dumps(variables)
    except orjson.JSONEncodeError:
        return True


def _spelt(where: Where) -> str:
    """`$input.readings[3].readingId` for a `Where`."""
    parts: list[str] = []
    while isinstance(where, tuple):
        where, step = where
        parts.append(f"[{step}]" if isinstance(step, int) else f".{step}")
    return where + "".join(reversed(parts))


def refused_variables(variables: dict | None) -> list[GraphQLError]:
    """BAD_USER_INPUT for every string in the variables that carries text PostgreSQL refuses.
    A plain walk of the JSON, not a validation rule: it needs no pass over the document."""
    if not _may_refuse(variables):
        return []
    return [
        _refusal(f"变量 {_spelt(where).replace('$.', '$', 1)} {REFUSED_MESSAGE}", None)
        for where, text in _strings(variables or {}, "$")
        if _REFUSED.search(text)
    ]


class StorableLiterals(ValidationRule):
    """Refuses, as BAD_USER_INPUT, any string literal of the document that carries text
    PostgreSQL refuses. It reads the document alone, so its findings can be kept with the
    parsed document (graphql/gateway.py) rather than found again on every request."""

    def enter_string_value(self, node: StringValueNode, *_args):
        if _REFUSED.search(node.value):
            self.report_error(_refusal(f"字符串{REFUSED_MESSAGE}", node))


def _refusal(message: str, node: StringValueNode | None) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": BAD_USER_INPUT})

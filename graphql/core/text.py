"""Text PostgreSQL refuses: NUL characters and lone surrogates.

A text or jsonb column takes neither (and UTF-8 cannot encode a lone surrogate), so a
string carrying one would fail deep inside an action as a database error. Every string
a resolver can read comes from the document's literals or from the variables; this
validation rule looks at both before anything executes, so no resolver is missed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from graphql import GraphQLError, StringValueNode, ValidationRule
from villagelink.graphql.core.errors import BAD_USER_INPUT

_REFUSED = re.compile("[\x00\ud800-\udfff]")
REFUSED_MESSAGE = "含有无法保存的字符（NUL 或不成对的代理码位）"


def _strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    """(path, string) for every string in a JSON value, keys included; iterative, so
    however deep the value the walk cannot overflow the stack."""
    pending = [(path, value)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            for key, inner in item.items():
                pending.append((where, key))
                pending.append((f"{where}.{key}", inner))
        elif isinstance(item, list):
            pending.extend((f"{where}[{i}]", inner) for i, inner in enumerate(item))


def storable_text_rule(variables: dict | None) -> type[ValidationRule]:
    """A validation rule refusing, as BAD_USER_INPUT, any string literal or variable
    that carries text PostgreSQL refuses."""

    class StorableText(ValidationRule):
        def enter_document(self, *_args):
            for where, text in _strings(variables or {}, "$"):
                if _REFUSED.search(text):
                    self._refuse(f"变量 {where.replace('$.', '$', 1)} {REFUSED_MESSAGE}", None)

        def enter_string_value(self, node: StringValueNode, *_args):
            if _REFUSED.search(node.value):
                self._refuse(f"字符串{REFUSED_MESSAGE}", node)

        def _refuse(self, message: str, node: StringValueNode | None) -> None:
            self.report_error(GraphQLError(message, node, extensions={"code": BAD_USER_INPUT}))

    return StorableText

"""Reading the SDL's own directives (`@listSize`, `@sensitive`) off a field's definition."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLField, value_from_ast_untyped


def directive_arguments(definition: GraphQLField, name: str) -> dict[str, Any] | None:
    """The arguments of the field's `@name` directive as Python values (enum values as
    their names), or None when the field does not carry it."""
    node = definition.ast_node
    for directive in (node.directives if node else None) or ():
        if directive.name.value == name:
            return {
                argument.name.value: value_from_ast_untyped(argument.value)
                for argument in directive.arguments or ()
            }
    return None

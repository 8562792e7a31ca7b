"""The gateway's executor: graphql-core's, with a short path for plain fields.

A page of 50 residents is some 550 fields, and graphql-core spends on each the same
machinery whatever the field is: a path, a resolve info, the middleware, and a completion
that walks the type's wrappers. Most of those fields are plain: a scalar or enum read
straight off the row, with no arguments and no resolver of ours (the default resolver,
or the camelCase-to-snake_case alias Ariadne binds). The short path reads those the way
the default resolver would and coerces them as graphql-core would; any field it cannot
finish the same way (a null where the type allows none, a value the scalar refuses, a
callable) goes the whole way, so errors, their paths and messages are graphql-core's.

What the short path leaves out is only what a plain field does not use: its resolve
info and the request's deadline middleware (every field with a resolver of ours still
checks the deadline, and a plain field does no work to bound). Sensitive fields always
have a resolver (graphql/core/sensitive.py), so they never take the short path.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, NamedTuple, cast

from graphql.execution.incremental.incremental_executor import IncrementalExecutor
from graphql.pyutils import Path

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLObjectType,
    Undefined,
    is_leaf_type,
    is_non_null_type,
)


class PlainField(NamedTuple):
    attribute: str  # the row's key or the object's attribute
    leaf: GraphQLLeafType
    nullable: bool


def _read_attribute(field: GraphQLField, name: str) -> str | None:
    """The key a field reads when it has no resolver of ours, or None when it has one."""
    resolve = field.resolve
    if resolve is None:
        return name
    # Ariadne's camelCase fields resolve through `resolve_to(snake_name)`, which marks
    # its resolver and keeps the name in its closure.
    if getattr(resolve, "_ariadne_alias_resolver", False) and resolve.__closure__:
        cells = dict(zip(resolve.__code__.co_freevars, resolve.__closure__, strict=True))
        cell = cells.get("attr_name")
        if cell is not None and isinstance(cell.cell_contents, str):
            return cell.cell_contents
    return None


@cache
def plain_fields(object_type: GraphQLObjectType) -> dict[str, PlainField]:
    """The object type's plain fields by name: leaf-typed, without arguments or a
    resolver of ours. Types are built once per process, so this is computed once each."""
    plain = {}
    for name, field in object_type.fields.items():
        nullable = not is_non_null_type(field.type)
        leaf = field.type.of_type if is_non_null_type(field.type) else field.type
        if field.args or not is_leaf_type(leaf):
            continue
        attribute = _read_attribute(field, name)
        if attribute is not None:
            plain[name] = PlainField(attribute, leaf, nullable)
    return plain


def _plain_value(source: Any, field: PlainField) -> Any:
    """The field's completed value, or Undefined when only the whole way can say what
    it is (an error, or a callable the default resolver would call)."""
    if isinstance(source, Mapping):
        value = source.get(field.attribute)
    else:
        value = getattr(source, field.attribute, None)
    if value is None:
        return None if field.nullable else Undefined
    if callable(value):
        return Undefined
    try:
        coerced = field.leaf.coerce_output_value(value)
    except Exception:  # graphql-core reports it, with its path, on the whole way
        return Undefined
    return Undefined if coerced is None else coerced


class GatewayExecutor(IncrementalExecutor):
    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        plain = plain_fields(parent_type)
        if not plain:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        rest = {}
        for response_name, field_details_list in grouped_field_set.items():
            field = plain.get(field_details_list[0].node.name.value)
            value = Undefined if field is None else _plain_value(source_value, field)
            if value is Undefined:
                rest[response_name] = field_details_list
            else:
                results[response_name] = value
        if not rest:
            return results
        executed = super().execute_fields(parent_type, source_value, path, rest, position_context)
        if self.is_awaitable(executed):

            async def merged() -> dict[str, Any]:
                return _in_order(grouped_field_set, results, await executed)

            return merged()
        return _in_order(grouped_field_set, results, cast(dict[str, Any], executed))


def _in_order(grouped_field_set: Any, plain: dict, executed: dict) -> dict[str, Any]:
    """The object's fields in the document's order, as the answer gives them."""
    if not plain:
        return executed
    return {
        name: plain[name] if name in plain else executed[name]
        for name in grouped_field_set
        if name in plain or name in executed
    }

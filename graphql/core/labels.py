"""Enum labels: every enum value of the API carries its Chinese label in the SDL
(`@label(zh: "...")`), and `enumLabels` serves them, so that no console hard-codes
what 已确认 or 微网格 is called (tests/test_schema_conventions.py: none is missing)."""

from __future__ import annotations

from functools import cache

from ariadne import QueryType

from graphql import GraphQLEnumType, GraphQLSchema, get_directive_values

query = QueryType()


@cache
def enum_labels(schema: GraphQLSchema) -> tuple[dict, ...]:
    """(enum, value, label) for every enum value of `schema`; label None where missing."""
    directive = schema.get_directive("label")
    if directive is None:
        raise LookupError("the schema declares no @label directive (graphql/schema/base.graphql)")
    found = []
    for name, graphql_type in sorted(schema.type_map.items()):
        if not isinstance(graphql_type, GraphQLEnumType) or name.startswith("__"):
            continue
        for value_name, value in graphql_type.values.items():
            label = get_directive_values(directive, value.ast_node) if value.ast_node else None
            found.append({"enum": name, "value": value_name, "label": (label or {}).get("zh")})
    return tuple(found)


@query.field("enumLabels")
def resolve_enum_labels(_obj, info, enums: list[str] | None = None) -> list[dict]:
    wanted = None if enums is None else set(enums)
    return [
        row
        for row in enum_labels(info.schema)
        if row["label"] is not None and (wanted is None or row["enum"] in wanted)
    ]


bindables = [query]

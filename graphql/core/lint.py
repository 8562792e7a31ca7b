"""The schema's lint: what an integrator reading the schema alone relies on.

Every type, field, argument, input field, enum value and directive (with its arguments)
carries a description, and the names follow GraphQL's conventions, which integrators'
tools and habits assume: enum values in SCREAMING_SNAKE_CASE, types in PascalCase,
fields, arguments and input fields in camelCase, and mutations named verb-first, each
taking one `input` and answering with one non-null payload that carries `userErrors`.

`villagelink schema lint` (run by `make lint`) prints every problem and fails on any;
tests/test_schema_conventions.py asserts each naming rule on the live schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
    is_specified_directive,
    is_specified_scalar_type,
)

SCREAMING_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")
PASCAL = re.compile(r"^[A-Z][a-zA-Z0-9]*$")
CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
# The verbs mutations start with. A new mutation whose first word is missing here is
# either named noun-first (rename it) or uses a new verb (add it).
VERBS = frozenset(
    [
        "accept",
        "acknowledge",
        "add",
        "approve",
        "archive",
        "assign",
        "attach",
        "award",
        "bind",
        "book",
        "cancel",
        "check",
        "close",
        "complete",
        "conclude",
        "create",
        "decline",
        "delete",
        "detach",
        "disable",
        "dispatch",
        "enable",
        "export",
        "finish",
        "grant",
        "ingest",
        "invite",
        "link",
        "mark",
        "move",
        "open",
        "order",
        "propose",
        "publish",
        "rate",
        "reassign",
        "redeem",
        "redeliver",
        "register",
        "reject",
        "remove",
        "reopen",
        "report",
        "request",
        "resolve",
        "resume",
        "retire",
        "return",
        "revoke",
        "rotate",
        "schedule",
        "set",
        "sign",
        "start",
        "tag",
        "transfer",
        "unbind",
        "unlink",
        "untag",
        "update",
        "withdraw",
    ]
)
# Naming breaches the schema keeps on purpose, by the line the check prints, each with
# its reason. None today: every name follows the conventions. A description is never
# excepted: an undescribed element is described, not listed here.
NAMING_EXCEPTIONS: dict[str, str] = {}
USER_ERRORS = "[UserError!]!"


def own_types(schema: GraphQLSchema) -> list[GraphQLNamedType]:
    """The schema's types without GraphQL's introspection types (__Type, ...) and its
    built-in scalars (String, Int, ...), which the specification describes."""
    return [
        named
        for name, named in schema.type_map.items()
        if not name.startswith("__") and not is_specified_scalar_type(named)
    ]


def _described(element: object) -> bool:
    return bool((getattr(element, "description", None) or "").strip())


def _elements(schema: GraphQLSchema) -> Iterator[tuple[str, object]]:
    """Every describable element by its schema coordinate (`Type.field(arg:)`, ...)."""
    for named in own_types(schema):
        yield named.name, named
        if isinstance(named, GraphQLEnumType):
            for value_name, value in named.values.items():
                yield f"{named.name}.{value_name}", value
        elif isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, field in named.fields.items():
                yield f"{named.name}.{field_name}", field
                for arg_name, arg in getattr(field, "args", {}).items():
                    yield f"{named.name}.{field_name}({arg_name}:)", arg
    for directive in schema.directives:
        if is_specified_directive(directive):
            continue
        yield f"@{directive.name}", directive
        for arg_name, arg in directive.args.items():
            yield f"@{directive.name}({arg_name}:)", arg


def undescribed(schema: GraphQLSchema) -> list[str]:
    """The coordinates of the elements without a description."""
    return [coordinate for coordinate, element in _elements(schema) if not _described(element)]


def enum_value_breaches(schema: GraphQLSchema) -> list[str]:
    return _unexcepted(
        f"{named.name}.{value}: enum value not SCREAMING_SNAKE_CASE"
        for named in own_types(schema)
        if isinstance(named, GraphQLEnumType)
        for value in named.values
        if not SCREAMING_SNAKE.match(value)
    )


def type_name_breaches(schema: GraphQLSchema) -> list[str]:
    return _unexcepted(
        f"{named.name}: type not PascalCase"
        for named in own_types(schema)
        if not PASCAL.match(named.name)
    )


def field_name_breaches(schema: GraphQLSchema) -> list[str]:
    """Fields, input fields and their arguments not in camelCase."""
    wrong = []
    for named in own_types(schema):
        if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            continue
        for field_name, field in named.fields.items():
            if not CAMEL.match(field_name):
                wrong.append(f"{named.name}.{field_name}: field not camelCase")
            for arg_name in getattr(field, "args", {}):
                if not CAMEL.match(arg_name):
                    wrong.append(f"{named.name}.{field_name}({arg_name}:): argument not camelCase")
    return _unexcepted(wrong)


def mutation_breaches(schema: GraphQLSchema) -> list[str]:
    """Mutations not verb-first, not taking one required `input`, or not answering with one
    non-null payload carrying `userErrors: [UserError!]!`."""
    wrong: list[str] = []
    mutation = schema.mutation_type
    for name, field in (mutation.fields if mutation else {}).items():
        verb = re.match(r"[a-z]*", name)
        if verb is None or verb.group() not in VERBS:
            wrong.append(f"Mutation.{name}: does not start with a verb")
        input_type = field.args["input"].type if list(field.args) == ["input"] else None
        if not (
            isinstance(input_type, GraphQLNonNull)
            and isinstance(input_type.of_type, GraphQLInputObjectType)
        ):
            wrong.append(f"Mutation.{name}: arguments {list(field.args)}, not one required `input`")
        payload = get_named_type(field.type)
        user_errors = (
            payload.fields.get("userErrors") if isinstance(payload, GraphQLObjectType) else None
        )
        if user_errors is None or str(user_errors.type) != USER_ERRORS:
            wrong.append(
                f"Mutation.{name}: payload {payload.name} has no userErrors: {USER_ERRORS}"
            )
        elif not isinstance(field.type, GraphQLNonNull) or isinstance(
            field.type.of_type, GraphQLList
        ):
            wrong.append(f"Mutation.{name}: returns {field.type}, not one non-null payload")
    return _unexcepted(wrong)


def naming_breaches(schema: GraphQLSchema) -> list[str]:
    return (
        type_name_breaches(schema)
        + field_name_breaches(schema)
        + enum_value_breaches(schema)
        + mutation_breaches(schema)
    )


def problems(schema: GraphQLSchema) -> list[str]:
    """Every problem, one line each: undescribed elements first, then naming breaches."""
    return [f"{coordinate}: no description" for coordinate in undescribed(schema)] + (
        naming_breaches(schema)
    )


def _unexcepted(lines: Iterator[str] | list[str]) -> list[str]:
    return [line for line in lines if line not in NAMING_EXCEPTIONS]

"""The schema follows GraphQL's naming conventions, which integrators' tools and habits
assume: enum values in SCREAMING_SNAKE_CASE, types in PascalCase, fields, arguments and
input fields in camelCase, and mutations named verb-first, each taking one `input` and
answering with a payload that carries `userErrors`. Python keeps its lower-case values:
the schema maps them at its boundary, for every enum alike."""

from __future__ import annotations

import re

import pytest

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)
from villagelink.graphql.core.schema import executable_schema

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


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return executable_schema()


def own_types(schema: GraphQLSchema):
    """The schema's types without GraphQL's introspection types (__Type, ...)."""
    return [t for name, t in schema.type_map.items() if not name.startswith("__")]


def test_enum_values_are_screaming_snake_case(schema):
    wrong = [
        f"{t.name}.{value}"
        for t in own_types(schema)
        if isinstance(t, GraphQLEnumType)
        for value in t.values
        if not SCREAMING_SNAKE.match(value)
    ]
    assert wrong == []


def test_enum_values_reach_python_lower_case_and_leave_it_upper_case(schema):
    """Resolvers, actions and the database see "false_alarm"; clients see FALSE_ALARM."""
    enums = [t for t in own_types(schema) if isinstance(t, GraphQLEnumType)]
    assert enums
    for enum in enums:
        for name in enum.values:
            assert enum.parse_value(name) == name.lower(), f"{enum.name}.{name}"
            assert enum.serialize(name.lower()) == name, f"{enum.name}.{name}"
        # A value Python does not know is an error, not a silent null.
        with pytest.raises(Exception, match="cannot represent"):
            enum.serialize("no such value")


def test_types_are_pascal_case(schema):
    assert [t.name for t in own_types(schema) if not PASCAL.match(t.name)] == []


def test_fields_arguments_and_input_fields_are_camel_case(schema):
    wrong = []
    for t in own_types(schema):
        if not isinstance(t, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            continue
        for field_name, field in t.fields.items():
            if not CAMEL.match(field_name):
                wrong.append(f"{t.name}.{field_name}")
            for argument in getattr(field, "args", {}):
                if not CAMEL.match(argument):
                    wrong.append(f"{t.name}.{field_name}({argument})")
    assert wrong == []


def test_mutations_are_verb_first_take_one_input_and_return_user_errors(schema):
    wrong = []
    for name, field in schema.mutation_type.fields.items():
        verb = re.match(r"[a-z]+", name).group()
        if verb not in VERBS:
            wrong.append(f"{name}: does not start with a verb")
        input_type = field.args["input"].type if list(field.args) == ["input"] else None
        if not (
            isinstance(input_type, GraphQLNonNull)
            and isinstance(input_type.of_type, GraphQLInputObjectType)
        ):
            wrong.append(f"{name}: arguments {list(field.args)}, not one required `input`")
        payload = get_named_type(field.type)
        user_errors = (
            payload.fields.get("userErrors") if isinstance(payload, GraphQLObjectType) else None
        )
        if user_errors is None or str(user_errors.type) != "[UserError!]!":
            wrong.append(f"{name}: payload {payload.name} has no userErrors: [UserError!]!")
        elif not isinstance(field.type, GraphQLNonNull) or isinstance(
            field.type.of_type, GraphQLList
        ):
            wrong.append(f"{name}: returns {field.type}, not one non-null payload")
    assert wrong == []

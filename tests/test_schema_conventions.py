"""The schema follows GraphQL's naming conventions, which integrators' tools and habits
assume: enum values in SCREAMING_SNAKE_CASE, types in PascalCase, fields, arguments and
input fields in camelCase, and mutations named verb-first, each taking one `input` and
answering with a payload that carries `userErrors`. Python keeps its lower-case values:
the schema maps them at its boundary, for every enum alike."""

from __future__ import annotations

import pytest

from graphql import GraphQLEnumType, GraphQLSchema, build_schema
from villagelink.graphql.core import lint
from villagelink.graphql.core.schema import executable_schema


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return executable_schema()


def test_enum_values_are_screaming_snake_case(schema):
    assert lint.enum_value_breaches(schema) == []


def test_enum_values_reach_python_lower_case_and_leave_it_upper_case(schema):
    """Resolvers, actions and the database see "false_alarm"; clients see FALSE_ALARM."""
    enums = [t for t in lint.own_types(schema) if isinstance(t, GraphQLEnumType)]
    assert enums
    for enum in enums:
        for name in enum.values:
            assert enum.parse_value(name) == name.lower(), f"{enum.name}.{name}"
            assert enum.serialize(name.lower()) == name, f"{enum.name}.{name}"
        # A value Python does not know is an error, not a silent null.
        with pytest.raises(Exception, match="cannot represent"):
            enum.serialize("no such value")


def test_types_are_pascal_case(schema):
    assert lint.type_name_breaches(schema) == []


def test_fields_arguments_and_input_fields_are_camel_case(schema):
    assert lint.field_name_breaches(schema) == []


def test_mutations_are_verb_first_take_one_input_and_return_user_errors(schema):
    assert lint.mutation_breaches(schema) == []


# A small schema with one of each miss: the lint names every one, by coordinate.
SYNTHETIC = """
"A described type."
type Query {
  "Described."
  village(slug: String!): village_record
}

type village_record {
  "Described, but not camelCase."
  full_name: String
}

"Described."
enum Colour {
  "Described, but lower case."
  red
  "Described."
  BLUE
}

"Described."
type Mutation {
  "Noun-first, two arguments, and a payload without userErrors."
  villageRename("Described." slug: String!, "Described." name: String!): Query
}
"""


def test_lint_lists_each_missing_description_and_bad_name():
    synthetic = build_schema(SYNTHETIC)
    assert lint.undescribed(synthetic) == [
        "Query.village(slug:)",
        "village_record",
    ]
    assert lint.naming_breaches(synthetic) == [
        "village_record: type not PascalCase",
        "village_record.full_name: field not camelCase",
        "Colour.red: enum value not SCREAMING_SNAKE_CASE",
        "Mutation.villageRename: does not start with a verb",
        "Mutation.villageRename: arguments ['slug', 'name'], not one required `input`",
        "Mutation.villageRename: payload Query has no userErrors: [UserError!]!",
    ]
    problems = lint.problems(synthetic)
    assert "village_record: no description" in problems
    assert len(problems) == 8


def test_lint_passes_a_described_conventional_schema():
    described = build_schema(
        """
        "The root."
        type Query {
          "One village by slug."
          village("Its slug." slug: String!): String
        }
        """
    )
    assert lint.problems(described) == []

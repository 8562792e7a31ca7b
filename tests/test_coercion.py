"""The gateway's coercion of variables (graphql/core/coercion.py) and its check of their
nesting (graphql/core/nesting.py) against graphql-core's own, value for value."""

from __future__ import annotations

from typing import Any

import pytest
from graphql.execution import values
from graphql.utilities.coerce_input_value import coerce_input_value as graphql_core_coercion
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphql import (
    GraphQLEnumType,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    Undefined,
    is_enum_type,
    is_input_object_type,
    is_list_type,
    is_non_null_type,
)
from villagelink.graphql.core import coercion, nesting
from villagelink.graphql.core.schema import executable_schema

SCHEMA = executable_schema()
INPUT_OBJECTS = sorted(
    (t for t in SCHEMA.type_map.values() if is_input_object_type(t)), key=lambda t: t.name
)

# Any JSON a caller may send where a value of some type is expected.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
LEAVES = {
    "Int": st.integers(-(2**33), 2**33),
    "Float": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-100, 100),
    "Boolean": st.booleans(),
    "String": st.text(max_size=8),
    "ID": st.text(max_size=8) | st.integers(0, 100),
    "DateTime": st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    | st.text(max_size=8),
    "Date": st.dates().map(lambda d: d.isoformat()) | st.text(max_size=8),
}


def typed(draw: Any, type_: GraphQLInputType, depth: int = 0) -> Any:
    """A value mostly of `type_`'s shape, now and then not: a null, a field left out,
    an unknown field, a value of another shape."""
    if depth > 4 or draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    if is_non_null_type(type_):
        return typed(draw, type_.of_type, depth)
    if is_list_type(type_):
        if draw(st.booleans()):
            return typed(draw, type_.of_type, depth + 1)  # a list of one, unwrapped
        return [typed(draw, type_.of_type, depth + 1) for _ in range(draw(st.integers(0, 3)))]
    if is_input_object_type(type_):
        value = {
            name: typed(draw, field.type, depth + 1)
            for name, field in type_.fields.items()
            if draw(st.integers(0, 3))
        }
        if draw(st.integers(0, 9)) == 0:
            value[draw(st.text(max_size=4))] = draw(JSON)
        return value
    if is_enum_type(type_):
        assert isinstance(type_, GraphQLEnumType)
        return draw(st.sampled_from(list(type_.values)) | st.text(max_size=4))
    return draw(LEAVES.get(type_.name, JSON))


def same(got: Any, expected: Any) -> bool:
    if expected is Undefined or got is Undefined:
        return got is expected
    return bool(got == expected)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_a_value_of_any_input_type_is_coerced_as_graphql_core_does(data):
    type_ = data.draw(st.sampled_from(INPUT_OBJECTS))
    wrapped = data.draw(
        st.sampled_from(
            [type_, GraphQLNonNull(type_), GraphQLNonNull(GraphQLList(GraphQLNonNull(type_)))]
        )
    )
    value = typed(data.draw, wrapped)
    assert same(coercion.coerce_input_value(value, wrapped), graphql_core_coercion(value, wrapped))


def test_the_gateway_coerces_variables_by_the_built_functions():
    assert values.coerce_input_value is coercion.coerce_input_value
    readings = SCHEMA.type_map["IngestHealthReadingsInput"]
    reading = {"device": "d", "readingId": "r1", "measuredAt": "2026-12-07T08:00:00+08:00"}
    coerced = coercion.coerce_input_value({"readings": [reading]}, GraphQLNonNull(readings))
    assert coerced == graphql_core_coercion({"readings": [reading]}, GraphQLNonNull(readings))
    assert coerced["readings"][0]["reading_id"] == "r1"  # Ariadne's Python names, as before


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_variable_is_nested_too_deeply_exactly_where_graphql_core_says(data):
    # Values and types around graphql-core's limit of 200: lists in lists, a value for a
    # list standing for a list of one, an input object's fields.
    type_: GraphQLInputType = data.draw(st.sampled_from([*INPUT_OBJECTS, GraphQLInt]))
    for _ in range(data.draw(st.integers(0, 205))):
        type_ = GraphQLList(type_)
    if data.draw(st.booleans()):
        type_ = GraphQLNonNull(type_)
    value = data.draw(JSON)
    for _ in range(data.draw(st.integers(0, 230))):
        value = [value] if data.draw(st.integers(0, 4)) else {"x": value}
    expected = nesting.graphql_core_check(value, type_)
    assert nesting.input_is_nested_too_deeply(value, type_) is expected


def depth_by_recursion(value: Any) -> int:
    if type(value) is not dict and type(value) is not list:
        return 0
    inner = list(value.values()) if type(value) is dict else value
    return 1 + max(map(depth_by_recursion, inner)) if inner else 0


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_json_depth_is_the_nesting_of_any_json(data):
    value = data.draw(JSON)
    for _ in range(data.draw(st.integers(0, 5))):
        # A wide level beside a deep one, as a batch's items are.
        value = data.draw(st.sampled_from([[value], {"x": value}, [value, *range(9)], [{}, value]]))
    assert nesting.json_depth(value) == depth_by_recursion(value)


def lists(type_: GraphQLInputType, count: int) -> GraphQLInputType:
    for _ in range(count):
        type_ = GraphQLList(type_)
    return type_


def nested(value: Any, count: int, key: str | None = None) -> Any:
    for _ in range(count):
        value = [value] if key is None else {key: value}
    return value


# A type of graphql-core's own, not the gateway's: an input that holds itself three
# lists down, so each of its values' levels is four of coercion's.
DEEP = GraphQLInputObjectType("Deep", lambda: {"inner": GraphQLInputField(lists(DEEP, 3))})


@pytest.mark.parametrize(
    ("type_", "value", "too_deep"),
    [
        (lists(GraphQLInt, 200), 1, False),
        (lists(GraphQLInt, 201), 1, True),
        (lists(GraphQLInt, 201), nested(1, 150), True),
        (lists(GraphQLInt, 1), nested(1, 250), False),  # Int stops the walk
        (DEEP, nested(None, 49, "inner"), False),
        (DEEP, nested(None, 51, "inner"), True),
        (GraphQLNonNull(DEEP), nested(None, 50, "inner"), False),
    ],
)
def test_nesting_at_graphql_core_s_limit(type_, value, too_deep):
    assert nesting.graphql_core_check(value, type_) is too_deep
    assert nesting.input_is_nested_too_deeply(value, type_) is too_deep


def test_the_gateway_checks_nesting_by_the_bound():
    assert values.input_is_nested_too_deeply is nesting.input_is_nested_too_deeply

"""How deep JSON nests: the bound every request's JSON is held to (graphql/gateway.py's
`read_json`), and, by the same walk, graphql-core's check that a variable cannot nest
deeper than its coercion may recurse.

graphql-core makes that check by pushing every value of a variable, each with its type,
on a stack: for a batch of a thousand device readings, 3 ms, as much as coercing it. A
bound from the value's containers and the type's lists answers it at once for every
variable a request can carry (its JSON is at most 64 deep); only past the bound is
graphql-core's own walk made.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from graphql.execution import values
from graphql.execution.values import input_is_nested_too_deeply as graphql_core_check
from graphql.language.parser import MAX_NESTING_DEPTH
from graphql.type.definition import get_nullable_type

from graphql import (
    GraphQLInputType,
    GraphQLNamedType,
    get_named_type,
    is_input_object_type,
    is_list_type,
)

_CONTAINERS = frozenset((dict, list))


def json_depth(value: Any) -> int:
    """How deep a JSON value nests (a scalar 0, `[1]` 1), walked a level at a time without
    recursion. Each level's values are gathered and their types taken by C loops
    (`chain`, `map`, `set`); a level is gone over in Python only to pick its containers
    out of other values. An ingest batch's thousands of numbers and strings are never
    looked at one by one: 0.44 ms for a batch of readings before, 0.19 after."""
    kinds = {type(value)}
    if kinds.isdisjoint(_CONTAINERS):
        return 0
    depth, level = 0, [value]
    while True:
        # `level` holds containers only, of the `kinds` found.
        values = chain.from_iterable(
            map(dict.values, level if list not in kinds else [c for c in level if type(c) is dict])
        )
        if list in kinds:
            items = level if dict not in kinds else [c for c in level if type(c) is list]
            values = chain(values, chain.from_iterable(items))
        children = list(values)
        if not children:
            return depth
        depth += 1
        kinds = set(map(type, children))
        if kinds.isdisjoint(_CONTAINERS):
            return depth
        level = (
            children if kinds <= _CONTAINERS else [c for c in children if type(c) in _CONTAINERS]
        )


def list_wraps(type_: GraphQLInputType) -> int:
    """How many lists a type wraps its named type in (`[[Int!]]!`: 2)."""
    wraps = 0
    inner: Any = get_nullable_type(type_)
    while is_list_type(inner):
        wraps += 1
        inner = get_nullable_type(inner.of_type)
    return wraps


def install() -> None:
    """graphql-core's check of variables' nesting answered by the bound, in this process."""
    values.input_is_nested_too_deeply = input_is_nested_too_deeply


def input_is_nested_too_deeply(value: Any, type_: GraphQLInputType) -> bool:
    """graphql-core's `input_is_nested_too_deeply`. Each level its coercion goes down
    either enters a container of the value or wraps a value given for a list in a list
    of one: at most `wraps` of those before the next container. Under the limit by that
    count, the value is not too deep; over it, graphql-core's walk says."""
    wraps = max(list_wraps(type_), _most_wraps(get_named_type(type_)))
    containers = json_depth(value)
    if containers + (containers + 1) * wraps <= MAX_NESTING_DEPTH:
        return False
    return graphql_core_check(value, type_)


# id(named type) -> (the type, kept alive so that the id is not reused; the most lists
# any field type of an input object it reaches wraps).
_WRAPS: dict[int, tuple[GraphQLNamedType, int]] = {}


def _most_wraps(named: GraphQLNamedType) -> int:
    found = _WRAPS.get(id(named))
    if found is not None:
        return found[1]
    most, seen, pending = 0, {id(named)}, [named]
    while pending:
        current = pending.pop()
        if not is_input_object_type(current):
            continue
        for field in current.fields.values():
            most = max(most, list_wraps(field.type))
            inner = get_named_type(field.type)
            if id(inner) not in seen:
                seen.add(id(inner))
                pending.append(inner)
    _WRAPS[id(named)] = (named, most)
    return most

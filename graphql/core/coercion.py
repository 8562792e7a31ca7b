"""Variables coerced by a function built once per input type.

graphql-core coerces a variable by walking its value beside its type, asking of every
value on the way which kind of type it stands for (non-null, list, input object, leaf):
for a batch of a thousand device readings, 5 ms, a fifth of the request's CPU. Here each
input type's coercion is a function built the first time the type is met, which knows
its kind and its fields: 1.3 ms for the same batch. All are built when the schema is,
before any request.

It does what graphql-core's `coerce_input_value` does, value for value: the same
results, `Undefined` where a value is invalid (tests/test_coercion.py compares the two
on the schema's inputs). graphql-core calls that function by its name in
`graphql.execution.values`, and only for the first, silent pass over the variables: a
value found invalid is gone over again by graphql-core's own validation, which says
why. So `install` puts this one under that name, and the errors stay graphql-core's.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from math import isfinite
from typing import Any

from graphql.execution import values
from graphql.pyutils import is_iterable
from graphql.type.definition import is_required_input_field
from graphql.type.scalars import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    coerce_boolean,
    coerce_float,
    coerce_id,
    coerce_int,
    coerce_string,
)
from graphql.utilities.coerce_input_value import coerce_default_value
from graphql.utilities.coerce_input_value import coerce_input_value as graphql_core_coercion

from graphql import (
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLLeafType,
    GraphQLNamedType,
    GraphQLSchema,
    Undefined,
    is_input_object_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
)

Coercion = Callable[[Any], Any]

# id(named type) -> (the type, kept alive so that the id is not reused; its coercion).
# Filled once, by `install`, before any request: never changed while requests read it.
_COERCIONS: dict[int, tuple[GraphQLNamedType, Coercion]] = {}


def install(schema: GraphQLSchema) -> None:
    """The schema's variables are coerced here from now on, in this process."""
    built: dict[int, tuple[GraphQLNamedType, Coercion]] = {
        id(t): (t, _leaf(t)) for t in schema.type_map.values() if is_leaf_type(t)
    }
    objects = [t for t in schema.type_map.values() if is_input_object_type(t)]
    fields: dict[int, list] = {}
    for type_ in objects:
        fields[id(type_)] = []
        built[id(type_)] = (type_, _input_object(type_, fields[id(type_)]))
    # The fields once every type has its function: an input type may hold itself (a
    # filter of filters) or one met later.
    _COERCIONS.update(built)
    for type_ in objects:
        fields[id(type_)].extend(
            (
                name,
                field.out_name or name,
                coercion_of(field.type),
                is_required_input_field(field),
                # graphql-core keeps a field's coerced default and gives that one each time.
                coerce_default_value(field),
            )
            for name, field in type_.fields.items()
        )
    values.coerce_input_value = coerce_input_value


def coerce_input_value(input_value: Any, type_: GraphQLInputType) -> Any:
    """graphql-core's `coerce_input_value`, by the type's own function."""
    return coercion_of(type_)(input_value)


def coercion_of(type_: GraphQLInputType) -> Coercion:
    """The type's coercion. A list or non-null is wrapped afresh (a document's variable
    types are new objects on every request); a named type of another schema is left to
    graphql-core."""
    if is_non_null_type(type_):
        return _non_null(coercion_of(type_.of_type))
    if is_list_type(type_):
        return _as_list(coercion_of(type_.of_type))
    found = _COERCIONS.get(id(type_))
    return found[1] if found is not None else partial(graphql_core_coercion, type_=type_)


def _non_null(inner: Coercion) -> Coercion:
    def non_null(value: Any) -> Any:
        if value is None or value is Undefined:
            return Undefined
        return inner(value)

    return non_null


def _as_list(item: Coercion) -> Coercion:
    def as_list(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if not is_iterable(value):
            # A value that is not a list stands for a list of one.
            coerced = item(value)
            return Undefined if coerced is Undefined else [coerced]
        items = []
        for one in value:
            coerced = item(one)
            if coerced is Undefined:
                return Undefined
            items.append(coerced)
        return items

    return as_list


def _leaf(type_: GraphQLLeafType) -> Coercion:
    leaf = type_.coerce_input_value

    def as_leaf(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        try:
            return leaf(value)
        except Exception:
            # graphql-core reads any error of a scalar's parsing as: invalid, no value.
            return Undefined

    kind = _PLAIN.get(leaf)
    return as_leaf if kind is None else _plain(kind, as_leaf)


# The built-in scalars' coercions, by the Python type of a value each takes as it is (an
# Int within 32 bits, a finite Float). A batch of readings has seven such values an item,
# and these functions went through three calls each to say so.
_PLAIN: dict[Callable[..., Any], type] = {
    coerce_int: int,
    coerce_float: float,
    coerce_string: str,
    coerce_id: str,
    coerce_boolean: bool,
}


def _plain(kind: type, scalar: Coercion) -> Coercion:
    """A built-in scalar's coercion: a value of its own Python type passes at once, any
    other (a whole float for an Int, a number for an ID, the invalid) goes to `scalar`."""
    if kind is int:

        def as_int(value: Any) -> Any:
            if type(value) is int and GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT:
                return value
            return scalar(value)

        return as_int
    if kind is float:

        def as_float(value: Any) -> Any:
            if type(value) is float and isfinite(value):
                return value
            return scalar(value)

        return as_float

    def as_kind(value: Any) -> Any:
        return value if type(value) is kind else scalar(value)

    return as_kind


def _input_object(type_: GraphQLInputObjectType, fields: list) -> Coercion:
    """`fields`: (name, name in Python, its coercion, whether it is required, its
    default) per field, in the type's order, filled by `install`."""
    names = frozenset(type_.fields)
    out_type = type_.out_type

    def as_object(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if not isinstance(value, dict):
            return Undefined
        if type_.is_one_of or not names.issuperset(value):
            # A field it does not have, or one of its fields exactly: rare, and
            # graphql-core's own walk reads them.
            return graphql_core_coercion(value, type_)
        coerced: dict[str, Any] = {}
        for name, python_name, coerce_field, required, default in fields:
            given = value.get(name, Undefined)
            if given is Undefined:
                if required:
                    return Undefined
                if default is not Undefined:
                    coerced[python_name] = default
                continue
            one = coerce_field(given)
            if one is Undefined:
                return Undefined
            coerced[python_name] = one
        return out_type(coerced)

    return as_object

"""The gateway's executor: graphql-core's, with a short path for plain fields.

A page of 50 residents is some 550 fields, and graphql-core spends on each the same
machinery whatever the field is: a resolve info, the middleware, and a completion that
walks the type's wrappers. Most of those fields are plain: read off the row with no
arguments, by no resolver of ours (the default resolver, or the camelCase-to-snake_case
alias Ariadne binds) or by one of the row alone (`row_field`, such as a node's global
ID), or carried by the row already (`carried`: a page's residents come with the household
their statement joined); and a scalar or enum, an object, or a list of either. The short
path reads those as their resolver would and completes them as graphql-core would. Where
a list's whole selection is plain, however deep (a page's edges, each with its resident
and the resident's household and grid), it is completed by one function built for that
selection, with no walk of graphql-core's at all: built once per process where no
directive makes the selection depend on the request, else once per request.

A field the short path cannot finish the same way (a null where the type allows none, a
value the scalar refuses, a callable the default resolver would call, a list that is no
list) goes the whole way, so errors, their paths and messages are graphql-core's. The
short path only reads rows and coerces scalars, so giving up half-way costs nothing else.

What the short path leaves out is only what a plain field does not use: its resolve info
and the request's deadline middleware (every field with a resolver of ours still checks
the deadline, and a plain field does no work to bound). Sensitive fields always have a
resolver of ours (graphql/core/sensitive.py), so they never take the short path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache, partial
from typing import Any, NamedTuple, cast

from graphql.execution.incremental.incremental_executor import IncrementalExecutor
from graphql.pyutils import Path

from graphql import (
    FragmentSpreadNode,
    GraphQLField,
    GraphQLLeafType,
    GraphQLObjectType,
    Undefined,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)

RowReader = Callable[[Any], Any]

# Completions shared by the requests that send the same document: (the field, its
# selection's nodes) -> (them, kept alive; the completion). Cleared when full: documents
# the gateway no longer keeps parsed go with it.
SHARED_COMPLETIONS_SIZE = 4096
_SHARED_COMPLETIONS: dict[tuple[int, ...], tuple[Any, Any]] = {}


def row_field(read: RowReader) -> Callable[..., Any]:
    """A resolver that needs nothing but the row (no arguments, no context): the
    executor's short path calls `read(row)` itself."""

    def resolve(row: Any, *_info: Any) -> Any:
        return read(row)

    resolve.reads_row = read  # type: ignore[attr-defined]
    return resolve


def carried(resolve: Callable[..., Any]) -> Callable[..., Any]:
    """A resolver whose value a row may carry already, under the field's name (a page
    that joined the resident's household in its own statement): the short path takes it
    from such a row, and a row without it goes the whole way to `resolve`."""
    resolve.carried = True  # type: ignore[attr-defined]
    return resolve


def _carried_reader(name: str) -> RowReader:
    def read(row: Any) -> Any:
        return row.get(name, Undefined) if type(row) is dict else Undefined

    return read


class PlainField(NamedTuple):
    read: RowReader
    # The completed type (a list's item type): a scalar or enum, or an object type
    # without is_type_of.
    of_type: GraphQLLeafType | GraphQLObjectType
    nullable: bool
    leaf: bool
    # For a list, whether its items may be null; None for a field that is no list.
    item_nullable: bool | None


def _reader(field: GraphQLField, name: str) -> RowReader | None:
    """How a field without resolver of ours reads its row; None when it has one."""
    resolve = field.resolve
    if resolve is not None and hasattr(resolve, "reads_row"):
        return resolve.reads_row
    if getattr(resolve, "carried", False):
        return _carried_reader(name)
    key = name
    # Ariadne's camelCase fields resolve through `resolve_to(snake_name)`, which marks
    # its resolver and keeps the name in its closure.
    if resolve is not None:
        if not (getattr(resolve, "_ariadne_alias_resolver", False) and resolve.__closure__):
            return None
        cells = dict(zip(resolve.__code__.co_freevars, resolve.__closure__, strict=True))
        cell = cells.get("attr_name")
        if cell is None or not isinstance(cell.cell_contents, str):
            return None
        key = cell.cell_contents

    def read(row: Any) -> Any:
        # Rows are dicts; the exact type check first spares the ABC's slower one.
        if type(row) is dict or isinstance(row, Mapping):
            value = row.get(key)
        else:
            value = getattr(row, key, None)
        # The default resolver would call it with the resolve info: the whole way does.
        return Undefined if callable(value) else value

    return read


@cache
def plain_fields(object_type: GraphQLObjectType) -> dict[str, PlainField]:
    """The object type's plain fields by name. Types are built once per process, so this
    is computed once for each."""
    plain = {}
    for name, field in object_type.fields.items():
        of_type = field.type.of_type if is_non_null_type(field.type) else field.type
        item_nullable = None
        if is_list_type(of_type):
            item_nullable = not is_non_null_type(of_type.of_type)
            of_type = of_type.of_type if item_nullable else of_type.of_type.of_type
        completes = is_leaf_type(of_type) or (is_object_type(of_type) and not of_type.is_type_of)
        read = None if field.args or not completes else _reader(field, name)
        if read is not None:
            nullable = not is_non_null_type(field.type)
            leaf = is_leaf_type(of_type)
            plain[name] = PlainField(read, of_type, nullable, leaf, item_nullable)
    return plain


def _never_awaitable(_value: Any) -> bool:
    return False


class GatewayExecutor(IncrementalExecutor):
    """graphql-core's executor with the short path, for synchronous resolvers: the
    gateway's are all synchronous, so it need not ask of each of the hundreds of values a
    read returns whether it is one to await (that check, on every field, cost about a
    tenth of a page's CPU)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.is_awaitable = _never_awaitable  # type: ignore[assignment]
        # (field, its field details' identity) -> (the details, kept alive so that the
        # identity is not reused; the completion, or None where there is none).
        self._completions: dict[tuple[int, int], tuple[Any, Completion | None]] = {}

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
            value = Undefined if field is None else field.read(source_value)
            if field is None or value is Undefined:
                pass
            elif value is None:
                value = None if field.nullable else Undefined
            elif field.item_nullable is not None:
                # A list: compiled for its items once, it is completed with no walk at all.
                complete = self._completion(field, field_details_list)
                value = Undefined if complete is None else complete(value)
            elif field.leaf:
                value = _leaf_value(field.of_type, value)
            else:
                # One object: compiling its selection would cost more than it saves.
                value = self._object_value(
                    parent_type, field, field_details_list, path, response_name, value,
                    position_context,
                )  # fmt: skip
            if value is Undefined:
                rest[response_name] = field_details_list
            else:
                results[response_name] = value
        if not rest:
            return results
        executed = super().execute_fields(parent_type, source_value, path, rest, position_context)
        return _in_order(grouped_field_set, results, cast(dict[str, Any], executed))

    def _completion(self, field: PlainField, field_details_list: Any) -> Completion | None:
        """How to complete the field's value when all of its selection is plain, however
        deep (a page's edges, each with its resident and the resident's household): one
        function per selection, in place of graphql-core's walk of every item. None when
        some field of it is not plain."""
        key = (id(field), id(field_details_list))
        found = self._completions.get(key)
        if found is None:
            found = (field_details_list, self._shared_completion(field, field_details_list))
            self._completions[key] = found
        return found[1]

    def _shared_completion(self, field: PlainField, field_details_list: Any) -> Completion | None:
        """The selection's completion, built once per process where nothing of the
        request's can change the selection: no directive in it, however deep (an @include
        reads a variable). The gateway parses each document once (graphql/gateway.py), so
        a selection's nodes are the same objects on every request that sends it; building
        the completion took a twentieth of a page's CPU."""
        nodes = tuple(details.node for details in field_details_list)
        key = (id(field), *map(id, nodes))
        shared = _SHARED_COMPLETIONS.get(key)
        if shared is not None:
            return shared[1]
        completion = self._compile(field, field_details_list)
        if _fixed(field_details_list, self.fragments):
            if len(_SHARED_COMPLETIONS) >= SHARED_COMPLETIONS_SIZE:
                _SHARED_COMPLETIONS.clear()
            # The nodes are kept with it, so that their ids are not reused meanwhile.
            _SHARED_COMPLETIONS[key] = ((field, nodes), completion)
        return completion

    def _compile(self, field: PlainField, field_details_list: Any) -> Completion | None:
        one: Completion
        if field.leaf:
            one = partial(_leaf_value, field.of_type)
        else:
            object_type = cast(GraphQLObjectType, field.of_type)
            grouped_field_set = self.collect_subfields(object_type, field_details_list)[0]
            plain = plain_fields(object_type)
            steps: list[Step] = []
            for response_name, details in grouped_field_set.items():
                name = details[0].node.name.value
                if name == "__typename":
                    steps.append((response_name, partial(_named, object_type.name), False, _same))
                    continue
                inner = plain.get(name)
                complete = None if inner is None else self._completion(inner, details)
                if inner is None or complete is None:
                    return None
                steps.append((response_name, inner.read, inner.nullable, complete))
            one = partial(_completed_object, tuple(steps))
        if field.item_nullable is None:
            return one
        return partial(_completed_list, one, field.item_nullable)

    def _object_value(
        self,
        parent_type: GraphQLObjectType,
        field: PlainField,
        field_details_list: Any,
        path: Path | None,
        response_name: str,
        value: Any,
        position_context: Any,
    ) -> Any:
        """The object's own fields, executed as graphql-core's completion would, and a
        failure of one of them handled as it handles a failure of this field."""
        field_path = Path(path, response_name, parent_type.name)
        try:
            return self.collect_and_execute_subfields(
                cast(GraphQLObjectType, field.of_type),
                field_details_list,
                field_path,
                value,
                position_context,
            )
        except Exception as raw_error:
            definition = parent_type.fields[field_details_list[0].node.name.value]
            self.handle_field_error(raw_error, definition.type, field_details_list, field_path)
            return None


def _leaf_value(leaf: Any, value: Any) -> Any:
    """The scalar's or enum's output, or Undefined where graphql-core reports an error."""
    try:
        coerced = leaf.coerce_output_value(value)
    except Exception:  # reported, with its path, on the whole way
        return Undefined
    return Undefined if coerced is None else coerced


# A plain field's value completed as graphql-core would complete it, or Undefined where
# graphql-core would report an error (or null one the type allows none): that field then
# goes the whole way, which reports it. Completions read rows and coerce scalars only, so
# one given up on half-way has done nothing that matters.
Completion = Callable[[Any], Any]
Step = tuple[str, RowReader, bool, Completion]


def _completed_object(steps: tuple[Step, ...], row: Any) -> Any:
    result = {}
    for response_name, read, nullable, complete in steps:
        value = read(row)
        if value is None:
            if not nullable:
                return Undefined
        elif value is Undefined:
            return Undefined
        else:
            value = complete(value)
            if value is Undefined:
                return Undefined
        result[response_name] = value
    return result


def _completed_list(complete: Completion, item_nullable: bool, value: Any) -> Any:
    # Any other iterable graphql-core takes too, or refuses with its own error.
    if type(value) is not list:
        return Undefined
    items = []
    for item in value:
        if item is None:
            if not item_nullable:
                return Undefined
        else:
            item = complete(item)
            if item is Undefined:
                return Undefined
        items.append(item)
    return items


def _named(type_name: str, _row: Any) -> str:
    return type_name


def _same(value: Any) -> Any:
    return value


def _fixed(field_details_list: Any, fragments: Mapping[str, Any]) -> bool:
    """Whether the fields' selection is the same whatever the request's variables: no
    directive on anything in it (fragments followed), nothing deferred, no fragment
    arguments."""
    pending = []
    for details in field_details_list:
        if details.defer_usage is not None or details.fragment_variable_values is not None:
            return False
        pending.append(details.node)
    seen: set[str] = set()
    while pending:
        node = pending.pop()
        if node.directives:
            return False
        if isinstance(node, FragmentSpreadNode):
            name = node.name.value
            fragment = fragments.get(name)
            if fragment is None or fragment.variable_signatures or node.arguments:
                return False
            if name not in seen:
                seen.add(name)
                pending.append(fragment.definition)
            continue
        if node.selection_set is not None:
            pending.extend(node.selection_set.selections)
    return True


def _in_order(grouped_field_set: Any, plain: dict, executed: dict) -> dict[str, Any]:
    """The object's fields in the document's order, as the answer gives them."""
    if not plain:
        return executed
    return {
        name: plain[name] if name in plain else executed[name]
        for name in grouped_field_set
        if name in plain or name in executed
    }

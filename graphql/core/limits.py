"""What one document may ask: its depth and its cost, measured before anything else walks it.

The cost of a document is the number of values its answer can hold: every field costs one for
each time it can appear, so what is selected under a list counts once per item. A list field's
size comes from the SDL: the `first` it is asked for (its default page when absent), or the
`@listSize(assumedSize:)` it declares; `edges` repeat their connection's page and add nothing.
Introspection counts too: a `__schema` costs what a full introspection of this schema answers
(some 20,000 values) and a `__type` what the largest type's does, whatever is selected under
them, so one full introspection passes and a document of a few `__schema` aliases does not.

Both measures are linear in the document: a fragment is measured once and its numbers reused
wherever it is spread (a fragment's cost under a list of n items is n times its own), so a
"fragment bomb" whose expansion is astronomically large is measured, and refused, in
microseconds. The gateway runs this before graphql-core's own validation, some of whose rules
(overlapping fields) do walk the expansion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_introspection_query,
    get_named_type,
    get_nullable_type,
    graphql_sync,
    is_list_type,
)
from villagelink.graphql.core.directives import directive_arguments
from villagelink.graphql.core.errors import GRAPHQL_VALIDATION_FAILED, DeadlineExceeded
from villagelink.graphql.core.pagination import DEFAULT_PAGE_SIZE

LIST_SIZE = "listSize"
CONNECTION_SUFFIX = "Connection"


@dataclass(frozen=True)
class Measure:
    """The cost of a selection under a multiplier of one, and its depth."""

    cost: int
    depth: int


def is_list_field(definition: GraphQLField) -> bool:
    """Whether the field returns many items: a list, or a connection over a list."""
    returned = get_nullable_type(definition.type)
    return is_list_type(returned) or get_named_type(returned).name.endswith(CONNECTION_SUFFIX)


def is_connection_edges(parent_name: str, name: str) -> bool:
    return parent_name.endswith(CONNECTION_SUFFIX) and name == "edges"


def assumed_size(definition: GraphQLField) -> int | None:
    """The `@listSize(assumedSize:)` the SDL declares on the field, if any."""
    given = directive_arguments(definition, LIST_SIZE)
    size = given.get("assumedSize") if given else None
    return int(size) if size is not None else None


@cache
def _introspection_sizes(schema: GraphQLSchema) -> dict[str, int]:
    """The values a full introspection of the schema answers, and those of its largest type:
    measured once by running it, so the cost grows with the schema by itself."""
    answer = graphql_sync(schema, get_introspection_query()).data or {}
    types = answer["__schema"]["types"]
    return {"__schema": _values(answer), "__type": max(_values(named) for named in types)}


def _values(answer: Any) -> int:
    if isinstance(answer, dict):
        return sum(_values(value) for value in answer.values()) or 1
    if isinstance(answer, list):
        return sum(_values(value) for value in answer) or 1
    return 1


@dataclass
class _Analysis:
    schema: GraphQLSchema
    variables: dict[str, Any]
    max_page_size: int
    saturate: int
    fragments: dict[str, FragmentDefinitionNode]
    measured: dict[str, Measure] = field(default_factory=dict)
    visiting: set[str] = field(default_factory=set)

    def selection(self, selection_set: SelectionSetNode | None, parent: Any) -> Measure:
        if selection_set is None:
            return Measure(0, 0)
        cost = depth = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                measure = self.field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                measure = self.selection(selection.selection_set, inner)
            elif isinstance(selection, FragmentSpreadNode):
                measure = self.fragment(selection.name.value)
            else:
                continue
            # Saturating: past the limit the exact number does not matter, and a chain of
            # large pages must not become a number with thousands of digits.
            cost = min(cost + measure.cost, self.saturate)
            depth = max(depth, measure.depth)
        return Measure(cost, depth)

    def fragment(self, name: str) -> Measure:
        if name in self.measured:
            return self.measured[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.visiting:
            # Unknown fragments and cycles are the standard rules' to report.
            return Measure(0, 0)
        self.visiting.add(name)
        parent = self.schema.get_type(definition.type_condition.name.value)
        measure = self.selection(definition.selection_set, parent)
        self.visiting.discard(name)
        self.measured[name] = measure
        return measure

    def field(self, node: FieldNode, parent: Any) -> Measure:
        name = node.name.value
        if name in ("__schema", "__type"):
            # Introspection's own types carry no @listSize: its size is the schema's.
            size = _introspection_sizes(self.schema)[name]
            return Measure(min(size, self.saturate), 0)
        fields = getattr(parent, "fields", None) or {}
        definition = fields.get(name)
        if definition is None:
            # `__typename`, or a field the standard rules will refuse: one value.
            return Measure(1, 0 if name.startswith("__") else 1)
        inner = self.selection(node.selection_set, get_named_type(definition.type))
        items = self.items(node, parent.name, definition)
        return Measure(min(items * (1 + inner.cost), self.saturate), 1 + inner.depth)

    def items(self, node: FieldNode, parent_name: str, definition: GraphQLField) -> int:
        if "first" in definition.args:
            return self.first(node, definition)
        if is_connection_edges(parent_name, node.name.value) or not is_list_field(definition):
            return 1
        # A list field without a declared size is caught by tests/test_query_limits.py; here
        # it counts as a default page rather than as one item.
        return assumed_size(definition) or DEFAULT_PAGE_SIZE

    def first(self, node: FieldNode, definition: GraphQLField) -> int:
        """The page asked for; the default page when absent; the largest when it cannot be
        read (the standard rules or the resolver refuse such a value later)."""
        argument = next((a for a in node.arguments or () if a.name.value == "first"), None)
        if argument is None:
            default = definition.args["first"].default_value
            return default if isinstance(default, int) else DEFAULT_PAGE_SIZE
        value: Any
        if isinstance(argument.value, VariableNode):
            value = self.variables.get(argument.value.name.value)
            if value is None:
                return DEFAULT_PAGE_SIZE
        elif isinstance(argument.value, IntValueNode):
            value = int(argument.value.value)
        else:
            value = None
        if type(value) is not int or not 0 <= value <= self.max_page_size:
            return self.max_page_size
        return value


def measure(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: dict[str, Any] | None,
    *,
    max_page_size: int,
    saturate: int,
) -> list[tuple[OperationDefinitionNode, Measure]]:
    """Each operation's cost and depth, in one linear pass; costs stop counting at `saturate`."""
    analysis = _Analysis(
        schema=schema,
        variables=variables or {},
        max_page_size=max_page_size,
        saturate=saturate,
        fragments={
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        },
    )
    return [
        (
            operation,
            analysis.selection(operation.selection_set, schema.get_root_type(operation.operation)),
        )
        for operation in document.definitions
        if isinstance(operation, OperationDefinitionNode)
    ]


@dataclass(frozen=True)
class Checked:
    """The depth and cost errors of a document, and each operation's cost (saturated at
    the limit plus one): what the caller's budget is charged (graphql/core/budget.py)."""

    errors: list[GraphQLError]
    costs: dict[OperationDefinitionNode, int]


def check_limits(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: dict[str, Any] | None,
    *,
    max_depth: int,
    max_cost: int,
    max_page_size: int,
) -> Checked:
    """The depth and cost errors of each operation in the document, and their costs."""
    errors = []
    costs = {}
    for operation, measured in measure(
        schema, document, variables, max_page_size=max_page_size, saturate=max_cost + 1
    ):
        costs[operation] = measured.cost
        if measured.depth > max_depth:
            errors.append(
                _refusal(
                    f"query depth {measured.depth} exceeds the limit of {max_depth}", operation
                )
            )
        if measured.cost > max_cost:
            errors.append(_refusal(f"query cost exceeds the limit of {max_cost}", operation))
    return Checked(errors, costs)


def _refusal(message: str, node: OperationDefinitionNode) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": GRAPHQL_VALIDATION_FAILED})


class Deadline:
    """Execution middleware: once the request's time is up, every field still to resolve fails
    with DEADLINE_EXCEEDED instead of starting more work. Each SQL statement is bounded by the
    statement timeout; this bounds how many of them one request runs."""

    def __init__(self, milliseconds: int) -> None:
        self.milliseconds = milliseconds
        self.ends = time.monotonic() + milliseconds / 1000

    def resolve(self, next_: Any, root: Any, info: Any, **arguments: Any) -> Any:
        if time.monotonic() > self.ends:
            raise DeadlineExceeded(f"请求超过 {self.milliseconds} 毫秒的时限，未完成的字段已放弃")
        return next_(root, info, **arguments)

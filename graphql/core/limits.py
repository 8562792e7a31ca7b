"""Validation rules that bound what one document may ask: depth and cost."""

from __future__ import annotations

from typing import Any

from ariadne.validation import cost_validator

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from villagelink.graphql.core.errors import GRAPHQL_VALIDATION_FAILED

# Connections cost their page size; everything else costs one per field.
COST_MAP: dict[str, dict[str, Any]] = {
    "Village": {
        "residents": {"complexity": 1, "multipliers": ["first"]},
        "households": {"complexity": 1, "multipliers": ["first"]},
        "grids": {"complexity": 1, "multipliers": ["first"]},
        "serviceItems": {"complexity": 1, "multipliers": ["first"]},
        "serviceSlots": {"complexity": 1, "multipliers": ["first"]},
        "serviceOrders": {"complexity": 1, "multipliers": ["first"]},
        "notices": {"complexity": 1, "multipliers": ["first"]},
        "activities": {"complexity": 1, "multipliers": ["first"]},
        "volunteerTeams": {"complexity": 1, "multipliers": ["first"]},
        "requests": {"complexity": 1, "multipliers": ["first"]},
        "actionLists": {"complexity": 1, "multipliers": ["first"]},
    },
    "Household": {"members": {"complexity": 8}},
    "Grid": {"staff": {"complexity": 5}},
    "ServiceOrder": {"timeline": {"complexity": 5}},
    "Notice": {"attachments": {"complexity": 3}},
    "Resident": {"pointsLedger": {"complexity": 1, "multipliers": ["first"]}},
    "Activity": {"occurrences": {"complexity": 10}},
    "ActivityOccurrence": {"signUps": {"complexity": 20}},
    "VolunteerTeam": {"members": {"complexity": 10}},
    "Request": {"timeline": {"complexity": 5}, "photos": {"complexity": 3}},
    "ActionList": {"requests": {"complexity": 20}},
    "Query": {
        "webhookSubscriptions": {"complexity": 1, "multipliers": ["first"]},
        "devices": {"complexity": 1, "multipliers": ["first"]},
    },
    "WebhookSubscription": {"deliveries": {"complexity": 1, "multipliers": ["first"]}},
    "WebhookDelivery": {"attempts": {"complexity": 8}},
}


def depth_limit(max_depth: int) -> type[ValidationRule]:
    class DepthLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args):
            fragments = {
                d.name.value: d
                for d in self.context.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            depth = _depth(node.selection_set, fragments, 0, set())
            if depth > max_depth:
                self.report_error(
                    GraphQLError(
                        f"query depth {depth} exceeds the limit of {max_depth}",
                        node,
                        extensions={"code": GRAPHQL_VALIDATION_FAILED},
                    )
                )

    return DepthLimit


def _depth(
    selection_set: SelectionSetNode | None, fragments: dict, depth: int, visiting: set[str]
) -> int:
    if selection_set is None:
        return depth
    deepest = depth
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue  # introspection has its own shape; it is not user data
            deepest = max(deepest, _depth(selection.selection_set, fragments, depth + 1, visiting))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection.selection_set, fragments, depth, visiting))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in visiting or name not in fragments:
                continue  # cycles and unknown fragments are reported by the standard rules
            deepest = max(
                deepest,
                _depth(fragments[name].selection_set, fragments, depth, visiting | {name}),
            )
    return deepest


def limit_rules(max_depth: int, max_cost: int, variables: dict | None) -> list[type]:
    return [
        depth_limit(max_depth),
        cost_validator(
            maximum_cost=max_cost, default_cost=1, variables=variables, cost_map=COST_MAP
        ),
    ]

"""The state machines of requests and action lists: which step may follow which.

Every action that changes a state asks this module first, so these two tables
are the whole of the rules (and the tests walk every state against every step).
"""

from __future__ import annotations

from villagelink.tenants.requests.tables import (
    ACCEPTED,
    ASSIGNED,
    CANCELLED,
    CLOSED,
    DONE,
    IN_PROGRESS,
    PLANNED,
    REJECTED,
    REOPENED,
    RESOLVED,
    SUBMITTED,
    UNDERWAY,
)
from villagelink.tenants.user_errors import INVALID_TRANSITION, ActionFailed, refused

ACCEPT = "accept"
REJECT = "reject"
ASSIGN = "assign"
START = "start"
RESOLVE = "resolve"
CLOSE = "close"
REOPEN = "reopen"
# The resident's rating: 3-5 closes the request, 1-2 reopens it.
RATE_SATISFIED = "rate_satisfied"
RATE_UNSATISFIED = "rate_unsatisfied"
REQUEST_STEPS = (
    ACCEPT,
    REJECT,
    ASSIGN,
    START,
    RESOLVE,
    CLOSE,
    REOPEN,
    RATE_SATISFIED,
    RATE_UNSATISFIED,
)

# A request's state -> the steps it may take there -> the state each leads to.
# Assigning an assigned request reassigns it; work in progress may be handed to
# someone else. A rejection is final. Only a resolved request is rated; a closed
# one may still be reopened by the village.
REQUEST_TRANSITIONS: dict[str, dict[str, str]] = {
    SUBMITTED: {ACCEPT: ACCEPTED, REJECT: REJECTED},
    ACCEPTED: {ASSIGN: ASSIGNED, REJECT: REJECTED},
    ASSIGNED: {ASSIGN: ASSIGNED, START: IN_PROGRESS},
    IN_PROGRESS: {ASSIGN: ASSIGNED, RESOLVE: RESOLVED},
    RESOLVED: {
        CLOSE: CLOSED,
        REOPEN: REOPENED,
        RATE_SATISFIED: CLOSED,
        RATE_UNSATISFIED: REOPENED,
    },
    CLOSED: {REOPEN: REOPENED},
    REJECTED: {},
    REOPENED: {ASSIGN: ASSIGNED, START: IN_PROGRESS},
}

# An action list's status -> the statuses it may move to; done and cancelled are final.
ACTION_LIST_TRANSITIONS: dict[str, frozenset[str]] = {
    PLANNED: frozenset({UNDERWAY, CANCELLED}),
    UNDERWAY: frozenset({DONE, CANCELLED}),
    DONE: frozenset(),
    CANCELLED: frozenset(),
}

TRANSITION_REFUSED = "当前状态不允许此操作"


def _refused() -> ActionFailed:
    return refused("state", TRANSITION_REFUSED, INVALID_TRANSITION)


def request_step(current: str, step: str) -> str:
    """The state `step` leads to from `current`; refused (INVALID_TRANSITION) if none."""
    target = REQUEST_TRANSITIONS[current].get(step)
    if target is None:
        raise _refused()
    return target


def require_action_list_transition(current: str, target: str) -> None:
    if target not in ACTION_LIST_TRANSITIONS[current]:
        raise _refused()


def require_action_list_editable(status: str) -> None:
    """A done or cancelled list is a record of what happened: it no longer changes."""
    if not ACTION_LIST_TRANSITIONS[status]:
        raise _refused()

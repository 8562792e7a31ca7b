"""The demo region keeps the domains' rules: every state it wrote is one the domain's
own state machine reaches from where a record starts, in as many steps as its version
counts; places, waitlists and slots are recounted against their capacity; points
against what check-in awards and what the ledger sums to.

The demo writes its history in bulk (tenants/demo/affairs.py says why), so these checks
recompute each rule from the written rows instead of trusting the writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
from sqlalchemy import text

from villagelink.platform.db import Database
from villagelink.tenants.activities.actions import TRANSITIONS as ACTIVITY_TRANSITIONS
from villagelink.tenants.activities.places import HOLDING_A_PLACE, WAITLISTED
from villagelink.tenants.activities.points import (
    DEFAULT_POINTS_PER_VOLUNTEER_HOUR,
    balances,
    session_hours,
    volunteer_points,
    volunteer_reason,
)
from villagelink.tenants.demo.plans import DEMO_VILLAGES
from villagelink.tenants.mediation.actions import NEXT_STATUSES, STATUS_AFTER
from villagelink.tenants.notices.actions import TRANSITIONS as NOTICE_TRANSITIONS
from villagelink.tenants.requests.states import ACTION_LIST_TRANSITIONS, REQUEST_TRANSITIONS
from villagelink.tenants.sensing.actions import ALERT_TRANSITIONS
from villagelink.tenants.service_orders.actions import TRANSITIONS as ORDER_TRANSITIONS

SLUGS = [plan.slug for plan in DEMO_VILLAGES]


def rows(db: Database, slug: str, sql: str) -> list:
    with db.tenant(slug) as conn:
        return conn.execute(text(sql)).all()


def reachable(start: str, following: Callable[[str], Iterable[str]]) -> dict[int, set[str]]:
    """The states a state machine is in after exactly n steps from `start`, for each n
    up to sixteen (more than any seeded record takes)."""
    found = {0: {start}}
    for n in range(1, 17):
        found[n] = {after for state in found[n - 1] for after in following(state)}
    return found


@pytest.mark.parametrize("slug", SLUGS)
def test_activity_states_and_versions_follow_their_transitions(
    db: Database, demo_region, slug: str
) -> None:
    reach = reachable(
        "draft",
        lambda state: [to for sources, to, _ in ACTIVITY_TRANSITIONS.values() if state in sources],
    )
    activities = rows(db, slug, "SELECT state, version FROM activities")
    assert {a.state for a in activities} == {"draft", "published", "cancelled", "finished"}
    # Created (1), then one version per step; no activity was edited.
    assert all(a.state in reach[a.version - 1] for a in activities)


@pytest.mark.parametrize("slug", SLUGS)
def test_places_and_waitlists_recount_to_capacity(db: Database, demo_region, slug: str) -> None:
    sign_ups = rows(
        db,
        slug,
        "SELECT o.id AS occurrence, o.capacity, s.state, s.signed_up_at "
        "FROM activity_sign_ups s JOIN activity_occurrences o ON o.id = s.occurrence_id",
    )
    by_occurrence: dict[int, list] = {}
    for s in sign_ups:
        by_occurrence.setdefault(s.occurrence, []).append(s)
    waited = 0
    for found in by_occurrence.values():
        holding = [s for s in found if s.state in HOLDING_A_PLACE]
        waiting = [s for s in found if s.state == WAITLISTED]
        assert len(holding) <= found[0].capacity
        if waiting:
            waited += 1
            # Nobody waits for a free place, and the queue is first come, first served:
            # whoever holds a place signed up before anyone still waiting.
            assert len(holding) == found[0].capacity
            assert max(s.signed_up_at for s in holding) < min(s.signed_up_at for s in waiting)
    assert waited > 0


@pytest.mark.parametrize("slug", SLUGS)
def test_points_are_what_check_in_awards_and_balances_sum_the_ledger(
    db: Database, demo_region, slug: str
) -> None:
    earned = rows(
        db,
        slug,
        "SELECT p.points, p.reason, s.volunteer_hours, o.starts_at, o.ends_at, a.title "
        "FROM points_ledger p JOIN activity_sign_ups s ON s.id = p.source_id "
        "JOIN activity_occurrences o ON o.id = s.occurrence_id "
        "JOIN activities a ON a.id = o.activity_id WHERE p.source_type = 'ActivitySignUp'",
    )
    assert earned
    for e in earned:
        assert e.volunteer_hours == session_hours(e.starts_at, e.ends_at)
        assert e.points == volunteer_points(e.volunteer_hours, DEFAULT_POINTS_PER_VOLUNTEER_HOUR)
        assert e.reason == volunteer_reason(e.title, e.volunteer_hours)
    ledger = rows(db, slug, "SELECT resident_id, points FROM points_ledger ORDER BY id")
    sums: dict[int, int] = {}
    for resident, points in ledger:
        sums[resident] = sums.get(resident, 0) + points
        assert sums[resident] >= 0  # a redemption never went beyond the balance
    with db.tenant(slug) as conn:
        assert balances(conn, list(sums)) == sums


@pytest.mark.parametrize("slug", SLUGS)
def test_slots_recount_to_their_bookings(db: Database, demo_region, slug: str) -> None:
    slots = rows(
        db,
        slug,
        "SELECT s.capacity, s.booked, count(o.id) FILTER (WHERE o.state <> 'cancelled') AS live "
        "FROM service_slots s LEFT JOIN service_orders o ON o.service_slot_id = s.id "
        "GROUP BY s.id",
    )
    assert slots and all(s.booked == s.live <= s.capacity for s in slots)
    reach = reachable(
        "ordered",
        lambda state: [to for to, sources in ORDER_TRANSITIONS.items() if state in sources],
    )
    orders = rows(
        db,
        slug,
        "SELECT o.state, o.version, count(e.id) AS steps FROM service_orders o "
        "JOIN service_order_events e ON e.service_order_id = o.id GROUP BY o.id",
    )
    # Ordered (1, its first timeline entry), then a version and an entry per step.
    assert orders and all(o.version == o.steps and o.state in reach[o.steps - 1] for o in orders)


@pytest.mark.parametrize("slug", SLUGS)
def test_requests_and_action_lists_are_where_their_machines_lead(
    db: Database, demo_region, slug: str
) -> None:
    reach = reachable("submitted", lambda state: REQUEST_TRANSITIONS[state].values())
    requests = rows(
        db,
        slug,
        "SELECT r.state, count(e.id) AS steps FROM requests r JOIN request_events e "
        "ON e.request_id = r.id AND e.action NOT IN ('create', 'escalate', 'add_to_action_list') "
        "GROUP BY r.id",
    )
    assert requests and all(r.state in reach[r.steps] for r in requests)
    lists = reachable("planned", lambda status: ACTION_LIST_TRANSITIONS[status])
    found = rows(db, slug, "SELECT status, version FROM action_lists")
    assert {a.status for a in found} == {"planned", "in_progress", "done", "cancelled"}
    assert all(a.status in lists[a.version - 1] for a in found)


@pytest.mark.parametrize("slug", SLUGS)
def test_notices_and_cases_are_where_their_transitions_lead(
    db: Database, demo_region, slug: str
) -> None:
    reach = reachable(
        "draft",
        lambda state: [to for start, to, _ in NOTICE_TRANSITIONS.values() if start == state],
    )
    notices = rows(db, slug, "SELECT state, version FROM notices")
    assert {n.state for n in notices} == {"draft", "published", "withdrawn"}
    assert all(n.state in reach[n.version - 1] for n in notices)
    statuses = reachable("registered", lambda status: NEXT_STATUSES.get(status, ()))
    cases = rows(
        db,
        slug,
        "SELECT c.status, c.outcome, c.version, count(s.id) AS sessions FROM mediation_cases c "
        "LEFT JOIN mediation_sessions s ON s.case_id = c.id GROUP BY c.id",
    )
    assert cases
    for case in cases:
        # Registered (1), then a version for each step and each session.
        assert case.status in statuses[case.version - 1 - case.sessions]
        if case.outcome is not None:
            assert case.status == STATUS_AFTER[case.outcome]


@pytest.mark.parametrize("slug", SLUGS)
def test_alert_timelines_take_the_alerts_steps(db: Database, demo_region, slug: str) -> None:
    alerts = {a.id: a for a in rows(db, slug, "SELECT id, state, version FROM alerts")}
    events = rows(
        db,
        slug,
        "SELECT alert_id, action, from_state, to_state FROM alert_events ORDER BY created_at, id",
    )
    timelines: dict[int, list] = {}
    for event in events:
        timelines.setdefault(event.alert_id, []).append(event)
    assert alerts and set(timelines) == set(alerts)
    for alert_id, timeline in timelines.items():
        for event in timeline:
            if event.action in ALERT_TRANSITIONS.get(event.from_state, {}):
                assert ALERT_TRANSITIONS[event.from_state][event.action] == event.to_state
        # Closed by a step of the state machine, which leaves the alert final.
        assert timeline[-1].action in ALERT_TRANSITIONS[timeline[-1].from_state]
        assert ALERT_TRANSITIONS[timeline[-1].to_state] == {}
        assert timeline[-1].to_state == alerts[alert_id].state
        assert alerts[alert_id].version == len(timeline)

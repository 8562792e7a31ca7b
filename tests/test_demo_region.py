"""The demo region generator: five villages at docs/domain.md's sizes, seeded once,
with ninety days of affairs (requests, activities, service orders, notices, mediation).

The seeder owns region `nanhe` and fixed village slugs, so the region is seeded
once per run (small villages, the `demo_region` fixture) and every test only reads it;
tests that take the seeded affairs further through the actions use a fresh village.
"""

from __future__ import annotations

import statistics
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from villagelink.platform import models as pm
from villagelink.platform.db import Database
from villagelink.tenants import clock, provisioning
from villagelink.tenants.activities.actions import do_cancel_sign_up
from villagelink.tenants.activities.points import do_redeem_points
from villagelink.tenants.clock import day_start
from villagelink.tenants.demo.affairs import build_affairs, write_affairs
from villagelink.tenants.demo.plans import (
    DEFAULT_SEED,
    DEMO_CLIENT_VILLAGES,
    DEMO_VILLAGES,
    REGION_ID,
    demo_grid_worker_subject,
)
from villagelink.tenants.demo.region import demo_plans, seed_demo_region
from villagelink.tenants.demo.residents import AGES_AS_OF, build_village, write_village
from villagelink.tenants.demo.village import DEMO_ACTOR
from villagelink.tenants.id_numbers import birth_date, gender, has_valid_checksum
from villagelink.tenants.mediation.actions import (
    do_conclude_mediation,
    do_create_mediation_case,
)
from villagelink.tenants.notices.actions import do_publish_notice, do_withdraw_notice
from villagelink.tenants.notices.queries import visible
from villagelink.tenants.notices.tables import notices
from villagelink.tenants.requests.actions import do_close_request, do_escalate_overdue
from villagelink.tenants.requests.queries import WHOLE_VILLAGE, auto_assignee
from villagelink.tenants.requests.states import REQUEST_TRANSITIONS
from villagelink.tenants.requests.tables import OPEN_STATES
from villagelink.tenants.service_orders.actions import TRANSITIONS as ORDER_TRANSITIONS
from villagelink.tenants.service_orders.actions import do_order_service
from villagelink.tenants.user_errors import ActionFailed

from .conftest import new_village

SLUGS = [plan.slug for plan in DEMO_VILLAGES]
MOBILE_PREFIXES = ("13", "14", "15", "16", "17", "18", "19")
AFFAIRS_TABLES = (
    "requests",
    "request_events",
    "action_lists",
    "action_list_requests",
    "activities",
    "activity_occurrences",
    "activity_sign_ups",
    "volunteer_teams",
    "volunteer_team_members",
    "points_ledger",
    "service_items",
    "service_slots",
    "service_orders",
    "service_order_events",
    "notices",
    "notice_reads",
    "mediation_cases",
    "mediation_parties",
    "mediation_sessions",
    "outbox",
    "devices",
    "health_records",
    "health_readings",
    "latest_vitals",
    "alerts",
    "alert_events",
)


@pytest.fixture
def region(demo_region):
    """The demo region as tests/conftest.py seeds it once per run (small villages)."""
    return demo_region


def rows(db: Database, slug: str, sql: str) -> list:
    with db.tenant(slug) as conn:
        return conn.execute(text(sql)).all()


def age(born: date) -> int:
    as_of = AGES_AS_OF
    return as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))


def residents_of(db: Database, slug: str) -> list:
    return rows(
        db,
        slug,
        "SELECT id, name, gender, birth_date, id_number, phone, household_id, "
        "relation_to_head, grid_id FROM residents",
    )


def tag_counts(db: Database, slug: str) -> Counter:
    return Counter(dict(rows(db, slug, "SELECT tag, count(*) FROM resident_tags GROUP BY tag")))


def test_five_villages_linked_in_a_ring(db: Database, region) -> None:
    assert region.seeded is True
    villages = [v for v in provisioning.list_villages(db) if v.region_id == REGION_ID]
    assert sorted(v.slug for v in villages) == sorted(SLUGS)
    assert all(v.name for v in villages)
    with db.platform() as conn:
        links = conn.execute(
            select(pm.neighbour_links.c.village_a, pm.neighbour_links.c.village_b).where(
                pm.neighbour_links.c.village_a.in_(SLUGS)
            )
        ).all()
    assert len(links) == 5
    assert all(a < b for a, b in links)
    assert Counter(slug for link in links for slug in link) == Counter({s: 2 for s in SLUGS})


def test_demo_integrator_client(db: Database, region) -> None:
    with db.platform() as conn:
        client = (
            conn.execute(
                select(pm.api_clients).where(pm.api_clients.c.client_id == "demo-integrator")
            )
            .mappings()
            .one()
        )
    assert client["name"] == "示例集成方（设备平台）"
    assert client["scopes"] == ["residents:read", "notices:read", "devices:write", "alerts:read"]
    assert len(client["villages"]) == 2 and set(client["villages"]) <= set(SLUGS)


def _row_counts(db: Database) -> dict[str, int]:
    counts = {}
    for slug in SLUGS:
        for table in (
            "grids",
            "grid_staff",
            "buildings",
            "households",
            "residents",
            "resident_tags",
            *AFFAIRS_TABLES,
        ):
            counts[f"{slug}.{table}"] = rows(db, slug, f"SELECT count(*) FROM {table}")[0][0]
    with db.platform() as conn:
        for table in (pm.tenants, pm.neighbour_links, pm.api_clients):
            counts[table.name] = conn.execute(select(func.count()).select_from(table)).scalar()
    return counts


def test_second_seed_changes_nothing(db: Database, region) -> None:
    before = _row_counts(db)
    assert (
        seed_demo_region(db, residents_per_village=region.residents_per_village, progress=False)
        is False
    )
    assert _row_counts(db) == before


@pytest.mark.parametrize("slug", SLUGS)
def test_residents_at_planned_proportions(db: Database, region, slug: str) -> None:
    residents = residents_of(db, slug)
    assert abs(len(residents) - region.residents_per_village) <= 1
    elderly = sum(age(r.birth_date) >= 60 for r in residents) / len(residents)
    assert 0.25 <= elderly <= 0.40
    men = sum(r.gender == "male" for r in residents) / len(residents)
    assert 0.4 <= men <= 0.6


@pytest.mark.parametrize("slug", SLUGS)
def test_id_numbers_and_phones_are_consistent(db: Database, region, slug: str) -> None:
    residents = residents_of(db, slug)
    for r in residents:
        assert has_valid_checksum(r.id_number), r.id_number
        assert birth_date(r.id_number) == r.birth_date
        assert gender(r.id_number) == r.gender
        if r.phone is not None:
            assert len(r.phone) == 11 and r.phone.isdigit() and r.phone[:2] in MOBILE_PREFIXES
        if age(r.birth_date) < 14:
            assert r.phone is None
    adults = [r for r in residents if 18 <= age(r.birth_date) < 75]
    assert sum(r.phone is not None for r in adults) / len(adults) > 0.8


def test_id_numbers_unique_across_the_region(db: Database, region) -> None:
    numbers = [r.id_number for slug in SLUGS for r in residents_of(db, slug)]
    assert len(numbers) == len(set(numbers))


@pytest.mark.parametrize("slug", SLUGS)
def test_households(db: Database, region, slug: str) -> None:
    residents = residents_of(db, slug)
    households = rows(db, slug, "SELECT id, head_resident_id, grid_id, address FROM households")
    sizes = Counter(r.household_id for r in residents)
    assert set(sizes) == {h.id for h in households}
    assert 2.2 <= statistics.mean(sizes.values()) <= 3.2
    assert max(sizes.values()) <= 8
    by_id = {r.id: r for r in residents}
    heads = Counter(r.household_id for r in residents if r.relation_to_head == "head")
    for h in households:
        head = by_id[h.head_resident_id]
        assert head.household_id == h.id and head.relation_to_head == "head"
        assert heads[h.id] == 1
        assert h.address.endswith("室") and "号楼" in h.address and "单元" in h.address


@pytest.mark.parametrize("slug", SLUGS)
def test_relations_agree_with_ages(db: Database, region, slug: str) -> None:
    residents = residents_of(db, slug)
    heads = {r.household_id: r for r in residents if r.relation_to_head == "head"}
    for r in residents:
        gap = age(heads[r.household_id].birth_date) - age(r.birth_date)
        if r.relation_to_head == "child":
            assert gap >= 18, r
        elif r.relation_to_head == "grandchild":
            assert gap >= 36, r
        elif r.relation_to_head == "parent":
            assert gap <= -18, r
        elif r.relation_to_head == "spouse":
            assert r.gender != heads[r.household_id].gender


@pytest.mark.parametrize("slug", SLUGS)
def test_grids(db: Database, region, slug: str) -> None:
    grids = {g.id: g for g in rows(db, slug, "SELECT id, parent_id, level FROM grids")}
    levels = Counter(g.level for g in grids.values())
    assert levels["community"] == 1 and levels["large"] >= 1 and levels["micro"] >= 1
    for g in grids.values():
        parent_level = grids[g.parent_id].level if g.parent_id else None
        assert parent_level == {"community": None, "large": "community", "micro": "large"}[g.level]
    households = {h.id: h.grid_id for h in rows(db, slug, "SELECT id, grid_id FROM households")}
    for r in residents_of(db, slug):
        assert grids[r.grid_id].level == "micro"
        assert r.grid_id == households[r.household_id]
    mismatched = rows(
        db,
        slug,
        "SELECT count(*) FROM households h JOIN buildings b "
        "ON b.id = h.building_id WHERE b.grid_id <> h.grid_id",
    )
    assert mismatched[0][0] == 0


@pytest.mark.parametrize("slug", SLUGS)
def test_three_tiers_of_grid_staff(db: Database, region, slug: str) -> None:
    assigned = rows(
        db,
        slug,
        "SELECT s.tier, s.account_sub, g.level FROM grid_staff s "
        "JOIN grid_assignments a ON a.staff_id = s.id "
        "JOIN grids g ON g.id = a.grid_id",
    )
    staff = rows(db, slug, "SELECT tier, count(*) FROM grid_staff GROUP BY tier")
    tiers = dict(staff)
    assert tiers["grid_chief"] == 1 and tiers["grid_worker"] >= 1
    assert tiers["micro_grid_worker"] >= 1
    expected_level = {
        "grid_chief": "community",
        "grid_worker": "large",
        "micro_grid_worker": "micro",
    }
    assert all(level == expected_level[tier] for tier, _, level in assigned)
    demo_worker = [a for a in assigned if a.account_sub == demo_grid_worker_subject(slug)]
    assert demo_worker and all(a.tier == "micro_grid_worker" for a in demo_worker)


@pytest.mark.parametrize("slug", SLUGS)
def test_elderly_living_alone(db: Database, region, slug: str) -> None:
    residents = residents_of(db, slug)
    sizes = Counter(r.household_id for r in residents)
    alone = {r.id for r in residents if age(r.birth_date) >= 60 and sizes[r.household_id] == 1}
    tagged = {
        row.resident_id
        for row in rows(
            db, slug, "SELECT resident_id FROM resident_tags WHERE tag = 'elderly_living_alone'"
        )
    }
    assert tagged == alone


@pytest.mark.parametrize("slug", SLUGS)
def test_tag_shares(db: Database, region, slug: str) -> None:
    tags = tag_counts(db, slug)
    share = {tag: count / region.residents_per_village for tag, count in tags.items()}
    assert 0.02 <= share["disabled"] <= 0.07
    assert 0.03 <= share["key_focus"] <= 0.09
    assert 0.03 <= share["party_member"] <= 0.08
    assert 0.04 <= share["volunteer"] <= 0.10
    assert 0.06 <= share["floating_population"] <= 0.18
    assert share["low_income"] > 0
    relocated = share.get("relocated_villager", 0)
    assert (0.7 <= relocated <= 0.9) if slug == "taoyuan" else relocated <= 0.06
    levels = rows(db, slug, "SELECT level FROM resident_tags WHERE tag = 'disabled'")
    assert all(1 <= level <= 4 for (level,) in levels)


def test_low_income_tags_whole_households(db: Database, region) -> None:
    for slug in SLUGS:
        untagged = rows(
            db,
            slug,
            """
            SELECT count(*) FROM residents r
            WHERE NOT EXISTS (SELECT 1 FROM resident_tags t
                              WHERE t.resident_id = r.id AND t.tag = 'low_income')
              AND r.household_id IN (SELECT r2.household_id FROM residents r2
                                     JOIN resident_tags t2 ON t2.resident_id = r2.id
                                     WHERE t2.tag = 'low_income')""",
        )
        assert untagged[0][0] == 0


def test_build_village_is_deterministic() -> None:
    plan = demo_plans(250)[0]
    assert build_village(plan, 7) == build_village(plan, 7)
    assert build_village(plan, 7) != build_village(plan, 8)


@pytest.mark.slow
def test_full_size_village_shares() -> None:
    plan = DEMO_VILLAGES[-1]
    assert plan.residents >= 2000
    village = build_village(plan, DEFAULT_SEED)
    residents = village.residents
    n = len(residents)
    assert n == plan.residents
    ages = [age(r.birth_date) for r in residents]
    assert 0.30 <= sum(a >= 60 for a in ages) / n <= 0.38
    assert 0.12 <= sum(a < 15 for a in ages) / n <= 0.25
    sizes = Counter(r.household for r in residents)
    assert 2.5 <= statistics.mean(sizes.values()) <= 2.9
    assert max(sizes.values()) <= 6
    assert sum(size <= 2 for size in sizes.values()) / len(sizes) > 0.4
    assert 0.45 <= sum(r.gender == "male" for r in residents) / n <= 0.55

    tags = Counter(t.tag for t in village.tags)
    adults = sum(a >= 18 for a in ages)
    assert 0.04 <= tags["disabled"] / n <= 0.05
    assert 0.055 <= tags["key_focus"] / n <= 0.065
    assert 0.06 <= tags["party_member"] / adults <= 0.08
    assert 0.08 <= tags["volunteer"] / sum(16 <= a <= 75 for a in ages) <= 0.10
    assert 0.75 <= tags["relocated_villager"] / n <= 0.85
    assert 0.08 <= tags["floating_population"] / n <= 0.15
    low_income = {residents[t.resident].household for t in village.tags if t.tag == "low_income"}
    assert 0.025 <= len(low_income) / len(sizes) <= 0.035

    levels = Counter(g.level for g in village.grids)
    assert 5 <= levels["large"] <= 9
    assert 30 <= len(sizes) / levels["micro"] <= 60
    tiers = Counter(s.tier for s in village.staff)
    assert tiers["grid_chief"] == 1 and tiers["grid_worker"] >= 3
    assert levels["micro"] / 4 <= tiers["micro_grid_worker"] <= levels["micro"] / 2


# --- affairs -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded_on(db: Database, demo_region) -> dict[str, date]:
    """The day each village's affairs were laid out around, from its seeding's audit entry."""
    with db.platform() as conn:
        entries = conn.execute(
            select(pm.audit_log.c.village, pm.audit_log.c.details).where(
                pm.audit_log.c.action == "demo.seed", pm.audit_log.c.village.in_(SLUGS)
            )
        ).all()
    return {village: date.fromisoformat(details["today"]) for village, details in entries}


def test_every_village_has_one_seed_entry_with_its_counts(db: Database, region, seeded_on):
    assert set(seeded_on) == set(SLUGS)
    with db.platform() as conn:
        entries = (
            conn.execute(
                select(pm.audit_log).where(
                    pm.audit_log.c.action == "demo.seed", pm.audit_log.c.village == "liulin"
                )
            )
            .mappings()
            .all()
        )
    assert len(entries) == 1 and entries[0]["actor_sub"] == "system:demo"
    details = entries[0]["details"]
    assert details["requests"] == rows(db, "liulin", "SELECT count(*) FROM requests")[0][0]
    assert details["residents"] == region.residents_per_village


@pytest.mark.parametrize("slug", SLUGS)
def test_requests_of_the_last_ninety_days(db: Database, region, seeded_on, slug: str) -> None:
    found = rows(
        db,
        slug,
        "SELECT r.state, r.rating, r.created_at, c.code FROM requests r "
        "JOIN request_categories c ON c.id = r.category_id",
    )
    start = day_start(seeded_on[slug])
    assert len(found) == round(region.residents_per_village * 90 / 1000)
    assert all(start - timedelta(days=90) <= r.created_at < start for r in found)
    by_category = Counter(r.code for r in found)
    assert {code for code, _ in by_category.most_common(3)} == {
        "sanitation",
        "property_service",
        "parking",
    }
    states = Counter(r.state for r in found)
    assert 0.5 <= states["closed"] / len(found) <= 0.8
    assert {"submitted", "in_progress", "resolved", "rejected", "reopened"} <= set(states)
    # A satisfied rating closes, an unsatisfied one reopens (群众评单).
    assert all(r.rating >= 3 for r in found if r.state == "closed" and r.rating)
    assert all(r.rating <= 2 for r in found if r.state == "reopened")
    assert sum(r.rating is not None for r in found if r.state == "closed") > states["closed"] / 2


@pytest.mark.parametrize("slug", SLUGS)
def test_some_requests_are_overdue_and_escalated(
    db: Database, region, seeded_on, slug: str
) -> None:
    found = rows(
        db,
        slug,
        "SELECT id, state, due_at, escalation_level, needs_coordination, escalated_at "
        "FROM requests",
    )
    now = datetime.now(UTC)
    assert any(r.state in OPEN_STATES and r.due_at < now for r in found)
    levels = Counter(r.escalation_level for r in found)
    assert levels["village"] >= 1 and levels["region"] >= 1
    assert all(r.needs_coordination == (r.escalation_level == "region") for r in found)
    escalations = rows(
        db,
        slug,
        "SELECT request_id, escalation_level, actor_sub, created_at FROM request_events "
        "WHERE action = 'escalate' ORDER BY id",
    )
    assert {e.actor_sub for e in escalations} == {"system:escalation"}
    reached = {e.request_id: e.escalation_level for e in escalations}
    assert reached == {r.id: r.escalation_level for r in found if r.escalation_level != "grid"}
    # The sweep, run at the seeding day's midnight, finds nothing left to escalate.
    conn = db.begin_tenant(slug)
    try:
        assert do_escalate_overdue(conn, DEMO_ACTOR, slug, day_start(seeded_on[slug])) == []
    finally:
        conn.close()


@pytest.mark.parametrize("slug", SLUGS)
def test_timelines_walk_the_request_state_machine(db: Database, region, slug: str) -> None:
    found = {r.id: r for r in rows(db, slug, "SELECT * FROM requests")}
    events = rows(db, slug, "SELECT * FROM request_events ORDER BY request_id, id")
    by_request: dict[int, list] = {}
    for event in events:
        by_request.setdefault(event.request_id, []).append(event)
    assert set(by_request) == set(found)
    for request_id, timeline in by_request.items():
        request = found[request_id]
        assert (timeline[0].action, timeline[0].to_state) == ("create", "submitted")
        assert timeline[0].created_at == request.created_at
        state, changes = "submitted", 1
        for event in timeline[1:]:
            assert event.created_at >= timeline[0].created_at
            assert event.from_state == state, (request_id, event)
            if event.action in ("escalate", "add_to_action_list", "remove_from_action_list"):
                assert event.to_state == state
            else:
                assert REQUEST_TRANSITIONS[state][event.action] == event.to_state
                state = event.to_state
            changes += event.action != "add_to_action_list"
        assert [e.created_at for e in timeline] == sorted(e.created_at for e in timeline)
        assert state == request.state and changes == request.version
        assert request.updated_at == max(
            e.created_at for e in timeline if e.action != "add_to_action_list"
        )


def test_assignees_are_whom_automatic_assignment_picks(db: Database, region) -> None:
    with db.tenant("liulin") as conn:
        assigned = conn.execute(
            text(
                "SELECT grid_id, assignee_staff_id FROM requests "
                "WHERE assignee_staff_id IS NOT NULL"
            )
        ).all()
        assert assigned
        for grid_id, staff_id in assigned:
            assert auto_assignee(conn, grid_id) == staff_id


@pytest.mark.parametrize("slug", SLUGS)
def test_action_lists_group_requests(db: Database, region, slug: str) -> None:
    lists = rows(db, slug, "SELECT id, title, status FROM action_lists")
    assert {a.status for a in lists} == {"planned", "in_progress", "done", "cancelled"}
    for action_list in lists:
        listed = rows(
            db,
            slug,
            "SELECT e.note FROM action_list_requests l JOIN request_events e "
            f"ON e.request_id = l.request_id AND e.action = 'add_to_action_list' "
            f"WHERE l.action_list_id = {action_list.id}",
        )
        assert listed and {n for (n,) in listed} == {f"纳入行动清单：{action_list.title}"}


@pytest.mark.parametrize("slug", SLUGS)
def test_the_service_day_falls_on_the_twentieth(db: Database, region, slug: str) -> None:
    days = rows(
        db,
        slug,
        "SELECT (o.starts_at AT TIME ZONE 'Asia/Shanghai')::date FROM activity_occurrences o "
        "JOIN activities a ON a.id = o.activity_id WHERE a.kind = 'service_day'",
    )
    assert len(days) >= 6 and all(day.day == 20 for (day,) in days)
    weekend = rows(
        db,
        slug,
        "SELECT extract(isodow FROM o.starts_at AT TIME ZONE 'Asia/Shanghai') FROM "
        "activity_occurrences o JOIN activities a ON a.id = o.activity_id "
        "WHERE a.kind = 'weekend_class'",
    )
    assert weekend and {int(d) for (d,) in weekend} <= {6, 7}
    kinds = dict(rows(db, slug, "SELECT state, count(*) FROM activities GROUP BY state"))
    assert set(kinds) == {"draft", "published", "cancelled", "finished"}


@pytest.mark.parametrize("slug", SLUGS)
def test_sign_ups_keep_to_capacity(db: Database, region, seeded_on, slug: str) -> None:
    occurrences = rows(
        db,
        slug,
        "SELECT o.id, o.capacity, o.starts_at, o.ends_at, a.kind, "
        "count(*) FILTER (WHERE s.state IN ('signed_up', 'checked_in')) AS taken, "
        "count(*) FILTER (WHERE s.state = 'waitlisted') AS waiting, "
        "count(*) FILTER (WHERE s.state = 'checked_in') AS checked_in "
        "FROM activity_occurrences o JOIN activities a ON a.id = o.activity_id "
        "LEFT JOIN activity_sign_ups s ON s.occurrence_id = o.id "
        "GROUP BY o.id, a.kind",
    )
    start = day_start(seeded_on[slug])
    assert all(o.taken <= o.capacity for o in occurrences)
    assert all(o.taken == o.capacity for o in occurrences if o.waiting)
    assert any(o.waiting and o.starts_at > start for o in occurrences)
    assert all(o.checked_in == 0 for o in occurrences if o.ends_at > start)
    assert sum(o.checked_in for o in occurrences) > 0
    sign_ups = rows(
        db,
        slug,
        "SELECT s.state, s.signed_up_at, s.checked_in_at, s.volunteer_hours, o.starts_at, a.kind "
        "FROM activity_sign_ups s JOIN activity_occurrences o ON o.id = s.occurrence_id "
        "JOIN activities a ON a.id = o.activity_id",
    )
    for s in sign_ups:
        assert s.signed_up_at < min(s.starts_at, start)
        if s.checked_in_at is not None:
            assert s.state == "checked_in"
            assert s.starts_at - timedelta(hours=1) <= s.checked_in_at
        assert (s.volunteer_hours is not None) == (
            s.state == "checked_in" and s.kind == "volunteer_service"
        )


@pytest.mark.parametrize("slug", SLUGS)
def test_points_follow_check_ins_and_never_go_negative(db: Database, region, slug: str) -> None:
    running = rows(
        db,
        slug,
        "SELECT points, source_type, min(balance) OVER (PARTITION BY resident_id) AS lowest "
        "FROM (SELECT *, sum(points) OVER (PARTITION BY resident_id ORDER BY id) AS balance "
        "FROM points_ledger) ledger",
    )
    assert running and all(r.lowest >= 0 for r in running)
    assert {r.source_type for r in running} == {"ActivitySignUp", "manual", "redemption"}
    assert all(r.points < 0 for r in running if r.source_type == "redemption")
    earned = rows(
        db,
        slug,
        "SELECT p.points, s.volunteer_hours FROM points_ledger p JOIN activity_sign_ups s "
        "ON s.id = p.source_id WHERE p.source_type = 'ActivitySignUp'",
    )
    assert earned and all(points == round(hours * 10) for points, hours in earned)
    hours = rows(db, slug, "SELECT count(*) FROM activity_sign_ups WHERE volunteer_hours > 0")
    assert hours[0][0] == len(earned)


@pytest.mark.parametrize("slug", SLUGS)
def test_volunteer_teams_with_members_and_skills(db: Database, region, slug: str) -> None:
    teams = rows(
        db,
        slug,
        "SELECT t.name, t.leader_resident_id, t.version, array_agg(m.resident_id) AS members, "
        "array_agg(DISTINCT s) AS skills FROM volunteer_teams t "
        "JOIN volunteer_team_members m ON m.team_id = t.id, unnest(m.skills) s "
        "GROUP BY t.id",
    )
    assert len(teams) >= 3
    for team in teams:
        assert team.leader_resident_id in team.members
    service_team = next(t for t in teams if t.name == "便民服务志愿队")
    assert {"理发", "磨刀磨剪", "家电维修"} <= set(service_team.skills)


@pytest.mark.parametrize("slug", SLUGS)
def test_service_orders_never_overbook(db: Database, region, seeded_on, slug: str) -> None:
    items = dict(rows(db, slug, "SELECT name, active FROM service_items"))
    assert {"理发", "磨刀磨剪", "家电维修", "义诊"} <= {k for k, active in items.items() if active}
    assert False in items.values()
    slots = rows(
        db,
        slug,
        "SELECT s.id, s.capacity, s.booked, s.starts_at, "
        "count(o.id) FILTER (WHERE o.state <> 'cancelled') AS live "
        "FROM service_slots s LEFT JOIN service_orders o ON o.service_slot_id = s.id "
        "GROUP BY s.id",
    )
    assert all(s.booked == s.live <= s.capacity for s in slots)
    assert any(s.booked == s.capacity for s in slots)
    start = day_start(seeded_on[slug])
    assert any(s.starts_at > start for s in slots)
    states = dict(rows(db, slug, "SELECT state, count(*) FROM service_orders GROUP BY state"))
    assert {"ordered", "accepted", "completed", "rated", "cancelled"} <= set(states)
    events = rows(
        db,
        slug,
        "SELECT service_order_id, from_state, to_state FROM service_order_events "
        "ORDER BY service_order_id, id",
    )
    last: dict[int, str] = {}
    for event in events:
        assert event.from_state == last.get(event.service_order_id)
        if event.from_state is not None:
            assert event.from_state in ORDER_TRANSITIONS[event.to_state]
        last[event.service_order_id] = event.to_state
    assert last == dict(rows(db, slug, "SELECT id, state FROM service_orders"))


@pytest.mark.parametrize("slug", SLUGS)
def test_notices_in_every_category(db: Database, region, slug: str) -> None:
    found = rows(db, slug, "SELECT category, state, withdrawal_reason, id FROM notices")
    by_category = {(n.category, n.state) for n in found}
    for category in ("party_affairs", "village_affairs", "finances"):
        assert {(category, s) for s in ("draft", "published", "withdrawn")} <= by_category
    assert all(n.withdrawal_reason for n in found if n.state == "withdrawn")
    read = {n for (n,) in rows(db, slug, "SELECT DISTINCT notice_id FROM notice_reads")}
    assert read and not read & {n.id for n in found if n.state == "draft"}
    with db.tenant(slug) as conn:
        visible_now = conn.execute(
            select(func.count()).select_from(notices).where(visible(datetime.now(UTC)))
        ).scalar()
    assert 0 < visible_now < sum(n.state == "published" for n in found)


@pytest.mark.parametrize("slug", SLUGS)
def test_mediation_cases(db: Database, region, slug: str) -> None:
    cases = rows(db, slug, "SELECT id, year, number, status FROM mediation_cases ORDER BY id")
    assert 2 <= len(cases) <= 4
    assert {"resolved", "in_mediation"} <= {c.status for c in cases}
    numbers = Counter(c.year for c in cases)
    for year, count in numbers.items():
        assert sorted(c.number for c in cases if c.year == year) == list(range(1, count + 1))
    assert dict(rows(db, slug, "SELECT year, last_number FROM mediation_case_numbers")) == dict(
        numbers
    )
    roles = rows(
        db, slug, "SELECT case_id, array_agg(role) FROM mediation_parties GROUP BY case_id"
    )
    assert all(set(r) == {"applicant", "respondent"} for _, r in roles) and len(roles) == len(cases)


@pytest.mark.parametrize("slug", SLUGS)
def test_outbox_holds_each_shared_record_at_its_version(db: Database, region, slug: str) -> None:
    entries = rows(
        db, slug, "SELECT id, record_type, record_id, version, operation FROM outbox ORDER BY id"
    )
    # The seed writes one entry per shared record; later entries are changes made since
    # (the SLA sweep of a `villagelink run` escalating an overdue request).
    shared = [e for e in entries if e.id <= region.seed_outbox_ends[slug]]
    kinds = Counter(s.record_type for s in shared)
    assert "MediationCase" not in kinds
    assert len(shared) == len({(s.record_type, s.record_id) for s in shared})
    # Each request's latest entry carries its version now.
    versions = {e.record_id: e.version for e in entries if e.record_type == "Request"}
    assert versions == dict(rows(db, slug, "SELECT id, version FROM requests"))
    for record_type, table in (
        ("VolunteerTeam", "volunteer_teams"),
        ("ServiceItem", "service_items"),
    ):
        assert kinds[record_type] == rows(db, slug, f"SELECT count(*) FROM {table}")[0][0]
    assert (
        kinds["Notice"]
        == rows(db, slug, "SELECT count(*) FROM notices WHERE state <> 'draft'")[0][0]
    )
    assert (
        kinds["Activity"]
        == rows(
            db,
            slug,
            "SELECT count(*) FROM activities WHERE open_to_neighbours AND state <> 'draft'",
        )[0][0]
    )


AFFAIRS_QUERY = """query($slug: String!) { village(slug: $slug) {
  requests(first: 5, filter: {overdue: true}) { totalCount edges { node { id state overdue
    escalationLevel timeline { action actor } } } }
  requestStats { overdue byCategoryAndState { category { code } state count } }
  actionLists(first: 5) { edges { node { title status requests { id } } } }
  activities(first: 20) { edges { node { id title state } } }
  volunteerTeams(first: 5) { edges { node { name } } }
  serviceSlots(first: 5) { edges { node { capacity booked available } } }
  serviceOrders(first: 5) { edges { node { state } } }
  notices(first: 20) { edges { node { title state } } }
  mediationCases(first: 5) { edges { node { number status } } } } }"""


def test_the_affairs_read_through_the_api(gql, token, region) -> None:
    status, body = gql(AFFAIRS_QUERY, token("village-admin", village="liulin"), {"slug": "liulin"})
    assert status == 200 and "errors" not in body, body
    village = body["data"]["village"]
    assert village["requests"]["totalCount"] > 0
    assert village["requestStats"]["overdue"] == village["requests"]["totalCount"]
    assert len(village["mediationCases"]["edges"]) >= 2
    assert len(village["notices"]["edges"]) == 16


def test_affairs_are_deterministic() -> None:
    plan = demo_plans(300)[1]
    people = build_village(plan, 7)
    day = date(2026, 3, 1)

    def affairs(seed: int, today: date):
        return build_affairs(people, plan.name, seed, today, AGES_AS_OF)

    assert affairs(7, day) == affairs(7, day)
    assert affairs(7, day) != affairs(8, day)
    moved = affairs(7, day + timedelta(days=1))
    assert moved.requests[0].created_at != affairs(7, day).requests[0].created_at


# --- the actions take the seeded affairs further -----------------------------------------


@pytest.fixture
def affairs_village(db: Database) -> str:
    """A fresh village with 300 people and their affairs, seeded as the demo seeds one."""
    village = new_village(db, "演示村", "testregion", slug=f"da_{uuid.uuid4().hex[:8]}")
    plan = replace(DEMO_VILLAGES[2], slug=village.slug, residents=300)
    people = build_village(plan, 11)
    affairs = build_affairs(people, plan.name, 11, clock.today(), AGES_AS_OF)
    with db.tenant(village.slug) as conn:
        write_affairs(conn, affairs, people, write_village(conn, people))
    return village.slug


def test_seeded_requests_go_on_through_the_actions(db: Database, affairs_village) -> None:
    slug = affairs_village
    with db.tenant(slug) as conn:
        resolved = conn.execute(
            text("SELECT id FROM requests WHERE state = 'resolved' ORDER BY id LIMIT 1")
        ).scalar_one()
        seeded = conn.execute(
            text("SELECT payload FROM outbox WHERE record_type = 'Request' AND record_id = :id"),
            {"id": resolved},
        ).scalar_one()
        closed = do_close_request(conn, DEMO_ACTOR, slug, resolved, {}, scope=WHOLE_VILLAGE)
        assert closed["state"] == "closed"
        emitted = conn.execute(
            text(
                "SELECT payload FROM outbox WHERE record_type = 'Request' AND record_id = :id "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"id": resolved},
        ).scalar_one()
        # What the action shares is what the seed shared, but for the new state, the
        # step's timeline entry and the time of the change.
        assert emitted.keys() == seeded.keys()
        for key, value in seeded.items():
            if key in ("due_at", "resolved_at", "created_at", "escalated_at") and value:
                assert datetime.fromisoformat(emitted[key]) == datetime.fromisoformat(value)
            elif key not in ("state", "last_event", "updated_at"):
                assert emitted[key] == value, key
        assert emitted["last_event"]["action"] == "close"
        assert emitted["last_event"]["to_state"] == "closed"
        assert do_escalate_overdue(conn, DEMO_ACTOR, slug, day_start(clock.today())) == []


def test_a_cancelled_place_goes_to_the_waitlist(db: Database, affairs_village) -> None:
    slug = affairs_village
    with db.tenant(slug) as conn:
        occurrence = conn.execute(
            text(
                "SELECT s.occurrence_id FROM activity_sign_ups s JOIN activity_occurrences o "
                "ON o.id = s.occurrence_id WHERE s.state = 'waitlisted' AND o.starts_at > now() "
                "ORDER BY o.starts_at LIMIT 1"
            )
        ).scalar_one()
        first, holder = conn.execute(
            text(
                "SELECT (SELECT id FROM activity_sign_ups WHERE occurrence_id = :o "
                "AND state = 'waitlisted' ORDER BY signed_up_at, id LIMIT 1), "
                "(SELECT id FROM activity_sign_ups WHERE occurrence_id = :o "
                "AND state = 'signed_up' LIMIT 1)"
            ),
            {"o": occurrence},
        ).one()
        _, promoted = do_cancel_sign_up(conn, DEMO_ACTOR, slug, holder, allowed_grids=None)
        assert promoted is not None and promoted["id"] == first


def test_balances_hold_against_redemptions(db: Database, affairs_village) -> None:
    slug = affairs_village
    with db.tenant(slug) as conn:
        resident, balance = conn.execute(
            text(
                "SELECT resident_id, sum(points) FROM points_ledger GROUP BY resident_id "
                "HAVING sum(points) > 0 ORDER BY resident_id LIMIT 1"
            )
        ).one()
        with pytest.raises(ActionFailed) as refused:
            do_redeem_points(
                conn,
                DEMO_ACTOR,
                slug,
                resident,
                {"points": balance + 1, "reason": "积分超市兑换"},
                allowed_grids=None,
            )
        assert refused.value.errors[0].code == "INSUFFICIENT_POINTS"
        spent = do_redeem_points(
            conn,
            DEMO_ACTOR,
            slug,
            resident,
            {"points": balance, "reason": "积分超市兑换"},
            allowed_grids=None,
        )
        assert spent["points"] == -balance


def test_a_full_slot_takes_no_order_and_a_free_one_does(db: Database, affairs_village) -> None:
    slug = affairs_village
    with db.tenant(slug) as conn:
        full, free = conn.execute(
            text(
                "SELECT (SELECT id FROM service_slots WHERE starts_at > now() "
                "AND booked = capacity ORDER BY id LIMIT 1), "
                "(SELECT id FROM service_slots WHERE starts_at > now() "
                "AND booked < capacity ORDER BY id LIMIT 1)"
            )
        ).one()
        residents = (
            conn.execute(
                text(
                    "SELECT id FROM residents "
                    "WHERE id NOT IN (SELECT resident_id FROM service_orders) ORDER BY id LIMIT 2"
                )
            )
            .scalars()
            .all()
        )
        with pytest.raises(ActionFailed) as refused:
            do_order_service(conn, DEMO_ACTOR, slug, full, residents[0], {}, allowed_grids=None)
        assert refused.value.errors[0].code == "SLOT_FULL"
        order = do_order_service(conn, DEMO_ACTOR, slug, free, residents[1], {}, allowed_grids=None)
        assert order["state"] == "ordered"


def test_notices_and_cases_go_on_through_the_actions(db: Database, affairs_village) -> None:
    slug = affairs_village
    with db.tenant(slug) as conn:
        draft, published = conn.execute(
            text(
                "SELECT (SELECT id FROM notices WHERE state = 'draft' ORDER BY id LIMIT 1), "
                "(SELECT id FROM notices WHERE state = 'published' AND publish_until IS NULL "
                "ORDER BY id LIMIT 1)"
            )
        ).one()
        assert do_publish_notice(conn, DEMO_ACTOR, slug, draft)["state"] == "published"
        withdrawn = do_withdraw_notice(conn, DEMO_ACTOR, slug, published, {"reason": "更正"})
        assert withdrawn["state"] == "withdrawn" and withdrawn["version"] == 3
        open_case = conn.execute(
            text("SELECT id FROM mediation_cases WHERE status = 'in_mediation' LIMIT 1")
        ).scalar_one()
        concluded = do_conclude_mediation(
            conn, DEMO_ACTOR, slug, open_case, {"outcome": "no_agreement"}
        )
        assert concluded["status"] == "closed"
        last = conn.execute(
            text("SELECT max(number) FROM mediation_cases WHERE year = :y"),
            {"y": clock.today().year},
        ).scalar()
        resident = conn.execute(text("SELECT id FROM residents ORDER BY id LIMIT 1")).scalar_one()
        case = do_create_mediation_case(
            conn,
            DEMO_ACTOR,
            slug,
            {
                "category": "neighbour",
                "summary": "噪音纠纷",
                "parties": [
                    {"role": "applicant", "resident": resident},
                    {"role": "respondent", "name": "李强"},
                ],
            },
            today=clock.today(),
        )
        assert case["number"] == (last or 0) + 1


# --- sensing (demo/sensing.py) ----------------------------------------------------


@pytest.mark.parametrize("slug", SLUGS)
def test_devices_in_domain_proportions(db: Database, region, slug: str) -> None:
    kinds = Counter(dict(rows(db, slug, "SELECT kind, count(*) FROM devices GROUP BY kind")))
    assert 145 <= kinds["ai_camera"] <= 157
    assert kinds["health_kiosk"] == 2 and kinds["fire_lane_sensor"] == 8
    assert kinds["smoke_sensor"] == rows(db, slug, "SELECT count(*) FROM buildings")[0][0]
    # A wristband for every resident over 65, and only for them.
    over_65 = {r.id for r in residents_of(db, slug) if age(r.birth_date) >= 65}
    banded = rows(db, slug, "SELECT resident_id FROM devices WHERE kind = 'wristband'")
    assert sorted(r for (r,) in banded) == sorted(over_65)
    # Radar for over-85s in high-risk homes only.
    radar = rows(
        db,
        slug,
        "SELECT r.birth_date, array_agg(t.tag) FROM devices d JOIN residents r ON r.id = "
        "d.resident_id JOIN resident_tags t ON t.resident_id = r.id "
        "WHERE d.kind = 'mmwave_radar' GROUP BY d.id, r.birth_date",
    )
    assert all(
        age(born) >= 85 and {"elderly_living_alone", "disabled", "key_focus"} & set(tags)
        for born, tags in radar
    )
    owners = {o for (o,) in rows(db, slug, "SELECT DISTINCT owner_client_id FROM devices")}
    assert owners == ({"demo-integrator"} if slug in DEMO_CLIENT_VILLAGES else {None})


@pytest.mark.parametrize("slug", SLUGS)
def test_health_records_of_the_elderly(db: Database, region, slug: str) -> None:
    aged_60 = {r.id for r in residents_of(db, slug) if age(r.birth_date) >= 60}
    records = rows(
        db,
        slug,
        "SELECT resident_id, wandering_risk, safe_zone_radius_m, "
        "jsonb_array_length(emergency_contacts) FROM health_records",
    )
    assert {r[0] for r in records} == aged_60
    assert all(contacts >= 1 for *_, contacts in records)
    # Everyone at risk of wandering has a safe zone to leave.
    assert all(radius for _, wandering, radius, _ in records if wandering)
    # Latest vitals agree with the newest reading of each wearer.
    stale = rows(
        db,
        slug,
        "SELECT v.resident_id FROM latest_vitals v WHERE v.heart_rate_at <> "
        "(SELECT max(measured_at) FROM health_readings h WHERE h.resident_id = v.resident_id)",
    )
    assert stale == []


@pytest.mark.parametrize("slug", SLUGS)
def test_seeded_alerts_are_closed_with_full_timelines(db: Database, region, slug: str) -> None:
    alerts = rows(db, slug, "SELECT id, state, acknowledged_at - raised_at FROM alerts")
    assert len(alerts) >= 20
    assert {state for _, state, _ in alerts} <= {"resolved", "false_alarm"}
    # 久华里: found within minutes.
    assert all(waited <= timedelta(minutes=5) for *_, waited in alerts)
    steps = rows(
        db,
        slug,
        "SELECT alert_id, array_agg(action ORDER BY created_at, id) FROM alert_events "
        "GROUP BY alert_id",
    )
    assert len(steps) == len(alerts)
    for _, actions in steps:
        assert actions[:4] == ["raise", "assign", "notify", "acknowledge"]
        assert actions[4] in ("resolve", "mark_false_alarm")

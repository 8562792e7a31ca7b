"""me { tasks } (待办): each role sees what waits for it and nothing else; coordinators
read their region's shared copies only; the statements do not grow with the tasks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, update

from villagelink.graphql.core.ids import encode_id
from villagelink.platform.linkage.catalogue import ALERT_BROADCAST, JOINT_CASE, RECORD_TYPES
from villagelink.platform.linkage.sync import sync_village
from villagelink.platform.linkage.tables import agreement_parties, agreements
from villagelink.tenants import models as tm
from villagelink.tenants import provisioning
from villagelink.tenants.requests.tables import requests
from villagelink.tenants.sensing.alerting import share
from villagelink.tenants.sensing.tables import alerts

from .conftest import TEST_REGION, agree, new_village_slug
from .test_joint_cases import open_case
from .test_query_count import count_statements
from .test_requests import new_request
from .test_service_orders import new_item, new_slot, place_order, resident_ids
from .test_transfers import ok

TASKS = """query($first: Int) { me { tasks { total counts { kind count }
  items(first: $first) { kind targetId title since dueAt villageSlug village { slug } } } } }"""

NOW = datetime.now(UTC)


def tasks_of(gql, caller: str, first: int | None = None) -> dict:
    return ok(gql(TASKS, caller, {"first": first}))["me"]["tasks"]


def counts(found: dict) -> dict[str, int]:
    return {c["kind"]: c["count"] for c in found["counts"] if c["count"]}


def new_staff_account(db, slug: str, sub: str) -> int:
    with db.tenant(slug) as conn:
        return conn.execute(
            insert(tm.grid_staff)
            .values(name="网格员甲", tier="micro_grid_worker", account_sub=sub)
            .returning(tm.grid_staff.c.id)
        ).scalar_one()


def new_alert(db, slug: str, *, assignee: int | None = None, level: str = "grid", **more) -> int:
    """A live fire alert, written directly (test setup) and shared as the alerting
    action shares it."""
    with db.tenant(slug) as conn:
        alert_id = conn.execute(
            insert(alerts)
            .values(
                kind="fire",
                severity="critical",
                level=level,
                state="assigned" if assignee else "open",
                episode_key=f"device:{uuid.uuid4().hex[:6]}",
                summary="烟感报警（3号楼）",
                assignee_staff_id=assignee,
                raised_at=NOW - timedelta(minutes=10),
                last_triggered_at=NOW - timedelta(minutes=10),
                ack_due_at=NOW + timedelta(minutes=5),
                **more,
            )
            .returning(alerts.c.id)
        ).scalar_one()
        share(conn, [alert_id])
    return alert_id


def set_request(db, slug: str, request_id: int, **values) -> None:
    with db.tenant(slug) as conn:
        conn.execute(update(requests).where(requests.c.id == request_id).values(**values))


def propose(db, proposer: str, party: str, region: str) -> int:
    """A proposed agreement `party` has not answered (test setup)."""
    with db.platform() as conn:
        agreement_id = conn.execute(
            insert(agreements)
            .values(
                proposer=proposer,
                region_id=region,
                scope="neighbour",
                purpose="共享火情预警",
                record_types=[ALERT_BROADCAST],
                fields={ALERT_BROADCAST: list(RECORD_TYPES[ALERT_BROADCAST].fields)},
                valid_from=NOW,
                state="proposed",
            )
            .returning(agreements.c.id)
        ).scalar_one()
        conn.execute(
            insert(agreement_parties),
            [
                {"agreement_id": agreement_id, "village": proposer, "state": "accepted"},
                {"agreement_id": agreement_id, "village": party, "state": "pending"},
            ],
        )
    return agreement_id


@pytest.fixture
def region(db) -> str:
    region_id = f"rg_{uuid.uuid4().hex[:8]}"
    provisioning.ensure_region(db, region_id, "待办测试片区")
    return region_id


@pytest.fixture
def pair(db, region) -> tuple[str, str]:
    first, second = (
        provisioning.create_village(db, new_village_slug(), f"{n}村", region).slug for n in "甲乙"
    )
    agree(db, first, second, [ALERT_BROADCAST, JOINT_CASE], region=region)
    return first, second


def test_a_grid_worker_sees_what_is_assigned_to_them_only(db, gql, token, pair):
    slug, _ = pair
    mine, colleague = new_staff_account(db, slug, "gw-mine"), new_staff_account(db, slug, "gw-b")
    alert_id = new_alert(db, slug, assignee=mine)
    new_alert(db, slug, assignee=colleague)
    request_id = new_request(db, slug, grid_level=None)
    set_request(db, slug, request_id, state="assigned", assignee_staff_id=mine)
    closed = new_request(db, slug, grid_level=None)
    set_request(db, slug, closed, state="closed", assignee_staff_id=mine)

    found = tasks_of(gql, token("grid-worker", village=slug, sub="gw-mine"))
    assert counts(found) == {"ALERT": 1, "REQUEST": 1}
    assert found["total"] == 2
    # The alert is due for acknowledgement first; the request by its grade's deadline.
    assert [(i["kind"], i["targetId"]) for i in found["items"]] == [
        ("ALERT", encode_id("Alert", slug, alert_id)),
        ("REQUEST", encode_id("Request", slug, request_id)),
    ]
    assert found["items"][0]["title"] == "烟感报警（3号楼）"
    assert found["items"][0]["village"] == {"slug": slug}
    assert found["items"][0]["dueAt"] is not None

    # Acknowledged, it still waits to be resolved but no longer for an acknowledgement.
    with db.tenant(slug) as conn:
        conn.execute(update(alerts).where(alerts.c.id == alert_id).values(state="acknowledged"))
    found = tasks_of(gql, token("grid-worker", village=slug, sub="gw-mine"))
    assert found["items"][1]["kind"] == "ALERT" and found["items"][1]["dueAt"] is None

    # A worker without a staff record has nothing waiting; nor in a village not theirs.
    assert tasks_of(gql, token("grid-worker", village=slug, sub="gw-nobody"))["total"] == 0
    _, other = pair
    assert tasks_of(gql, token("grid-worker", village=other, sub="gw-mine"))["total"] == 0


def test_a_village_admin_sees_the_village_s_escalations_orders_and_agreements(
    db, gql, token, populated_village
):
    slug = populated_village.slug
    other = provisioning.create_village(db, new_village_slug(), "邻村", TEST_REGION).slug
    agreement_id = propose(db, other, slug, TEST_REGION)
    escalated = new_alert(db, slug, level="village")
    new_alert(db, slug)  # at grid level, unassigned: the grid's, not the admin's
    request_id = new_request(db, slug, grid_level=None)
    set_request(db, slug, request_id, escalation_level="village", escalated_at=NOW)
    slot = new_slot(db, slug, new_item(db, slug))
    order_id = place_order(db, slug, slot, resident_ids(db, slug)[0])

    found = tasks_of(gql, token("village-admin", village=slug))
    assert counts(found) == {"ALERT": 1, "REQUEST": 1, "SERVICE_ORDER": 1, "AGREEMENT": 1}
    assert {i["targetId"] for i in found["items"]} == {
        encode_id("Alert", slug, escalated),
        encode_id("Request", slug, request_id),
        encode_id("ServiceOrder", slug, order_id),
        encode_id("Agreement", slug, agreement_id),
    }
    assert {i["village"]["slug"] for i in found["items"]} == {slug}
    # The neighbour's admin is not the one to answer its own proposal.
    assert counts(tasks_of(gql, token("village-admin", village=other))) == {}
    # `first` shows fewer items; the counts stay whole.
    one = tasks_of(gql, token("village-admin", village=slug), first=1)
    assert len(one["items"]) == 1 and one["total"] == 4


def test_joint_cases_wait_for_the_involved_villages_and_the_coordinators(
    db, gql, token, region, pair
):
    a, b = pair
    admins = {"a": token("village-admin", village=a), "b": token("village-admin", village=b)}
    case = open_case(gql, admins, {"a": a, "b": b}, db, involved=("b",))
    risen = new_alert(db, a, level="region")
    new_alert(db, a, level="village")  # not the region's
    sync_village(db, a)

    for caller, seen in ((admins["a"], {"slug": a}), (admins["b"], None)):
        found = tasks_of(gql, caller)
        cases = [i for i in found["items"] if i["kind"] == "JOINT_CASE"]
        # The case is the origin's: its neighbour reads the origin's slug, not the village.
        assert [(i["targetId"], i["villageSlug"], i["village"]) for i in cases] == [
            (case["id"], a, seen)
        ]

    coordinator = token("regional-coordinator", region=region)
    found = tasks_of(gql, coordinator)
    assert counts(found) == {"ALERT": 1, "JOINT_CASE": 1}
    assert {i["targetId"] for i in found["items"]} == {
        case["id"],
        encode_id("Alert", a, risen),
    }
    # Another region's coordinator sees none of it.
    elsewhere = f"rg_{uuid.uuid4().hex[:8]}"
    provisioning.ensure_region(db, elsewhere, "别的片区")
    assert tasks_of(gql, token("regional-coordinator", region=elsewhere))["total"] == 0


def test_platform_admins_and_integrators_have_no_tasks_of_villages(db, gql, token, pair):
    slug, _ = pair
    new_alert(db, slug, level="village")
    assert tasks_of(gql, token("platform-admin"))["total"] == 0
    status, body = gql(TASKS, token("integrator", client="no-such-client"), {"first": 5})
    assert status == 200 and body["data"]["me"]["tasks"]["total"] == 0, body


def run(app, gql, caller) -> list[str]:
    with count_statements(app.extensions["villagelink"].db.engine) as statements:
        tasks_of(gql, caller)
    return statements


def test_the_statements_do_not_grow_with_the_tasks(app, db, gql, token, region, pair):
    a, b = pair
    admin = token("village-admin", village=a)
    coordinator = token("regional-coordinator", region=region)
    open_case(gql, {"a": admin}, {"a": a, "b": b}, db, involved=("b",))
    new_alert(db, a, level="region")
    sync_village(db, a)
    run(app, gql, admin)  # warm the pool: pre-ping is not ours to count
    few_admin, few_coordinator = run(app, gql, admin), run(app, gql, coordinator)
    for _ in range(6):
        new_alert(db, a, level="village")
        new_alert(db, a, level="region")
        open_case(gql, {"a": admin}, {"a": a, "b": b}, db, involved=("b",))
    sync_village(db, a)
    many_admin, many_coordinator = run(app, gql, admin), run(app, gql, coordinator)
    assert tasks_of(gql, admin)["total"] >= 13
    # access, villages, SET LOCAL ROLE, the village's tasks, the agreements waiting
    assert len(few_admin) == len(many_admin) == 5, "\n".join(many_admin)
    # access, villages, SET LOCAL ROLE (the region's), the region's tasks
    assert len(few_coordinator) == len(many_coordinator) == 4, "\n".join(many_coordinator)

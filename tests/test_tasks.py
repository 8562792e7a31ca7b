"""me { tasks } (待办): each role sees what waits for it and nothing else; coordinators
read their region's shared copies only; the statements do not grow with the tasks.
Coordinators take what reached their region (acknowledge, dispatch to the village
with a note, close), audited, and are refused the rest."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from villagelink.graphql.core.ids import encode_id
from villagelink.platform import models as pm
from villagelink.platform.linkage.catalogue import ALERT_BROADCAST, JOINT_CASE, RECORD_TYPES
from villagelink.platform.linkage.sync import sync_village
from villagelink.platform.linkage.tables import agreement_parties, agreements
from villagelink.tenants import models as tm
from villagelink.tenants import provisioning
from villagelink.tenants.requests.actions import share as share_requests
from villagelink.tenants.requests.tables import requests
from villagelink.tenants.sensing.alerting import share
from villagelink.tenants.sensing.tables import alerts

from .conftest import TEST_REGION, agree, new_village
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
    """The request changed directly (test setup), shared as the actions share it, and
    synced: a request risen to the region reaches its coordinators as a copy."""
    r = requests
    with db.tenant(slug) as conn:
        conn.execute(
            update(r).where(r.c.id == request_id).values(version=r.c.version + 1, **values)
        )
        share_requests(conn, [request_id])
    sync_village(db, slug)


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
    first, second = (new_village(db, f"{n}村", region).slug for n in "甲乙")
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
    other = new_village(db, "邻村").slug
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
    # Warm the pool and keep each caller's reach: neither is ours to count.
    run(app, gql, admin), run(app, gql, coordinator)
    few_admin, few_coordinator = run(app, gql, admin), run(app, gql, coordinator)
    for _ in range(6):
        new_alert(db, a, level="village")
        new_alert(db, a, level="region")
        open_case(gql, {"a": admin}, {"a": a, "b": b}, db, involved=("b",))
    sync_village(db, a)
    many_admin, many_coordinator = run(app, gql, admin), run(app, gql, coordinator)
    assert tasks_of(gql, admin)["total"] >= 13
    # role, path and access epoch (the caller's reach is kept with the token), the
    # village's tasks, the agreements waiting
    assert len(few_admin) == len(many_admin) == 3, "\n".join(many_admin)
    # role, path and access epoch (the region's), the region's tasks (alerts, joint cases
    # and requests risen to the region: its copies), whatever the region's villages
    assert len(few_coordinator) == len(many_coordinator) == 2, "\n".join(many_coordinator)


# -- coordinators take what reached the region (point 7) --------------------------------

ALERT_FIELDS = "alert { id state level timeline { action note } } userErrors { field code message }"
REQUEST_FIELDS = "request { id state escalationLevel } userErrors { field code message }"


# Steps that take only a note share one input type.
INPUT_TYPES = {"closeRequest": "RequestNoteInput", "startRequest": "RequestNoteInput"}


def step(gql, caller: str, mutation: str, fields: str, **input_) -> tuple[dict | None, list]:
    """(payload, top-level errors) of one mutation."""
    name = INPUT_TYPES.get(mutation, mutation[0].upper() + mutation[1:] + "Input")
    document = f"mutation($input: {name}!) {{ {mutation}(input: $input) {{ {fields} }} }}"
    status, body = gql(document, caller, {"input": input_})
    assert status == 200, body
    return (body.get("data") or {}).get(mutation), body.get("errors") or []


def audit_of(db, slug: str, subject_id: int) -> list[tuple[str, str]]:
    a = pm.audit_log
    with db.platform() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(a.c.action, a.c.actor_sub)
                .where(a.c.village == slug, a.c.subject_id == str(subject_id))
                .order_by(a.c.occurred_at)
            )
        ]


def test_a_coordinator_acknowledges_and_closes_an_alert_risen_to_the_region(
    db, gql, token, region, pair
):
    slug, _ = pair
    coordinator = token("regional-coordinator", region=region, sub="coord-1")
    alert_id = new_alert(db, slug, level="region")
    target = encode_id("Alert", slug, alert_id)

    done, errors = step(
        gql, coordinator, "acknowledgeAlert", ALERT_FIELDS, id=target, note="已联系消防"
    )
    assert errors == [] and done["userErrors"] == [], (done, errors)
    assert done["alert"]["state"] == "ACKNOWLEDGED"
    done, _ = step(gql, coordinator, "resolveAlert", ALERT_FIELDS, id=target, outcome="已扑灭")
    assert done["userErrors"] == [] and done["alert"]["state"] == "RESOLVED"
    assert audit_of(db, slug, alert_id) == [
        ("alert.acknowledge", "coord-1"),
        ("alert.resolve", "coord-1"),
    ]


def test_a_coordinator_dispatches_an_alert_to_its_village(db, gql, token, region, pair):
    slug, _ = pair
    coordinator = token("regional-coordinator", region=region, sub="coord-2")
    alert_id = new_alert(db, slug, level="region")
    target = encode_id("Alert", slug, alert_id)
    sync_village(db, slug)
    assert tasks_of(gql, coordinator)["total"] == 1

    # A note is required.
    done, _ = step(gql, coordinator, "dispatchAlert", ALERT_FIELDS, id=target, note=" ")
    assert [(e["field"], e["code"]) for e in done["userErrors"]] == [("note", "REQUIRED")]
    done, _ = step(gql, coordinator, "dispatchAlert", ALERT_FIELDS, id=target, note="请村委会处置")
    assert done["userErrors"] == [], done
    assert (done["alert"]["state"], done["alert"]["level"]) == ("OPEN", "VILLAGE")
    assert done["alert"]["timeline"][-1]["note"] == "片区派发至村（社区）：请村委会处置"
    assert audit_of(db, slug, alert_id)[-1] == ("alert.dispatch", "coord-2")
    # Now the village's admin's to do, no longer the region's.
    sync_village(db, slug)
    assert tasks_of(gql, coordinator)["total"] == 0
    admin_tasks = tasks_of(gql, token("village-admin", village=slug))
    assert target in {i["targetId"] for i in admin_tasks["items"]}
    # Down at the village, it is no longer the coordinators' to take.
    done, _ = step(gql, coordinator, "acknowledgeAlert", ALERT_FIELDS, id=target)
    assert [(e["field"], e["code"]) for e in done["userErrors"]] == [("id", "NOT_FOUND")]


def test_what_coordinators_may_not_do_with_alerts(db, gql, token, region, pair):
    slug, _ = pair
    coordinator = token("regional-coordinator", region=region)
    at_grid = encode_id("Alert", slug, new_alert(db, slug))
    at_region = encode_id("Alert", slug, new_alert(db, slug, level="region"))
    # What has not reached the region is the village's.
    done, _ = step(gql, coordinator, "acknowledgeAlert", ALERT_FIELDS, id=at_grid)
    assert [(e["field"], e["code"]) for e in done["userErrors"]] == [("id", "NOT_FOUND")]
    # Reassigning to a grid worker stays the village admin's.
    _, errors = step(
        gql,
        coordinator,
        "reassignAlert",
        ALERT_FIELDS,
        id=at_region,
        assignee=encode_id("GridStaff", slug, 1),
    )
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]
    # Dispatching is the region's decision, not the village's.
    _, errors = step(
        gql,
        token("village-admin", village=slug),
        "dispatchAlert",
        ALERT_FIELDS,
        id=at_region,
        note="自行处置",
    )
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]
    # Another region's coordinator does not reach the village at all.
    elsewhere = f"rg_{uuid.uuid4().hex[:8]}"
    provisioning.ensure_region(db, elsewhere, "别的片区")
    other = token("regional-coordinator", region=elsewhere)
    for mutation, extra in (("acknowledgeAlert", {}), ("dispatchAlert", {"note": "派发"})):
        _, errors = step(gql, other, mutation, ALERT_FIELDS, id=at_region, **extra)
        assert [e["extensions"]["code"] for e in errors] == ["NOT_FOUND"], mutation


def test_a_coordinator_takes_requests_that_reached_the_region(db, gql, token, region, pair):
    slug, _ = pair
    coordinator = token("regional-coordinator", region=region, sub="coord-3")
    submitted = new_request(db, slug, grid_level=None)
    set_request(db, slug, submitted, escalation_level="region", needs_coordination=True)
    target = encode_id("Request", slug, submitted)

    done, _ = step(gql, coordinator, "acceptRequest", REQUEST_FIELDS, id=target, note="片区受理")
    assert done["userErrors"] == [] and done["request"]["state"] == "ACCEPTED", done
    done, _ = step(
        gql, coordinator, "dispatchRequest", REQUEST_FIELDS, id=target, note="请村里处理"
    )
    assert done["userErrors"] == [], done
    assert done["request"]["escalationLevel"] == "VILLAGE"
    # Back in the village: the coordinator no longer reaches it; the village's admin has it.
    done, errors = step(gql, coordinator, "closeRequest", REQUEST_FIELDS, id=target)
    assert done and [(e["field"], e["code"]) for e in done["userErrors"]] == [
        ("id", "NOT_FOUND")
    ], errors
    admin_tasks = tasks_of(gql, token("village-admin", village=slug))
    assert target in {i["targetId"] for i in admin_tasks["items"]}

    other = new_request(db, slug, grid_level=None)
    set_request(db, slug, other, escalation_level="region", state="in_progress")
    other_id = encode_id("Request", slug, other)
    done, _ = step(
        gql, coordinator, "resolveRequest", REQUEST_FIELDS, id=other_id, resolution="两村共修水渠"
    )
    assert done["userErrors"] == [] and done["request"]["state"] == "RESOLVED", done
    done, _ = step(gql, coordinator, "closeRequest", REQUEST_FIELDS, id=other_id, note="已协调解决")
    assert done["userErrors"] == [] and done["request"]["state"] == "CLOSED", done
    actions = [
        a
        for a, sub in audit_of(db, slug, submitted) + audit_of(db, slug, other)
        if sub.startswith("coord")
    ]
    assert actions == ["request.accept", "request.dispatch", "request.resolve", "request.close"]


def test_what_coordinators_may_not_do_with_requests(db, gql, token, region, pair):
    slug, _ = pair
    coordinator = token("regional-coordinator", region=region)
    at_village = encode_id("Request", slug, new_request(db, slug, grid_level=None))
    at_region = new_request(db, slug, grid_level=None)
    set_request(db, slug, at_region, escalation_level="region")
    at_region_id = encode_id("Request", slug, at_region)
    done, _ = step(gql, coordinator, "acceptRequest", REQUEST_FIELDS, id=at_village)
    assert [(e["field"], e["code"]) for e in done["userErrors"]] == [("id", "NOT_FOUND")]
    # Only taking: the village's own steps stay the village's.
    _, errors = step(gql, coordinator, "startRequest", REQUEST_FIELDS, id=at_region_id)
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]
    _, errors = step(
        gql,
        token("village-admin", village=slug),
        "dispatchRequest",
        REQUEST_FIELDS,
        id=at_region_id,
        note="自行处置",
    )
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]
    _, errors = step(
        gql,
        token("grid-worker", village=slug),
        "dispatchRequest",
        REQUEST_FIELDS,
        id=at_region_id,
        note="自行处置",
    )
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]


def test_a_coordinator_s_tasks_hold_the_requests_risen_to_the_region(db, gql, token, region, pair):
    """Requests escalated to the region wait for its coordinators (me { tasks }) until
    they dispatch them back to the village or close them; requests of other levels and
    of other regions never show."""
    a, b = pair
    coordinator = token("regional-coordinator", region=region, sub="coord-tasks")
    risen = {}
    for slug in (a, b):
        request_id = new_request(db, slug, grid_level=None)
        set_request(db, slug, request_id, escalation_level="region", escalated_at=NOW)
        risen[slug] = encode_id("Request", slug, request_id)
    at_village = new_request(db, a, grid_level=None)
    set_request(db, a, at_village, escalation_level="village")
    elsewhere = new_village(db, "丙村").slug
    set_request(
        db, elsewhere, new_request(db, elsewhere, grid_level=None), escalation_level="region"
    )

    found = tasks_of(gql, coordinator)
    requests_waiting = {i["targetId"] for i in found["items"] if i["kind"] == "REQUEST"}
    assert requests_waiting == set(risen.values()), found
    assert counts(found).get("REQUEST") == 2
    assert {i["villageSlug"] for i in found["items"] if i["kind"] == "REQUEST"} == {a, b}

    # Taken up at the region, it still waits there; dispatched back, it is the village's.
    done, _ = step(gql, coordinator, "acceptRequest", REQUEST_FIELDS, id=risen[a], note="片区受理")
    assert done["userErrors"] == [], done
    sync_village(db, a)
    assert risen[a] in {i["targetId"] for i in tasks_of(gql, coordinator)["items"]}
    done, _ = step(
        gql, coordinator, "dispatchRequest", REQUEST_FIELDS, id=risen[a], note="请村里办理"
    )
    assert done["userErrors"] == [] and done["request"]["escalationLevel"] == "VILLAGE", done
    # The coordinators' list is the region's copies: as fresh as the sync.
    sync_village(db, a)
    after = tasks_of(gql, coordinator)
    assert {i["targetId"] for i in after["items"] if i["kind"] == "REQUEST"} == {risen[b]}
    assert risen[a] in {
        i["targetId"] for i in tasks_of(gql, token("village-admin", village=a))["items"]
    }

    # Closed at the region, nothing of it waits any more.
    set_request(db, b, int(risen_key(risen[b])), state="resolved")
    done, _ = step(gql, coordinator, "closeRequest", REQUEST_FIELDS, id=risen[b], note="已协调")
    assert done["userErrors"] == [] and done["request"]["state"] == "CLOSED", done
    sync_village(db, b)
    assert counts(tasks_of(gql, coordinator)).get("REQUEST") is None
    actions = [act for act, sub in audit_of(db, a, risen_key(risen[a])) if sub == "coord-tasks"]
    assert actions == ["request.accept", "request.dispatch"]


def risen_key(global_id: str) -> int:
    from villagelink.graphql.core.ids import decode_id

    return int(decode_id(global_id).key)

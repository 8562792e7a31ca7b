"""Requests (诉求/工单) and action lists (行动清单): both state machines walked state by
step, the closed loop through GraphQL, filters and dashboard counts, each role's
reach, the escalation job on a controlled clock, photos, and the list's statement count.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from villagelink.graphql.core.ids import decode_id, encode_id
from villagelink.jobs import escalation
from villagelink.jobs.queues import MAINTENANCE, queue
from villagelink.jobs.scheduler import ESCALATION_INTERVAL, build_cron_scheduler
from villagelink.platform import models as pm
from villagelink.platform.audit import Actor
from villagelink.platform.db import Database
from villagelink.platform.identity.principal import Principal
from villagelink.storage.factory import object_store
from villagelink.tenants import models as tm
from villagelink.tenants import provisioning
from villagelink.tenants.demo.plans import demo_grid_worker_subject
from villagelink.tenants.grids import grids_of_account
from villagelink.tenants.outbox import outbox
from villagelink.tenants.requests import actions
from villagelink.tenants.requests.queries import WHOLE_VILLAGE
from villagelink.tenants.requests.states import (
    ACCEPT,
    ACTION_LIST_TRANSITIONS,
    ASSIGN,
    CLOSE,
    RATE_SATISFIED,
    RATE_UNSATISFIED,
    REJECT,
    REOPEN,
    REQUEST_STEPS,
    REQUEST_TRANSITIONS,
    RESOLVE,
    START,
)
from villagelink.tenants.requests.tables import (
    ACCEPTED,
    ACTION_LIST_STATUSES,
    ASSIGNED,
    CANCELLED,
    CLOSED,
    DONE,
    IN_PROGRESS,
    PLANNED,
    REJECTED,
    REOPENED,
    REQUEST_STATES,
    RESOLVED,
    SUBMITTED,
    UNDERWAY,
    action_lists,
    request_categories,
    request_events,
    requests,
)

from .conftest import TEST_REGION
from .test_jobs import work_off
from .test_query_count import count_statements

ACTOR = Actor(
    Principal(
        "request-test", "测试管理员", frozenset({"village-admin"}), frozenset(), frozenset(), None
    )
)

# -- what the tests expect, written out rather than read from states.py ------------

# (state, step) -> the state it leads to; every other pair is refused.
ALLOWED_STEPS = {
    (SUBMITTED, ACCEPT): ACCEPTED,
    (SUBMITTED, REJECT): REJECTED,
    (ACCEPTED, ASSIGN): ASSIGNED,
    (ACCEPTED, REJECT): REJECTED,
    (ASSIGNED, ASSIGN): ASSIGNED,
    (ASSIGNED, START): IN_PROGRESS,
    (IN_PROGRESS, ASSIGN): ASSIGNED,
    (IN_PROGRESS, RESOLVE): RESOLVED,
    (RESOLVED, CLOSE): CLOSED,
    (RESOLVED, REOPEN): REOPENED,
    (RESOLVED, RATE_SATISFIED): CLOSED,
    (RESOLVED, RATE_UNSATISFIED): REOPENED,
    (CLOSED, REOPEN): REOPENED,
    (REOPENED, ASSIGN): ASSIGNED,
    (REOPENED, START): IN_PROGRESS,
}
ALLOWED_LIST_MOVES = {
    (PLANNED, UNDERWAY),
    (PLANNED, CANCELLED),
    (UNDERWAY, DONE),
    (UNDERWAY, CANCELLED),
}

# step -> (mutation, its input type, the input it needs besides the id)
STEP_MUTATIONS = {
    ACCEPT: ("acceptRequest", "AcceptRequestInput", {}),
    REJECT: ("rejectRequest", "RejectRequestInput", {"reason": "不属于本村受理范围"}),
    ASSIGN: ("assignRequest", "AssignRequestInput", {}),
    START: ("startRequest", "RequestNoteInput", {}),
    RESOLVE: ("resolveRequest", "ResolveRequestInput", {"resolution": "已清理完毕"}),
    CLOSE: ("closeRequest", "RequestNoteInput", {}),
    REOPEN: ("reopenRequest", "ReopenRequestInput", {"reason": "问题又出现了"}),
    RATE_SATISFIED: ("rateRequest", "RateRequestInput", {"rating": 4}),
    RATE_UNSATISFIED: ("rateRequest", "RateRequestInput", {"rating": 2}),
}

REQUEST_FIELDS = """id state grade dueAt overdue escalationLevel needsCoordination createdAt
  category { code name } grid { id level } assignee { id name tier }
  location { household { id } building text }
  reporter { name phone resident { id name } }
  rejectionReason resolution rating ratingComment version
  timeline { action fromState toState escalationLevel note actor at }
  lastEvent { action toState }"""
CREATE = f"""mutation($input: CreateRequestInput!) {{ createRequest(input: $input) {{
  request {{ {REQUEST_FIELDS} }} userErrors {{ field message code }} }} }}"""
LIST = """query($slug: String!, $filter: RequestFilter, $first: Int) { village(slug: $slug) {
  requests(first: $first, filter: $filter) { totalCount edges { node { id state } } } } }"""
NODE = "query($id: ID!) { node(id: $id) { ... on Request { id state } } }"
VILLAGE_BITS = """query($slug: String!) { village(slug: $slug) {
  requestCategories { id code name children { id code name parent { code } } }
  requestSettings { simpleHours complexHours hardHours }
  grids(first: 100) { edges { node { id level } } }
  households(first: 100) { edges { node { id building grid { id } } } }
  residents(first: 5) { edges { node { id name } } } } }"""


def step_mutation(step: str) -> str:
    name, input_type, _ = STEP_MUTATIONS[step]
    return f"""mutation($input: {input_type}!) {{ {name}(input: $input) {{
      request {{ {REQUEST_FIELDS} }} userErrors {{ field message code }} }} }}"""


def run_step(gql, caller: str, step: str, request_id: str, **extra) -> dict:
    name, _, needed = STEP_MUTATIONS[step]
    status, body = gql(
        step_mutation(step), caller, {"input": {"id": request_id, **needed, **extra}}
    )
    assert status == 200 and "errors" not in body, body
    return body["data"][name]


def first_code(body) -> str:
    return body["errors"][0]["extensions"]["code"]


def error_codes(payload: dict) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


# -- villages and requests ---------------------------------------------------------


def a_grid(conn, level: str = "micro") -> int:
    g = tm.grids
    return conn.execute(select(g.c.id).where(g.c.level == level).order_by(g.c.id)).scalar()


def a_category(conn, code: str = "sanitation") -> int:
    c = request_categories
    return conn.execute(select(c.c.id).where(c.c.code == code)).scalar_one()


def key_of(global_id: str) -> int:
    return int(decode_id(global_id).key)


def new_request(
    db: Database,
    slug: str,
    *,
    grid_level: str | None = "micro",
    category: str = "sanitation",
    **data,
) -> int:
    """A submitted request, registered by the action (free-text location, a named reporter)."""
    with db.tenant(slug) as conn:
        created = actions.do_create_request(
            conn,
            ACTOR,
            slug,
            {
                "channel": "phone",
                "description": "垃圾桶满溢无人清理",
                "location_text": "北门垃圾站",
                "reporter_name": "张三",
                "reporter_phone": "13812345678",
                **data,
            },
            category_id=a_category(conn, category),
            household_id=None,
            building=None,
            grid_id=a_grid(conn, grid_level) if grid_level else None,
            reporter_resident_id=None,
            scope=WHOLE_VILLAGE,
        )
    return created["id"]


def force_state(db: Database, slug: str, request_id: int, state: str) -> None:
    """Put a request into `state` directly (test setup), with an assignee as a request
    there would have."""
    with db.tenant(slug) as conn:
        staff = conn.execute(select(func.min(tm.grid_staff.c.id))).scalar()
        conn.execute(
            update(requests)
            .where(requests.c.id == request_id)
            .values(state=state, assignee_staff_id=staff)
        )


def snapshot(db: Database, slug: str, request_id: int) -> tuple:
    """Everything a step may change: the row, its timeline and its outbox entries."""
    with db.tenant(slug) as conn:
        row = conn.execute(select(requests).where(requests.c.id == request_id)).one()
        events = conn.execute(
            select(func.count()).where(request_events.c.request_id == request_id)
        ).scalar()
        shared = conn.execute(
            select(func.count()).where(
                outbox.c.record_type == "Request", outbox.c.record_id == request_id
            )
        ).scalar()
    return tuple(row), events, shared


def audit_actions(db: Database, slug: str) -> list[str]:
    with db.platform() as conn:
        return list(
            conn.execute(
                select(pm.audit_log.c.action)
                .where(pm.audit_log.c.village == slug)
                .order_by(pm.audit_log.c.occurred_at, pm.audit_log.c.action)
            ).scalars()
        )


# -- the request state machine -------------------------------------------------------


def test_the_table_allows_exactly_the_documented_steps():
    table = {
        (state, step): target
        for state, steps in REQUEST_TRANSITIONS.items()
        for step, target in steps.items()
    }
    assert table == ALLOWED_STEPS
    assert set(REQUEST_TRANSITIONS) == set(REQUEST_STATES)
    # Nothing leads back to submitted: only registration does.
    assert SUBMITTED not in set(ALLOWED_STEPS.values())
    assert {(s, target) for (s, _), target in ALLOWED_STEPS.items()} == {
        (SUBMITTED, ACCEPTED),
        (SUBMITTED, REJECTED),
        (ACCEPTED, ASSIGNED),
        (ACCEPTED, REJECTED),
        (ASSIGNED, ASSIGNED),
        (ASSIGNED, IN_PROGRESS),
        (IN_PROGRESS, ASSIGNED),
        (IN_PROGRESS, RESOLVED),
        (RESOLVED, CLOSED),
        (RESOLVED, REOPENED),
        (CLOSED, REOPENED),
        (REOPENED, ASSIGNED),
        (REOPENED, IN_PROGRESS),
    }


@pytest.mark.parametrize("step", REQUEST_STEPS)
@pytest.mark.parametrize("state", REQUEST_STATES)
def test_every_step_from_every_state(db, gql, token, shared_village, state, step):
    slug = shared_village.slug
    admin = token("village-admin", village=slug)
    request_id = new_request(db, slug)
    if state != SUBMITTED:
        force_state(db, slug, request_id, state)
    before = snapshot(db, slug, request_id)
    global_id = encode_id("Request", slug, request_id)

    payload = run_step(gql, admin, step, global_id)

    target = ALLOWED_STEPS.get((state, step))
    if target is None:
        assert payload == {
            "request": None,
            "userErrors": [
                {"field": "state", "message": "当前状态不允许此操作", "code": "INVALID_TRANSITION"}
            ],
        }
        assert snapshot(db, slug, request_id) == before
        return
    assert payload["userErrors"] == []
    request = payload["request"]
    assert request["state"] == target.upper()
    assert request["timeline"][-1]["fromState"] == state.upper()
    assert request["timeline"][-1]["toState"] == target.upper()
    assert request["timeline"][-1]["action"] == step
    _, events, shared = before
    after = snapshot(db, slug, request_id)
    assert (after[1], after[2]) == (events + 1, shared + 1)
    assert request["version"] == before[0][requests.c.keys().index("version")] + 1


# -- the action-list state machine ------------------------------------------------------

SET_STATUS = """mutation($input: SetActionListStatusInput!) { setActionListStatus(input: $input) {
  actionList { id status version } userErrors { field message code } } }"""


def test_action_list_table_allows_exactly_the_documented_moves():
    table = {(s, t) for s, targets in ACTION_LIST_TRANSITIONS.items() for t in targets}
    assert table == ALLOWED_LIST_MOVES
    assert set(ACTION_LIST_TRANSITIONS) == set(ACTION_LIST_STATUSES)


@pytest.mark.parametrize("target", ACTION_LIST_STATUSES)
@pytest.mark.parametrize("status", ACTION_LIST_STATUSES)
def test_every_action_list_move(db, gql, token, shared_village, status, target):
    slug = shared_village.slug
    with db.tenant(slug) as conn:
        created = actions.do_create_action_list(
            conn,
            ACTOR,
            slug,
            {"title": "北门垃圾站整治", "owner": "物业公司", "due_date": date(2026, 12, 31)},
            [],
        )
        conn.execute(
            update(action_lists).where(action_lists.c.id == created["id"]).values(status=status)
        )
    _, body = gql(
        SET_STATUS,
        token("village-admin", village=slug),
        {"input": {"id": encode_id("ActionList", slug, created["id"]), "status": target.upper()}},
    )
    payload = body["data"]["setActionListStatus"]
    with db.tenant(slug) as conn:
        stored = conn.execute(
            select(action_lists.c.status, action_lists.c.version).where(
                action_lists.c.id == created["id"]
            )
        ).one()
    if (status, target) in ALLOWED_LIST_MOVES:
        assert payload["userErrors"] == []
        assert payload["actionList"]["status"] == target.upper()
        assert tuple(stored) == (target, 2)
    else:
        assert error_codes(payload) == [("state", "INVALID_TRANSITION")]
        assert tuple(stored) == (status, 1)


# -- the closed loop through GraphQL -----------------------------------------------------


def place_in(gql, token, populated: provisioning.Village) -> dict:
    """A populated village's slug, admin token, categories, grids, households, residents."""
    slug = populated.slug
    admin = token("village-admin", village=slug)
    _, body = gql(VILLAGE_BITS, admin, {"slug": slug})
    village = body["data"]["village"]
    return {
        "slug": slug,
        "admin": admin,
        "categories": {c["code"]: c["id"] for c in village["requestCategories"]},
        "grids": [e["node"] for e in village["grids"]["edges"]],
        "households": [e["node"] for e in village["households"]["edges"]],
        "residents": [e["node"] for e in village["residents"]["edges"]],
    }


@pytest.fixture
def place(gql, token, populated_village) -> dict:
    """A populated village of the test's own: for cases that list, count or audit the
    whole village, or change its categories or deadlines."""
    return place_in(gql, token, populated_village)


@pytest.fixture
def shared_place(gql, token, shared_village) -> dict:
    """The module's shared populated village: for cases that read only the requests they
    register themselves (by id) and change nothing village-wide."""
    return place_in(gql, token, shared_village)


def create(gql, caller: str, place: dict, **fields) -> dict:
    data = {
        "village": place["slug"],
        "channel": "MINI_PROGRAM",
        "category": place["categories"]["parking"],
        "description": "消防通道被私家车长期占用",
        **fields,
    }
    status, body = gql(CREATE, caller, {"input": data})
    assert status == 200 and "errors" not in body, body
    return body["data"]["createRequest"]


def test_default_categories_and_deadlines_are_seeded(gql, token, other_village):
    slug = other_village.slug
    _, body = gql(VILLAGE_BITS, token("village-admin", village=slug), {"slug": slug})
    found = body["data"]["village"]
    assert [(c["code"], c["name"]) for c in found["requestCategories"]] == [
        ("property_service", "物业服务"),
        ("sanitation", "环境卫生"),
        ("parking", "停车管理"),
        ("noise", "噪音扰民"),
        ("neighbour_dispute", "邻里纠纷"),
        ("facility_repair", "设施维修"),
        ("legal_aid", "法律援助"),
        ("elderly_care", "养老服务"),
        ("safety_hazard", "安全隐患"),
        ("other", "其他"),
    ]
    assert found["requestSettings"] == {"simpleHours": 24, "complexHours": 72, "hardHours": 360}


def test_closed_loop_from_registration_to_rating(db, gql, token, place):
    admin = place["admin"]
    household = place["households"][0]
    resident = place["residents"][0]
    created = create(
        gql,
        admin,
        place,
        household=household["id"],
        reporterResident=resident["id"],
        reporterPhone="13912345678",
        note="居民来电",
    )
    assert created["userErrors"] == []
    request = created["request"]
    assert request["state"] == "SUBMITTED" and request["grade"] == "SIMPLE"
    assert request["location"] == {
        "household": {"id": household["id"]},
        "building": household["building"],
        "text": None,
    }
    assert request["grid"]["id"] == household["grid"]["id"]
    assert request["reporter"] == {
        "name": resident["name"],
        "phone": "139****5678",
        "resident": resident,
    }
    created_at = datetime.fromisoformat(request["createdAt"])
    assert datetime.fromisoformat(request["dueAt"]) - created_at == timedelta(hours=24)
    assert request["timeline"] == [
        {
            "action": "create",
            "fromState": None,
            "toState": "SUBMITTED",
            "escalationLevel": None,
            "note": "居民来电",
            "actor": request["timeline"][0]["actor"],
            "at": request["createdAt"],
        }
    ]
    rid = request["id"]

    accepted = run_step(
        gql, admin, ACCEPT, rid, grade="COMPLEX", category=place["categories"]["safety_hazard"]
    )["request"]
    assert (accepted["grade"], accepted["category"]["code"]) == ("COMPLEX", "safety_hazard")
    assert datetime.fromisoformat(accepted["dueAt"]) - created_at == timedelta(hours=72)

    assigned = run_step(gql, admin, ASSIGN, rid)["request"]
    # The household's micro-grid has a micro-grid worker: the request goes to them.
    assert assigned["assignee"]["tier"] == "MICRO_GRID_WORKER"
    assert (
        assigned["timeline"][-1]["note"] == f"自动派单：{assigned['assignee']['name']}（微网格员）"
    )

    run_step(gql, admin, START, rid)
    resolved = run_step(gql, admin, RESOLVE, rid, resolution="已联系车主挪车并设置警示桩")
    assert resolved["request"]["resolution"] == "已联系车主挪车并设置警示桩"

    closed = run_step(gql, admin, RATE_SATISFIED, rid, rating=5, comment="处理及时")["request"]
    assert (closed["state"], closed["rating"], closed["ratingComment"]) == ("CLOSED", 5, "处理及时")
    assert [(e["action"], e["fromState"], e["toState"]) for e in closed["timeline"]] == [
        ("create", None, "SUBMITTED"),
        ("accept", "SUBMITTED", "ACCEPTED"),
        ("assign", "ACCEPTED", "ASSIGNED"),
        ("start", "ASSIGNED", "IN_PROGRESS"),
        ("resolve", "IN_PROGRESS", "RESOLVED"),
        ("rate_satisfied", "RESOLVED", "CLOSED"),
    ]
    assert closed["timeline"][-1]["note"] == "评分：5分；处理及时"
    assert closed["lastEvent"] == {"action": "rate_satisfied", "toState": "CLOSED"}
    assert {e["actor"] for e in closed["timeline"]} == {closed["timeline"][0]["actor"]}
    assert audit_actions(db, place["slug"]) == [
        "request.create",
        "request.accept",
        "request.assign",
        "request.start",
        "request.resolve",
        "request.rate_satisfied",
    ]


def test_a_bad_rating_reopens_with_a_fresh_deadline(db, gql, shared_place):
    admin = shared_place["admin"]
    rid = create(
        gql,
        admin,
        shared_place,
        locationText="3号楼电梯",
        grid=shared_place["grids"][0]["id"],
        reporterName="李四",
    )["request"]["id"]
    for step in (ACCEPT, ASSIGN, START, RESOLVE):
        run_step(gql, admin, step, rid)

    reopened = run_step(gql, admin, RATE_UNSATISFIED, rid, rating=1, comment="没修好")["request"]
    assert (reopened["state"], reopened["rating"]) == ("REOPENED", 1)
    last = reopened["timeline"][-1]
    due = datetime.fromisoformat(reopened["dueAt"])
    assert due - datetime.fromisoformat(last["at"]) == timedelta(hours=24)

    # A rating out of range changes nothing; neither does rating what is not resolved.
    payload = run_step(gql, admin, RATE_SATISFIED, rid, rating=6)
    assert error_codes(payload) == [("rating", "INVALID")]
    payload = run_step(gql, admin, RATE_SATISFIED, rid, rating=5)
    assert error_codes(payload) == [("state", "INVALID_TRANSITION")]
    # Back to work and resolved again, then closed by the village without a rating.
    for step in (START, RESOLVE, CLOSE):
        assert run_step(gql, admin, step, rid)["userErrors"] == []


def test_registration_refusals_write_nothing(db, gql, token, place, other_village):
    admin = place["admin"]
    household = place["households"][0]
    elsewhere = next(g for g in place["grids"] if g["id"] != household["grid"]["id"])
    cases = [
        ({"description": "   "}, [("description", "REQUIRED")]),
        ({"reporterName": "王五"}, [("locationText", "REQUIRED")]),
        ({"locationText": "北门", "reporterPhone": "12345"}, [("reporterPhone", "INVALID")]),
        ({"locationText": "北门"}, [("reporterName", "REQUIRED")]),
        (
            {"household": household["id"], "grid": elsewhere["id"], "reporterName": "王五"},
            [("grid", "MISMATCH")],
        ),
        ({"building": "99号楼", "reporterName": "王五"}, [("building", "NOT_FOUND")]),
        # A form's unpicked category: to be chosen, not "does not exist".
        (
            {"locationText": "北门", "reporterName": "王五", "category": ""},
            [("category", "REQUIRED")],
        ),
        (
            {
                "locationText": "北门",
                "reporterName": "王五",
                "category": encode_id("RequestCategory", other_village.slug, 1),
            },
            [("category", "NOT_FOUND")],
        ),
        (
            {
                "locationText": "北门",
                "reporterName": "王五",
                "household": encode_id("Household", other_village.slug, 1),
            },
            [("household", "NOT_FOUND")],
        ),
    ]
    for fields, expected in cases:
        payload = create(gql, admin, place, **fields)
        assert payload["request"] is None
        assert error_codes(payload) == expected, fields
    _, body = gql(LIST, admin, {"slug": place["slug"]})
    assert body["data"]["village"]["requests"]["totalCount"] == 0
    assert audit_actions(db, place["slug"]) == []


def test_a_building_places_the_request_in_its_grid(gql, shared_place):
    household = shared_place["households"][0]
    payload = create(
        gql,
        shared_place["admin"],
        shared_place,
        building=household["building"],
        reporterName="赵六",
        reporterPhone="022-23456789",
    )
    assert payload["userErrors"] == []
    request = payload["request"]
    assert request["location"]["building"] == household["building"]
    assert request["grid"] is not None
    assert request["reporter"]["phone"] == "022*****6789"


def test_automatic_assignment_goes_down_the_tiers(db, gql, shared_place):
    """A micro-grid has micro-grid workers; a large grid only grid workers; the community
    grid only its chief. Without a grid there is no one to pick."""
    admin = shared_place["admin"]
    expected = {"MICRO": "MICRO_GRID_WORKER", "LARGE": "GRID_WORKER", "COMMUNITY": "GRID_CHIEF"}
    for level, tier in expected.items():
        grid = next(g for g in shared_place["grids"] if g["level"] == level)
        rid = create(
            gql, admin, shared_place, locationText="某处", grid=grid["id"], reporterName="钱七"
        )["request"]["id"]
        run_step(gql, admin, ACCEPT, rid)
        assert run_step(gql, admin, ASSIGN, rid)["request"]["assignee"]["tier"] == tier

    rid = create(gql, admin, shared_place, locationText="村外河道", reporterName="孙八")["request"][
        "id"
    ]
    run_step(gql, admin, ACCEPT, rid)
    before = snapshot(db, shared_place["slug"], key_of(rid))
    assert error_codes(run_step(gql, admin, ASSIGN, rid)) == [("assignee", "NO_ASSIGNEE")]
    assert snapshot(db, shared_place["slug"], key_of(rid)) == before

    # Named by hand, and handed over to someone else while in progress.
    with db.tenant(shared_place["slug"]) as conn:
        staff = conn.execute(select(tm.grid_staff.c.id).order_by(tm.grid_staff.c.id)).scalars()
        first, second = list(staff)[:2]
    chosen = encode_id("GridStaff", shared_place["slug"], first)
    assert run_step(gql, admin, ASSIGN, rid, assignee=chosen)["request"]["assignee"]["id"] == chosen
    run_step(gql, admin, START, rid)
    other = encode_id("GridStaff", shared_place["slug"], second)
    handed = run_step(gql, admin, ASSIGN, rid, assignee=other, note="原网格员休假")["request"]
    assert (handed["state"], handed["assignee"]["id"]) == ("ASSIGNED", other)
    assert handed["timeline"][-1]["note"].endswith("；原网格员休假")
    missing = encode_id("GridStaff", shared_place["slug"], 999999)
    assert error_codes(run_step(gql, admin, ASSIGN, rid, assignee=missing)) == [
        ("assignee", "NOT_FOUND")
    ]


def test_rejection_needs_a_reason(gql, shared_place):
    admin = shared_place["admin"]
    rid = create(gql, admin, shared_place, locationText="北门", reporterName="周九")["request"][
        "id"
    ]
    assert error_codes(run_step(gql, admin, REJECT, rid, reason=" ")) == [("reason", "REQUIRED")]
    rejected = run_step(gql, admin, REJECT, rid, reason="属于市政管辖，已转12345")["request"]
    assert (rejected["state"], rejected["rejectionReason"]) == (
        "REJECTED",
        "属于市政管辖，已转12345",
    )


def test_every_change_is_shared_through_the_outbox(db, gql, shared_place):
    admin = shared_place["admin"]
    rid = create(
        gql,
        admin,
        shared_place,
        locationText="北门",
        reporterName="吴十",
        reporterPhone="13700001111",
    )["request"]["id"]
    run_step(gql, admin, ACCEPT, rid)
    with db.tenant(shared_place["slug"]) as conn:
        rows = conn.execute(
            select(outbox.c.version, outbox.c.payload)
            .where(outbox.c.record_type == "Request", outbox.c.record_id == key_of(rid))
            .order_by(outbox.c.id)
        ).all()
    assert [version for version, _ in rows] == [1, 2]
    payload = rows[-1][1]
    assert (payload["state"], payload["category"], payload["escalation_level"]) == (
        ACCEPTED,
        "parking",
        "grid",
    )
    # The reporter stays in the village.
    assert not {"reporter_name", "reporter_phone", "reporter_resident_id"} & set(payload)
    assert "吴十" not in str(payload) and "13700001111" not in str(payload)


def test_reporter_phone_is_unmasked_for_the_admin_only_and_audited(db, gql, token, shared_place):
    admin = shared_place["admin"]
    rid = create(
        gql,
        admin,
        shared_place,
        locationText="北门",
        reporterName="郑一",
        reporterPhone="13700002222",
        grid=next(g for g in shared_place["grids"] if g["level"] == "MICRO")["id"],
    )["request"]["id"]
    query = """query($id: ID!) { node(id: $id) { ... on Request {
      reporter { phone(unmasked: true, reason: "电话回访") } } } }"""
    _, body = gql(query, admin, {"id": rid})
    assert body["data"]["node"]["reporter"]["phone"] == "13700002222"
    with db.platform() as conn:
        read = conn.execute(
            select(pm.audit_log.c.fields, pm.audit_log.c.reason).where(
                pm.audit_log.c.village == shared_place["slug"],
                pm.audit_log.c.action == "request_reporter.read_unmasked",
                pm.audit_log.c.subject_id == str(key_of(rid)),
            )
        ).one()
    assert tuple(read) == (["phone"], "电话回访")
    worker = token(
        "grid-worker",
        village=shared_place["slug"],
        sub=demo_grid_worker_subject(shared_place["slug"]),
    )
    _, body = gql(query, worker, {"id": rid})
    assert first_code(body) in {"FORBIDDEN", "NOT_FOUND"}


# -- categories and deadlines ----------------------------------------------------------

CREATE_CATEGORY = """mutation($input: CreateRequestCategoryInput!) {
  createRequestCategory(input: $input) { category { id code name parent { code } }
  userErrors { field code } } }"""
SETTINGS = """mutation($input: UpdateRequestSettingsInput!) { updateRequestSettings(input: $input) {
  settings { simpleHours complexHours hardHours } userErrors { field code } } }"""


def test_a_village_adds_its_own_categories(gql, token, place):
    admin, slug = place["admin"], place["slug"]
    parking = place["categories"]["parking"]
    _, body = gql(
        CREATE_CATEGORY,
        admin,
        {
            "input": {
                "village": slug,
                "code": "ebike_charging",
                "name": "电动车充电",
                "parent": parking,
            }
        },
    )
    payload = body["data"]["createRequestCategory"]
    assert payload["userErrors"] == []
    child = payload["category"]
    assert (child["code"], child["parent"]) == ("ebike_charging", {"code": "parking"})

    for data, expected in [
        ({"code": "ebike_charging", "name": "另一个"}, ("code", "DUPLICATE")),
        ({"code": "parking_two", "name": "停车管理"}, ("name", "DUPLICATE")),
        ({"code": "Bad Code", "name": "坏代码"}, ("code", "INVALID")),
        ({"code": "deeper", "name": "更深", "parent": child["id"]}, ("parent", "INVALID")),
    ]:
        _, body = gql(CREATE_CATEGORY, admin, {"input": {"village": slug, **data}})
        assert error_codes(body["data"]["createRequestCategory"]) == [expected], data

    _, body = gql(
        CREATE_CATEGORY, admin, {"input": {"village": slug, "code": "pets", "name": "宠物管理"}}
    )
    assert body["data"]["createRequestCategory"]["category"]["parent"] is None
    _, body = gql(VILLAGE_BITS, admin, {"slug": slug})
    tree = {c["code"]: c for c in body["data"]["village"]["requestCategories"]}
    assert list(tree)[-1] == "pets"
    assert [c["code"] for c in tree["parking"]["children"]] == ["ebike_charging"]

    # A sub-category is found under its parent's filter.
    rid = create(gql, admin, place, category=child["id"], locationText="车棚", reporterName="王二")[
        "request"
    ]["id"]
    _, body = gql(LIST, admin, {"slug": slug, "filter": {"category": parking}})
    assert [e["node"]["id"] for e in body["data"]["village"]["requests"]["edges"]] == [rid]


def test_deadlines_are_set_per_village(gql, token, place):
    admin, slug = place["admin"], place["slug"]
    _, body = gql(
        SETTINGS,
        admin,
        {"input": {"village": slug, "simpleHours": 8, "complexHours": 4, "hardHours": 100}},
    )
    assert error_codes(body["data"]["updateRequestSettings"]) == [("complexHours", "INVALID")]
    _, body = gql(
        SETTINGS,
        admin,
        {"input": {"village": slug, "simpleHours": 8, "complexHours": 48, "hardHours": 240}},
    )
    assert body["data"]["updateRequestSettings"]["settings"] == {
        "simpleHours": 8,
        "complexHours": 48,
        "hardHours": 240,
    }
    request = create(gql, admin, place, grade="HARD", locationText="北门", reporterName="冯三")[
        "request"
    ]
    due = datetime.fromisoformat(request["dueAt"]) - datetime.fromisoformat(request["createdAt"])
    assert due == timedelta(hours=240)

    worker = token("grid-worker", village=slug, sub=demo_grid_worker_subject(slug))
    _, body = gql(
        SETTINGS,
        worker,
        {"input": {"village": slug, "simpleHours": 1, "complexHours": 1, "hardHours": 1}},
    )
    assert first_code(body) == "FORBIDDEN"


UPDATE_CATEGORY = """mutation($input: UpdateRequestCategoryInput!) {
  updateRequestCategory(input: $input) { category { id name active children { active } }
  userErrors { field message code } } }"""


def test_an_admin_renames_retires_and_restores_categories(db, gql, token, place):
    admin, slug = place["admin"], place["slug"]
    parking = place["categories"]["parking"]
    _, body = gql(
        CREATE_CATEGORY,
        admin,
        {"input": {"village": slug, "code": "ebike", "name": "电动车", "parent": parking}},
    )
    child = body["data"]["createRequestCategory"]["category"]["id"]

    def change(caller: str, **fields) -> dict:
        _, body = gql(UPDATE_CATEGORY, caller, {"input": fields})
        return body

    renamed = change(admin, id=parking, name="停车与充电")["data"]["updateRequestCategory"]
    assert renamed["userErrors"] == []
    assert renamed["category"]["name"] == "停车与充电"
    refused = change(admin, id=parking, name="噪音扰民")["data"]["updateRequestCategory"]
    assert error_codes(refused) == [("name", "DUPLICATE")]
    assert refused["userErrors"][0]["message"] == "同级已有同名分类"
    assert error_codes(change(admin, id=parking, name=" ")["data"]["updateRequestCategory"]) == [
        ("name", "REQUIRED")
    ]

    # Retiring the top-level category retires its sub-category: neither takes new requests.
    retired = change(admin, id=parking, active=False)["data"]["updateRequestCategory"]
    assert retired["category"]["active"] is False
    assert retired["category"]["children"] == [{"active": False}]
    for category in (parking, child):
        data = {
            "village": slug,
            "channel": "PHONE",
            "category": category,
            "description": "车棚乱停",
            "locationText": "车棚",
            "reporterName": "王二",
        }
        _, body = gql(CREATE, admin, {"input": data})
        assert error_codes(body["data"]["createRequest"]) == [("category", "CATEGORY_INACTIVE")]
    back = change(admin, id=child, active=True)["data"]["updateRequestCategory"]
    assert error_codes(back) == [("active", "INVALID")]
    assert change(admin, id=parking, active=True)["data"]["updateRequestCategory"]["category"][
        "active"
    ]
    assert change(admin, id=child, active=True)["data"]["updateRequestCategory"]["category"][
        "active"
    ]
    create(gql, admin, place, category=child, locationText="车棚", reporterName="王二")

    # Other roles and other villages' admins change nothing; a made-up id is not found.
    worker = token("grid-worker", village=slug, sub=demo_grid_worker_subject(slug))
    assert first_code(change(worker, id=parking, name="改名")) == "FORBIDDEN"
    stranger = token("village-admin", village="elsewhere")
    assert first_code(change(stranger, id=parking, name="改名")) in {"FORBIDDEN", "NOT_FOUND"}
    assert first_code(change(admin, id="bm90LWFuLWlk", name="改名")) == "NOT_FOUND"
    with db.tenant(slug) as conn:
        name = conn.execute(
            select(request_categories.c.name).where(request_categories.c.id == key_of(parking))
        ).scalar_one()
    assert name == "停车与充电"
    assert audit_actions(db, slug).count("request_category.update") == 4


# -- queries and dashboard counts ----------------------------------------------------------


def test_filters(db, gql, place):
    admin, slug = place["admin"], place["slug"]
    micro = next(g for g in place["grids"] if g["level"] == "MICRO")
    community = next(g for g in place["grids"] if g["level"] == "COMMUNITY")
    noisy = create(
        gql,
        admin,
        place,
        category=place["categories"]["noise"],
        grade="COMPLEX",
        description="夜间广场舞音响扰民",
        locationText="中心广场 100%_区",
        grid=micro["id"],
        reporterName="甲",
    )["request"]["id"]
    parked = create(
        gql, admin, place, description="车辆占道", locationText="东门", reporterName="乙"
    )["request"]["id"]
    run_step(gql, admin, ACCEPT, parked)
    with db.tenant(slug) as conn:
        conn.execute(
            update(requests)
            .where(requests.c.id == key_of(parked))
            .values(
                due_at=func.now() - timedelta(hours=1), created_at=func.now() - timedelta(days=3)
            )
        )

    def ids(flt: dict) -> list[str]:
        _, body = gql(LIST, admin, {"slug": slug, "filter": flt})
        assert "errors" not in body, body
        found = body["data"]["village"]["requests"]
        assert found["totalCount"] == len(found["edges"])
        return [e["node"]["id"] for e in found["edges"]]

    assert ids({}) == [noisy, parked]
    assert ids({"states": ["ACCEPTED"]}) == [parked]
    assert ids({"states": ["ACCEPTED", "SUBMITTED"]}) == [noisy, parked]
    assert ids({"category": place["categories"]["noise"]}) == [noisy]
    assert ids({"grade": "COMPLEX"}) == [noisy]
    assert ids({"grid": micro["id"]}) == [noisy]
    # The community grid is above every micro-grid.
    assert ids({"grid": community["id"]}) == [noisy]
    assert ids({"overdue": True}) == [parked]
    assert ids({"overdue": False}) == [noisy]
    assert ids({"escalationLevel": "GRID"}) == [noisy, parked]
    assert ids({"text": "广场舞"}) == [noisy]
    assert ids({"text": "东门"}) == [parked]
    assert ids({"text": "100%_"}) == [noisy]
    assert ids({"text": "%"}) == [noisy]
    assert ids({"text": "_"}) == [noisy]
    today = date.today()
    assert ids({"createdFrom": (today - timedelta(days=1)).isoformat()}) == [noisy]
    assert ids({"createdTo": (today - timedelta(days=2)).isoformat()}) == [parked]
    # An ID of another village matches nothing rather than erroring.
    assert ids({"grid": encode_id("Grid", "elsewhere", 1)}) == []


def test_request_stats_count_by_category_and_state(db, gql, place):
    admin, slug = place["admin"], place["slug"]
    for _ in range(2):
        create(gql, admin, place, locationText="北门", reporterName="甲")
    late = create(
        gql,
        admin,
        place,
        category=place["categories"]["noise"],
        locationText="广场",
        reporterName="乙",
    )["request"]["id"]
    run_step(gql, admin, ACCEPT, late)
    with db.tenant(slug) as conn:
        conn.execute(
            update(requests)
            .where(requests.c.id == key_of(late))
            .values(due_at=func.now() - timedelta(minutes=5))
        )
    query = """query($slug: String!) { village(slug: $slug) { requestStats {
      overdue byCategoryAndState { category { code } state count overdue } } } }"""
    _, body = gql(query, admin, {"slug": slug})
    stats = body["data"]["village"]["requestStats"]
    assert stats["overdue"] == 1
    assert {
        (r["category"]["code"], r["state"], r["count"], r["overdue"])
        for r in stats["byCategoryAndState"]
    } == {("parking", "SUBMITTED", 2, 0), ("noise", "ACCEPTED", 1, 1)}


def test_request_stats_cost_two_statements(app, gql, place):
    # Two categories in the counts: their categories come from one read of the tree, not
    # one read each (a loader that kept only the key it was asked for read it twice).
    for category in ("parking", "noise"):
        created = create(
            gql,
            place["admin"],
            place,
            category=place["categories"][category],
            locationText="北门",
            reporterName="甲",
        )
        assert created["userErrors"] == []
    query = """query($slug: String!) { village(slug: $slug) { requestStats {
      overdue byCategoryAndState { category { code name } state count overdue } } } }"""
    with count_statements(app.extensions["villagelink"].db.engine) as statements:
        _, body = gql(query, place["admin"], {"slug": place["slug"]})
    assert "errors" not in body
    # role, path and access epoch (the caller's reach is kept with the token since the
    # request above), then the counts and the categories
    assert len(statements) == 3, "\n".join(statements)


# -- action lists -------------------------------------------------------------------------

CREATE_LIST = """mutation($input: CreateActionListInput!) { createActionList(input: $input) {
  actionList { id title owner dueDate status requests { id timeline { action note } } }
  userErrors { field code } } }"""
ADD_TO_LIST = """mutation($input: AddRequestsToActionListInput!) {
  addRequestsToActionList(input: $input) { actionList { id requests { id } }
  userErrors { field code } } }"""
REMOVE_FROM_LIST = """mutation($input: RemoveRequestFromActionListInput!) {
  removeRequestFromActionList(input: $input) { actionList { id requests { id } }
  userErrors { field code } } }"""
UPDATE_LIST = """mutation($input: UpdateActionListInput!) { updateActionList(input: $input) {
  actionList { id title owner dueDate version } userErrors { field code } } }"""
LISTS = """query($slug: String!) { village(slug: $slug) { actionLists(first: 10) {
  totalCount edges { node { id title status requests { id state } } } } } }"""


def test_action_lists_group_requests(db, gql, place):
    admin, slug = place["admin"], place["slug"]
    first, second, third = (
        create(gql, admin, place, locationText=f"{n}号停车区", reporterName="甲")["request"]["id"]
        for n in (1, 2, 3)
    )
    _, body = gql(
        CREATE_LIST,
        admin,
        {
            "input": {
                "village": slug,
                "title": "整治小区停车秩序",
                "owner": "物业公司",
                "dueDate": "2026-12-31",
                "requests": [first, second],
            }
        },
    )
    payload = body["data"]["createActionList"]
    assert payload["userErrors"] == []
    action_list = payload["actionList"]
    assert (action_list["status"], action_list["dueDate"]) == ("PLANNED", "2026-12-31")
    assert [r["id"] for r in action_list["requests"]] == [first, second]
    assert action_list["requests"][0]["timeline"][-1] == {
        "action": "add_to_action_list",
        "note": "纳入行动清单：整治小区停车秩序",
    }

    _, body = gql(
        ADD_TO_LIST,
        admin,
        {"input": {"actionList": action_list["id"], "requests": [second, third]}},
    )
    assert [r["id"] for r in body["data"]["addRequestsToActionList"]["actionList"]["requests"]] == [
        first,
        second,
        third,
    ]
    _, body = gql(
        REMOVE_FROM_LIST, admin, {"input": {"actionList": action_list["id"], "request": first}}
    )
    assert [
        r["id"] for r in body["data"]["removeRequestFromActionList"]["actionList"]["requests"]
    ] == [second, third]
    _, body = gql(
        REMOVE_FROM_LIST, admin, {"input": {"actionList": action_list["id"], "request": first}}
    )
    assert error_codes(body["data"]["removeRequestFromActionList"]) == [("request", "NOT_FOUND")]
    _, body = gql(LIST, admin, {"slug": slug, "filter": {"actionList": action_list["id"]}})
    assert [e["node"]["id"] for e in body["data"]["village"]["requests"]["edges"]] == [
        second,
        third,
    ]

    _, body = gql(
        UPDATE_LIST,
        admin,
        {"input": {"id": action_list["id"], "owner": "社区居委会", "title": " "}},
    )
    assert error_codes(body["data"]["updateActionList"]) == [("title", "REQUIRED")]
    _, body = gql(UPDATE_LIST, admin, {"input": {"id": action_list["id"], "owner": "社区居委会"}})
    assert body["data"]["updateActionList"]["actionList"]["owner"] == "社区居委会"

    # Finished lists are a record: they no longer change.
    for status in (UNDERWAY.upper(), DONE.upper()):
        gql(SET_STATUS, admin, {"input": {"id": action_list["id"], "status": status}})
    _, body = gql(UPDATE_LIST, admin, {"input": {"id": action_list["id"], "owner": "别人"}})
    assert error_codes(body["data"]["updateActionList"]) == [("state", "INVALID_TRANSITION")]
    _, body = gql(
        ADD_TO_LIST, admin, {"input": {"actionList": action_list["id"], "requests": [first]}}
    )
    assert error_codes(body["data"]["addRequestsToActionList"]) == [("state", "INVALID_TRANSITION")]

    _, body = gql(LISTS, admin, {"slug": slug})
    lists = body["data"]["village"]["actionLists"]
    assert lists["totalCount"] == 1
    assert lists["edges"][0]["node"]["status"] == DONE.upper()
    assert "action_list.create" in audit_actions(db, slug)


def test_action_list_refusals(db, gql, place, other_village):
    admin, slug = place["admin"], place["slug"]
    base = {"village": slug, "title": "清单", "owner": "物业", "dueDate": "2026-12-31"}
    _, body = gql(
        CREATE_LIST, admin, {"input": {**base, "requests": [encode_id("Request", slug, 999999)]}}
    )
    assert error_codes(body["data"]["createActionList"]) == [("requests", "NOT_FOUND")]
    _, body = gql(
        CREATE_LIST,
        admin,
        {"input": {**base, "requests": [encode_id("Request", other_village.slug, 1)]}},
    )
    assert error_codes(body["data"]["createActionList"]) == [("requests", "NOT_FOUND")]
    # More than a hundred requests is a backlog, not an action.
    ids = [new_request(db, slug, grid_level=None) for _ in range(101)]
    _, body = gql(
        CREATE_LIST,
        admin,
        {"input": {**base, "requests": [encode_id("Request", slug, k) for k in ids]}},
    )
    assert error_codes(body["data"]["createActionList"]) == [("requests", "INVALID")]
    _, body = gql(LISTS, admin, {"slug": slug})
    assert body["data"]["village"]["actionLists"]["totalCount"] == 0
    with db.tenant(slug) as conn:
        listed = conn.execute(
            select(func.count()).where(request_events.c.action == "add_to_action_list")
        ).scalar()
    assert listed == 0


# -- roles -----------------------------------------------------------------------------


def worker_grids(db: Database, slug: str) -> frozenset[int]:
    with db.tenant(slug) as conn:
        return grids_of_account(conn, demo_grid_worker_subject(slug))


def test_grid_worker_sees_and_works_own_grids_only(db, gql, token, place):
    slug, admin = place["slug"], place["admin"]
    worker = token("grid-worker", village=slug, sub=demo_grid_worker_subject(slug))
    mine = worker_grids(db, slug)
    own = next(g for g in place["grids"] if key_of(g["id"]) in mine)
    other = next(g for g in place["grids"] if key_of(g["id"]) not in mine)
    inside = create(gql, admin, place, locationText="甲", grid=own["id"], reporterName="甲")[
        "request"
    ]["id"]
    outside = create(gql, admin, place, locationText="乙", grid=other["id"], reporterName="乙")[
        "request"
    ]["id"]

    _, body = gql(LIST, worker, {"slug": slug})
    assert [e["node"]["id"] for e in body["data"]["village"]["requests"]["edges"]] == [inside]
    _, body = gql(NODE, worker, {"id": outside})
    assert first_code(body) == "NOT_FOUND"
    assert error_codes(run_step(gql, worker, ACCEPT, outside)) == [("id", "NOT_FOUND")]
    assert run_step(gql, worker, ACCEPT, inside)["request"]["state"] == "ACCEPTED"

    # Registering: in their own grids only.
    payload = create(
        gql,
        worker,
        place,
        channel="GRID_WORKER",
        locationText="丙",
        grid=other["id"],
        reporterName="丙",
    )
    assert error_codes(payload) == [("grid", "NOT_FOUND")]
    payload = create(
        gql, worker, place, channel="GRID_WORKER", locationText="丙", reporterName="丙"
    )
    assert error_codes(payload) == [("grid", "NOT_FOUND")]
    payload = create(
        gql,
        worker,
        place,
        channel="GRID_WORKER",
        locationText="丙",
        grid=own["id"],
        reporterName="丙",
    )
    assert payload["userErrors"] == []

    # Counts keep to their grids too; categories, deadlines and action lists are the admin's.
    _, body = gql(
        """query($slug: String!) { village(slug: $slug) { requestStats {
      byCategoryAndState { count } } } }""",
        worker,
        {"slug": slug},
    )
    assert (
        sum(r["count"] for r in body["data"]["village"]["requestStats"]["byCategoryAndState"]) == 2
    )
    _, body = gql(
        CREATE_CATEGORY, worker, {"input": {"village": slug, "code": "x1", "name": "某类"}}
    )
    assert first_code(body) == "FORBIDDEN"
    _, body = gql(
        SETTINGS,
        worker,
        {"input": {"village": slug, "simpleHours": 1, "complexHours": 2, "hardHours": 3}},
    )
    assert first_code(body) == "FORBIDDEN"
    _, body = gql(
        CREATE_LIST,
        worker,
        {"input": {"village": slug, "title": "清单", "owner": "我", "dueDate": "2026-12-31"}},
    )
    assert first_code(body) == "FORBIDDEN"


def test_coordinator_reads_escalated_requests_of_the_region_only(db, gql, token, place):
    slug, admin = place["slug"], place["admin"]
    coordinator = token("regional-coordinator", region=TEST_REGION)
    escalated = create(gql, admin, place, locationText="河道", reporterName="甲")["request"]["id"]
    waiting = create(gql, admin, place, locationText="北门", reporterName="乙")["request"]["id"]
    with db.tenant(slug) as conn:
        conn.execute(
            update(requests)
            .where(requests.c.id == key_of(escalated))
            .values(due_at=func.now() - timedelta(days=3))
        )
        actions.do_escalate_overdue(conn, ACTOR, slug, datetime.now().astimezone())

    _, body = gql(LIST, coordinator, {"slug": slug})
    assert [e["node"]["id"] for e in body["data"]["village"]["requests"]["edges"]] == [escalated]
    _, body = gql(NODE, coordinator, {"id": waiting})
    assert first_code(body) == "NOT_FOUND"
    _, body = gql(NODE, coordinator, {"id": escalated})
    assert body["data"]["node"]["id"] == escalated
    _, body = gql(
        """query($slug: String!) { village(slug: $slug) { requestStats { overdue
      byCategoryAndState { count } } } }""",
        coordinator,
        {"slug": slug},
    )
    assert body["data"]["village"]["requestStats"]["overdue"] == 1
    # Coordinators take what reached the region (tests/test_tasks.py), nothing else; the
    # village's own steps and registration stay the village's.
    _, body = gql(step_mutation(ACCEPT), coordinator, {"input": {"id": waiting}})
    assert error_codes(body["data"]["acceptRequest"]) == [("id", "NOT_FOUND")]
    _, body = gql(step_mutation(START), coordinator, {"input": {"id": escalated}})
    assert first_code(body) == "FORBIDDEN"
    _, body = gql(
        CREATE,
        coordinator,
        {
            "input": {
                "village": slug,
                "channel": "PHONE",
                "category": place["categories"]["other"],
                "description": "x",
                "locationText": "y",
                "reporterName": "z",
            }
        },
    )
    assert first_code(body) == "FORBIDDEN"
    # A coordinator of another region does not see the village at all.
    _, body = gql(LIST, token("regional-coordinator", region="elsewhere"), {"slug": slug})
    assert first_code(body) == "NOT_FOUND"


def test_another_villages_admin_reaches_nothing(gql, token, shared_place, other_village):
    rid = create(gql, shared_place["admin"], shared_place, locationText="北门", reporterName="甲")[
        "request"
    ]["id"]
    stranger = token("village-admin", village=other_village.slug)
    _, body = gql(NODE, stranger, {"id": rid})
    assert first_code(body) == "NOT_FOUND"
    _, body = gql(step_mutation(ACCEPT), stranger, {"input": {"id": rid}})
    assert first_code(body) == "NOT_FOUND"
    _, body = gql(LIST, stranger, {"slug": shared_place["slug"]})
    assert first_code(body) == "NOT_FOUND"


# -- escalation ----------------------------------------------------------------------------


def levels(db: Database, slug: str) -> dict[int, tuple[str, bool]]:
    with db.tenant(slug) as conn:
        rows = conn.execute(
            select(requests.c.id, requests.c.escalation_level, requests.c.needs_coordination)
        )
        return {k: (level, flag) for k, level, flag in rows}


def escalation_events(db: Database, slug: str, request_id: int) -> list[tuple]:
    e = request_events
    with db.tenant(slug) as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(
                    e.c.escalation_level,
                    e.c.actor_sub,
                    e.c.from_state,
                    e.c.to_state,
                    e.c.created_at,
                )
                .where(e.c.request_id == request_id, e.c.action == "escalate")
                .order_by(e.c.id)
            )
        ]


def run_escalation(settings, slug: str, now: datetime) -> list[dict]:
    job = queue(MAINTENANCE, settings).enqueue(escalation.escalate_village_requests, slug, now)
    work_off(settings)
    assert job.get_status(refresh=True) == "finished", job.latest_result().exc_string
    return job.return_value()


@pytest.mark.usefixtures("job_env")
def test_escalation_job_on_a_controlled_clock(settings, db, village):
    slug = village.slug
    simple = new_request(db, slug, grid_level=None)
    complex_ = new_request(db, slug, grid_level=None, grade="complex")
    done = new_request(db, slug, grid_level=None)
    force_state(db, slug, done, RESOLVED)
    with db.tenant(slug) as conn:
        due = dict(conn.execute(select(requests.c.id, requests.c.due_at)).all())
    minute = timedelta(minutes=1)

    assert run_escalation(settings, slug, due[simple] - minute) == []
    assert run_escalation(settings, slug, due[simple] + minute) == [
        {"id": simple, "from": "grid", "to": "village"}
    ]
    # Idempotent: the same moment again changes nothing, not even the timeline.
    before = snapshot(db, slug, simple)
    assert run_escalation(settings, slug, due[simple] + minute) == []
    assert snapshot(db, slug, simple) == before

    # Another whole deadline of its grade (24 h) later, the region; the complex one
    # (72 h) is not due yet, the resolved one never.
    later = due[simple] + timedelta(hours=24) + minute
    assert run_escalation(settings, slug, later) == [
        {"id": simple, "from": "village", "to": "region"}
    ]
    assert levels(db, slug) == {
        simple: ("region", True),
        complex_: ("grid", False),
        done: ("grid", False),
    }
    assert [(lvl, who, f, t) for lvl, who, f, t, _ in escalation_events(db, slug, simple)] == [
        ("village", "system:escalation", SUBMITTED, SUBMITTED),
        ("region", "system:escalation", SUBMITTED, SUBMITTED),
    ]
    assert escalation_events(db, slug, simple)[-1][-1] == later

    # A request whose job did not run for long passes both levels at once, with both steps
    # on its timeline.
    much_later = due[complex_] + timedelta(hours=72) + minute
    assert run_escalation(settings, slug, much_later) == [
        {"id": complex_, "from": "grid", "to": "region"}
    ]
    assert [e[0] for e in escalation_events(db, slug, complex_)] == ["village", "region"]
    assert escalation_events(db, slug, done) == []
    assert audit_actions(db, slug).count("request.escalate") == 3


@pytest.mark.every_village
@pytest.mark.usefixtures("job_env")
def test_escalation_fans_out_one_retried_job_per_village(settings, db, village):
    request_id = new_request(db, village.slug, grid_level=None)
    with db.tenant(village.slug) as conn:
        due = conn.execute(select(requests.c.due_at)).scalar_one()
    now = due + timedelta(minutes=1)

    job_ids = escalation.escalate_overdue_requests(now)

    jobs = [queue(MAINTENANCE, settings).fetch_job(job_id) for job_id in job_ids]
    [ours] = [job for job in jobs if job.args == (village.slug, now)]
    assert ours.retries_left == escalation.ESCALATION_RETRY.max
    work_off(settings)
    assert ours.get_status(refresh=True) == "finished"
    assert levels(db, village.slug) == {request_id: ("village", False)}


def test_cron_scheduler_escalates_every_five_minutes(redis_client):
    scheduler = build_cron_scheduler(redis_client)
    [job] = [j for j in scheduler.get_jobs() if j.func is escalation.escalate_overdue_requests]
    assert (job.queue_name, job.interval) == (MAINTENANCE, ESCALATION_INTERVAL)
    assert ESCALATION_INTERVAL == 300


# -- photos ---------------------------------------------------------------------------------

UPLOAD = """mutation($input: CreateUploadUrlInput!) { createUploadUrl(input: $input) {
  upload { key url headers { name value } } userErrors { field code } } }"""
ATTACH = """mutation($input: AttachFileInput!) { attachFile(input: $input) {
  attachment { id } userErrors { field code } } }"""


def small_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 30)).save(out, "JPEG")
    return out.getvalue()


def attach_photo(gql, client, caller: str, slug: str, rid: str) -> dict:
    """Upload a small JPEG as `caller` and attach it to the request `rid`: the answer."""
    photo = small_jpeg()
    _, body = gql(
        UPLOAD,
        caller,
        {
            "input": {
                "village": slug,
                "purpose": "REQUEST_PHOTO",
                "filename": "现场.jpg",
                "contentType": "image/jpeg",
                "size": len(photo),
            }
        },
    )
    ticket = body["data"]["createUploadUrl"]["upload"]
    url = urlsplit(ticket["url"])
    headers = {h["name"]: h["value"] for h in ticket["headers"]}
    assert client.put(f"{url.path}?{url.query}", data=photo, headers=headers).status_code == 200
    attach_input = {"village": slug, "key": ticket["key"], "recordType": "Request", "recordId": rid}
    _, body = gql(ATTACH, caller, {"input": attach_input})
    return body


def test_photos_attach_to_a_request(gql, client, settings, shared_place):
    slug, admin = shared_place["slug"], shared_place["admin"]
    object_store(settings).ensure_bucket(slug)
    rid = create(gql, admin, shared_place, locationText="北门", reporterName="甲")["request"]["id"]
    body = attach_photo(gql, client, admin, slug, rid)
    assert body["data"]["attachFile"]["userErrors"] == []

    _, body = gql(
        """query($id: ID!) { node(id: $id) { ... on Request {
      photos { id filename contentType size } } } }""",
        admin,
        {"id": rid},
    )
    [found] = body["data"]["node"]["photos"]
    assert (found["filename"], found["contentType"], found["size"]) == (
        "现场.jpg",
        "image/jpeg",
        len(small_jpeg()),
    )
    # A request that does not exist takes no photo.
    body = attach_photo(gql, client, admin, slug, encode_id("Request", slug, 999999))
    assert body["data"]["attachFile"]["attachment"] is None
    assert error_codes(body["data"]["attachFile"]) == [("recordId", "NOT_FOUND")]


DETACH = """mutation($id: ID!) { detachFile(input: {id: $id}) {
  detachedId userErrors { field code } } }"""


def test_photos_are_reached_as_their_request_is(db, gql, client, token, shared_place):
    """Attachment IDs are sequential: `node(id)`, attachFile and detachFile keep to the
    requests the caller sees (a grid worker's grids, a coordinator's escalated ones)."""
    slug, admin = shared_place["slug"], shared_place["admin"]
    worker = token("grid-worker", village=slug, sub=demo_grid_worker_subject(slug))
    coordinator = token("regional-coordinator", region=TEST_REGION)
    mine = worker_grids(db, slug)
    own = next(g for g in shared_place["grids"] if key_of(g["id"]) in mine)
    other = next(g for g in shared_place["grids"] if key_of(g["id"]) not in mine)
    inside, outside = (
        create(gql, admin, shared_place, locationText=text, grid=grid["id"], reporterName="甲")[
            "request"
        ]["id"]
        for text, grid in (("甲", own), ("乙", other))
    )
    photos = {
        rid: attach_photo(gql, client, admin, slug, rid)["data"]["attachFile"]["attachment"]["id"]
        for rid in (inside, outside)
    }

    def seen(caller: str, rid: str) -> bool:
        _, body = gql(NODE, caller, {"id": photos[rid]})
        if "errors" in body:
            assert first_code(body) == "NOT_FOUND"
            return False
        return body["data"]["node"] is not None

    # The grid worker: photos of their grids' requests only, to see, add and take off.
    assert (seen(worker, inside), seen(worker, outside)) == (True, False)
    refused = attach_photo(gql, client, worker, slug, outside)["data"]["attachFile"]
    assert error_codes(refused) == [("recordId", "NOT_FOUND")]
    _, body = gql(DETACH, worker, {"id": photos[outside]})
    assert body["data"]["detachFile"]["userErrors"] == [{"field": "id", "code": "NOT_FOUND"}]
    assert seen(admin, outside)
    added = attach_photo(gql, client, worker, slug, inside)["data"]["attachFile"]
    assert added["userErrors"] == []
    _, body = gql(DETACH, worker, {"id": added["attachment"]["id"]})
    assert body["data"]["detachFile"]["userErrors"] == []

    # The coordinator: photos of requests escalated to the region, read only. The sweep
    # runs over the shared village, where no other case leaves a request overdue.
    assert (seen(coordinator, inside), seen(coordinator, outside)) == (False, False)
    with db.tenant(slug) as conn:
        conn.execute(
            update(requests)
            .where(requests.c.id == key_of(outside))
            .values(due_at=func.now() - timedelta(days=3))
        )
        actions.do_escalate_overdue(conn, ACTOR, slug, datetime.now().astimezone())
    assert (seen(coordinator, inside), seen(coordinator, outside)) == (False, True)
    _, body = gql(DETACH, coordinator, {"id": photos[outside]})
    assert first_code(body) == "FORBIDDEN"


# -- statement count ---------------------------------------------------------------------------

LIST_WITH_EVERYTHING = """query($slug: String!, $first: Int!) { village(slug: $slug) {
  requests(first: $first) { edges { node { id state dueAt overdue
    category { code name } grid { name } assignee { name tier }
    location { household { address } text }
    reporter { name phone resident { name } }
    lastEvent { action toState note actor at } } } } } }"""


def test_request_list_statement_count_is_pinned_and_flat(app, db, gql, token, populated_village):
    slug = populated_village.slug
    with db.tenant(slug) as conn:
        households = (
            conn.execute(select(tm.households.c.id).order_by(tm.households.c.id).limit(50))
            .scalars()
            .all()
        )
        residents = (
            conn.execute(select(tm.residents.c.id).order_by(tm.residents.c.id).limit(50))
            .scalars()
            .all()
        )
        for n in range(50):
            created = actions.do_create_request(
                conn,
                ACTOR,
                slug,
                {"channel": "walk_in", "description": f"第{n}件事", "reporter_phone": None},
                category_id=a_category(conn, ("parking", "noise", "other")[n % 3]),
                household_id=households[n % len(households)],
                building=None,
                grid_id=None,
                reporter_resident_id=residents[n % len(residents)],
                scope=WHOLE_VILLAGE,
            )
            actions.do_accept_request(
                conn, ACTOR, slug, created["id"], {}, category_id=None, scope=WHOLE_VILLAGE
            )
            actions.do_assign_request(
                conn, ACTOR, slug, created["id"], {}, assignee_id=None, scope=WHOLE_VILLAGE
            )
    admin = token("village-admin", village=slug)

    def run(first: int) -> list[str]:
        with count_statements(app.extensions["villagelink"].db.engine) as statements:
            _, body = gql(LIST_WITH_EVERYTHING, admin, {"slug": slug, "first": first})
        assert "errors" not in body, body
        assert len(body["data"]["village"]["requests"]["edges"]) == first
        return statements

    run(1)  # warm the pool: pre-ping is not ours to count
    five, fifty = run(5), run(50)
    # role, path and access epoch (the caller's reach is kept with the token),
    # the page, categories, grids, staff, households, reporters, last timeline entries
    assert len(five) == len(fifty) == 8, "\n".join(fifty)

"""Service orders (便民服务): catalogue, slots, the order state machine, capacity under
concurrency, roles, timeline, audit, outbox and the statement count of the order list."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from villagelink.graphql.core.ids import decode_id, encode_id
from villagelink.platform import models as pm
from villagelink.platform.audit import Actor
from villagelink.platform.identity.principal import Principal
from villagelink.tenants import models as m
from villagelink.tenants.demo.plans import DEMO_CLIENT_VILLAGES, demo_grid_worker_subject
from villagelink.tenants.grids import grids_of_account
from villagelink.tenants.outbox import outbox
from villagelink.tenants.service_orders import actions, queries
from villagelink.tenants.service_orders.tables import (
    ORDER_STATES,
    service_order_events,
    service_orders,
    service_slots,
)
from villagelink.tenants.user_errors import ActionFailed

from .test_query_count import count_statements

CENTRE = Actor(
    Principal(
        sub="centre-admin",
        username="中心管理员",
        roles=frozenset({"village-admin"}),
        villages=frozenset(),
        regions=frozenset(),
        client_id=None,
    )
)

CREATE_ITEM = """mutation($input: CreateServiceItemInput!) { createServiceItem(input: $input) {
  serviceItem { id name category description active version }
  userErrors { field message code } } }"""
UPDATE_ITEM = """mutation($input: UpdateServiceItemInput!) { updateServiceItem(input: $input) {
  serviceItem { id name active version } userErrors { field message code } } }"""
CREATE_SLOT = """mutation($input: CreateServiceSlotInput!) { createServiceSlot(input: $input) {
  serviceSlot { id item { name } startsAt endsAt capacity booked available }
  userErrors { field message code } } }"""
ORDER = """mutation($input: OrderServiceInput!) { orderService(input: $input) {
  serviceOrder { id state note item { name } slot { booked available } resident { id name }
                 timeline { fromState toState actorName note } }
  userErrors { field message code } } }"""
DISPATCH = """mutation($input: DispatchServiceOrderInput!) { dispatchServiceOrder(input: $input) {
  serviceOrder { id state team { id name } } userErrors { field message code } } }"""
RATE = """mutation($input: RateServiceOrderInput!) { rateServiceOrder(input: $input) {
  serviceOrder { id state rating ratingComment } userErrors { field message code } } }"""
SLOTS = """query($slug: String!, $filter: ServiceSlotFilter) { village(slug: $slug) {
  serviceSlots(first: 100, filter: $filter) { totalCount edges { node { id available } } } } }"""
ORDERS = """query($slug: String!, $filter: ServiceOrderFilter) { village(slug: $slug) {
  serviceOrders(first: 100, filter: $filter) { totalCount edges { node { id state } } } } }"""
NODE = "query($id: ID!) { node(id: $id) { id __typename } }"


def step_document(name: str) -> str:
    return f"""mutation($input: ServiceOrderStepInput!) {{ {name}(input: $input) {{
      serviceOrder {{ id state version team {{ name }} timeline {{ fromState toState note }} }}
      userErrors {{ field message code }} }} }}"""


def first_code(body) -> str:
    return body["errors"][0]["extensions"]["code"]


def soon(days: float = 1, hours: float = 0) -> datetime:
    return datetime.now(UTC) + timedelta(days=days, hours=hours)


# -- setup through the actions -----------------------------------------------------------


def new_item(db, slug: str, name: str | None = None, category: str = "haircut") -> int:
    """An item of the catalogue; unnamed, one of its own name (names are unique in a
    village, and the module's cases share one)."""
    name = name or f"理发{next(_item_numbers)}"
    with db.tenant(slug) as conn:
        item = actions.do_create_service_item(
            conn, CENTRE, slug, {"name": name, "category": category}
        )
    return item["id"]


_item_numbers = itertools.count(1)


def new_slot(db, slug: str, item_id: int, capacity: int = 5, days: float = 1) -> int:
    starts = soon(days)
    with db.tenant(slug) as conn:
        slot = actions.do_create_service_slot(
            conn,
            CENTRE,
            slug,
            item_id,
            {
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=2)).isoformat(),
                "capacity": capacity,
            },
        )
    return slot["id"]


def place_order(db, slug: str, slot_id: int, resident_id: int) -> int:
    with db.tenant(slug) as conn:
        order = actions.do_order_service(
            conn, CENTRE, slug, slot_id, resident_id, {"note": "上门"}, allowed_grids=None
        )
    return order["id"]


def resident_ids(db, slug: str) -> list[int]:
    with db.tenant(slug) as conn:
        return list(conn.execute(select(m.residents.c.id).order_by(m.residents.c.id)).scalars())


def slot_row(db, slug: str, slot_id: int) -> dict:
    with db.tenant(slug) as conn:
        return queries.slots_by_ids(conn, [slot_id])[slot_id]


def order_row(db, slug: str, order_id: int) -> dict:
    with db.tenant(slug) as conn:
        return queries.orders_by_ids(conn, [order_id], allowed_grids=None)[order_id]


def audit_actions(db, slug: str) -> list[str]:
    with db.platform() as conn:
        return list(
            conn.execute(
                select(pm.audit_log.c.action)
                .where(pm.audit_log.c.village == slug)
                .order_by(pm.audit_log.c.occurred_at)
            ).scalars()
        )


@pytest.fixture
def slug(case_village) -> str:
    """The module's shared village: cases read only the items, slots and orders they made.
    A test that asks for `populated_village` gets one of its own (it lists or counts the
    whole village's catalogue, slots or orders, or moves a resident)."""
    return case_village.slug


@pytest.fixture
def admin(token, slug) -> str:
    return token("village-admin", village=slug)


TEAMS = ["理发志愿服务队", "家电维修志愿服务队", "义诊志愿服务队"]


@pytest.fixture
def teams(db, slug) -> list[int]:
    """Three volunteer teams in the activities domain's table (its migration ac0001), made
    by the first case of a village that asks: the shared village's cases share them."""
    with db.tenant(slug) as conn:
        exists = conn.execute(text("SELECT to_regclass('volunteer_teams') IS NOT NULL"))
        assert exists.scalar_one(), "volunteer_teams comes with the activities branch (ac0001)"
        names = {"names": TEAMS}
        conn.execute(
            text(
                "INSERT INTO volunteer_teams (name) SELECT unnest(CAST(:names AS text[]))"
                " ON CONFLICT (name) DO NOTHING"
            ),
            names,
        )
        return list(
            conn.execute(
                text(
                    "SELECT id FROM volunteer_teams WHERE name = ANY(CAST(:names AS text[]))"
                    " ORDER BY array_position(CAST(:names AS text[]), name)"
                ),
                names,
            ).scalars()
        )


# Each step from its own mutation, and how to take an order there through the actions.
STEP_MUTATIONS = {
    "dispatched": "dispatchServiceOrder",
    "accepted": "acceptServiceOrder",
    "declined": "declineServiceOrder",
    "completed": "completeServiceOrder",
    "cancelled": "cancelServiceOrder",
    "rated": "rateServiceOrder",
}
PATHS = {
    "ordered": [],
    "dispatched": ["dispatched"],
    "accepted": ["dispatched", "accepted"],
    "declined": ["dispatched", "declined"],
    "completed": ["dispatched", "accepted", "completed"],
    "rated": ["dispatched", "accepted", "completed", "rated"],
    "cancelled": ["cancelled"],
}


def walk(db, slug: str, order_id: int, path: list[str], team_id: int) -> None:
    with db.tenant(slug) as conn:
        for state in path:
            if state == "dispatched":
                actions.do_dispatch_service_order(conn, CENTRE, slug, order_id, team_id, {})
            elif state == "rated":
                actions.do_rate_service_order(
                    conn, CENTRE, slug, order_id, {"rating": 5}, allowed_grids=None
                )
            elif state == "cancelled":
                actions.do_cancel_service_order(
                    conn, CENTRE, slug, order_id, {}, allowed_grids=None
                )
            else:
                step = {
                    "accepted": actions.do_accept_service_order,
                    "declined": actions.do_decline_service_order,
                    "completed": actions.do_complete_service_order,
                }[state]
                step(conn, CENTRE, slug, order_id, {})


def step_input(slug: str, to_state: str, order_id: int, team_id: int) -> dict:
    order = encode_id("ServiceOrder", slug, order_id)
    if to_state == "dispatched":
        return {"order": order, "team": encode_id("VolunteerTeam", slug, team_id)}
    if to_state == "rated":
        return {"order": order, "rating": 4, "comment": "师傅手艺好"}
    return {"order": order, "note": "备注"}


def run_step(gql, token_, slug: str, to_state: str, order_id: int, team_id: int) -> dict:
    name = STEP_MUTATIONS[to_state]
    document = {"dispatched": DISPATCH, "rated": RATE}.get(to_state, step_document(name))
    _, body = gql(document, token_, {"input": step_input(slug, to_state, order_id, team_id)})
    assert "errors" not in body, body
    return body["data"][name]


# -- catalogue -----------------------------------------------------------------------------


@pytest.mark.usefixtures("populated_village")  # lists the whole catalogue and outbox
def test_catalogue_items_are_created_changed_and_sent_to_the_outbox(gql, admin, slug, db):
    _, body = gql(
        CREATE_ITEM,
        admin,
        {
            "input": {
                "village": slug,
                "name": " 理发 ",
                "category": "HAIRCUT",
                "description": "每月20日便民服务日，老年人免费理发",
            }
        },
    )
    created = body["data"]["createServiceItem"]
    assert created["userErrors"] == []
    item = created["serviceItem"]
    assert (item["name"], item["active"], item["version"]) == ("理发", True, 1)

    _, body = gql(
        CREATE_ITEM, admin, {"input": {"village": slug, "name": "理发", "category": "OTHER"}}
    )
    assert body["data"]["createServiceItem"] == {
        "serviceItem": None,
        "userErrors": [{"field": "name", "message": "该服务名称已存在", "code": "DUPLICATE"}],
    }
    # Empty or blank, a name says nothing (tenants/fields.FreeText).
    for name in ("", "  "):
        _, body = gql(
            CREATE_ITEM, admin, {"input": {"village": slug, "name": name, "category": "OTHER"}}
        )
        assert body["data"]["createServiceItem"]["userErrors"] == [
            {"field": "name", "message": "服务名称不能为空", "code": "REQUIRED"}
        ]

    _, body = gql(
        UPDATE_ITEM, admin, {"input": {"id": item["id"], "name": "理发（老年人）", "active": False}}
    )
    changed = body["data"]["updateServiceItem"]["serviceItem"]
    assert (changed["name"], changed["active"], changed["version"]) == ("理发（老年人）", False, 2)
    # Nothing to change: no new version, no outbox row, no audit entry.
    _, body = gql(UPDATE_ITEM, admin, {"input": {"id": item["id"], "active": False}})
    assert body["data"]["updateServiceItem"]["serviceItem"]["version"] == 2
    _, body = gql(UPDATE_ITEM, admin, {"input": {"id": item["id"], "name": None}})
    assert body["data"]["updateServiceItem"]["userErrors"][0]["code"] == "REQUIRED"

    with db.tenant(slug) as conn:
        sent = conn.execute(
            select(outbox.c.record_type, outbox.c.version, outbox.c.payload).order_by(outbox.c.id)
        ).all()
    assert [(t, v, p["name"], p["active"]) for t, v, p in sent] == [
        ("ServiceItem", 1, "理发", True),
        ("ServiceItem", 2, "理发（老年人）", False),
    ]
    assert audit_actions(db, slug) == ["service_item.create", "service_item.update"]

    listing = """query($slug: String!, $filter: ServiceItemFilter) { village(slug: $slug) {
      serviceItems(filter: $filter) { totalCount edges { node { id name } } } } }"""
    new_item(db, slug, "磨刀磨剪", "knife_sharpening")
    for flt, names in [
        (None, ["理发（老年人）", "磨刀磨剪"]),
        ({"active": True}, ["磨刀磨剪"]),
        ({"category": "HAIRCUT"}, ["理发（老年人）"]),
    ]:
        _, body = gql(listing, admin, {"slug": slug, "filter": flt})
        found = body["data"]["village"]["serviceItems"]
        assert [e["node"]["name"] for e in found["edges"]] == names
        assert found["totalCount"] == len(names)


@pytest.mark.usefixtures("populated_village")  # counts every slot of the village
def test_slots_are_validated_and_filtered(gql, admin, slug, db):
    haircut = new_item(db, slug, "理发")
    item_id = encode_id("ServiceItem", slug, haircut)
    starts = soon(2)

    def create(**overrides):
        values = {
            "item": item_id,
            "startsAt": starts.isoformat(),
            "endsAt": (starts + timedelta(hours=2)).isoformat(),
            "capacity": 5,
        }
        _, body = gql(CREATE_SLOT, admin, {"input": {**values, **overrides}})
        return body["data"]["createServiceSlot"]

    slot = create()["serviceSlot"]
    assert (slot["item"]["name"], slot["capacity"], slot["booked"], slot["available"]) == (
        "理发",
        5,
        0,
        5,
    )
    for overrides, field, message in [
        ({"capacity": 0}, "capacity", "名额须为1到500人"),
        ({"startsAt": soon(-1).isoformat()}, "startsAt", "开始时间须晚于当前时间"),
        ({"endsAt": starts.isoformat()}, "endsAt", "结束时间须晚于开始时间"),
        (
            {"startsAt": "2030-01-01T09:00:00"},
            "startsAt",
            "时间须带时区，例如 2026-12-20T09:00:00+08:00",
        ),
    ]:
        assert create(**overrides) == {
            "serviceSlot": None,
            "userErrors": [{"field": field, "message": message, "code": "INVALID"}],
        }

    later = new_slot(db, slug, haircut, capacity=1, days=10)
    place_order(db, slug, later, resident_ids(db, slug)[0])  # full now
    knives = new_item(db, slug, "磨刀磨剪", "knife_sharpening")
    new_slot(db, slug, knives, days=3)

    def slots(flt):
        _, body = gql(SLOTS, admin, {"slug": slug, "filter": flt})
        assert "errors" not in body, body
        return body["data"]["village"]["serviceSlots"]

    assert slots(None)["totalCount"] == 3
    assert slots({"item": item_id})["totalCount"] == 2
    # A window around the second day catches the first slot only.
    window = {"from": soon(1.5).isoformat(), "to": soon(2.5).isoformat()}
    assert [e["node"]["id"] for e in slots(window)["edges"]] == [slot["id"]]
    assert slots({"available": True})["totalCount"] == 2
    full = slots({"available": False})["edges"]
    assert [e["node"] for e in full] == [
        {"id": encode_id("ServiceSlot", slug, later), "available": 0}
    ]
    # Another village's item matches nothing; a bad moment is the caller's mistake.
    assert slots({"item": encode_id("ServiceItem", "elsewhere", haircut)})["totalCount"] == 0
    _, body = gql(SLOTS, admin, {"slug": slug, "filter": {"from": "next tuesday"}})
    assert first_code(body) == "BAD_USER_INPUT"

    # A withdrawn item takes no new slots.
    with db.tenant(slug) as conn:
        actions.do_update_service_item(conn, CENTRE, slug, knives, {"active": False})
    refused = create(item=encode_id("ServiceItem", slug, knives))
    assert refused["userErrors"] == [
        {"field": "item", "message": "该服务项目已停用", "code": "ITEM_INACTIVE"}
    ]


# -- the order state machine ---------------------------------------------------------------


def test_an_order_goes_from_ordered_to_rated(gql, admin, slug, db, teams):
    with db.tenant(slug) as conn:
        sent = conn.execute(select(func.coalesce(func.max(outbox.c.id), 0))).scalar_one()
    item = new_item(db, slug)
    slot = new_slot(db, slug, item, capacity=3)
    resident = resident_ids(db, slug)[0]
    _, body = gql(
        ORDER,
        admin,
        {
            "input": {
                "slot": encode_id("ServiceSlot", slug, slot),
                "resident": encode_id("Resident", slug, resident),
                "note": "行动不便，请上门",
            }
        },
    )
    placed = body["data"]["orderService"]
    assert placed["userErrors"] == []
    order = placed["serviceOrder"]
    assert order["state"] == "ORDERED"
    assert order["slot"] == {"booked": 1, "available": 2}
    assert order["resident"]["id"] == encode_id("Resident", slug, resident)
    assert order["timeline"] == [
        {
            "fromState": None,
            "toState": "ORDERED",
            "actorName": f"village-admin-{slug}",
            "note": "行动不便，请上门",
        }
    ]
    key = int(decode_id(order["id"]).key)
    for to_state in ("dispatched", "accepted", "completed"):
        result = run_step(gql, admin, slug, to_state, key, teams[0])
        assert result["userErrors"] == []
        assert result["serviceOrder"]["state"] == to_state.upper()
    assert result["serviceOrder"]["team"] == {"name": "理发志愿服务队"}
    rated = run_step(gql, admin, slug, "rated", key, teams[0])
    assert rated["serviceOrder"] == {
        "id": order["id"],
        "state": "RATED",
        "rating": 4,
        "ratingComment": "师傅手艺好",
    }

    timeline = """query($id: ID!) { node(id: $id) { ... on ServiceOrder { version timeline {
      fromState toState team { id name } actorName note at } } } }"""
    _, body = gql(timeline, admin, {"id": order["id"]})
    found = body["data"]["node"]
    assert found["version"] == 5
    assert [(e["fromState"], e["toState"]) for e in found["timeline"]] == [
        (None, "ORDERED"),
        ("ORDERED", "DISPATCHED"),
        ("DISPATCHED", "ACCEPTED"),
        ("ACCEPTED", "COMPLETED"),
        ("COMPLETED", "RATED"),
    ]
    team_id = encode_id("VolunteerTeam", slug, teams[0])
    assert [e["team"] and e["team"]["id"] for e in found["timeline"]] == [None] + [team_id] * 4
    assert found["timeline"][-1]["note"] == "师傅手艺好"
    assert all(e["at"] for e in found["timeline"])
    assert audit_actions(db, slug)[-5:] == [
        "service_order.create",
        "service_order.dispatch",
        "service_order.accept",
        "service_order.complete",
        "service_order.rate",
    ]
    assert slot_row(db, slug, slot)["booked"] == 1  # a rated order keeps its place
    # Orders are not shared with neighbours: only the catalogue reaches the outbox.
    with db.tenant(slug) as conn:
        types = set(conn.execute(select(outbox.c.record_type).where(outbox.c.id > sent)).scalars())
    assert "ServiceItem" in types and "ServiceOrder" not in types


def last_step(db, slug: str, order_id: int) -> tuple[str | None, str]:
    e = service_order_events
    with db.tenant(slug) as conn:
        return tuple(
            conn.execute(
                select(e.c.from_state, e.c.to_state)
                .where(e.c.service_order_id == order_id)
                .order_by(e.c.id.desc())
                .limit(1)
            ).one()
        )


def test_every_transition_allowed_or_refused(gql, admin, slug, db, teams):
    """From each state, each step: the allowed ones move the order (one timeline entry,
    one version), the others are INVALID_TRANSITION and change nothing."""
    slot = new_slot(db, slug, new_item(db, slug), capacity=100)
    residents = iter(resident_ids(db, slug))
    assert set(PATHS) == set(ORDER_STATES)
    moved = refused = 0
    for state, path in PATHS.items():
        for to_state in STEP_MUTATIONS:
            order_id = place_order(db, slug, slot, next(residents))
            walk(db, slug, order_id, path, teams[0])
            before = order_row(db, slug, order_id)
            step_before = last_step(db, slug, order_id)
            booked = slot_row(db, slug, slot)["booked"]
            # A declined order goes to another team: the one that declined may not have it back.
            team = teams[1] if state == "declined" else teams[0]
            result = run_step(gql, admin, slug, to_state, order_id, team)
            if state in actions.TRANSITIONS[to_state]:
                assert result["userErrors"] == [], (state, to_state, result)
                assert result["serviceOrder"]["state"] == to_state.upper()
                assert order_row(db, slug, order_id)["version"] == before["version"] + 1
                assert last_step(db, slug, order_id) == (state, to_state)
                freed = 1 if to_state == "cancelled" else 0
                assert slot_row(db, slug, slot)["booked"] == booked - freed
                moved += 1
            else:
                assert result["serviceOrder"] is None
                [error] = result["userErrors"]
                assert (error["field"], error["code"]) == ("order", "INVALID_TRANSITION"), (
                    state,
                    to_state,
                )
                assert error["message"].startswith(f"订单{actions.STATE_LABELS[state]}，不能")
                assert order_row(db, slug, order_id) == before
                assert last_step(db, slug, order_id) == step_before
                assert slot_row(db, slug, slot)["booked"] == booked
                refused += 1
    assert moved == sum(len(starts) for starts in actions.TRANSITIONS.values()) == 10
    assert refused == len(PATHS) * len(STEP_MUTATIONS) - moved


@pytest.mark.usefixtures("populated_village")  # counts every order of each team
def test_a_declined_order_is_dispatched_to_another_team(gql, admin, slug, db, teams):
    order_id = place_order(
        db, slug, new_slot(db, slug, new_item(db, slug)), resident_ids(db, slug)[0]
    )
    assert run_step(gql, admin, slug, "dispatched", order_id, teams[0])["userErrors"] == []
    declined = run_step(gql, admin, slug, "declined", order_id, teams[0])["serviceOrder"]
    assert (declined["state"], declined["team"]) == ("DECLINED", None)
    assert declined["timeline"][-1] == {
        "fromState": "DISPATCHED",
        "toState": "DECLINED",
        "note": "备注",
    }
    again = run_step(gql, admin, slug, "dispatched", order_id, teams[0])
    assert again == {
        "serviceOrder": None,
        "userErrors": [
            {
                "field": "team",
                "message": "该志愿服务队已拒绝此订单，请派给其他队伍",
                "code": "TEAM_DECLINED",
            }
        ],
    }
    other = run_step(gql, admin, slug, "dispatched", order_id, teams[1])["serviceOrder"]
    assert other["team"] == {
        "id": encode_id("VolunteerTeam", slug, teams[1]),
        "name": "家电维修志愿服务队",
    }

    def with_team(team_id):
        _, body = gql(
            ORDERS,
            admin,
            {"slug": slug, "filter": {"team": encode_id("VolunteerTeam", slug, team_id)}},
        )
        return body["data"]["village"]["serviceOrders"]["totalCount"]

    assert (with_team(teams[0]), with_team(teams[1])) == (0, 1)

    for team, message in [
        (encode_id("VolunteerTeam", slug, 999_999), "志愿服务队不存在"),
        (encode_id("VolunteerTeam", "elsewhere", teams[2]), "志愿服务队不存在"),
        ("not-an-id", "志愿服务队不存在"),
    ]:
        _, body = gql(
            DISPATCH,
            admin,
            {"input": {"order": encode_id("ServiceOrder", slug, order_id), "team": team}},
        )
        assert body["data"]["dispatchServiceOrder"]["userErrors"] == [
            {"field": "team", "message": message, "code": "NOT_FOUND"}
        ]


def test_team_exists_treats_a_missing_table_as_no_team(db, slug, teams):
    with db.tenant(slug) as conn:
        assert queries.team_exists(conn, teams[0])
        assert not queries.team_exists(conn, 999_999)
        assert queries.team_names(conn, teams[:1]) == {teams[0]: "理发志愿服务队"}
    conn = db.begin_tenant(slug)
    try:
        # As in a village whose activities branch is not applied yet (rolled back below).
        conn.execute(text("ALTER TABLE volunteer_teams RENAME TO volunteer_teams_hidden"))
        assert not queries.team_exists(conn, teams[0])
        assert queries.team_names(conn, teams) == {}
    finally:
        conn.close()
    with db.tenant(slug) as conn:
        assert queries.team_exists(conn, teams[0])


# -- places in a slot ---------------------------------------------------------------------


def order_via_api(gql, token_, slug, slot_id, resident_id, **extra) -> dict:
    _, body = gql(
        ORDER,
        token_,
        {
            "input": {
                "slot": encode_id("ServiceSlot", slug, slot_id),
                "resident": encode_id("Resident", slug, resident_id),
                **extra,
            }
        },
    )
    assert "errors" not in body, body
    return body["data"]["orderService"]


def test_a_full_slot_refuses_and_a_cancellation_frees_a_place(gql, admin, slug, db):
    slot = new_slot(db, slug, new_item(db, slug), capacity=1)
    first, second = resident_ids(db, slug)[:2]
    taken = order_via_api(gql, admin, slug, slot, first)["serviceOrder"]
    assert taken["slot"] == {"booked": 1, "available": 0}
    assert order_via_api(gql, admin, slug, slot, second) == {
        "serviceOrder": None,
        "userErrors": [{"field": "slot", "message": "该时段已约满", "code": "SLOT_FULL"}],
    }
    _, body = gql(
        step_document("cancelServiceOrder"),
        admin,
        {"input": {"order": taken["id"], "note": "居民临时有事"}},
    )
    assert body["data"]["cancelServiceOrder"]["serviceOrder"]["state"] == "CANCELLED"
    assert slot_row(db, slug, slot)["booked"] == 0
    assert order_via_api(gql, admin, slug, slot, second)["userErrors"] == []
    assert slot_row(db, slug, slot)["booked"] == 1


def test_ordering_rules(gql, admin, slug, db):
    item = new_item(db, slug)
    slot = new_slot(db, slug, item, capacity=5)
    resident, other = resident_ids(db, slug)[:2]
    assert order_via_api(gql, admin, slug, slot, resident)["userErrors"] == []
    assert order_via_api(gql, admin, slug, slot, resident)["userErrors"] == [
        {"field": "resident", "message": "该居民已预约此时段", "code": "DUPLICATE"}
    ]
    assert slot_row(db, slug, slot)["booked"] == 1  # the refused order took no place
    assert order_via_api(gql, admin, slug, slot, other, note="长" * 201)["userErrors"] == [
        {"field": "note", "message": "备注不能超过200个字", "code": "INVALID"}
    ]
    assert order_via_api(gql, admin, slug, slot, 999_999)["userErrors"] == [
        {"field": "resident", "message": "居民不存在或不在您的管辖范围内", "code": "NOT_FOUND"}
    ]
    _, body = gql(
        ORDER,
        admin,
        {
            "input": {
                "slot": encode_id("ServiceSlot", slug, slot),
                "resident": encode_id("Resident", "elsewhere", other),
            }
        },
    )
    assert body["data"]["orderService"]["userErrors"][0]["code"] == "NOT_FOUND"

    started = new_slot(db, slug, item)
    with db.tenant(slug) as conn:  # time passes
        conn.execute(
            service_slots.update()
            .where(service_slots.c.id == started)
            .values(starts_at=soon(-1), ends_at=soon(-1, hours=2))
        )
    assert order_via_api(gql, admin, slug, started, other)["userErrors"] == [
        {"field": "slot", "message": "该时段已开始，不能再预约", "code": "SLOT_CLOSED"}
    ]
    with db.tenant(slug) as conn:
        actions.do_update_service_item(conn, CENTRE, slug, item, {"active": False})
    assert order_via_api(gql, admin, slug, slot, other)["userErrors"] == [
        {"field": "slot", "message": "该服务项目已停用", "code": "ITEM_INACTIVE"}
    ]


def test_rating_rules(gql, admin, slug, db, teams):
    order_id = place_order(
        db, slug, new_slot(db, slug, new_item(db, slug)), resident_ids(db, slug)[0]
    )
    walk(db, slug, order_id, PATHS["completed"], teams[0])
    order = encode_id("ServiceOrder", slug, order_id)
    for rating, comment, field, message in [
        (0, None, "rating", "评分须为1到5分"),
        (6, None, "rating", "评分须为1到5分"),
        (5, "好" * 501, "comment", "评价内容不能超过500个字"),
    ]:
        _, body = gql(
            RATE, admin, {"input": {"order": order, "rating": rating, "comment": comment}}
        )
        assert body["data"]["rateServiceOrder"]["userErrors"] == [
            {"field": field, "message": message, "code": "INVALID"}
        ]
    _, body = gql(RATE, admin, {"input": {"order": order, "rating": 3}})
    assert body["data"]["rateServiceOrder"]["serviceOrder"]["rating"] == 3
    _, body = gql(RATE, admin, {"input": {"order": order, "rating": 5}})
    assert body["data"]["rateServiceOrder"]["userErrors"][0]["code"] == "INVALID_TRANSITION"


# -- concurrency ------------------------------------------------------------------------------

RACERS = 16


def race(work, arguments) -> list[str]:
    """Run `work` for each argument in its own thread, all released at once; collect
    "ok" or the refusal's code."""
    barrier = threading.Barrier(len(arguments), timeout=30)

    def run(argument) -> str:
        try:
            work(argument, barrier)
            return "ok"
        except ActionFailed as failed:
            return failed.errors[0].code

    with ThreadPoolExecutor(len(arguments)) as pool:
        return list(pool.map(run, arguments))


def test_concurrent_orders_never_overbook_a_slot(db, slug):
    slot = new_slot(db, slug, new_item(db, slug), capacity=5)
    events = select(func.count()).select_from(service_order_events)
    with db.tenant(slug) as conn:
        logged_before = conn.execute(events).scalar_one()

    def order(resident_id: int, barrier: threading.Barrier) -> None:
        with db.tenant(slug) as conn:  # each racer in a transaction of its own
            barrier.wait()
            actions.do_order_service(conn, CENTRE, slug, slot, resident_id, {}, allowed_grids=None)

    outcomes = race(order, resident_ids(db, slug)[:RACERS])
    assert sorted(outcomes) == ["SLOT_FULL"] * (RACERS - 5) + ["ok"] * 5
    assert slot_row(db, slug, slot)["booked"] == 5
    with db.tenant(slug) as conn:
        placed = conn.execute(
            select(func.count()).where(service_orders.c.service_slot_id == slot)
        ).scalar_one()
        logged = conn.execute(events).scalar_one() - logged_before
    assert placed == logged == 5


def test_concurrent_cancellations_free_the_place_once(db, slug):
    slot = new_slot(db, slug, new_item(db, slug), capacity=2)
    order_id = place_order(db, slug, slot, resident_ids(db, slug)[0])

    def cancel(_n: int, barrier: threading.Barrier) -> None:
        with db.tenant(slug) as conn:
            barrier.wait()
            actions.do_cancel_service_order(conn, CENTRE, slug, order_id, {}, allowed_grids=None)

    outcomes = race(cancel, list(range(8)))
    assert sorted(outcomes) == ["INVALID_TRANSITION"] * 7 + ["ok"]
    assert slot_row(db, slug, slot)["booked"] == 0
    assert order_row(db, slug, order_id)["version"] == 2


# -- roles ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("populated_village")  # moves a resident, lists every order
def test_grid_worker_orders_for_own_grids_and_cannot_run_the_centre(gql, token, slug, db, teams):
    sub = demo_grid_worker_subject(slug)
    worker = token("grid-worker", village=slug, sub=sub)
    with db.tenant(slug) as conn:
        mine = grids_of_account(conn, sub)
        own = list(
            conn.execute(select(m.residents.c.id).where(m.residents.c.grid_id.in_(mine))).scalars()
        )
        # The small fixture village lives in the worker's grids: one resident moves out.
        elsewhere = conn.execute(select(m.grids.c.id).where(m.grids.c.id.not_in(mine))).first()[0]
        outside = own.pop()
        conn.execute(
            m.residents.update().where(m.residents.c.id == outside).values(grid_id=elsewhere)
        )
    others = [outside]
    item = new_item(db, slug)
    slot = new_slot(db, slug, item, capacity=10)

    placed = order_via_api(gql, worker, slug, slot, own[0])
    assert placed["userErrors"] == []
    assert order_via_api(gql, worker, slug, slot, others[0])["userErrors"][0]["code"] == (
        "NOT_FOUND"
    )
    outsider = place_order(db, slug, slot, others[0])
    _, body = gql(ORDERS, worker, {"slug": slug})
    assert [e["node"]["id"] for e in body["data"]["village"]["serviceOrders"]["edges"]] == [
        placed["serviceOrder"]["id"]
    ]
    _, body = gql(NODE, worker, {"id": encode_id("ServiceOrder", slug, outsider)})
    assert first_code(body) == "NOT_FOUND"
    _, body = gql(
        step_document("cancelServiceOrder"),
        worker,
        {"input": {"order": encode_id("ServiceOrder", slug, outsider)}},
    )
    assert body["data"]["cancelServiceOrder"]["userErrors"][0]["code"] == "NOT_FOUND"

    # The centre's work is not a grid worker's.
    mine_id = int(decode_id(placed["serviceOrder"]["id"]).key)
    for to_state in ("dispatched", "accepted", "declined", "completed"):
        _, body = gql(
            {"dispatched": DISPATCH}.get(to_state, step_document(STEP_MUTATIONS[to_state])),
            worker,
            {"input": step_input(slug, to_state, mine_id, teams[0])},
        )
        assert first_code(body) == "FORBIDDEN", to_state
    _, body = gql(
        CREATE_ITEM, worker, {"input": {"village": slug, "name": "修鞋", "category": "OTHER"}}
    )
    assert first_code(body) == "FORBIDDEN"
    _, body = gql(
        UPDATE_ITEM,
        worker,
        {"input": {"id": encode_id("ServiceItem", slug, item), "active": False}},
    )
    assert first_code(body) == "FORBIDDEN"

    # ...but cancelling and rating for their own residents are.
    walk(db, slug, mine_id, PATHS["completed"], teams[0])
    _, body = gql(RATE, worker, {"input": {"order": placed["serviceOrder"]["id"], "rating": 5}})
    assert body["data"]["rateServiceOrder"]["serviceOrder"]["state"] == "RATED"
    again = order_via_api(gql, worker, slug, new_slot(db, slug, item, days=2), own[0])
    _, body = gql(
        step_document("cancelServiceOrder"),
        worker,
        {"input": {"order": again["serviceOrder"]["id"]}},
    )
    assert body["data"]["cancelServiceOrder"]["serviceOrder"]["state"] == "CANCELLED"


def test_read_only_roles_are_refused_every_write(gql, token, demo_region):
    """A coordinator and an integrator may read a village's services but change nothing:
    integrator writes (a resident mini-program ordering) are not open yet."""
    village = DEMO_CLIENT_VILLAGES[0]
    writes = [
        (CREATE_ITEM, {"village": village, "name": "修鞋", "category": "OTHER"}),
        (UPDATE_ITEM, {"id": encode_id("ServiceItem", village, 1), "active": False}),
        (
            ORDER,
            {
                "slot": encode_id("ServiceSlot", village, 1),
                "resident": encode_id("Resident", village, 1),
            },
        ),
        (RATE, {"order": encode_id("ServiceOrder", village, 1), "rating": 5}),
        (step_document("cancelServiceOrder"), {"order": encode_id("ServiceOrder", village, 1)}),
    ]
    for caller in (token("regional-coordinator", region="nanhe"), token("integrator")):
        _, body = gql(ORDERS, caller, {"slug": village})
        assert "errors" not in body, body
        for document, variables in writes:
            _, body = gql(document, caller, {"input": variables})
            assert first_code(body) == "FORBIDDEN", (document, body)


def test_another_villages_admin_reaches_nothing(gql, token, slug, db, demo_region):
    item = new_item(db, slug)
    slot = new_slot(db, slug, item)
    order = place_order(db, slug, slot, resident_ids(db, slug)[0])
    stranger = token("village-admin", village="liulin")
    admin = token("village-admin", village=slug)
    for gid in (
        encode_id("ServiceItem", slug, item),
        encode_id("ServiceSlot", slug, slot),
        encode_id("ServiceOrder", slug, order),
    ):
        _, body = gql(NODE, admin, {"id": gid})
        assert body["data"]["node"]["id"] == gid
        _, body = gql(NODE, stranger, {"id": gid})
        assert first_code(body) == "NOT_FOUND"
    _, body = gql(ORDERS, stranger, {"slug": slug})
    assert first_code(body) == "NOT_FOUND"
    _, body = gql(
        step_document("cancelServiceOrder"),
        stranger,
        {"input": {"order": encode_id("ServiceOrder", slug, order)}},
    )
    assert first_code(body) == "NOT_FOUND"


@pytest.mark.usefixtures("populated_village")  # lists every order of the village
def test_order_filters(gql, admin, slug, db, teams):
    haircut, knives = new_item(db, slug), new_item(db, slug, "磨刀磨剪", "knife_sharpening")
    residents = resident_ids(db, slug)
    a = place_order(db, slug, new_slot(db, slug, haircut), residents[0])
    b = place_order(db, slug, new_slot(db, slug, knives), residents[1])
    walk(db, slug, b, PATHS["accepted"], teams[1])

    def ids(flt) -> list[str]:
        _, body = gql(ORDERS, admin, {"slug": slug, "filter": flt})
        return [e["node"]["id"] for e in body["data"]["village"]["serviceOrders"]["edges"]]

    a_id, b_id = (encode_id("ServiceOrder", slug, k) for k in (a, b))
    assert ids(None) == [a_id, b_id]
    assert ids({"state": "ACCEPTED"}) == [b_id]
    assert ids({"item": encode_id("ServiceItem", slug, haircut)}) == [a_id]
    assert ids({"team": encode_id("VolunteerTeam", slug, teams[1])}) == [b_id]
    assert ids({"resident": encode_id("Resident", slug, residents[0])}) == [a_id]
    assert ids({"resident": encode_id("Resident", "elsewhere", residents[0])}) == []


# -- statement count -----------------------------------------------------------------------------

ORDER_LIST = """query($slug: String!, $first: Int!) { village(slug: $slug) {
  serviceOrders(first: $first) { edges { node { id state
    item { name } slot { startsAt item { name } } resident { name }
    team { name } timeline { toState actorName at team { name } } } } } } }"""


@pytest.mark.usefixtures("populated_village")  # its pages are the village's first orders
def test_order_list_statement_count_is_pinned_and_flat(app, gql, admin, slug, db, teams):
    items = [
        new_item(db, slug, name, category)
        for name, category in [
            ("理发", "haircut"),
            ("磨刀磨剪", "knife_sharpening"),
            ("义诊", "free_clinic"),
        ]
    ]
    slots = [new_slot(db, slug, items[i % 3], capacity=20, days=1 + i) for i in range(6)]
    paths = [PATHS["ordered"], PATHS["dispatched"], PATHS["declined"], PATHS["rated"]]
    for n, resident in enumerate(resident_ids(db, slug)[:50]):
        order_id = place_order(db, slug, slots[n % 6], resident)
        walk(db, slug, order_id, paths[n % 4], teams[n % 3])

    def run(first: int) -> list[str]:
        with count_statements(app.extensions["villagelink"].db.engine) as statements:
            _, body = gql(ORDER_LIST, admin, {"slug": slug, "first": first})
        assert "errors" not in body, body
        assert len(body["data"]["village"]["serviceOrders"]["edges"]) == first
        return statements

    run(1)  # warm the pool: pre-ping is not ours to count
    five, fifty = run(5), run(50)
    # role, path and access epoch (the caller's reach is kept with the token),
    # the page, items, slots, residents, team table check + team names, timelines
    assert len(five) == len(fifty) == 8, "\n".join(fifty)

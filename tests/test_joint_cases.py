"""Joint cases (难事部门联动): opened by the origin's admins under agreements covering
joint_case, updated by involved villages and the region's coordinators in the
origin's schema with one shared timeline, refused for others, shared through the
sync with the involved villages and the region, statement counts of the list."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from villagelink.graphql.core.ids import encode_id
from villagelink.platform import models as pm
from villagelink.platform.linkage.catalogue import JOINT_CASE, RECORD_TYPES
from villagelink.platform.linkage.sync import sync_village
from villagelink.platform.linkage.tables import records
from villagelink.tenants import provisioning
from villagelink.tenants.joint_cases.tables import joint_cases
from villagelink.tenants.models import metadata
from villagelink.tenants.outbox import outbox

from .conftest import agree, new_village
from .test_query_count import count_statements
from .test_requests import new_request
from .test_transfers import codes, ok

ALL_FIELDS = list(RECORD_TYPES[JOINT_CASE].fields)

CASE_FIELDS = """id village title category description state priority villages version
  shared openedAt updatedAt timeline { village actorName kind note state occurredAt }"""
OPEN = f"""mutation($input: OpenJointCaseInput!) {{ openJointCase(input: $input) {{
  case {{ {CASE_FIELDS} request {{ id }} }} userErrors {{ field message code }} }} }}"""
UPDATE = f"""mutation($input: UpdateJointCaseInput!) {{ updateJointCase(input: $input) {{
  case {{ {CASE_FIELDS} }} userErrors {{ field message code }} }} }}"""
CASES = f"""query($slug: String!) {{ village(slug: $slug) {{ jointCases {{ {CASE_FIELDS} }} }} }}"""


def _region(db) -> str:
    region_id = f"rg_{uuid.uuid4().hex[:8]}"
    provisioning.ensure_region(db, region_id, "联办测试片区")
    return region_id


@pytest.fixture(scope="module")
def region(db) -> str:
    return _region(db)


@pytest.fixture(scope="module")
def neighbours(db, region) -> dict[str, str]:
    """b, c, d and e for every test of the module: each test's origin a is fresh, and
    with it its agreements, cases and copies; a test reads a neighbour's cases only
    where a opened them (`from_origin`)."""
    return {name: new_village(db, f"{name}村", region).slug for name in "bcde"}


def _agreed(db, region: str, found: dict[str, str]) -> dict[str, str]:
    """a: the origin; b and c: involved; d: a neighbour with an agreement, not involved;
    e: no agreement at all."""
    for name in "bcd":
        agree(db, found["a"], found[name], {JOINT_CASE: ALL_FIELDS}, region=region)
    return found


@pytest.fixture
def villages(db, region, neighbours) -> dict[str, str]:
    return _agreed(db, region, {"a": new_village(db, "a村", region).slug, **neighbours})


@pytest.fixture
def villages_of_their_own(db) -> dict[str, str]:
    """Five fresh villages in a fresh region, for a statement count that compares one
    case in every list with many: the module's neighbours list other tests' cases."""
    region = _region(db)
    return _agreed(
        db, region, {name: new_village(db, f"{name}村", region).slug for name in "abcde"}
    )


def admins_of(token, villages: dict[str, str]) -> dict[str, str]:
    return {name: token("village-admin", village=slug) for name, slug in villages.items()}


@pytest.fixture
def admins(token, villages) -> dict[str, str]:
    return admins_of(token, villages)


def from_origin(cases: list[dict], origin: str) -> list[dict]:
    """The cases of a list that `origin` opened: the whole list, were the neighbours
    fresh, since a is the only village that shares cases with them in a test."""
    return [case for case in cases if case["village"] == origin]


def open_case(gql, admins, villages, db, involved=("b", "c"), **more) -> dict:
    request_id = new_request(db, villages["a"], grid_level=None, grade="complex")
    found = ok(
        gql(
            OPEN,
            admins["a"],
            {
                "input": {
                    "request": encode_id("Request", villages["a"], request_id),
                    "villages": [villages[v] for v in involved],
                    "note": "涉及相邻两村的排水沟堵塞",
                    **more,
                }
            },
        )
    )["openJointCase"]
    assert found["userErrors"] == [], found
    return found["case"]


def update(gql, caller: str, case: dict, village: str, **data) -> dict:
    return ok(gql(UPDATE, caller, {"input": {"case": case["id"], "village": village, **data}}))[
        "updateJointCase"
    ]


# -- schema ---------------------------------------------------------------------

OUR_TABLES = (joint_cases.name, "joint_case_events")


def test_migration_creates_what_the_tables_describe(db, neighbours):
    # It reads the schema and writes nothing: one of the module's villages serves.
    with db.tenant(neighbours["e"]) as conn:
        context = MigrationContext.configure(conn, opts={"compare_server_default": False})
        differences = [
            d
            for d in compare_metadata(context, metadata)
            if any(f"'{name}'" in repr(d) for name in OUR_TABLES)
        ]
    assert differences == []


# -- opening ------------------------------------------------------------------------


def test_opening_needs_an_agreement_with_every_village(db, gql, admins, villages):
    a = villages["a"]
    request = encode_id("Request", a, new_request(db, a, grid_level=None))
    cases = [
        ([villages["b"], villages["e"]], [("villages", "NO_AGREEMENT")]),
        ([a, villages["b"]], [("villages", "INVALID")]),
        ([], [("villages", "REQUIRED")]),
    ]
    for involved, expected in cases:
        found = ok(gql(OPEN, admins["a"], {"input": {"request": request, "villages": involved}}))
        assert codes(found["openJointCase"]) == expected, involved
        assert all(not e["message"].isascii() for e in found["openJointCase"]["userErrors"])
    with db.tenant(a) as conn:
        assert (
            conn.execute(select(outbox).where(outbox.c.record_type == "JointCase")).first() is None
        )
    # Another village's admin may not open a case of a's request.
    _status, body = gql(OPEN, admins["b"], {"input": {"request": request, "villages": [a]}})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_a_case_is_opened_from_a_request(db, gql, admins, villages):
    case = open_case(gql, admins, villages, db)
    a, b, c = villages["a"], villages["b"], villages["c"]
    assert (case["village"], case["state"], case["priority"], case["version"]) == (
        a,
        "OPEN",
        "HIGH",  # the request's grade is complex
        1,
    )
    assert case["villages"] == sorted([b, c]) and case["shared"] is False
    assert case["category"] == "sanitation" and case["title"].startswith("环境卫生")
    assert case["request"]["id"].startswith(encode_id("Request", a, 1)[:4])
    assert [(e["village"], e["kind"], e["state"]) for e in case["timeline"]] == [
        (a, "OPENED", "OPEN")
    ]
    again = ok(
        gql(
            OPEN,
            admins["a"],
            {"input": {"request": case["request"]["id"], "villages": [b]}},
        )
    )
    assert codes(again["openJointCase"]) == [("request", "DUPLICATE")]
    with db.tenant(a) as conn:
        (row,) = conn.execute(select(outbox).where(outbox.c.record_type == "JointCase")).mappings()
    assert row["payload"]["_audience"] == sorted([b, c])
    assert set(row["payload"]) - {"_audience"} == set(ALL_FIELDS)


# -- updating -------------------------------------------------------------------------


def test_involved_villages_and_coordinators_update_one_timeline(
    db, gql, token, admins, villages, region
):
    a, b, c = villages["a"], villages["b"], villages["c"]
    case = open_case(gql, admins, villages, db)
    by_b = update(gql, admins["b"], case, b, note="乙村已派人清理下游")
    assert by_b["userErrors"] == [] and by_b["case"]["version"] == 2
    coordinator = token("regional-coordinator", region=region)
    by_region = update(gql, coordinator, case, region, state="IN_PROGRESS", note="片区协调")
    assert by_region["userErrors"] == [] and by_region["case"]["state"] == "IN_PROGRESS"
    backwards = update(gql, admins["a"], case, a, state="OPEN")
    assert codes(backwards) == [("state", "INVALID_TRANSITION")]
    by_a = update(gql, admins["a"], case, a, state="RESOLVED")
    assert by_a["case"]["state"] == "RESOLVED" and by_a["case"]["version"] == 4
    by_c = update(gql, admins["c"], case, c, state="CLOSED", note="丙村确认办结")
    assert by_c["case"]["state"] == "CLOSED"
    refused = update(gql, admins["a"], case, a, state="IN_PROGRESS")
    assert codes(refused) == [("case", "INVALID_TRANSITION")]  # closed: done
    assert codes(update(gql, admins["b"], case, b)) == [("note", "REQUIRED")]

    timeline = by_c["case"]["timeline"]
    assert [(e["village"], e["kind"], e["state"], e["note"]) for e in timeline] == [
        (a, "OPENED", "OPEN", "涉及相邻两村的排水沟堵塞"),
        (b, "NOTE", None, "乙村已派人清理下游"),
        (region, "STATE_CHANGE", "IN_PROGRESS", "片区协调"),
        (a, "STATE_CHANGE", "RESOLVED", None),
        (c, "STATE_CHANGE", "CLOSED", "丙村确认办结"),
    ]
    with db.platform() as conn:
        audited = conn.execute(
            select(pm.audit_log.c.details["acting"].astext)
            .where(pm.audit_log.c.village == a, pm.audit_log.c.action == "joint_case.update")
            .order_by(pm.audit_log.c.occurred_at)
        ).scalars()
        assert list(audited) == [b, region, a, c]

    # The copies: the involved villages and the region's coordinators, the same timeline.
    sync_village(db, a)
    with db.platform() as conn:
        audiences = conn.execute(
            select(records.c.audience, records.c.version)
            .where(records.c.origin == a, records.c.record_type == JOINT_CASE)
            .order_by(records.c.audience)
        ).all()
    assert sorted(tuple(r) for r in audiences) == sorted([(b, 5), (c, 5), ("@region", 5)])
    for name in ("b", "c"):
        listed = ok(gql(CASES, admins[name], {"slug": villages[name]}))["village"]["jointCases"]
        (copy,) = from_origin(listed, a)
        assert copy["shared"] is True and copy["id"] == case["id"] and copy["village"] == a
        assert copy["timeline"] == timeline and copy["state"] == "CLOSED"
    listed = ok(gql(CASES, admins["d"], {"slug": villages["d"]}))["village"]["jointCases"]
    assert from_origin(listed, a) == []
    (own,) = ok(gql(CASES, admins["a"], {"slug": a}))["village"]["jointCases"]
    assert own["shared"] is False and own["timeline"] == timeline


def test_the_origin_and_coordinators_involve_more_villages(
    db, gql, token, admins, villages, region
):
    a, b, d, e = villages["a"], villages["b"], villages["d"], villages["e"]
    case = open_case(gql, admins, villages, db, involved=("b",))
    assert codes(update(gql, admins["b"], case, b, addVillages=[d])) == [
        ("addVillages", "FORBIDDEN")
    ]
    assert codes(update(gql, admins["a"], case, a, addVillages=[e])) == [
        ("addVillages", "NO_AGREEMENT")
    ]
    added = update(gql, admins["a"], case, a, addVillages=[d, b], note="下游涉及丁村")
    assert added["userErrors"] == [] and added["case"]["villages"] == sorted([b, d])
    assert [(e["kind"], e["note"]) for e in added["case"]["timeline"][1:]] == [
        ("VILLAGE_ADDED", d),
        ("NOTE", "下游涉及丁村"),
    ]
    # d is one of the case's villages now: it acts, and receives the copy.
    assert update(gql, admins["d"], case, d, note="丁村配合")["userErrors"] == []
    sync_village(db, a)
    (copy,) = from_origin(ok(gql(CASES, admins["d"], {"slug": d}))["village"]["jointCases"], a)
    assert copy["villages"] == sorted([b, d]) and copy["timeline"][-1]["village"] == d
    coordinator = token("regional-coordinator", region=region)
    assert codes(update(gql, coordinator, case, region, addVillages=[e])) == [
        ("addVillages", "NO_AGREEMENT")
    ]


def test_uninvolved_villages_and_other_coordinators_are_refused(
    db, gql, token, admins, villages, region
):
    a, d, e = villages["a"], villages["d"], villages["e"]
    case = open_case(gql, admins, villages, db)
    # d has an agreement with a, but is not one of the case's villages.
    assert codes(update(gql, admins["d"], case, d, note="不相干")) == [("village", "FORBIDDEN")]
    # e has no agreement: the case does not exist for it.
    _status, body = gql(
        UPDATE, admins["e"], {"input": {"case": case["id"], "village": e, "note": "x"}}
    )
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # b may not act in d's name.
    _status, body = gql(
        UPDATE, admins["b"], {"input": {"case": case["id"], "village": d, "note": "x"}}
    )
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    other_region = _region(db)
    stranger = token("regional-coordinator", region=other_region)
    for acting in (other_region, region):
        _status, body = gql(
            UPDATE, stranger, {"input": {"case": case["id"], "village": acting, "note": "x"}}
        )
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
    # A grid worker of the origin neither.
    worker = token("grid-worker", village=a)
    _status, body = gql(UPDATE, worker, {"input": {"case": case["id"], "village": a, "note": "x"}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    (own,) = ok(gql(CASES, admins["a"], {"slug": a}))["village"]["jointCases"]
    assert own["version"] == 1 and len(own["timeline"]) == 1


# -- statement counts ---------------------------------------------------------------


def test_the_list_costs_the_same_for_one_or_many(app, db, gql, token, villages_of_their_own):
    villages = villages_of_their_own
    admins = admins_of(token, villages)

    def statements(name: str) -> int:
        variables = {"slug": villages[name]}
        gql(CASES, admins[name], variables)  # warm the pool
        with count_statements(app.extensions["villagelink"].db.engine) as seen:
            ok(gql(CASES, admins[name], variables))
        return len(seen)

    open_case(gql, admins, villages, db)
    sync_village(db, villages["a"])
    one, one_shared = statements("a"), statements("b")
    for _ in range(3):
        case = open_case(gql, admins, villages, db)
        update(gql, admins["b"], case, villages["b"], note="跟进")
    sync_village(db, villages["a"])
    # role, path and access epoch (the caller's reach is kept with the token),
    # the cases, their timelines, the shared copies
    assert one == statements("a") == 4
    assert one_shared == statements("b") == 4


def test_a_copy_carries_only_the_agreed_fields(db, gql, token, admins, villages, region):
    a = villages["a"]
    narrow = new_village(db, "己村", region).slug
    agree(db, a, narrow, {JOINT_CASE: ["title", "state", "villages", "updated_at"]}, region=region)
    case = open_case(gql, admins, {**villages, "f": narrow}, db, involved=("b", "f"))
    sync_village(db, a)
    with db.platform() as conn:
        payload = conn.execute(
            select(records.c.payload).where(
                records.c.origin == a,
                records.c.record_type == JOINT_CASE,
                records.c.audience == narrow,
            )
        ).scalar_one()
    assert set(payload) == {"title", "state", "villages", "updated_at"}
    admin = token("village-admin", village=narrow)
    (copy,) = ok(gql(CASES, admin, {"slug": narrow}))["village"]["jointCases"]
    assert (copy["id"], copy["title"], copy["state"]) == (case["id"], case["title"], "OPEN")
    assert copy["description"] is None and copy["timeline"] == [] and copy["openedAt"] is None

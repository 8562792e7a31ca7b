"""Residents through GraphQL: filters, pagination, writes with userErrors, masking and audit."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, text

from villagelink.platform import models as pm
from villagelink.tenants.id_numbers import compose

LIST = """query($slug: String!, $first: Int, $after: String, $filter: ResidentFilter) {
  village(slug: $slug) { residents(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id name age gender birthDate tags { tag level }
                   household { id address building members { id } head { id } }
                   grid { id level } } } } } }"""
CREATE = """mutation($input: CreateResidentInput!) { createResident(input: $input) {
  resident { id name gender birthDate idNumber phone household { id } grid { id } version }
  userErrors { field message code } } }"""
UPDATE = """mutation($input: UpdateResidentInput!) { updateResident(input: $input) {
  resident { id name phone version } userErrors { field message code } } }"""
MOVE = """mutation($input: MoveResidentToHouseholdInput!) { moveResidentToHousehold(input: $input) {
  resident { id household { id head { id } } relationToHead } userErrors { field code } } }"""


@pytest.fixture
def admin(token, case_village) -> str:
    """The admin of the module's shared village, whose cases write nothing; of the test's
    own where it asks for `populated_village` (it adds, moves or tags residents, which the
    shared village's totals and filters would see)."""
    return token("village-admin", village=case_village.slug)


def residents(gql, admin, slug, **variables):
    status, body = gql(LIST, admin, {"slug": slug, **variables})
    assert status == 200, body
    assert "errors" not in body, body
    return body["data"]["village"]["residents"]


def test_pagination_walks_every_resident_once(gql, admin, shared_village):
    seen, after = [], None
    while True:
        page = residents(gql, admin, shared_village.slug, first=25, after=after)
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == page["totalCount"] == 60


def test_filters(gql, admin, shared_village):
    slug = shared_village.slug
    elderly = residents(gql, admin, slug, first=100, filter={"ageMin": 60})
    assert elderly["totalCount"] > 0
    assert all(edge["node"]["age"] >= 60 for edge in elderly["edges"])
    middle = residents(gql, admin, slug, first=100, filter={"ageMin": 30, "ageMax": 40})
    assert all(30 <= edge["node"]["age"] <= 40 for edge in middle["edges"])
    someone = elderly["edges"][0]["node"]
    by_name = residents(gql, admin, slug, first=100, filter={"name": someone["name"][1:]})
    assert someone["id"] in {edge["node"]["id"] for edge in by_name["edges"]}
    grid = someone["grid"]["id"]
    in_grid = residents(gql, admin, slug, first=100, filter={"grid": grid})
    assert {edge["node"]["grid"]["id"] for edge in in_grid["edges"]} == {grid}
    alone = residents(gql, admin, slug, first=100, filter={"tag": "ELDERLY_LIVING_ALONE"})
    for edge in alone["edges"]:
        assert "ELDERLY_LIVING_ALONE" in {t["tag"] for t in edge["node"]["tags"]}
        assert edge["node"]["household"]["members"] == [{"id": edge["node"]["id"]}]
    assert residents(gql, admin, slug, first=5, filter={"name": "%"})["totalCount"] == 0


def test_ids_are_opaque_and_masked_by_default(gql, admin, shared_village):
    node = residents(gql, admin, shared_village.slug, first=1)["edges"][0]["node"]
    assert shared_village.slug not in node["id"] and "Resident" not in node["id"]
    _, body = gql(
        "query($id: ID!) { node(id: $id) { ... on Resident { idNumber phone } } }",
        admin,
        {"id": node["id"]},
    )
    resident = body["data"]["node"]
    assert resident["idNumber"][6:14] == "********" and len(resident["idNumber"]) == 18
    if resident["phone"]:
        assert resident["phone"][3:7] == "****"


def new_resident(populated_village, household=None, **overrides):
    born = date(1958, 4, 9)
    values = {
        "village": populated_village.slug,
        "name": "王秀英",
        "idNumber": compose("120111", born, 902),
        "phone": "13912345678",
    }
    if household:
        values["household"] = household
    return {**values, **overrides}


def test_create_update_move_and_tag(gql, admin, populated_village, db):
    households = residents(gql, admin, populated_village.slug, first=100)["edges"]
    home = households[0]["node"]["household"]["id"]
    _, body = gql(CREATE, admin, {"input": new_resident(populated_village, home)})
    payload = body["data"]["createResident"]
    assert payload["userErrors"] == []
    created = payload["resident"]
    assert created["gender"] == "FEMALE" and created["birthDate"] == "1958-04-09"
    assert created["household"]["id"] == home and created["grid"]["id"]

    _, body = gql(UPDATE, admin, {"input": {"id": created["id"], "phone": "13800001111"}})
    assert body["data"]["updateResident"]["resident"]["version"] == 2

    other_home = next(
        e["node"]["household"]["id"] for e in households if e["node"]["household"]["id"] != home
    )
    _, body = gql(
        MOVE,
        admin,
        {"input": {"resident": created["id"], "household": other_home, "relationToHead": "PARENT"}},
    )
    moved = body["data"]["moveResidentToHousehold"]
    assert moved["userErrors"] == [] and moved["resident"]["household"]["id"] == other_home

    _, body = gql(
        MOVE,
        admin,
        {"input": {"resident": created["id"], "household": other_home, "relationToHead": "HEAD"}},
    )
    assert body["data"]["moveResidentToHousehold"]["userErrors"] == [
        {"field": "relationToHead", "code": "DUPLICATE"}
    ]

    with db.platform() as conn:
        actions = conn.execute(
            select(pm.audit_log.c.action, pm.audit_log.c.actor_roles)
            .where(pm.audit_log.c.village == populated_village.slug)
            .order_by(pm.audit_log.c.occurred_at)
        ).all()
    assert [a for a, _ in actions] == ["resident.create", "resident.update", "resident.move"]
    assert all(roles == ["village-admin"] for _, roles in actions)


@pytest.mark.parametrize(
    ("overrides", "field", "code", "message"),
    [
        ({"name": ""}, "name", "INVALID", "姓名须为1到50个字"),
        (
            {"idNumber": "12011119580409902"},
            "idNumber",
            "INVALID",
            "身份证号码应为18位，最后一位可为X",
        ),
        (
            {"idNumber": compose("120111", date(1958, 4, 9), 902)[:-1] + "0"},
            "idNumber",
            "INVALID",
            "身份证号码校验位不正确",
        ),
        ({"birthDate": "1960-01-01"}, "birthDate", "MISMATCH", "出生日期与身份证号码不一致"),
        ({"gender": "MALE"}, "gender", "MISMATCH", "性别与身份证号码不一致"),
        ({"phone": "12345"}, "phone", "INVALID", "手机号码格式不正确，应为11位大陆手机号"),
        ({"household": "bm90LWFuLWlk"}, "household", "NOT_FOUND", "户不存在或不在您的管辖范围内"),
    ],
)
def test_create_refuses_bad_input_and_writes_nothing(
    gql, token, shared_village, db, overrides, field, code, message
):
    admin = token("village-admin", village=shared_village.slug)
    before = _counts(db, shared_village.slug)
    _, body = gql(CREATE, admin, {"input": new_resident(shared_village, **overrides)})
    payload = body["data"]["createResident"]
    assert payload["resident"] is None
    assert {"field": field, "message": message, "code": code} in payload["userErrors"]
    assert _counts(db, shared_village.slug) == before


def test_duplicate_id_number_is_a_user_error(gql, admin, populated_village, db):
    _, body = gql(CREATE, admin, {"input": new_resident(populated_village)})
    assert body["data"]["createResident"]["userErrors"] == []
    before = _counts(db, populated_village.slug)
    _, body = gql(CREATE, admin, {"input": new_resident(populated_village, name="李四")})
    assert body["data"]["createResident"]["userErrors"] == [
        {"field": "idNumber", "message": "该身份证号码已登记", "code": "DUPLICATE"}
    ]
    assert _counts(db, populated_village.slug) == before


def test_tagging_rules(gql, admin, populated_village):
    someone = residents(gql, admin, populated_village.slug, first=1)["edges"][0]["node"]["id"]
    tag = """mutation($input: TagResidentInput!) { tagResident(input: $input) {
      resident { tags { tag level } } userErrors { field code } } }"""
    untag = """mutation($input: UntagResidentInput!) { untagResident(input: $input) {
      resident { tags { tag } } userErrors { field code } } }"""
    _, body = gql(tag, admin, {"input": {"resident": someone, "tag": "DISABLED", "level": 2}})
    assert {"tag": "DISABLED", "level": 2} in body["data"]["tagResident"]["resident"]["tags"]
    _, body = gql(tag, admin, {"input": {"resident": someone, "tag": "DISABLED", "level": 9}})
    assert body["data"]["tagResident"]["userErrors"] == [{"field": "level", "code": "INVALID"}]
    _, body = gql(tag, admin, {"input": {"resident": someone, "tag": "VOLUNTEER", "level": 1}})
    assert body["data"]["tagResident"]["userErrors"] == [{"field": "level", "code": "INVALID"}]
    _, body = gql(untag, admin, {"input": {"resident": someone, "tag": "DISABLED"}})
    assert "DISABLED" not in {t["tag"] for t in body["data"]["untagResident"]["resident"]["tags"]}
    _, body = gql(untag, admin, {"input": {"resident": someone, "tag": "DISABLED"}})
    assert body["data"]["untagResident"]["userErrors"] == [{"field": "tag", "code": "NOT_FOUND"}]


def test_unmasked_reads_are_audited_with_reason(gql, admin, shared_village, db):
    query = """query($slug: String!) { village(slug: $slug) { residents(first: 3) { edges { node {
        id idNumber(unmasked: true, reason: "低保复核")
        phone(unmasked: true, reason: "低保复核") } } } } }"""
    before = _audit_ids(db, shared_village.slug)
    _, body = gql(query, admin, {"slug": shared_village.slug})
    nodes = [edge["node"] for edge in body["data"]["village"]["residents"]["edges"]]
    assert all("*" not in node["idNumber"] for node in nodes)
    with db.platform() as conn:
        entries = (
            conn.execute(
                select(pm.audit_log).where(
                    pm.audit_log.c.village == shared_village.slug,
                    pm.audit_log.c.action == "resident.read_unmasked",
                    pm.audit_log.c.id.not_in(before),
                )
            )
            .mappings()
            .all()
        )
    assert len(entries) == 3
    assert all(e["fields"] == ["id_number", "phone"] and e["reason"] == "低保复核" for e in entries)
    assert all(e["actor_roles"] == ["village-admin"] and e["request_id"] for e in entries)


def test_masked_reads_leave_no_audit(gql, admin, shared_village, db):
    before = _audit_ids(db, shared_village.slug)
    residents(gql, admin, shared_village.slug, first=10)
    assert _audit_ids(db, shared_village.slug) == before


def _audit_ids(db, slug: str) -> set:
    """The village's audit entries so far: a case on the shared village reads only its own."""
    with db.platform() as conn:
        return set(
            conn.execute(select(pm.audit_log.c.id).where(pm.audit_log.c.village == slug)).scalars()
        )


def _counts(db, slug) -> tuple:
    with db.tenant(slug) as conn:
        residents_count = conn.execute(text("SELECT count(*) FROM residents")).scalar()
    with db.platform() as conn:
        audit = conn.execute(
            text("SELECT count(*) FROM platform.audit_log WHERE village = :v"), {"v": slug}
        ).scalar()
    return residents_count, audit

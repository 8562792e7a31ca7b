"""The village's structure through GraphQL: grids of three levels, buildings and
households created, changed and archived; the tree's rules refused in Chinese; who may."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from villagelink.platform import models as pm
from villagelink.tenants import models as m
from villagelink.tenants.id_numbers import compose

# The API's GridLevel values (the enum's spelling lives here only).
COMMUNITY, LARGE, MICRO = "COMMUNITY", "LARGE", "MICRO"

ERRORS = "userErrors { field message code }"
CREATE_GRID = f"""mutation($input: CreateGridInput!) {{ createGrid(input: $input) {{
  grid {{ id code name level parent {{ id }} archivedAt }} {ERRORS} }} }}"""
UPDATE_GRID = f"""mutation($input: UpdateGridInput!) {{ updateGrid(input: $input) {{
  grid {{ id code name parent {{ id }} }} {ERRORS} }} }}"""
ARCHIVE_GRID = f"""mutation($input: ArchiveGridInput!) {{ archiveGrid(input: $input) {{
  grid {{ id archivedAt }} {ERRORS} }} }}"""
CREATE_BUILDING = f"""mutation($input: CreateBuildingInput!) {{ createBuilding(input: $input) {{
  building {{ id name units floors grid {{ id }} archivedAt }} {ERRORS} }} }}"""
UPDATE_BUILDING = f"""mutation($input: UpdateBuildingInput!) {{ updateBuilding(input: $input) {{
  building {{ id name units grid {{ id }} }} {ERRORS} }} }}"""
ARCHIVE_BUILDING = f"""mutation($input: ArchiveBuildingInput!) {{
  archiveBuilding(input: $input) {{ building {{ id archivedAt }} {ERRORS} }} }}"""
CREATE_HOUSEHOLD = f"""mutation($input: CreateHouseholdInput!) {{
  createHousehold(input: $input) {{
  household {{ id address building unitNo roomNo grid {{ id }} archivedAt }} {ERRORS} }} }}"""
UPDATE_HOUSEHOLD = f"""mutation($input: UpdateHouseholdInput!) {{
  updateHousehold(input: $input) {{ household {{ id address roomNo }} {ERRORS} }} }}"""
ARCHIVE_HOUSEHOLD = f"""mutation($input: ArchiveHouseholdInput!) {{
  archiveHousehold(input: $input) {{ household {{ id archivedAt }} {ERRORS} }} }}"""
CREATE_RESIDENT = f"""mutation($input: CreateResidentInput!) {{ createResident(input: $input) {{
  resident {{ id grid {{ id }} }} {ERRORS} }} }}"""
MOVE = f"""mutation($input: MoveResidentToHouseholdInput!) {{
  moveResidentToHousehold(input: $input) {{ resident {{ id }} {ERRORS} }} }}"""
LISTS = """query($slug: String!, $all: Boolean) { village(slug: $slug) {
  grids(first: 50, includeArchived: $all) { totalCount edges { node { id archivedAt } } }
  buildings(first: 50, includeArchived: $all) { totalCount edges { node { id name } } }
  households(first: 50, includeArchived: $all) { totalCount edges { node { id } } } } }"""


def ok(gql, caller, document, input, field):
    status, body = gql(document, caller, {"input": input})
    assert status == 200 and "errors" not in body, body
    payload = next(iter(body["data"].values()))
    assert payload["userErrors"] == [], payload
    return payload[field]


def refused(gql, caller, document, input):
    """The userErrors of a refused mutation (its object null)."""
    status, body = gql(document, caller, {"input": input})
    assert status == 200 and "errors" not in body, body
    payload = next(iter(body["data"].values()))
    assert payload["userErrors"], payload
    assert [v for k, v in payload.items() if k != "userErrors"] == [None]
    return payload["userErrors"]


def error_code(gql, caller, document, input):
    _, body = gql(document, caller, {"input": input})
    assert body["data"] is None or next(iter(body["data"].values())) is None, body
    return body["errors"][0]["extensions"]["code"]


@pytest.fixture
def admin(token, village):
    return token("village-admin", village=village.slug)


@pytest.fixture
def tree(gql, admin, village):
    """A community, one grid, one micro-grid and a building in it."""
    slug = village.slug
    community = ok(
        gql,
        admin,
        CREATE_GRID,
        {"village": slug, "level": COMMUNITY, "code": "C", "name": "测试社区"},
        "grid",
    )
    large = ok(
        gql,
        admin,
        CREATE_GRID,
        {
            "village": slug,
            "level": LARGE,
            "code": "C-01",
            "name": "第1网格",
            "parent": community["id"],
        },
        "grid",
    )
    micro = ok(
        gql,
        admin,
        CREATE_GRID,
        {
            "village": slug,
            "level": MICRO,
            "code": "C-01-01",
            "name": "第1微网格",
            "parent": large["id"],
        },
        "grid",
    )
    building = ok(
        gql,
        admin,
        CREATE_BUILDING,
        {"village": slug, "name": " 3号楼 ", "grid": micro["id"], "units": 2, "floors": 6},
        "building",
    )
    return {"community": community, "large": large, "micro": micro, "building": building}


def test_a_village_is_built_from_nothing(gql, admin, village, tree, db):
    assert tree["large"]["parent"] == {"id": tree["community"]["id"]}
    assert tree["building"]["name"] == "3号楼"  # typed with blanks around, kept trimmed
    assert tree["building"]["grid"] == {"id": tree["micro"]["id"]}
    node = "query($id: ID!) { node(id: $id) { id ... on Building { name } } }"
    _, body = gql(node, admin, {"id": tree["building"]["id"]})
    assert body["data"]["node"] == {"id": tree["building"]["id"], "name": "3号楼"}
    household = ok(
        gql,
        admin,
        CREATE_HOUSEHOLD,
        {"village": village.slug, "building": tree["building"]["id"], "unitNo": 2, "roomNo": "502"},
        "household",
    )
    assert household["address"] == "测试村3号楼2单元502室"
    assert household["grid"] == {"id": tree["micro"]["id"]}
    outside = ok(
        gql,
        admin,
        CREATE_HOUSEHOLD,
        {"village": village.slug, "address": "村东头12号", "grid": tree["large"]["id"]},
        "household",
    )
    assert outside["building"] is None and outside["address"] == "村东头12号"
    resident = ok(
        gql,
        admin,
        CREATE_RESIDENT,
        {
            "village": village.slug,
            "name": "王建国",
            "idNumber": compose("120111", date(1950, 3, 7), 123),
            "household": household["id"],
        },
        "resident",
    )
    assert resident["grid"] == {"id": tree["micro"]["id"]}
    with db.platform() as conn:
        actions = conn.execute(
            select(pm.audit_log.c.action)
            .where(pm.audit_log.c.village == village.slug)
            .order_by(pm.audit_log.c.id)
        ).scalars()
        assert (
            sorted(a for a in actions if a.split(".")[0] in ("grid", "building", "household"))
            == ["building.create"] + ["grid.create"] * 3 + ["household.create"] * 2
        )


def test_the_tree_keeps_its_levels(gql, admin, village, tree):
    slug = village.slug
    cases = [
        (
            {
                "level": COMMUNITY,
                "code": "X1",
                "name": "另一社区",
                "parent": tree["community"]["id"],
            },
            "parent",
            "社区是最上一级，不设上级网格",
            "INVALID",
        ),
        (
            {"level": LARGE, "code": "X2", "name": "无上级"},
            "parent",
            "网格须有上级社区",
            "REQUIRED",
        ),
        (
            {"level": MICRO, "code": "X3", "name": "挂错", "parent": tree["community"]["id"]},
            "parent",
            "微网格的上级须为网格，不能是社区",
            "MISMATCH",
        ),
        (
            {"level": LARGE, "code": "X4", "name": "挂错", "parent": tree["micro"]["id"]},
            "parent",
            "网格的上级须为社区，不能是微网格",
            "MISMATCH",
        ),
        (
            {"level": LARGE, "code": "C-01", "name": "重号", "parent": tree["community"]["id"]},
            "code",
            "网格编码已存在",
            "DUPLICATE",
        ),
        (
            {"level": LARGE, "code": "X5", "name": "第1网格", "parent": tree["community"]["id"]},
            "name",
            "同一上级下已有同名网格",
            "DUPLICATE",
        ),
        (
            {"level": LARGE, "code": "有 空格", "name": "   ", "parent": tree["community"]["id"]},
            None,
            None,
            "INVALID",
        ),
    ]
    for given, field, message, code in cases:
        errors = refused(gql, admin, CREATE_GRID, {"village": slug, **given})
        if field is None:
            assert {e["field"] for e in errors} == {"code", "name"}, errors
            assert "网格名称不能为空" in {e["message"] for e in errors}
            continue
        assert errors == [{"field": field, "message": message, "code": code}], given
    # Moving a micro-grid under a community would break the tree too.
    errors = refused(
        gql, admin, UPDATE_GRID, {"id": tree["micro"]["id"], "parent": tree["community"]["id"]}
    )
    assert errors[0]["code"] == "MISMATCH"
    other = ok(
        gql,
        admin,
        CREATE_GRID,
        {
            "village": slug,
            "level": LARGE,
            "code": "C-02",
            "name": "第2网格",
            "parent": tree["community"]["id"],
        },
        "grid",
    )
    moved = ok(
        gql,
        admin,
        UPDATE_GRID,
        {"id": tree["micro"]["id"], "parent": other["id"], "name": "甲"},
        "grid",
    )
    assert moved["parent"] == {"id": other["id"]} and moved["name"] == "甲"


def test_buildings_and_households_refuse_what_does_not_fit(gql, admin, village, tree):
    slug, building = village.slug, tree["building"]
    new = {"village": slug, "grid": tree["micro"]["id"], "units": 2, "floors": 6}
    assert refused(gql, admin, CREATE_BUILDING, {**new, "name": "3号楼"}) == [
        {"field": "name", "message": "已有同名楼栋", "code": "DUPLICATE"}
    ]
    errors = refused(
        gql, admin, CREATE_BUILDING, {**new, "name": "4号楼", "grid": tree["community"]["id"]}
    )
    assert errors[0]["message"] == "楼栋和户须归属网格或微网格，不能直接归属社区"
    errors = refused(
        gql, admin, CREATE_BUILDING, {**new, "name": "5号楼", "units": 0, "floors": 900}
    )
    assert {e["field"] for e in errors} == {"units", "floors"}
    flat = {"village": slug, "building": building["id"], "unitNo": 1, "roomNo": "101"}
    ok(gql, admin, CREATE_HOUSEHOLD, flat, "household")
    assert refused(gql, admin, CREATE_HOUSEHOLD, flat) == [
        {"field": "roomNo", "message": "该房屋已登记为一户", "code": "DUPLICATE"}
    ]
    assert refused(gql, admin, CREATE_HOUSEHOLD, {**flat, "unitNo": 3})[0]["message"] == (
        "该楼没有此单元"
    )
    mixed = {**flat, "roomNo": "909", "address": "村东头1号"}
    assert refused(gql, admin, CREATE_HOUSEHOLD, mixed) == [
        {"field": "address", "message": "楼栋中的户按单元和室号定位，不另填地址", "code": "INVALID"}
    ]
    loose = {"village": slug, "unitNo": 1, "roomNo": "909", "grid": tree["large"]["id"]}
    assert refused(gql, admin, CREATE_HOUSEHOLD, loose)[0]["field"] == "building"
    # Another village's building is not found here, whether it exists or not.
    stranger = {**flat, "building": "QnVpbGRpbmc6bGl1bGluOjE"}
    assert refused(gql, admin, CREATE_HOUSEHOLD, stranger)[0]["code"] == "NOT_FOUND"
    second = ok(gql, admin, CREATE_HOUSEHOLD, {**flat, "unitNo": 2}, "household")
    errors = refused(gql, admin, UPDATE_BUILDING, {"id": building["id"], "units": 1})
    assert errors == [
        {"field": "units", "message": "该楼第2单元还有住户，单元数不能少于2", "code": "INVALID"}
    ]
    renamed = ok(gql, admin, UPDATE_BUILDING, {"id": building["id"], "name": "三号楼"}, "building")
    assert renamed["name"] == "三号楼"
    moved = ok(gql, admin, UPDATE_HOUSEHOLD, {"id": second["id"], "roomNo": "202"}, "household")
    assert moved["address"] == "测试村三号楼2单元202室"
    assert (
        refused(gql, admin, UPDATE_HOUSEHOLD, {"id": second["id"], "unitNo": 1, "roomNo": "101"})[
            0
        ]["code"]
        == "DUPLICATE"
    )


def test_a_building_moved_to_another_grid_takes_its_households_and_residents(
    gql, admin, village, tree, db
):
    slug = village.slug
    household = ok(
        gql,
        admin,
        CREATE_HOUSEHOLD,
        {"village": slug, "building": tree["building"]["id"], "unitNo": 1, "roomNo": "301"},
        "household",
    )
    ok(
        gql,
        admin,
        CREATE_RESIDENT,
        {
            "village": slug,
            "name": "李梅",
            "idNumber": compose("120111", date(1980, 1, 1), 222),
            "household": household["id"],
        },
        "resident",
    )
    ok(
        gql,
        admin,
        UPDATE_BUILDING,
        {"id": tree["building"]["id"], "grid": tree["large"]["id"]},
        "building",
    )
    with db.tenant(slug) as conn:
        assert (
            set(conn.execute(select(m.households.c.grid_id)).scalars())
            == set(conn.execute(select(m.residents.c.grid_id)).scalars())
            == set(conn.execute(select(m.grids.c.id).where(m.grids.c.code == "C-01")).scalars())
        )


def test_archiving_is_refused_while_something_hangs_on_it(gql, admin, village, tree, db):
    slug = village.slug
    household = ok(
        gql,
        admin,
        CREATE_HOUSEHOLD,
        {"village": slug, "building": tree["building"]["id"], "unitNo": 1, "roomNo": "101"},
        "household",
    )
    resident = ok(
        gql,
        admin,
        CREATE_RESIDENT,
        {
            "village": slug,
            "name": "赵伟",
            "idNumber": compose("120111", date(1970, 2, 2), 333),
            "household": household["id"],
        },
        "resident",
    )
    assert refused(gql, admin, ARCHIVE_GRID, {"id": tree["micro"]["id"]}) == [
        {
            "field": "id",
            "message": "该网格下还有楼栋1栋、住户1户、居民1人，请先调整后再归档",
            "code": "INVALID",
        }
    ]
    assert refused(gql, admin, ARCHIVE_GRID, {"id": tree["community"]["id"]})[0]["message"] == (
        "该网格下还有下级网格1个，请先调整后再归档"
    )
    assert refused(gql, admin, ARCHIVE_BUILDING, {"id": tree["building"]["id"]})[0]["message"] == (
        "该楼栋还有1户，请先归档或调整这些户"
    )
    assert refused(gql, admin, ARCHIVE_HOUSEHOLD, {"id": household["id"]})[0]["message"] == (
        "该户还有居民1人，请先将其迁入其他户"
    )
    # The resident moves out of the building; then the household, building and grid go.
    elsewhere = ok(
        gql,
        admin,
        CREATE_HOUSEHOLD,
        {"village": slug, "address": "村西头1号", "grid": tree["large"]["id"]},
        "household",
    )
    ok(gql, admin, MOVE, {"resident": resident["id"], "household": elsewhere["id"]}, "resident")
    assert ok(gql, admin, ARCHIVE_HOUSEHOLD, {"id": household["id"]}, "household")["archivedAt"]
    assert ok(gql, admin, ARCHIVE_BUILDING, {"id": tree["building"]["id"]}, "building")[
        "archivedAt"
    ]
    assert ok(gql, admin, ARCHIVE_GRID, {"id": tree["micro"]["id"]}, "grid")["archivedAt"]
    # Archived records are closed to new uses, and a second archive is refused.
    assert (
        refused(gql, admin, MOVE, {"resident": resident["id"], "household": household["id"]})[0][
            "code"
        ]
        == "ARCHIVED"
    )
    assert refused(
        gql,
        admin,
        CREATE_HOUSEHOLD,
        {"village": slug, "building": tree["building"]["id"], "unitNo": 1, "roomNo": "102"},
    ) == [{"field": "building", "message": "该楼栋已归档", "code": "ARCHIVED"}]
    assert (
        refused(
            gql,
            admin,
            CREATE_BUILDING,
            {
                "village": slug,
                "name": "9号楼",
                "grid": tree["micro"]["id"],
                "units": 1,
                "floors": 1,
            },
        )[0]["code"]
        == "ARCHIVED"
    )
    assert refused(gql, admin, ARCHIVE_GRID, {"id": tree["micro"]["id"]})[0]["code"] == "ARCHIVED"
    # Hidden from the default lists, shown on request; nothing was deleted.
    _, body = gql(LISTS, admin, {"slug": slug})
    default = body["data"]["village"]
    _, body = gql(LISTS, admin, {"slug": slug, "all": True})
    everything = body["data"]["village"]
    assert (default["grids"]["totalCount"], everything["grids"]["totalCount"]) == (2, 3)
    assert (default["buildings"]["totalCount"], everything["buildings"]["totalCount"]) == (0, 1)
    assert (default["households"]["totalCount"], everything["households"]["totalCount"]) == (1, 2)
    # A new building may take the archived one's name.
    ok(
        gql,
        admin,
        CREATE_BUILDING,
        {"village": slug, "name": "3号楼", "grid": tree["large"]["id"], "units": 1, "floors": 1},
        "building",
    )
    with db.platform() as conn:
        archived = (
            conn.execute(
                select(pm.audit_log.c.action).where(
                    pm.audit_log.c.village == slug, pm.audit_log.c.action.like("%.archive")
                )
            )
            .scalars()
            .all()
        )
    assert sorted(archived) == ["building.archive", "grid.archive", "household.archive"]


def test_who_may_change_the_structure(gql, token, village, tree, populated_village):
    slug = village.slug
    new_grid = {
        "village": slug,
        "level": LARGE,
        "name": "第9网格",
        "parent": tree["community"]["id"],
    }
    platform_admin = token("platform-admin")
    assert (
        ok(gql, platform_admin, CREATE_GRID, {**new_grid, "code": "P-1"}, "grid")["code"] == "P-1"
    )
    refusals = {
        "grid worker": (token("grid-worker", village=slug), "FORBIDDEN"),
        "coordinator": (token("regional-coordinator", region="testregion"), "FORBIDDEN"),
        "another village's admin": (
            token("village-admin", village=populated_village.slug),
            "NOT_FOUND",
        ),
    }
    for who, (caller, code) in refusals.items():
        attempts = [
            (CREATE_GRID, {**new_grid, "code": "W-1"}),
            (UPDATE_GRID, {"id": tree["large"]["id"], "name": "改名"}),
            (ARCHIVE_GRID, {"id": tree["large"]["id"]}),
            (
                CREATE_BUILDING,
                {
                    "village": slug,
                    "name": "8号楼",
                    "grid": tree["micro"]["id"],
                    "units": 1,
                    "floors": 1,
                },
            ),
            (UPDATE_BUILDING, {"id": tree["building"]["id"], "floors": 7}),
            (ARCHIVE_BUILDING, {"id": tree["building"]["id"]}),
            (CREATE_HOUSEHOLD, {"village": slug, "address": "某处", "grid": tree["large"]["id"]}),
        ]
        for document, input in attempts:
            assert error_code(gql, caller, document, input) == code, (who, document)
    # Households too, and nothing of the refused attempts was written.
    household = ok(
        gql,
        platform_admin,
        CREATE_HOUSEHOLD,
        {"village": slug, "address": "平台建的户", "grid": tree["large"]["id"]},
        "household",
    )
    for who, (caller, code) in refusals.items():
        for document, input in [
            (UPDATE_HOUSEHOLD, {"id": household["id"], "address": "改"}),
            (ARCHIVE_HOUSEHOLD, {"id": household["id"]}),
        ]:
            assert error_code(gql, caller, document, input) == code, (who, document)
    _, body = gql(LISTS, token("village-admin", village=slug), {"slug": slug})
    lists = body["data"]["village"]
    assert lists["grids"]["totalCount"] == 4 and lists["buildings"]["totalCount"] == 1
    assert lists["households"]["totalCount"] == 1


def test_a_platform_admin_keeps_any_villages_structure(gql, token, village, tree):
    slug, admin = village.slug, token("platform-admin")
    grid = ok(
        gql,
        admin,
        CREATE_GRID,
        {
            "village": slug,
            "level": LARGE,
            "code": "P-2",
            "name": "平台网格",
            "parent": tree["community"]["id"],
        },
        "grid",
    )
    assert ok(gql, admin, UPDATE_GRID, {"id": grid["id"], "name": "平台网格二"}, "grid")[
        "name"
    ] == ("平台网格二")
    building = ok(
        gql,
        admin,
        CREATE_BUILDING,
        {"village": slug, "name": "平台楼", "grid": grid["id"], "units": 1, "floors": 3},
        "building",
    )
    assert (
        ok(gql, admin, UPDATE_BUILDING, {"id": building["id"], "units": 2}, "building")["units"]
        == 2
    )
    household = ok(
        gql,
        admin,
        CREATE_HOUSEHOLD,
        {"village": slug, "building": building["id"], "unitNo": 2, "roomNo": "301"},
        "household",
    )
    moved = ok(gql, admin, UPDATE_HOUSEHOLD, {"id": household["id"], "roomNo": "302"}, "household")
    assert moved["address"] == "测试村平台楼2单元302室"
    assert ok(gql, admin, ARCHIVE_HOUSEHOLD, {"id": household["id"]}, "household")["archivedAt"]
    assert ok(gql, admin, ARCHIVE_BUILDING, {"id": building["id"]}, "building")["archivedAt"]
    assert ok(gql, admin, ARCHIVE_GRID, {"id": grid["id"]}, "grid")["archivedAt"]

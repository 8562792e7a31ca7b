"""Each role's reach through GraphQL: what it may read and write, and what it is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from villagelink.graphql.core.ids import decode_id, encode_id
from villagelink.tenants import models as m
from villagelink.tenants.demo.plans import DEMO_CLIENT_VILLAGES, demo_grid_worker_subject
from villagelink.tenants.grids import grids_of_account

VILLAGES = "{ villages { slug } }"
RESIDENTS = """query($slug: String!) { village(slug: $slug) {
  residents(first: 100) { totalCount edges { node { id grid { id } idNumber phone } } } } }"""
UNMASKED = """query($slug: String!) { village(slug: $slug) {
  residents(first: 1) { edges { node { idNumber(unmasked: true, reason: "核对身份") } } } } }"""
TAG = """mutation($id: ID!) { tagResident(input: {resident: $id, tag: VOLUNTEER}) {
  resident { tags { tag } } userErrors { field code } } }"""


def slugs(body) -> set[str]:
    return {v["slug"] for v in body["data"]["villages"]}


def first_code(body) -> str:
    return body["errors"][0]["extensions"]["code"]


def a_resident_id(gql, token, slug: str) -> str:
    _, body = gql(RESIDENTS, token("platform-admin"), {"slug": slug})
    return body["data"]["village"]["residents"]["edges"][0]["node"]["id"]


def test_platform_admin_sees_and_writes_everywhere(gql, token, demo_region, populated_village):
    admin = token("platform-admin")
    _, body = gql(VILLAGES, admin)
    assert set(demo_region.slugs) | {populated_village.slug} <= slugs(body)
    resident = a_resident_id(gql, token, populated_village.slug)
    _, body = gql(TAG, admin, {"id": resident})
    assert body["data"]["tagResident"]["userErrors"] == []
    # Whole ID numbers are for the village's own admin, not the platform operator.
    _, body = gql(UNMASKED, admin, {"slug": populated_village.slug})
    assert first_code(body) == "FORBIDDEN"


def test_regional_coordinator_reads_its_region_only(gql, token, demo_region, populated_village):
    coordinator = token("regional-coordinator", region="nanhe")
    _, body = gql(VILLAGES, coordinator)
    assert slugs(body) == set(demo_region.slugs)
    _, body = gql(RESIDENTS, coordinator, {"slug": "liulin"})
    assert body["data"]["village"]["residents"]["totalCount"] == demo_region.residents_per_village
    _, body = gql(RESIDENTS, coordinator, {"slug": populated_village.slug})
    assert first_code(body) == "NOT_FOUND"


def test_regional_coordinator_is_read_only(gql, token, demo_region):
    coordinator = token("regional-coordinator", region="nanhe")
    _, body = gql(TAG, coordinator, {"id": a_resident_id(gql, token, "liulin")})
    assert first_code(body) == "FORBIDDEN"
    assert body["data"] is None
    _, body = gql(UNMASKED, coordinator, {"slug": "liulin"})
    assert first_code(body) == "FORBIDDEN"


def test_coordinator_of_another_region_sees_nothing(gql, token, demo_region):
    _, body = gql(VILLAGES, token("regional-coordinator", region="elsewhere"))
    assert slugs(body) == set()


def test_village_admin_reads_and_writes_own_village(gql, token, populated_village):
    admin = token("village-admin", village=populated_village.slug)
    _, body = gql(VILLAGES, admin)
    assert slugs(body) == {populated_village.slug}
    _, body = gql(UNMASKED, admin, {"slug": populated_village.slug})
    assert "*" not in body["data"]["village"]["residents"]["edges"][0]["node"]["idNumber"]
    _, body = gql(TAG, admin, {"id": a_resident_id(gql, token, populated_village.slug)})
    assert body["data"]["tagResident"]["resident"]["tags"]


def test_village_admin_cannot_reach_a_neighbour(gql, token, demo_region):
    admin = token("village-admin", village="liulin")
    _, body = gql(RESIDENTS, admin, {"slug": "xinghua"})
    assert first_code(body) == "NOT_FOUND"
    neighbour_resident = a_resident_id(gql, token, "xinghua")
    _, body = gql("query($id: ID!) { node(id: $id) { id } }", admin, {"id": neighbour_resident})
    assert first_code(body) == "NOT_FOUND"
    _, body = gql(TAG, admin, {"id": neighbour_resident})
    assert first_code(body) == "NOT_FOUND"


def test_forged_id_naming_another_village_is_not_found(gql, token, demo_region):
    """An ID is only a claim: rewriting its village part leads nowhere."""
    admin = token("village-admin", village="liulin")
    gid = decode_id(a_resident_id(gql, token, "xinghua"))
    for forged in (
        encode_id("Resident", "liulin", gid.key),
        encode_id("Resident", "xinghua", gid.key),
    ):
        _, body = gql(
            "query($id: ID!) { node(id: $id) { ... on Resident { name } } }", admin, {"id": forged}
        )
        if body.get("errors"):
            assert first_code(body) == "NOT_FOUND"
        else:  # the same key in liulin is liulin's own resident, not xinghua's
            assert decode_id(forged).village == "liulin"


def test_grid_worker_sees_own_grids_only(gql, token, demo_region):
    worker = token("grid-worker", village="liulin", sub=demo_grid_worker_subject("liulin"))
    admin = token("village-admin", village="liulin")
    _, mine = gql(RESIDENTS, worker, {"slug": "liulin"})
    mine = mine["data"]["village"]["residents"]
    assert 0 < mine["totalCount"] < demo_region.residents_per_village
    _, grids = gql(
        '{ village(slug: "liulin") { grids(first: 100, level: MICRO) { edges { node { id } } } } }',
        admin,
    )
    in_grid = """query($grid: ID!) { village(slug: "liulin") {
        residents(first: 1, filter: {grid: $grid}) { totalCount edges { node { id } } } } }"""
    outsider = None
    for edge in grids["data"]["village"]["grids"]["edges"]:
        _, theirs = gql(in_grid, worker, {"grid": edge["node"]["id"]})
        _, all_of = gql(in_grid, admin, {"grid": edge["node"]["id"]})
        if (
            theirs["data"]["village"]["residents"]["totalCount"] == 0
            and all_of["data"]["village"]["residents"]["edges"]
        ):
            outsider = all_of["data"]["village"]["residents"]["edges"][0]["node"]["id"]
            break
    assert outsider is not None, "every micro-grid is the worker's: the fixture is too small"
    _, body = gql("query($id: ID!) { node(id: $id) { id } }", worker, {"id": outsider})
    assert first_code(body) == "NOT_FOUND"
    _, body = gql(TAG, worker, {"id": outsider})
    assert body["data"]["tagResident"]["userErrors"][0]["code"] == "NOT_FOUND"
    _, body = gql(UNMASKED, worker, {"slug": "liulin"})
    assert first_code(body) == "FORBIDDEN"
    _, body = gql(RESIDENTS, worker, {"slug": "xinghua"})
    assert first_code(body) == "NOT_FOUND"


def test_grid_worker_sees_no_household_of_another_grid_through_a_resident(
    db, gql, token, demo_region
):
    """A resident's household comes in the resident's own statement (page and by ID):
    kept to the worker's grids as a household read by ID is."""
    sub = demo_grid_worker_subject("liulin")
    worker = token("grid-worker", village="liulin", sub=sub)
    with db.tenant("liulin") as conn:
        grids = list(grids_of_account(conn, sub))
        resident, household = conn.execute(
            select(m.residents.c.id, m.residents.c.household_id)
            .where(m.residents.c.grid_id.in_(grids), m.residents.c.household_id.is_not(None))
            .order_by(m.residents.c.id)
            .limit(1)
        ).one()
        elsewhere = conn.execute(
            select(m.households.c.id).where(m.households.c.grid_id.not_in(grids)).limit(1)
        ).scalar_one()
        conn.execute(
            update(m.residents).where(m.residents.c.id == resident).values(household_id=elsewhere)
        )
    selection = "id household { id } grid { id }"
    page = f"""{{ village(slug: "liulin") {{ residents(first: 100) {{
        edges {{ node {{ {selection} }} }} }} }} }}"""
    one = f"query($id: ID!) {{ node(id: $id) {{ ... on Resident {{ {selection} }} }} }}"
    key = encode_id("Resident", "liulin", resident)
    try:
        _, body = gql(page, worker)
        edges = body["data"]["village"]["residents"]["edges"]
        (moved,) = [e["node"] for e in edges if e["node"]["id"] == key]
        _, body = gql(one, worker, {"id": key})
        for node in (moved, body["data"]["node"]):
            assert node["household"] is None and node["grid"] is not None, body
        _, body = gql(one, token("village-admin", village="liulin"), {"id": key})
        assert body["data"]["node"]["household"]["id"] == encode_id(
            "Household", "liulin", elsewhere
        )
    finally:
        with db.tenant("liulin") as conn:
            conn.execute(
                update(m.residents)
                .where(m.residents.c.id == resident)
                .values(household_id=household)
            )


def test_grid_worker_without_a_staff_record_sees_no_residents(gql, token, demo_region):
    stranger = token("grid-worker", village="liulin", sub="not-on-any-grid")
    _, body = gql(RESIDENTS, stranger, {"slug": "liulin"})
    assert body["data"]["village"]["residents"]["totalCount"] == 0


def test_integrator_reads_granted_villages_masked(gql, token, demo_region):
    integrator = token("integrator", client="demo-integrator")
    _, body = gql(VILLAGES, integrator)
    assert slugs(body) == set(DEMO_CLIENT_VILLAGES)
    _, body = gql(RESIDENTS, integrator, {"slug": DEMO_CLIENT_VILLAGES[0]})
    node = body["data"]["village"]["residents"]["edges"][0]["node"]
    assert "********" in node["idNumber"]
    _, body = gql(UNMASKED, integrator, {"slug": DEMO_CLIENT_VILLAGES[0]})
    assert first_code(body) == "FORBIDDEN"
    _, body = gql(TAG, integrator, {"id": a_resident_id(gql, token, DEMO_CLIENT_VILLAGES[0])})
    assert first_code(body) == "FORBIDDEN"


@pytest.mark.parametrize("client_id", ["unknown-client", None])
def test_integrator_without_a_grant_sees_nothing(gql, token, demo_region, client_id):
    _, body = gql(VILLAGES, token("integrator", client=client_id or "nobody"))
    assert slugs(body) == set()


def test_a_token_without_roles_sees_nothing(gql, token, demo_region, settings):
    from villagelink.platform.identity.dev_issuer import DevIssuer

    bare = DevIssuer(settings).mint(sub="u1", username="u1", roles=[], villages=["liulin"])
    _, body = gql(VILLAGES, bare)
    assert slugs(body) == set()


def test_every_node_type_round_trips_through_node(gql, token, demo_region):
    admin = token("village-admin", village="liulin")
    _, body = gql(
        """{ village(slug: "liulin") { id residents(first: 1) { edges { node { id
             household { id grid { id staff { id } } } } } } } }""",
        admin,
    )
    village = body["data"]["village"]
    resident = village["residents"]["edges"][0]["node"]
    ids = [
        village["id"],
        resident["id"],
        resident["household"]["id"],
        resident["household"]["grid"]["id"],
        resident["household"]["grid"]["staff"][0]["id"],
    ]
    for node_id in ids:
        _, found = gql(
            "query($id: ID!) { node(id: $id) { id __typename } }", admin, {"id": node_id}
        )
        assert found["data"]["node"]["id"] == node_id, found
    _, other = gql(
        "query($id: ID!) { node(id: $id) { id } }",
        token("village-admin", village="xinghua"),
        {"id": ids[-1]},
    )
    assert first_code(other) == "NOT_FOUND"


# One gate of each kind that asks whether the caller manages the whole village
# (`Access.can_manage`): a mutation of the village's own settings, and the reads
# kept for its admins. Each is (document, variables, the field it answers).
MANAGED = [
    (
        """mutation($slug: String!, $tag: String!) { createRequestCategory(input: {
        village: $slug, code: $tag, name: $tag}) { category { id } userErrors { code } } }""",
        "createRequestCategory",
    ),
    (
        """mutation($slug: String!, $tag: String!) { createVolunteerTeam(input: {
        village: $slug, name: $tag}) { team { id } userErrors { code } } }""",
        "createVolunteerTeam",
    ),
    (
        """query($slug: String!) { village(slug: $slug) {
        importJobs(first: 1) { totalCount } } }""",
        "village",
    ),
    (
        """query($slug: String!) { village(slug: $slug) { sync { outboxPosition } } }""",
        "village",
    ),
    (
        """query($slug: String!) { village(slug: $slug) {
        exchangeLog(first: 1) { totalCount } } }""",
        "village",
    ),
]


@pytest.mark.parametrize(
    ("document", "field"),
    MANAGED,
    ids=["requestCategory", "volunteerTeam", "importJobs", "sync", "exchangeLog"],
)
def test_whole_village_management_is_for_its_admins_and_platform_admins(
    gql, token, village, document, field
):
    """README, Roles: a platform admin reads and writes every village as its admin
    does; a grid worker writes only in their grids, so never what is the whole
    village's. A gate written as "the village's own admin" (`can_unmask`, which a
    platform admin never has) fails here for the platform admin."""
    slug = village.slug
    managers = (token("platform-admin"), token("village-admin", village=slug))
    for tag, manager in zip(("manage_a", "manage_b"), managers, strict=True):
        status, body = gql(document, manager, {"slug": slug, "tag": tag})
        assert status == 200 and "errors" not in body, body
        assert body["data"][field] is not None
        assert body["data"][field].get("userErrors", []) == []
    _, body = gql(document, token("grid-worker", village=slug), {"slug": slug, "tag": "manage_c"})
    assert first_code(body) == "FORBIDDEN"

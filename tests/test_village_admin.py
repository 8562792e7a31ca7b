"""Villages through GraphQL for platform admins: create (as `tenants create`), disable,
enable; a new village is asked about its region's open region-wide agreements."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from villagelink.platform import models as pm
from villagelink.platform.audit import system_actor
from villagelink.platform.linkage.agreements import do_propose_agreement
from villagelink.platform.linkage.tables import agreement_parties
from villagelink.tenants import provisioning

from .conftest import TEST_REGION, new_village, new_village_slug

ERRORS = "userErrors { field message code }"
CREATE = f"""mutation($input: CreateVillageInput!) {{ createVillage(input: $input) {{
  village {{ slug name status region {{ id }} grids(first: 1) {{ totalCount }} }} {ERRORS} }} }}"""
DISABLE = f"""mutation($input: VillageStatusInput!) {{ disableVillage(input: $input) {{
  village {{ slug status }} {ERRORS} }} }}"""
ENABLE = f"""mutation($input: VillageStatusInput!) {{ enableVillage(input: $input) {{
  village {{ slug status }} {ERRORS} }} }}"""
AGREEMENTS = """query($slug: String!) { village(slug: $slug) { agreements {
  id state parties { village state } history { action village } } } }"""
ACCEPT = f"""mutation($input: AnswerAgreementInput!) {{ acceptAgreement(input: $input) {{
  agreement {{ parties {{ village state }} }} {ERRORS} }} }}"""
VILLAGE = "query($slug: String!) { village(slug: $slug) { slug } }"


def payload(gql, caller, document, input):
    status, body = gql(document, caller, {"input": input})
    assert status == 200 and "errors" not in body, body
    return next(iter(body["data"].values()))


def test_a_new_village_is_asked_about_its_regions_agreements(gql, token, db):
    region = f"va_{uuid.uuid4().hex[:8]}"
    provisioning.ensure_region(db, region, "新村测试片区")
    first, second = (new_village(db, name, region).slug for name in ("甲村", "乙村"))
    actor = system_actor("test")
    with db.platform() as conn:
        conn.execute(
            pm.neighbour_links.insert().values(
                village_a=min(first, second), village_b=max(first, second)
            )
        )
        agreement = do_propose_agreement(
            conn,
            actor,
            first,
            region_wide=True,
            record_types={"village_stats": ["residents"]},
            purpose="片区统计",
        )
        # A neighbour agreement is between its two parties only: no one joins it.
        neighbour = do_propose_agreement(
            conn,
            actor,
            first,
            counterpart=second,
            record_types={"village_stats": ["residents"]},
            purpose="两村统计",
        )
    slug = new_village_slug()
    created = payload(
        gql,
        token("platform-admin"),
        CREATE,
        {"slug": slug, "name": " 新村 ", "region": region},
    )
    assert created["userErrors"] == []
    assert created["village"] == {
        "slug": slug,
        "name": "新村",
        "status": "active",
        "region": {"id": region},
        "grids": {"totalCount": 0},
    }
    admin = token("village-admin", village=slug)
    _, body = gql(AGREEMENTS, admin, {"slug": slug})
    [seen] = body["data"]["village"]["agreements"]
    assert {p["village"]: p["state"] for p in seen["parties"]} == {
        first: "ACCEPTED",
        second: "PENDING",
        slug: "PENDING",
    }
    assert seen["history"][-1] == {"action": "JOIN", "village": slug}
    accepted = payload(gql, admin, ACCEPT, {"agreement": seen["id"], "village": slug})
    assert accepted["userErrors"] == []
    with db.platform() as conn:
        parties = dict(
            conn.execute(
                select(agreement_parties.c.agreement_id, agreement_parties.c.state).where(
                    agreement_parties.c.village == slug
                )
            ).all()
        )
        audited = conn.execute(
            select(pm.audit_log.c.action, pm.audit_log.c.details).where(
                pm.audit_log.c.village == slug, pm.audit_log.c.action == "village.create"
            )
        ).one()
    assert parties == {agreement["id"]: "accepted"}
    assert neighbour["id"] not in parties
    assert audited.details["agreements_joined"] == [agreement["id"]]


@pytest.fixture(scope="module")
def kept_village(db) -> provisioning.Village:
    """The village the module's keepers work on: each case leaves it as it came (refusals
    write nothing, the rerun of its creation converges, changed information is restored)
    and reads only its own audit entries, so they share one."""
    return new_village(db)


@pytest.fixture(scope="module")
def other_village(db) -> provisioning.Village:
    """A village the callers are not of, only ever named by its slug."""
    return new_village(db, "邻村")


def test_create_refuses_in_chinese_and_converges_on_a_rerun(gql, token, kept_village):
    admin = token("platform-admin")
    cases = [
        ({"slug": "Bad-Slug", "name": "坏村", "region": TEST_REGION}, "slug", "INVALID"),
        # Kept for the regions' storage spaces.
        ({"slug": "region_nanhe", "name": "占位村", "region": TEST_REGION}, "slug", "INVALID"),
        ({"slug": new_village_slug(), "name": "   ", "region": TEST_REGION}, "name", "REQUIRED"),
        (
            {"slug": new_village_slug(), "name": "无片区村", "region": "nowhere"},
            "region",
            "NOT_FOUND",
        ),
        ({"slug": kept_village.slug, "name": "改名村", "region": TEST_REGION}, "slug", "DUPLICATE"),
    ]
    for given, field, code in cases:
        refused = payload(gql, admin, CREATE, given)
        assert refused["village"] is None
        [error] = refused["userErrors"]
        assert (error["field"], error["code"]) == (field, code), given
        assert any("\u4e00" <= ch <= "\u9fff" for ch in error["message"]), error
    # The same slug, name and region again: a rerun converges, as `tenants create` does.
    again = payload(
        gql, admin, CREATE, {"slug": kept_village.slug, "name": "测试村", "region": TEST_REGION}
    )
    assert again["userErrors"] == [] and again["village"]["slug"] == kept_village.slug


def test_disable_and_enable(gql, token, village, db):
    # A village of its own: the other cases find theirs active, and its audit is counted.
    admin = token("village-admin", village=village.slug)
    platform_admin = token("platform-admin")
    disabled = payload(gql, platform_admin, DISABLE, {"slug": village.slug})
    assert disabled == {"village": {"slug": village.slug, "status": "disabled"}, "userErrors": []}
    _, body = gql(VILLAGE, admin, {"slug": village.slug})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    enabled = payload(gql, platform_admin, ENABLE, {"slug": village.slug})
    assert enabled["village"]["status"] == "active"
    _, body = gql(VILLAGE, admin, {"slug": village.slug})
    assert body["data"]["village"] == {"slug": village.slug}
    unknown = payload(gql, platform_admin, ENABLE, {"slug": "no_such_village"})
    assert unknown["userErrors"][0]["code"] == "NOT_FOUND"
    with db.platform() as conn:
        actions = conn.execute(
            select(pm.audit_log.c.action).where(
                pm.audit_log.c.village == village.slug,
                pm.audit_log.c.action.like("village.%"),
            )
        ).scalars()
        assert sorted(actions) == ["village.disable", "village.enable"]


@pytest.mark.parametrize(
    "who", ["village admin", "another village's admin", "grid worker", "coordinator"]
)
def test_only_platform_admins_keep_villages(gql, token, kept_village, other_village, who, db):
    caller = {
        "village admin": lambda: token("village-admin", village=kept_village.slug),
        "another village's admin": lambda: token("village-admin", village=other_village.slug),
        "grid worker": lambda: token("grid-worker", village=kept_village.slug),
        "coordinator": lambda: token("regional-coordinator", region=TEST_REGION),
    }[who]()
    slug = new_village_slug()
    for document, input in [
        (CREATE, {"slug": slug, "name": "越权村", "region": TEST_REGION}),
        (DISABLE, {"slug": kept_village.slug}),
        (ENABLE, {"slug": kept_village.slug}),
    ]:
        _, body = gql(document, caller, {"input": input})
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (who, body)
    assert slug not in {v.slug for v in provisioning.list_villages(db)}
    assert kept_village.slug in {
        v.slug for v in provisioning.list_villages(db) if v.status == "active"
    }


UPDATE = f"""mutation($input: UpdateVillageInput!) {{ updateVillage(input: $input) {{
  village {{ slug name address contactPhone }} {ERRORS} }} }}"""
INFO = "query($slug: String!) { village(slug: $slug) { name address contactPhone } }"


def test_a_village_admin_keeps_the_villages_information(
    gql, token, kept_village, other_village, db
):
    admin = token("village-admin", village=kept_village.slug)
    _, body = gql(INFO, admin, {"slug": kept_village.slug})
    before = body["data"]["village"]
    try:
        changed = payload(
            gql,
            admin,
            UPDATE,
            {
                "slug": kept_village.slug,
                "name": " 新名村 ",
                "address": "南河镇新名村村委会",
                "contactPhone": "022-23456789",
            },
        )
        assert changed == {
            "village": {
                "slug": kept_village.slug,
                "name": "新名村",
                "address": "南河镇新名村村委会",
                "contactPhone": "022-23456789",
            },
            "userErrors": [],
        }
        # Refusals name their field in Chinese and write nothing.
        for input, expected in [
            ({"contactPhone": "12345"}, ("contactPhone", "INVALID")),
            ({"address": "址" * 201}, ("address", "INVALID")),
            ({"name": "  "}, ("name", "REQUIRED")),
            ({"name": None, "address": "别处"}, ("name", "REQUIRED")),
        ]:
            refused = payload(gql, admin, UPDATE, {"slug": kept_village.slug, **input})
            assert refused["village"] is None
            assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [expected], input
        assert refused["userErrors"][0]["message"] == "此项不能为空"
        _, body = gql(INFO, admin, {"slug": kept_village.slug})
        assert body["data"]["village"] == {
            "name": "新名村",
            "address": "南河镇新名村村委会",
            "contactPhone": "022-23456789",
        }
        # Null (or blank) clears what is optional; what is left out stays.
        cleared = payload(gql, admin, UPDATE, {"slug": kept_village.slug, "address": None})
        assert cleared["village"]["address"] is None
        assert cleared["village"]["contactPhone"] == "022-23456789"

        for caller, code in [
            (token("grid-worker", village=kept_village.slug), "FORBIDDEN"),
            (token("regional-coordinator", region=TEST_REGION), "FORBIDDEN"),
            (token("village-admin", village=other_village.slug), "NOT_FOUND"),
        ]:
            _, body = gql(UPDATE, caller, {"input": {"slug": kept_village.slug, "name": "越权村"}})
            assert body["errors"][0]["extensions"]["code"] == code
        with db.platform() as conn:
            entries = conn.execute(
                select(pm.audit_log.c.fields).where(
                    pm.audit_log.c.village == kept_village.slug,
                    pm.audit_log.c.action == "village.update",
                )
            ).scalars()
            assert sorted(entries) == [["address"], ["address", "contact_phone", "name"]]
    finally:
        # The village is shared by the module's tests: it leaves as it came.
        restored = payload(gql, admin, UPDATE, {"slug": kept_village.slug, **before})
        assert restored["userErrors"] == []

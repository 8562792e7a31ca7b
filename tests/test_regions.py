"""Regions and neighbour links, kept by platform admins (five-village linkage, docs/linkage.md)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from villagelink.platform import models as pm
from villagelink.platform.db import Database

from .conftest import TEST_REGION, new_village, new_village_slug

CREATE = """mutation($input: CreateRegionInput!) { createRegion(input: $input) {
  region { id name } userErrors { field message code } } }"""
LINK = """mutation($input: NeighbourLinkInput!) { linkNeighbours(input: $input) {
  village { slug neighbours { slug } } userErrors { field message code } } }"""
UNLINK = """mutation($input: NeighbourLinkInput!) { unlinkNeighbours(input: $input) {
  village { slug neighbours { slug } } userErrors { field message code } } }"""


@pytest.fixture
def admin(token) -> str:
    return token("platform-admin")


@pytest.fixture
def pair(db: Database) -> tuple[str, str]:
    """Two fresh villages; the second's slug sorts first, to check the stored order."""
    first = new_village(db, "北村", TEST_REGION, slug="z" + new_village_slug())
    second = new_village(db, "南村", TEST_REGION, slug="a" + new_village_slug())
    return first.slug, second.slug


def payload(gql, document: str, caller: str, **input) -> dict:
    status, body = gql(document, caller, {"input": input})
    assert status == 200 and "errors" not in body, body
    return next(iter(body["data"].values()))


def audit(db: Database, action: str, subject: str) -> int:
    with db.platform() as conn:
        return len(
            conn.execute(
                select(pm.audit_log.c.id).where(
                    pm.audit_log.c.action == action, pm.audit_log.c.subject_id == subject
                )
            ).all()
        )


def test_a_platform_admin_creates_a_region_once(db, gql, admin):
    region = f"r_{uuid.uuid4().hex[:8]}"
    created = payload(gql, CREATE, admin, id=region, name="北辰联动片区")
    assert created == {"region": {"id": region, "name": "北辰联动片区"}, "userErrors": []}
    again = payload(gql, CREATE, admin, id=region, name="另一个")
    assert again["region"] is None and again["userErrors"][0]["code"] == "DUPLICATE"
    with db.platform() as conn:
        name = conn.execute(select(pm.regions.c.name).where(pm.regions.c.id == region))
        assert name.scalar_one() == "北辰联动片区"
    assert audit(db, "region.create", region) == 1


@pytest.mark.parametrize(
    ("region", "name", "field", "code"),
    [
        ("Bad-Id", "片区", "id", "INVALID"),
        ("x", "片区", "id", "INVALID"),
        # A valid slug, but too long to name the region's storage space.
        ("r" * 33, "片区", "id", "INVALID"),
        ("ok_id", " ", "name", "REQUIRED"),
    ],
)
def test_bad_region_input_is_refused(db, gql, admin, region, name, field, code):
    refused = payload(gql, CREATE, admin, id=region, name=name)
    assert refused["region"] is None
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [(field, code)]
    with db.platform() as conn:
        assert conn.execute(select(pm.regions).where(pm.regions.c.id == region)).first() is None


def test_link_and_unlink_neighbours(db, gql, admin, pair):
    north, south = pair
    linked = payload(gql, LINK, admin, village=north, neighbour=south)
    assert linked == {
        "village": {"slug": north, "neighbours": [{"slug": south}]},
        "userErrors": [],
    }
    with db.platform() as conn:
        links = pm.neighbour_links
        rows = conn.execute(
            select(links.c.village_a, links.c.village_b).where(links.c.village_a == south)
        ).all()
    # One row per unordered pair, smaller slug first, whichever way it was asked.
    assert [tuple(r) for r in rows] == [(south, north)]
    twice = payload(gql, LINK, admin, village=south, neighbour=north)
    assert [e["code"] for e in twice["userErrors"]] == ["DUPLICATE"]

    unlinked = payload(gql, UNLINK, admin, village=south, neighbour=north)
    assert unlinked == {"village": {"slug": south, "neighbours": []}, "userErrors": []}
    gone = payload(gql, UNLINK, admin, village=north, neighbour=south)
    assert [e["code"] for e in gone["userErrors"]] == ["NOT_FOUND"]
    assert audit(db, "neighbours.link", f"{south}:{north}") == 1
    assert audit(db, "neighbours.unlink", f"{south}:{north}") == 1


def test_links_name_two_existing_villages(gql, admin, pair):
    north, _ = pair
    itself = payload(gql, LINK, admin, village=north, neighbour=north)
    assert [(e["field"], e["code"]) for e in itself["userErrors"]] == [("neighbour", "INVALID")]
    unknown = payload(gql, LINK, admin, village=north, neighbour="nowhere_village")
    assert [(e["field"], e["code"]) for e in unknown["userErrors"]] == [("neighbour", "NOT_FOUND")]


@pytest.mark.parametrize(
    "role, scope",
    [
        ("village-admin", {"village": "liulin"}),
        ("regional-coordinator", {"region": TEST_REGION}),
        ("grid-worker", {"village": "liulin"}),
        ("integrator", {"client": "demo-integrator"}),
    ],
)
def test_only_platform_admins_keep_regions_and_links(db, gql, token, pair, role, scope):
    caller = token(role, **scope)
    north, south = pair
    for document, input in (
        (CREATE, {"id": f"r_{uuid.uuid4().hex[:8]}", "name": "片区"}),
        (LINK, {"village": north, "neighbour": south}),
        (UNLINK, {"village": north, "neighbour": south}),
    ):
        _status, body = gql(document, caller, {"input": input})
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    with db.platform() as conn:
        links = pm.neighbour_links
        assert conn.execute(select(links).where(links.c.village_a == south)).first() is None

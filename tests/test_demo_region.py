"""The demo region generator: five villages at DOMAIN.md's proportions, seeded once.

The seeder owns region `nanhe` and fixed village slugs, so the region is seeded
once per run (small villages, the `demo_region` fixture) and every test only reads it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import func, select, text

from villagelink.platform import models as pm
from villagelink.platform.db import Database
from villagelink.tenants import demo, provisioning
from villagelink.tenants.id_numbers import birth_date, gender, has_valid_checksum

SLUGS = [plan.slug for plan in demo.DEMO_VILLAGES]
MOBILE_PREFIXES = ("13", "14", "15", "16", "17", "18", "19")


@pytest.fixture
def region(demo_region):
    """The demo region as tests/conftest.py seeds it once per run (small villages)."""
    return demo_region


def rows(db: Database, slug: str, sql: str) -> list:
    with db.tenant(slug) as conn:
        return conn.execute(text(sql)).all()


def age(born: date) -> int:
    as_of = demo.AGES_AS_OF
    return as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))


def residents_of(db: Database, slug: str) -> list:
    return rows(
        db,
        slug,
        "SELECT id, name, gender, birth_date, id_number, phone, household_id, "
        "relation_to_head, grid_id FROM residents",
    )


def tag_counts(db: Database, slug: str) -> Counter:
    return Counter(dict(rows(db, slug, "SELECT tag, count(*) FROM resident_tags GROUP BY tag")))


def test_five_villages_linked_in_a_ring(db: Database, region) -> None:
    assert region.seeded is True
    villages = [v for v in provisioning.list_villages(db) if v.region_id == demo.REGION_ID]
    assert sorted(v.slug for v in villages) == sorted(SLUGS)
    assert all(v.name for v in villages)
    with db.platform() as conn:
        links = conn.execute(
            select(pm.neighbour_links.c.village_a, pm.neighbour_links.c.village_b).where(
                pm.neighbour_links.c.village_a.in_(SLUGS)
            )
        ).all()
    assert len(links) == 5
    assert all(a < b for a, b in links)
    assert Counter(slug for link in links for slug in link) == Counter({s: 2 for s in SLUGS})


def test_demo_integrator_client(db: Database, region) -> None:
    with db.platform() as conn:
        client = (
            conn.execute(
                select(pm.api_clients).where(pm.api_clients.c.client_id == "demo-integrator")
            )
            .mappings()
            .one()
        )
    assert client["name"] == "示例集成方（设备平台）"
    assert client["scopes"] == ["residents:read"]
    assert len(client["villages"]) == 2 and set(client["villages"]) <= set(SLUGS)


def _row_counts(db: Database) -> dict[str, int]:
    counts = {}
    for slug in SLUGS:
        for table in (
            "grids",
            "grid_staff",
            "buildings",
            "households",
            "residents",
            "resident_tags",
        ):
            counts[f"{slug}.{table}"] = rows(db, slug, f"SELECT count(*) FROM {table}")[0][0]
    with db.platform() as conn:
        for table in (pm.tenants, pm.neighbour_links, pm.api_clients):
            counts[table.name] = conn.execute(select(func.count()).select_from(table)).scalar()
    return counts


def test_second_seed_changes_nothing(db: Database, region) -> None:
    before = _row_counts(db)
    assert (
        demo.seed_demo_region(
            db, residents_per_village=region.residents_per_village, progress=False
        )
        is False
    )
    assert _row_counts(db) == before


@pytest.mark.parametrize("slug", SLUGS)
def test_residents_at_planned_proportions(db: Database, region, slug: str) -> None:
    residents = residents_of(db, slug)
    assert abs(len(residents) - region.residents_per_village) <= 1
    elderly = sum(age(r.birth_date) >= 60 for r in residents) / len(residents)
    assert 0.25 <= elderly <= 0.40
    men = sum(r.gender == "male" for r in residents) / len(residents)
    assert 0.4 <= men <= 0.6


@pytest.mark.parametrize("slug", SLUGS)
def test_id_numbers_and_phones_are_consistent(db: Database, region, slug: str) -> None:
    residents = residents_of(db, slug)
    for r in residents:
        assert has_valid_checksum(r.id_number), r.id_number
        assert birth_date(r.id_number) == r.birth_date
        assert gender(r.id_number) == r.gender
        if r.phone is not None:
            assert len(r.phone) == 11 and r.phone.isdigit() and r.phone[:2] in MOBILE_PREFIXES
        if age(r.birth_date) < 14:
            assert r.phone is None
    adults = [r for r in residents if 18 <= age(r.birth_date) < 75]
    assert sum(r.phone is not None for r in adults) / len(adults) > 0.8


def test_id_numbers_unique_across_the_region(db: Database, region) -> None:
    numbers = [r.id_number for slug in SLUGS for r in residents_of(db, slug)]
    assert len(numbers) == len(set(numbers))


@pytest.mark.parametrize("slug", SLUGS)
def test_households(db: Database, region, slug: str) -> None:
    residents = residents_of(db, slug)
    households = rows(db, slug, "SELECT id, head_resident_id, grid_id, address FROM households")
    sizes = Counter(r.household_id for r in residents)
    assert set(sizes) == {h.id for h in households}
    assert 2.2 <= statistics.mean(sizes.values()) <= 3.2
    assert max(sizes.values()) <= 8
    by_id = {r.id: r for r in residents}
    heads = Counter(r.household_id for r in residents if r.relation_to_head == "head")
    for h in households:
        head = by_id[h.head_resident_id]
        assert head.household_id == h.id and head.relation_to_head == "head"
        assert heads[h.id] == 1
        assert h.address.endswith("室") and "号楼" in h.address and "单元" in h.address


@pytest.mark.parametrize("slug", SLUGS)
def test_relations_agree_with_ages(db: Database, region, slug: str) -> None:
    residents = residents_of(db, slug)
    heads = {r.household_id: r for r in residents if r.relation_to_head == "head"}
    for r in residents:
        gap = age(heads[r.household_id].birth_date) - age(r.birth_date)
        if r.relation_to_head == "child":
            assert gap >= 18, r
        elif r.relation_to_head == "grandchild":
            assert gap >= 36, r
        elif r.relation_to_head == "parent":
            assert gap <= -18, r
        elif r.relation_to_head == "spouse":
            assert r.gender != heads[r.household_id].gender


@pytest.mark.parametrize("slug", SLUGS)
def test_grids(db: Database, region, slug: str) -> None:
    grids = {g.id: g for g in rows(db, slug, "SELECT id, parent_id, level FROM grids")}
    levels = Counter(g.level for g in grids.values())
    assert levels["community"] == 1 and levels["large"] >= 1 and levels["micro"] >= 1
    for g in grids.values():
        parent_level = grids[g.parent_id].level if g.parent_id else None
        assert parent_level == {"community": None, "large": "community", "micro": "large"}[g.level]
    households = {h.id: h.grid_id for h in rows(db, slug, "SELECT id, grid_id FROM households")}
    for r in residents_of(db, slug):
        assert grids[r.grid_id].level == "micro"
        assert r.grid_id == households[r.household_id]
    mismatched = rows(
        db,
        slug,
        "SELECT count(*) FROM households h JOIN buildings b "
        "ON b.id = h.building_id WHERE b.grid_id <> h.grid_id",
    )
    assert mismatched[0][0] == 0


@pytest.mark.parametrize("slug", SLUGS)
def test_three_tiers_of_grid_staff(db: Database, region, slug: str) -> None:
    assigned = rows(
        db,
        slug,
        "SELECT s.tier, s.account_sub, g.level FROM grid_staff s "
        "JOIN grid_assignments a ON a.staff_id = s.id "
        "JOIN grids g ON g.id = a.grid_id",
    )
    staff = rows(db, slug, "SELECT tier, count(*) FROM grid_staff GROUP BY tier")
    tiers = dict(staff)
    assert tiers["grid_chief"] == 1 and tiers["grid_worker"] >= 1
    assert tiers["micro_grid_worker"] >= 1
    expected_level = {
        "grid_chief": "community",
        "grid_worker": "large",
        "micro_grid_worker": "micro",
    }
    assert all(level == expected_level[tier] for tier, _, level in assigned)
    demo_worker = [a for a in assigned if a.account_sub == demo.demo_grid_worker_subject(slug)]
    assert demo_worker and all(a.tier == "micro_grid_worker" for a in demo_worker)


@pytest.mark.parametrize("slug", SLUGS)
def test_elderly_living_alone(db: Database, region, slug: str) -> None:
    residents = residents_of(db, slug)
    sizes = Counter(r.household_id for r in residents)
    alone = {r.id for r in residents if age(r.birth_date) >= 60 and sizes[r.household_id] == 1}
    tagged = {
        row.resident_id
        for row in rows(
            db, slug, "SELECT resident_id FROM resident_tags WHERE tag = 'elderly_living_alone'"
        )
    }
    assert tagged == alone


@pytest.mark.parametrize("slug", SLUGS)
def test_tag_shares(db: Database, region, slug: str) -> None:
    tags = tag_counts(db, slug)
    share = {tag: count / region.residents_per_village for tag, count in tags.items()}
    assert 0.02 <= share["disabled"] <= 0.07
    assert 0.03 <= share["key_focus"] <= 0.09
    assert 0.03 <= share["party_member"] <= 0.08
    assert 0.04 <= share["volunteer"] <= 0.10
    assert 0.06 <= share["floating_population"] <= 0.18
    assert share["low_income"] > 0
    relocated = share.get("relocated_villager", 0)
    assert (0.7 <= relocated <= 0.9) if slug == "taoyuan" else relocated <= 0.06
    levels = rows(db, slug, "SELECT level FROM resident_tags WHERE tag = 'disabled'")
    assert all(1 <= level <= 4 for (level,) in levels)


def test_low_income_tags_whole_households(db: Database, region) -> None:
    for slug in SLUGS:
        untagged = rows(
            db,
            slug,
            """
            SELECT count(*) FROM residents r
            WHERE NOT EXISTS (SELECT 1 FROM resident_tags t
                              WHERE t.resident_id = r.id AND t.tag = 'low_income')
              AND r.household_id IN (SELECT r2.household_id FROM residents r2
                                     JOIN resident_tags t2 ON t2.resident_id = r2.id
                                     WHERE t2.tag = 'low_income')""",
        )
        assert untagged[0][0] == 0


def test_build_village_is_deterministic() -> None:
    plan = demo.demo_plans(250)[0]
    assert demo.build_village(plan, 7) == demo.build_village(plan, 7)
    assert demo.build_village(plan, 7) != demo.build_village(plan, 8)


@pytest.mark.slow
def test_full_size_village_shares() -> None:
    plan = demo.DEMO_VILLAGES[-1]
    assert plan.residents >= 2000
    village = demo.build_village(plan, demo.DEFAULT_SEED)
    residents = village.residents
    n = len(residents)
    assert n == plan.residents
    ages = [age(r.birth_date) for r in residents]
    assert 0.30 <= sum(a >= 60 for a in ages) / n <= 0.38
    assert 0.12 <= sum(a < 15 for a in ages) / n <= 0.25
    sizes = Counter(r.household for r in residents)
    assert 2.5 <= statistics.mean(sizes.values()) <= 2.9
    assert max(sizes.values()) <= 6
    assert sum(size <= 2 for size in sizes.values()) / len(sizes) > 0.4
    assert 0.45 <= sum(r.gender == "male" for r in residents) / n <= 0.55

    tags = Counter(t.tag for t in village.tags)
    adults = sum(a >= 18 for a in ages)
    assert 0.04 <= tags["disabled"] / n <= 0.05
    assert 0.055 <= tags["key_focus"] / n <= 0.065
    assert 0.06 <= tags["party_member"] / adults <= 0.08
    assert 0.08 <= tags["volunteer"] / sum(16 <= a <= 75 for a in ages) <= 0.10
    assert 0.75 <= tags["relocated_villager"] / n <= 0.85
    assert 0.08 <= tags["floating_population"] / n <= 0.15
    low_income = {residents[t.resident].household for t in village.tags if t.tag == "low_income"}
    assert 0.025 <= len(low_income) / len(sizes) <= 0.035

    levels = Counter(g.level for g in village.grids)
    assert 5 <= levels["large"] <= 9
    assert 30 <= len(sizes) / levels["micro"] <= 60
    tiers = Counter(s.tier for s in village.staff)
    assert tiers["grid_chief"] == 1 and tiers["grid_worker"] >= 3
    assert levels["micro"] / 4 <= tiers["micro_grid_worker"] <= levels["micro"] / 2

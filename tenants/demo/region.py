"""The demo region: five fictional neighbouring villages, provisioned, linked in a
ring, given agreements and the demo integrator, and filled one village per
transaction with their people (residents.py), affairs (affairs.py), sensing
(sensing.py) and shared resources (resources.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from sqlalchemy import Connection, select, text
from sqlalchemy.dialects.postgresql import insert
from tqdm import tqdm

from villagelink.platform import models as pm
from villagelink.platform.audit import record
from villagelink.platform.db import Database, hold_lock
from villagelink.platform.linkage.agreements import seed_demo_agreements
from villagelink.platform.linkage.sync import sync_village
from villagelink.storage.store import ObjectStore
from villagelink.tenants import clock, provisioning
from villagelink.tenants import models as m
from villagelink.tenants.demo.affairs import build_affairs, write_affairs
from villagelink.tenants.demo.plans import (
    DEFAULT_SEED,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_NAME,
    DEMO_CLIENT_SCOPES,
    DEMO_CLIENT_VILLAGES,
    DEMO_VILLAGES,
    REGION_ID,
    REGION_NAME,
    VillagePlan,
)
from villagelink.tenants.demo.residents import AGES_AS_OF, build_village, write_village
from villagelink.tenants.demo.resources import seed_demo_resources
from villagelink.tenants.demo.sensing import build_sensing, write_sensing
from villagelink.tenants.demo.village import DEMO_ACTOR
from villagelink.tenants.querying import limit_of
from villagelink.tenants.stats import publish_village_stats

# --- the region ----------------------------------------------------------------


def demo_plans(residents_per_village: int | None = None) -> list[VillagePlan]:
    if residents_per_village is None:
        return list(DEMO_VILLAGES)
    if residents_per_village < 1:
        raise ValueError("a demo village needs at least one resident")
    return [replace(plan, residents=residents_per_village) for plan in DEMO_VILLAGES]


def _has_residents(conn: Connection) -> bool:
    # A village provisioned but not yet migrated has no residents table yet.
    if conn.execute(text("SELECT to_regclass('residents')")).scalar() is None:
        return False
    return conn.execute(select(m.residents.c.id).limit(limit_of(1))).first() is not None


def _is_seeded(db: Database, slug: str, provisioned: set[str]) -> bool:
    if slug not in provisioned:
        return False
    with db.tenant(slug) as conn:
        return _has_residents(conn)


def _provision_region(db: Database, plans: list[VillagePlan], store: ObjectStore | None) -> None:
    """Region, villages, ring of neighbours and the demo API client; all idempotent."""
    provisioning.ensure_region(db, REGION_ID, REGION_NAME)
    for plan in plans:
        provisioning.create_village(db, plan.slug, plan.name, REGION_ID, store)
    ring = [sorted((plan.slug, plans[(i + 1) % len(plans)].slug)) for i, plan in enumerate(plans)]
    with db.platform() as conn:
        conn.execute(
            insert(pm.neighbour_links).on_conflict_do_nothing(),
            [{"village_a": a, "village_b": b} for a, b in ring],
        )
        # The ring shares alerts, resources and open activities; the region its stats
        # and joint cases (proposed and accepted through the actions, as admins would).
        seed_demo_agreements(conn, DEMO_ACTOR, [plan.slug for plan in plans])
        # An admin may have changed or disabled the client since: leave it be.
        conn.execute(
            insert(pm.api_clients)
            .values(
                client_id=DEMO_CLIENT_ID,
                name=DEMO_CLIENT_NAME,
                villages=list(DEMO_CLIENT_VILLAGES),
                scopes=list(DEMO_CLIENT_SCOPES),
            )
            .on_conflict_do_nothing()
        )


def _seed_village(db: Database, plan: VillagePlan, seed: int, today: date, progress: bool) -> bool:
    rows = build_village(plan, seed)
    affairs = build_affairs(rows, plan.name, seed, today, AGES_AS_OF)
    owner = DEMO_CLIENT_ID if plan.slug in DEMO_CLIENT_VILLAGES else None
    sensing = build_sensing(rows, plan.slug, owner, seed, today, AGES_AS_OF)
    with db.tenant(plan.slug) as conn:
        # Two seeders started at once must not both fill the village.
        hold_lock(conn, f"demo-seed:{plan.slug}")
        if _has_residents(conn):
            return False
        with tqdm(
            total=len(rows.residents),
            desc=f"播种 {plan.name} ({plan.slug})",
            unit="人",
            disable=not progress,
        ) as bar:
            ids = write_village(conn, rows, bar)
        write_affairs(conn, affairs, rows, ids)
        write_sensing(conn, sensing, rows, ids)
        seed_demo_resources(conn, plan.slug, plan.name)
        publish_village_stats(conn)
        # The rows were written in bulk, not by actions: the seeding is their one audit entry.
        record(
            conn,
            DEMO_ACTOR,
            village=plan.slug,
            action="demo.seed",
            details={
                "seed": seed,
                "today": today.isoformat(),
                "residents": len(rows.residents),
                **affairs.counts(),
                **sensing.counts(),
            },
        )
    return True


def seed_demo_region(
    db: Database,
    *,
    residents_per_village: int | None = None,
    seed: int = DEFAULT_SEED,
    today: date | None = None,
    progress: bool = True,
    store: ObjectStore | None = None,
) -> bool:
    """Create region `nanhe` with its five villages (and their buckets in `store`) and
    fill them; False if already seeded.

    A village counts as seeded when it has residents. Each village is written
    in one transaction, people and affairs together, so it is either complete or
    empty: a seed interrupted half-way resumes with the villages still empty, and a
    second run finds every village seeded and changes nothing, not even the platform
    rows. Village i draws from `seed + i`, so a resumed village gets the same rows
    it would have got in one go. `residents_per_village` replaces the planned
    2,000-4,000 residents of every village (tests use a few hundred). The affairs
    (affairs.py) are the ninety days before `today` (by default the day it runs,
    on the village's clock) and the weeks after it.
    """
    plans = demo_plans(residents_per_village)
    provisioned = {village.slug for village in provisioning.list_villages(db)}
    pending = [
        (index, plan)
        for index, plan in enumerate(plans)
        if not _is_seeded(db, plan.slug, provisioned)
    ]
    if not pending:
        return False
    _provision_region(db, plans, store)
    day = today or clock.today()
    seeded = [_seed_village(db, plan, seed + index, day, progress) for index, plan in pending]
    # What the villages share is in the neighbours' hands before the platform serves.
    for _, plan in pending:
        sync_village(db, plan.slug)
    return any(seeded)

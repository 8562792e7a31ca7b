"""The demo region's sign-in accounts for the development issuer's login page.

One account per role and place, named as `villagelink token` names the same identity and with
the same subject, so a person signed in through the page and one holding a token from the
command line are the same person (the grid worker is the demo's linked micro-grid worker).
They exist only where the development issuer runs; a Keycloak realm has its own accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.dialects.postgresql import insert

from villagelink.platform import models as pm
from villagelink.platform.db import Database
from villagelink.platform.identity.accounts import hash_secret
from villagelink.platform.identity.dev_issuer import dev_subject
from villagelink.platform.identity.principal import (
    GRID_WORKER,
    PLATFORM_ADMIN,
    REGIONAL_COORDINATOR,
    RESIDENT,
    VILLAGE_ADMIN,
)
from villagelink.tenants.demo.plans import (
    DEMO_VILLAGES,
    REGION_ID,
    REGION_NAME,
    demo_grid_worker_subject,
)

# DEVELOPMENT ONLY: published here and on the login page; the development issuer that
# accepts it refuses to run in production.
DEMO_PASSWORD = "demo-dev-only"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    name: str
    role: str
    villages: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    sub: str | None = None

    @property
    def subject(self) -> str:
        village = self.villages[0] if self.villages else None
        region = self.regions[0] if self.regions else None
        return self.sub or dev_subject(self.role, village, region, self.username)


def demo_accounts() -> list[DemoAccount]:
    accounts = [
        DemoAccount(PLATFORM_ADMIN, "平台管理员", PLATFORM_ADMIN),
        DemoAccount(
            f"{REGIONAL_COORDINATOR}-{REGION_ID}",
            f"{REGION_NAME}协调员",
            REGIONAL_COORDINATOR,
            regions=(REGION_ID,),
        ),
    ]
    for plan in DEMO_VILLAGES:
        village = (plan.slug,)
        accounts += [
            DemoAccount(
                f"{VILLAGE_ADMIN}-{plan.slug}", f"{plan.name}管理员", VILLAGE_ADMIN, village
            ),
            DemoAccount(
                f"{GRID_WORKER}-{plan.slug}",
                f"{plan.name}网格员",
                GRID_WORKER,
                village,
                sub=demo_grid_worker_subject(plan.slug),
            ),
            DemoAccount(f"{RESIDENT}-{plan.slug}", f"{plan.name}居民", RESIDENT, village),
        ]
    return accounts


def demo_hint() -> list[str]:
    """The few usernames the login page suggests: one of each role, the village ones of
    杏花村 (every other demo village has the same accounts under its own slug)."""
    village = DEMO_VILLAGES[1].slug
    return [
        a.username
        for a in demo_accounts()
        if not a.villages or (a.villages[0] == village and a.role != RESIDENT)
    ] + [f"{RESIDENT}-{village}"]


def seed_demo_accounts(db: Database) -> int:
    """Make the demo accounts that do not exist yet (an existing one, maybe with a changed
    password, is left alone); how many were made."""
    password_hash = hash_secret(DEMO_PASSWORD)
    rows = [
        {
            "sub": account.subject,
            "username": account.username,
            "name": account.name,
            "password_hash": password_hash,
            "roles": [account.role],
            "villages": list(account.villages),
            "regions": list(account.regions),
        }
        for account in demo_accounts()
    ]
    with db.platform() as conn:
        made = conn.execute(
            insert(pm.dev_accounts)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(pm.dev_accounts.c.sub)
        ).all()
    return len(made)

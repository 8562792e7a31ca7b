"""The demo region: five fictional neighbouring villages at the sizes of
docs/domain.md, with their people, ninety days of affairs and sensing, and their
shared resources.

One module per domain: residents.py (grids, staff, households, residents, tags),
requests.py, activities.py (teams, activities, sign-ups, points), service_orders.py,
notices.py, mediation.py, sensing.py (devices, alerts), health.py (health records,
readings) and resources.py; village.py is the village as they all see it, bulk.py how
they write; affairs.py puts the affairs of one village together and region.py
provisions and seeds the region. The history is written in bulk, but every state,
place and balance in it is decided by the domain's own rules (affairs.py says how).
"""

from villagelink.tenants.demo.region import (
    DEFAULT_SEED,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_NAME,
    DEMO_CLIENT_SCOPES,
    DEMO_CLIENT_VILLAGES,
    DEMO_VILLAGES,
    REGION_ID,
    REGION_NAME,
    demo_plans,
    seed_demo_region,
)
from villagelink.tenants.demo.residents import (
    AGES_AS_OF,
    VillageIds,
    VillagePlan,
    VillageRows,
    build_village,
    demo_grid_worker_subject,
    write_village,
)
from villagelink.tenants.demo.village import DEMO_ACTOR

__all__ = [
    "AGES_AS_OF",
    "DEFAULT_SEED",
    "DEMO_ACTOR",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_NAME",
    "DEMO_CLIENT_SCOPES",
    "DEMO_CLIENT_VILLAGES",
    "DEMO_VILLAGES",
    "REGION_ID",
    "REGION_NAME",
    "VillageIds",
    "VillagePlan",
    "VillageRows",
    "build_village",
    "demo_grid_worker_subject",
    "demo_plans",
    "seed_demo_region",
    "write_village",
]

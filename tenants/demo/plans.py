"""The demo region as it is named and planned: its villages, each one's size and
make-up, the integrator it comes with and who signs in to it.

Apart from the modules that build and write the region, so that what only names it (the
development sign-in page's accounts, the runner's banner) loads none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

REGION_ID = "nanhe"
REGION_NAME = "南河联动片区"
DEFAULT_SEED = 20151


def demo_grid_worker_subject(slug: str) -> str:
    """The identity subject linked to one micro-grid worker of each demo village."""
    return f"demo-grid-worker@{slug}"


@dataclass(frozen=True)
class VillagePlan:
    """What one demo village should look like."""

    slug: str
    name: str
    residents: int
    # Residents tagged relocated_villager (还迁): most of the one relocated
    # village, a few families who moved on to its neighbours elsewhere.
    relocated_share: float
    # Residents aged 60+ (中北斜村: over 30%, more where villages were relocated).
    elderly_share: float
    # Renters from other provinces, in households of their own.
    floating_share: float
    # First 顺序码 of this village's block of 200: the villages share a district
    # code, and disjoint blocks keep any two demo residents' ID numbers apart.
    id_sequence_start: int
    area_code: str = "120111"


DEMO_CLIENT_ID = "demo-integrator"
DEMO_CLIENT_NAME = "示例集成方（设备平台）"
# The device platform runs the cameras, sensors, wristbands and radars of its villages and
# receives their alerts; its residents' app reads resident records (masked) and the
# notices residents read, with their read counts.
DEMO_CLIENT_SCOPES = ("residents:read", "notices:read", "devices:write", "alerts:read")

# In ring order: each village borders the ones before and after it.
DEMO_VILLAGES = (
    VillagePlan("liulin", "柳林村", 3400, 0.02, 0.29, 0.12, 0),
    VillagePlan("xinghua", "杏花村", 2600, 0.03, 0.30, 0.10, 200),
    VillagePlan("qingshi", "青石村", 2900, 0.02, 0.31, 0.08, 400),
    VillagePlan("hedong", "河东村", 2300, 0.03, 0.28, 0.14, 600),
    VillagePlan("taoyuan", "桃源社区", 3800, 0.80, 0.34, 0.09, 800),
)
# The device platform integrates the relocated community and one neighbour.
DEMO_CLIENT_VILLAGES = ("liulin", "taoyuan")

"""What a principal may do in which village, worked out once per request.

Roles come from the token; which villages they cover comes from the token's
groups, the platform's regions and the API client grants. Disabled villages
are out of everyone's reach.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from villagelink.platform import models as pm
from villagelink.platform.identity.principal import (
    GRID_WORKER,
    INTEGRATOR,
    PLATFORM_ADMIN,
    REGIONAL_COORDINATOR,
    VILLAGE_ADMIN,
    Principal,
)

RESIDENTS_READ_SCOPE = "residents:read"
# Residents' apps: a granted village's published notices, and counting their reads.
NOTICES_READ_SCOPE = "notices:read"
# Device platforms: register and run their own devices in a granted village and send
# what those devices report (events and health readings).
DEVICES_WRITE_SCOPE = "devices:write"
# A granted village's live alerts, in the API and as webhooks (e.g. a grid workers' app).
ALERTS_READ_SCOPE = "alerts:read"


@dataclass(frozen=True)
class Access:
    principal: Principal
    readable: frozenset[str]
    writable: frozenset[str]
    # Villages whose ID numbers and phones this principal may ask to see whole.
    unmask: frozenset[str]
    # Villages where the principal is a grid worker only: limited to their own grids.
    grid_scoped: frozenset[str]
    # Villages whose notices the principal reads on residents' behalf (what residents
    # see now) and may mark read: the granted villages of a client with `notices:read`.
    # Reaching the village at all still takes `residents:read`.
    notice_readers: frozenset[str] = frozenset()
    # Villages where the principal is a device platform (`devices:write`).
    device_writers: frozenset[str] = frozenset()
    # Villages whose alerts the principal reads without reading residents (`alerts:read`).
    alert_readers: frozenset[str] = frozenset()

    @property
    def reachable(self) -> frozenset[str]:
        """Villages the principal reaches in any way: some of their records, not all."""
        return self.readable | self.notice_readers | self.device_writers | self.alert_readers

    def can_read(self, village: str) -> bool:
        return village in self.readable

    def can_write(self, village: str) -> bool:
        return village in self.writable

    def can_manage(self, village: str) -> bool:
        """Whether the principal manages the village as a whole: its admins and platform
        admins (README, Roles), not grid workers, whose writes stay in their grids."""
        return self.can_write(village) and village not in self.grid_scoped

    def can_unmask(self, village: str) -> bool:
        return village in self.unmask

    @property
    def is_platform_admin(self) -> bool:
        return self.principal.has(PLATFORM_ADMIN)


def resolve_access(conn: Connection, principal: Principal) -> Access:
    """Read the platform tables once and return the principal's reach."""
    tenants = pm.tenants
    rows = conn.execute(
        select(tenants.c.slug, tenants.c.region_id).where(tenants.c.status == "active")
    ).all()
    active = {slug for slug, _ in rows}
    by_region: dict[str, set[str]] = {}
    for slug, region_id in rows:
        by_region.setdefault(region_id, set()).add(slug)

    readable: set[str] = set()
    writable: set[str] = set()
    unmask: set[str] = set()
    full: set[str] = set()  # villages seen without a grid restriction
    grid_only: set[str] = set()
    notice_readers: set[str] = set()
    device_writers: set[str] = set()
    alert_readers: set[str] = set()

    if principal.has(PLATFORM_ADMIN):
        readable |= active
        writable |= active
        full |= active
    if principal.has(REGIONAL_COORDINATOR):
        for region in principal.regions:
            covered = by_region.get(region, set())
            readable |= covered
            full |= covered
    own = principal.villages & active
    if principal.has(VILLAGE_ADMIN):
        readable |= own
        writable |= own
        unmask |= own
        full |= own
    if principal.has(GRID_WORKER):
        readable |= own
        writable |= own
        grid_only |= own
    if principal.has(INTEGRATOR) and principal.client_id:
        grant = conn.execute(
            select(pm.api_clients.c.villages, pm.api_clients.c.scopes).where(
                pm.api_clients.c.client_id == principal.client_id,
                pm.api_clients.c.enabled.is_(True),
            )
        ).first()
        if grant is not None:
            granted = set(grant.villages) & active
            if RESIDENTS_READ_SCOPE in grant.scopes:
                readable |= granted
                full |= granted
            if NOTICES_READ_SCOPE in grant.scopes:
                notice_readers |= granted
            if DEVICES_WRITE_SCOPE in grant.scopes:
                device_writers |= granted
            if ALERTS_READ_SCOPE in grant.scopes:
                alert_readers |= granted

    return Access(
        principal=principal,
        readable=frozenset(readable),
        writable=frozenset(writable),
        unmask=frozenset(unmask),
        grid_scoped=frozenset(grid_only - full),
        notice_readers=frozenset(notice_readers),
        device_writers=frozenset(device_writers),
        alert_readers=frozenset(alert_readers),
    )

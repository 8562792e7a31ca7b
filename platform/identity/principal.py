"""Who is calling: the verified claims of an access token, read the way Keycloak writes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PLATFORM_ADMIN = "platform-admin"
REGIONAL_COORDINATOR = "regional-coordinator"
VILLAGE_ADMIN = "village-admin"
GRID_WORKER = "grid-worker"
INTEGRATOR = "integrator"
# A resident of one /villages/<slug> village, acting for their own household once the
# village admin has bound the account to their resident record (docs/residents.md).
RESIDENT = "resident"
ROLES = (PLATFORM_ADMIN, REGIONAL_COORDINATOR, VILLAGE_ADMIN, GRID_WORKER, INTEGRATOR, RESIDENT)

VILLAGE_GROUP_PREFIX = "/villages/"
REGION_GROUP_PREFIX = "/regions/"


def _groups(claims: Mapping[str, Any], prefix: str) -> frozenset[str]:
    found = set()
    for group in claims.get("groups") or ():
        if isinstance(group, str) and group.startswith(prefix):
            name = group[len(prefix) :].strip("/")
            if name and "/" not in name:
                found.add(name)
    return frozenset(found)


@dataclass(frozen=True)
class Principal:
    sub: str
    username: str | None
    roles: frozenset[str]
    villages: frozenset[str]
    regions: frozenset[str]
    client_id: str | None

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        realm_roles = (claims.get("realm_access") or {}).get("roles") or ()
        return cls(
            sub=str(claims["sub"]),
            username=claims.get("preferred_username"),
            # Keycloak also puts default roles (offline_access, ...) here; keep ours only.
            roles=frozenset(r for r in realm_roles if r in ROLES),
            villages=_groups(claims, VILLAGE_GROUP_PREFIX),
            regions=_groups(claims, REGION_GROUP_PREFIX),
            client_id=claims.get("azp"),
        )

    def has(self, role: str) -> bool:
        return role in self.roles

    @property
    def display_name(self) -> str:
        return self.username or self.client_id or self.sub

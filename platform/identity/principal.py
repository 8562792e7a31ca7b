"""Who is calling: the verified claims of an access token, read the way Keycloak writes them.

A signature only says who issued the claims, not that they have the shape this module reads.
`check_claim_shapes` looks at every claim the gateway uses, all of them before any is read, so
a token with a list where an object belongs or a group path spelled two ways is refused whole
rather than half-understood.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PLATFORM_ADMIN = "platform-admin"
REGIONAL_COORDINATOR = "regional-coordinator"
VILLAGE_ADMIN = "village-admin"
GRID_WORKER = "grid-worker"
INTEGRATOR = "integrator"
ROLES = (PLATFORM_ADMIN, REGIONAL_COORDINATOR, VILLAGE_ADMIN, GRID_WORKER, INTEGRATOR)

VILLAGE_GROUP_PREFIX = "/villages/"
REGION_GROUP_PREFIX = "/regions/"

# A village slug or region id, the one spelling `platform.db.SLUG_PATTERN` allows.
_SCOPE_NAME = re.compile(r"[a-z][a-z0-9_]{1,38}")
# Keycloak's group path: "/" then names without "/", no empty segment, no trailing "/".
_GROUP_PATH = re.compile(r"(/[^/]+)+")
_SCOPE_PARENTS = tuple(prefix.strip("/") for prefix in (VILLAGE_GROUP_PREFIX, REGION_GROUP_PREFIX))
_TIME_CLAIMS = ("exp", "iat", "nbf")
_TEXT_CLAIMS = ("azp", "preferred_username", "typ", "jti", "scope")


class ClaimShapeError(ValueError):
    """A claim the gateway reads has the wrong type or spelling; the message names it."""


def check_claim_shapes(claims: Mapping[str, Any]) -> None:
    """Refuse the claim set unless every claim the gateway reads has its one expected shape.

    A claim may be absent; present, it has its shape (null included: null is no string)."""
    sub = claims.get("sub")
    if not isinstance(sub, str):
        raise ClaimShapeError("sub claim must be a string")
    if not sub.strip():
        raise ClaimShapeError("missing sub claim")
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        # bool is an int to Python; a NumericDate of true is not a time.
        if name in claims and (type(value) is not int or value < 0):
            raise ClaimShapeError(f"{name} claim must be a whole number of seconds")
    for name in _TEXT_CLAIMS:
        if name in claims and not isinstance(claims[name], str):
            raise ClaimShapeError(f"{name} claim must be a string")
    if "realm_access" in claims:
        realm_access = claims["realm_access"]
        if not isinstance(realm_access, dict):
            raise ClaimShapeError("realm_access claim must be an object")
        if "roles" in realm_access:
            _check_strings(realm_access["roles"], "realm_access.roles")
    if "groups" in claims:
        _check_strings(claims["groups"], "groups")
        for group in claims["groups"]:
            _check_group_path(group)


def _check_strings(value: Any, name: str) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ClaimShapeError(f"{name} claim must be a list of strings")


def _check_group_path(group: str) -> None:
    """Group paths that grant a village or region have exactly one spelling; others must at
    least be well-formed, so that no variant (".", "..", case, doubled "/") slips past. The
    parent groups themselves (`/villages`, `/regions`) are well-formed and grant nothing."""
    if not _GROUP_PATH.fullmatch(group) or any(
        segment in (".", "..") for segment in group.split("/")
    ):
        raise ClaimShapeError(f"group path {group!r} is not canonical")
    parent, _, name = group[1:].partition("/")
    if group[1:] in _SCOPE_PARENTS:
        return
    if parent.lower() in _SCOPE_PARENTS and (
        parent not in _SCOPE_PARENTS or not _SCOPE_NAME.fullmatch(name)
    ):
        raise ClaimShapeError(f"group path {group!r} is not canonical")


def _scope_names(claims: Mapping[str, Any], prefix: str) -> frozenset[str]:
    return frozenset(
        group[len(prefix) :] for group in claims.get("groups", ()) if group.startswith(prefix)
    )


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
        """The caller of claims that passed `check_claim_shapes` (the verifier's last step)."""
        realm_roles = claims.get("realm_access", {}).get("roles", ())
        return cls(
            sub=claims["sub"],
            username=claims.get("preferred_username"),
            # Keycloak also puts default roles (offline_access, ...) here; keep ours only.
            roles=frozenset(r for r in realm_roles if r in ROLES),
            villages=_scope_names(claims, VILLAGE_GROUP_PREFIX),
            regions=_scope_names(claims, REGION_GROUP_PREFIX),
            client_id=claims.get("azp"),
        )

    def has(self, role: str) -> bool:
        return role in self.roles

    @property
    def display_name(self) -> str:
        return self.username or self.client_id or self.sub

"""Provisioning the Keycloak realm: village and region groups, invited users, disabled villages.

The realm itself comes from `realm-villagelink.json`; this module fills in what grows with the
platform: `/villages/<slug>` and `/regions/<id>` groups (created with the village), users invited
into a village with a role, and a disabled village's accounts. It talks to Keycloak's admin API
as the `villagelink-provisioner` service account (client credentials), never as a person.

Every operation is idempotent: running it again converges on the same groups and users.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from keycloak import KeycloakAdmin, KeycloakOpenIDConnection, KeycloakPostError
from sqlalchemy import update

from villagelink.platform import models as pm
from villagelink.platform.db import Database, validate_slug
from villagelink.platform.identity.principal import (
    GRID_WORKER,
    INTEGRATOR,
    PLATFORM_ADMIN,
    REGION_GROUP_PREFIX,
    REGIONAL_COORDINATOR,
    ROLES,
    VILLAGE_ADMIN,
    VILLAGE_GROUP_PREFIX,
)
from villagelink.platform.settings import Settings

VILLAGES_GROUP = VILLAGE_GROUP_PREFIX.rstrip("/")
REGIONS_GROUP = REGION_GROUP_PREFIX.rstrip("/")
# Roles a village membership gives. Realm roles hold in every village group a user is in.
VILLAGE_ROLES = (VILLAGE_ADMIN, GRID_WORKER)
# Roles whose reach does not come from village groups: their accounts outlive a village.
NON_VILLAGE_ROLES = frozenset({PLATFORM_ADMIN, REGIONAL_COORDINATOR})
INVITE_ACTIONS = ["VERIFY_EMAIL", "UPDATE_PASSWORD"]
VILLAGE_STATUSES = ("active", "disabled")

# Group attributes (Keycloak keeps every attribute as a list of strings).
ATTR_VILLAGE_NAME = "villageName"
ATTR_REGION = "region"
ATTR_DISABLED = "disabled"
# Users this provisioner disabled because their villages were disabled, so that enabling a
# village gives back exactly those accounts and not ones an administrator locked on purpose.
ATTR_DISABLED_MEMBERS = "disabledMembers"


class KeycloakProvisioningError(Exception):
    """The realm could not be changed as asked; the message is for the operator."""


class AccountExists(Exception):
    """The username or client id is taken: by an account or client that this call did not
    make (either directory, Keycloak or the development issuer's, raises it)."""


class RealmAdmin:
    """The realm's groups and users, managed through the provisioner service account."""

    def __init__(self, settings: Settings, admin: KeycloakAdmin | None = None) -> None:
        if admin is None:
            if not settings.keycloak_url:
                raise KeycloakProvisioningError("KEYCLOAK_URL is not set: no realm to provision")
            if not settings.keycloak_admin_client_secret:
                raise KeycloakProvisioningError(
                    f"KEYCLOAK_ADMIN_CLIENT_SECRET is not set: the secret of the "
                    f"{settings.keycloak_admin_client_id!r} client is needed to provision"
                )
            admin = KeycloakAdmin(
                connection=KeycloakOpenIDConnection(
                    server_url=settings.keycloak_url,
                    realm_name=settings.keycloak_realm,
                    client_id=settings.keycloak_admin_client_id,
                    client_secret_key=settings.keycloak_admin_client_secret,
                    timeout=30,
                )
            )
        self.admin = admin
        self.audience = settings.oidc_audience

    # Groups

    def ensure_region_group(self, region_id: str) -> str:
        """The id of group `/regions/<region_id>`, created if missing."""
        validate_slug(region_id)
        return self._ensure_child(REGIONS_GROUP, region_id, {})

    def ensure_village_group(self, slug: str, name: str, region_id: str) -> str:
        """The id of group `/villages/<slug>`, created if missing, its attributes up to date.

        A disabled village stays disabled: its marker and disabled members are kept.
        """
        validate_slug(slug)
        group_id = self._ensure_child(VILLAGES_GROUP, slug, {})
        group = self.admin.get_group(group_id)
        attributes = dict(group.get("attributes") or {})
        wanted = {ATTR_VILLAGE_NAME: [name], ATTR_REGION: [region_id]}
        if any(attributes.get(key) != value for key, value in wanted.items()):
            self._set_attributes(group, {**attributes, **wanted})
        return group_id

    def village_group(self, slug: str) -> dict[str, Any]:
        """Group `/villages/<slug>` with its attributes; refuses a village not provisioned."""
        validate_slug(slug)
        group = self._group_by_path(f"{VILLAGES_GROUP}/{slug}")
        if group is None:
            raise KeycloakProvisioningError(
                f"village {slug!r} has no group {VILLAGES_GROUP}/{slug} in realm "
                f"{self.admin.connection.realm_name!r}: run `villagelink tenants create` first"
            )
        return group

    def remove_village_group(self, slug: str) -> None:
        """Delete group `/villages/<slug>` (its members lose the village). Missing is fine."""
        validate_slug(slug)
        group = self._group_by_path(f"{VILLAGES_GROUP}/{slug}")
        if group is not None:
            self.admin.delete_group(group["id"])

    def _ensure_child(self, parent_path: str, name: str, attributes: dict[str, list[str]]) -> str:
        path = f"{parent_path}/{name}"
        group = self._group_by_path(path)
        if group is not None:
            return group["id"]
        parent = self._group_by_path(parent_path)
        if parent is None:
            raise KeycloakProvisioningError(
                f"group {parent_path} is missing from realm "
                f"{self.admin.connection.realm_name!r}: was it imported from "
                f"platform/identity/realm-villagelink.json?"
            )
        # skip_exists: a concurrent provisioner may have created it since the lookup.
        self.admin.create_group(
            {"name": name, "attributes": attributes},
            parent=parent["id"],
            skip_exists=True,
        )
        group = self._group_by_path(path)
        if group is None:
            raise KeycloakProvisioningError(f"group {path} was created but cannot be found")
        return group["id"]

    def _group_by_path(self, path: str) -> dict[str, Any] | None:
        found = self.admin.get_group_by_path(path)
        return found if isinstance(found, dict) and "id" in found else None

    def _set_attributes(self, group: dict[str, Any], attributes: dict[str, list[str]]) -> None:
        # PUT replaces the attribute map as a whole; the name must come along.
        self.admin.update_group(group["id"], {"name": group["name"], "attributes": attributes})

    # Users

    def invite_user(
        self,
        village: str,
        role: str,
        email: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> str:
        """Give `email` the `role` in `village`, creating the account if needed; its user id.

        A new account has no password: Keycloak asks for email verification and a password at
        first sign-in (an administrator sends the link from the console, or the user resets
        the password from the login page). An existing account is reused as it is.
        """
        if role not in ROLES:
            raise KeycloakProvisioningError(
                f"unknown role {role!r}; village roles are {', '.join(VILLAGE_ROLES)}"
            )
        if role not in VILLAGE_ROLES:
            raise KeycloakProvisioningError(
                f"{role!r} is not given per village (village roles: {', '.join(VILLAGE_ROLES)}); "
                f"assign it in the Keycloak console"
            )
        email = email.strip().lower()
        if "@" not in email.strip("@") or any(c.isspace() for c in email):
            raise KeycloakProvisioningError(f"not an email address: {email!r}")
        group = self.village_group(village)
        if _is_disabled(group):
            raise KeycloakProvisioningError(
                f"village {village!r} is disabled: enable it before inviting users"
            )
        user_id = self._find_user(email)
        if user_id is None:
            user_id = self._create_user(email, first_name, last_name)
        else:
            self._refuse_widening(user_id, village, role)
        self.admin.group_user_add(user_id, group["id"])
        self.admin.assign_realm_roles(user_id, [self.admin.get_realm_role(role)])
        return user_id

    def _find_user(self, username: str) -> str | None:
        for user in self.admin.get_users({"username": username, "exact": "true"}):
            if user.get("username") == username:
                return user["id"]
        return None

    def _create_user(self, email: str, first_name: str | None, last_name: str | None) -> str:
        payload: dict[str, Any] = {
            "username": email,
            "email": email,
            "enabled": True,
            "emailVerified": False,
            "requiredActions": INVITE_ACTIONS,
        }
        if first_name:
            payload["firstName"] = first_name
        if last_name:
            payload["lastName"] = last_name
        # exist_ok: an invitation racing this one may have created the account meanwhile.
        return self.admin.create_user(payload, exist_ok=True)

    def _refuse_widening(self, user_id: str, village: str, role: str) -> None:
        """Realm roles hold in all of a user's villages: adding a village or a role must not
        quietly change what the user may do in the villages they already have."""
        others = _village_slugs(self.admin.get_user_groups(user_id)) - {village}
        roles = {r["name"] for r in self.admin.get_realm_roles_of_user(user_id)}
        held = roles & set(VILLAGE_ROLES)
        if others and held != {role}:
            raise KeycloakProvisioningError(
                f"this account is already {'/'.join(sorted(held)) or 'a member'} in "
                f"{', '.join(sorted(others))}; roles apply to all of an account's villages, so "
                f"making it {role} in {village} would change its rights there too. "
                f"Invite a separate address."
            )

    def create_account(
        self, village: str, role: str, username: str, name: str, password: str
    ) -> str:
        """A new account for a staff member: `username` (an email address) in `village` with
        `role` and `password` as a temporary password, changed at first sign-in; its user id.

        An account that exists already is refused (AccountExists): it is somebody's, and
        reusing it would hand its login to whoever receives the temporary password.
        """
        if role not in VILLAGE_ROLES:
            raise KeycloakProvisioningError(f"{role!r} is not a village role")
        group = self.village_group(village)
        if _is_disabled(group):
            raise KeycloakProvisioningError(
                f"village {village!r} is disabled: enable it before inviting users"
            )
        try:
            # 409 when the username, or an account's email, is taken.
            user_id = self.admin.create_user(
                {
                    "username": username,
                    "email": username,
                    # The realm's user profile requires both names; a Chinese name starts
                    # with the surname (a compound surname is corrected in the console).
                    "lastName": name[:1],
                    "firstName": name[1:] or name,
                    "enabled": True,
                    # The realm verifies email addresses by mail, which it may not be able
                    # to send; the village admin hands the login over in person instead.
                    "emailVerified": True,
                    "groups": [f"{VILLAGES_GROUP}/{village}"],
                    "credentials": [{"type": "password", "value": password, "temporary": True}],
                }
            )
        except KeycloakPostError as exc:
            if exc.response_code == 409:
                raise AccountExists(username) from exc
            raise
        self.admin.assign_realm_roles(user_id, [self.admin.get_realm_role(role)])
        return user_id

    # API clients

    def create_api_client(self, client_id: str, name: str) -> str:
        """A confidential client with client credentials only, whose service account holds
        `integrator` and whose tokens carry the API's audience and the groups claim (the
        mappers the realm file gives `demo-integrator`); its secret."""
        if self.admin.get_client_id(client_id) is not None:
            raise AccountExists(client_id)
        internal_id = self.admin.create_client(
            {
                "clientId": client_id,
                "name": name,
                "enabled": True,
                "publicClient": False,
                "clientAuthenticatorType": "client-secret",
                "standardFlowEnabled": False,
                "implicitFlowEnabled": False,
                "directAccessGrantsEnabled": False,
                "serviceAccountsEnabled": True,
                "protocol": "openid-connect",
                "protocolMappers": api_client_mappers(self.audience),
            }
        )
        account = self.admin.get_client_service_account_user(internal_id)
        self.admin.assign_realm_roles(account["id"], [self.admin.get_realm_role(INTEGRATOR)])
        return self.admin.get_client_secrets(internal_id)["value"]

    def rotate_client_secret(self, client_id: str) -> str:
        """A new secret for the client; Keycloak forgets the old one at once."""
        internal_id = self._client(client_id)
        self.admin.generate_client_secrets(internal_id)
        return self.admin.get_client_secrets(internal_id)["value"]

    def set_client_enabled(self, client_id: str, enabled: bool) -> None:
        internal_id = self._client(client_id)
        self.admin.update_client(internal_id, {"clientId": client_id, "enabled": enabled})

    def _client(self, client_id: str) -> str:
        internal_id = self.admin.get_client_id(client_id)
        if internal_id is None:
            raise KeycloakProvisioningError(
                f"client {client_id!r} is not in realm {self.admin.connection.realm_name!r}"
            )
        return internal_id

    # Disabling a village

    def disable_village_group(self, slug: str) -> list[str]:
        """Mark `/villages/<slug>` disabled and disable the accounts that reach no active
        village any more; returns the ids of the accounts disabled by this call.

        Accounts with a platform role or a region keep working: their reach does not come
        from this village.
        """
        group = self.village_group(slug)
        attributes = dict(group.get("attributes") or {})
        attributes[ATTR_DISABLED] = ["true"]
        self._set_attributes(group, attributes)
        disabled: list[str] = []
        for member in self._members(group["id"]):
            if not member.get("enabled", True) or self._keeps_access(member["id"]):
                continue
            self.admin.update_user(member["id"], {"enabled": False})
            disabled.append(member["id"])
        if disabled:
            recorded = attributes.get(ATTR_DISABLED_MEMBERS, [])
            attributes[ATTR_DISABLED_MEMBERS] = sorted({*recorded, *disabled})
            self._set_attributes(group, attributes)
        return disabled

    def enable_village_group(self, slug: str) -> list[str]:
        """Clear the disabled mark of `/villages/<slug>` and enable again the member accounts
        that disabling a village turned off; returns the ids of the accounts enabled."""
        group = self.village_group(slug)
        attributes = dict(group.get("attributes") or {})
        attributes.pop(ATTR_DISABLED, None)
        self._set_attributes(group, attributes)
        enabled: list[str] = []
        for member in self._members(group["id"]):
            if member.get("enabled", True):
                continue
            groups = self.admin.get_user_groups(member["id"], brief_representation=False)
            holders = [g for g in _village_groups(groups) if member["id"] in _disabled_members(g)]
            if not holders:
                continue  # disabled by someone else, for reasons of their own
            self.admin.update_user(member["id"], {"enabled": True})
            enabled.append(member["id"])
            for holder in holders:
                kept = dict(holder.get("attributes") or {})
                kept[ATTR_DISABLED_MEMBERS] = [
                    i for i in _disabled_members(holder) if i != member["id"]
                ]
                self._set_attributes(holder, kept)
        return enabled

    def _members(self, group_id: str) -> list[dict[str, Any]]:
        return self.admin.get_group_members(group_id, {"briefRepresentation": "true"})

    def _keeps_access(self, user_id: str) -> bool:
        """Whether the account still reaches something once its disabled villages are out."""
        groups = self.admin.get_user_groups(user_id, brief_representation=False)
        if any(g["path"].startswith(REGION_GROUP_PREFIX) for g in groups):
            return True
        if any(not _is_disabled(g) for g in _village_groups(groups)):
            return True
        roles = {r["name"] for r in self.admin.get_realm_roles_of_user(user_id)}
        return bool(roles & NON_VILLAGE_ROLES)


def api_client_mappers(audience: str) -> list[dict[str, Any]]:
    """The group-membership and audience mappers every client that calls the API needs."""
    return [
        {
            "name": "groups",
            "protocol": "openid-connect",
            "protocolMapper": "oidc-group-membership-mapper",
            "config": {
                "full.path": "true",
                "claim.name": "groups",
                "access.token.claim": "true",
                "id.token.claim": "true",
                "userinfo.token.claim": "true",
                "introspection.token.claim": "true",
            },
        },
        {
            "name": f"{audience} audience",
            "protocol": "openid-connect",
            "protocolMapper": "oidc-audience-mapper",
            "config": {
                "included.client.audience": audience,
                "access.token.claim": "true",
                "id.token.claim": "false",
                "introspection.token.claim": "true",
            },
        },
    ]


def _village_groups(groups: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [g for g in groups if _village_slug(g["path"]) is not None]


def _village_slugs(groups: Iterable[dict[str, Any]]) -> set[str]:
    return {slug for g in groups if (slug := _village_slug(g["path"])) is not None}


def _village_slug(path: str) -> str | None:
    if not path.startswith(VILLAGE_GROUP_PREFIX):
        return None
    slug = path[len(VILLAGE_GROUP_PREFIX) :]
    return slug if slug and "/" not in slug else None


def _is_disabled(group: dict[str, Any]) -> bool:
    return (group.get("attributes") or {}).get(ATTR_DISABLED) == ["true"]


def _disabled_members(group: dict[str, Any]) -> list[str]:
    return list((group.get("attributes") or {}).get(ATTR_DISABLED_MEMBERS, []))


# What the CLI calls: the database side and, when a realm is configured, the Keycloak side.


def sync_village(settings: Settings, slug: str, name: str, region_id: str) -> str:
    """Create or update the village's group (and its region's); the village group id."""
    realm = RealmAdmin(settings)
    realm.ensure_region_group(region_id)
    return realm.ensure_village_group(slug, name, region_id)


def set_village_status(db: Database, slug: str, status: str) -> None:
    """Set `platform.tenants.status`; the gateway serves active villages only."""
    if status not in VILLAGE_STATUSES:
        raise KeycloakProvisioningError(f"unknown village status {status!r}")
    with db.platform() as conn:
        changed = conn.execute(
            update(pm.tenants).where(pm.tenants.c.slug == slug).values(status=status)
        ).rowcount
    if not changed:
        raise KeycloakProvisioningError(f"village {slug!r} does not exist")


def disable_village(settings: Settings, db: Database, slug: str) -> list[str]:
    """Take the village out of the gateway's reach, then disable its accounts in the realm
    (when one is configured); the ids of the accounts disabled."""
    set_village_status(db, slug, "disabled")
    if not settings.keycloak_url:
        return []
    return RealmAdmin(settings).disable_village_group(slug)


def enable_village(settings: Settings, db: Database, slug: str) -> list[str]:
    """Serve the village again and give its accounts back (when a realm is configured);
    the ids of the accounts enabled."""
    set_village_status(db, slug, "active")
    if not settings.keycloak_url:
        return []
    return RealmAdmin(settings).enable_village_group(slug)

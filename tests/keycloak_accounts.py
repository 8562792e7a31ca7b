"""Test accounts in the real Keycloak realm, made through the master realm's admin with a known
password (tests/test_keycloak.py, tests/browser/): what provisioning makes goes through the
provisioner service account instead, as in production."""

from __future__ import annotations

from keycloak import KeycloakAdmin

from villagelink.platform.services import KeycloakServer

PASSWORD = "test-password-dev-only"


def realm_admin(keycloak: KeycloakServer) -> KeycloakAdmin:
    """The villagelink realm administered by the bootstrap admin: for test accounts and keys."""
    return KeycloakAdmin(
        server_url=keycloak.url,
        username=keycloak.admin_username,
        password=keycloak.admin_password,
        realm_name=keycloak.realm,
        user_realm_name="master",
    )


def create_account(
    master: KeycloakAdmin, username: str, roles: tuple[str, ...], groups: tuple[str, ...]
) -> str:
    """A ready account (verified, no required actions) with PASSWORD; its user id."""
    user_id = master.create_user(
        {
            "username": username,
            "email": f"{username}@example.org",
            "emailVerified": True,
            "firstName": "建",
            "lastName": "林",
            "enabled": True,
            "requiredActions": [],
            "groups": list(groups),
            "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
        }
    )
    if roles:
        master.assign_realm_roles(user_id, [master.get_realm_role(r) for r in roles])
    return user_id

"""The account directory: where staff logins and API clients live, behind one interface.

With `KEYCLOAK_URL` set the directory is the Keycloak realm (python-keycloak, through the
provisioner service account); without it, the development issuer's own tables in the platform
schema, from which it mints tokens (`dev_issuer.py`'s token endpoint). Staff and API client
actions call `account_directory(settings, db)` and never know which one answers.

What a person or program needs to log in (a temporary password, a client secret) is returned
once by the call that makes it and kept by neither side in plain text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import ColumnElement, Row, select, update
from sqlalchemy.dialects.postgresql import insert

from villagelink.platform import models as pm
from villagelink.platform.db import Database
from villagelink.platform.identity.keycloak_admin import AccountExists, RealmAdmin
from villagelink.platform.identity.principal import INTEGRATOR
from villagelink.platform.settings import Settings

# scrypt parameters: ~16 MiB and a few tens of milliseconds per check.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class DirectoryUnavailable(Exception):
    """No directory to make accounts in (an external issuer that is not Keycloak)."""


@dataclass(frozen=True)
class Login:
    """A new or re-issued login: shown once to whoever hands it to the person."""

    sub: str
    username: str
    temporary_password: str


class AccountDirectory(Protocol):
    def invite(self, village: str, role: str, username: str, name: str) -> Login:
        """A new account `username` in `village` with `role` and a temporary password.
        Raises AccountExists when the username is taken."""

    def reissue(self, sub: str) -> str:
        """A new temporary password for the account `sub`."""

    def set_enabled(self, sub: str, enabled: bool) -> None:
        """Allow or stop the account's logins."""

    def register_client(self, client_id: str, name: str) -> str:
        """A confidential client with client credentials and the `integrator` role; its
        secret. Raises AccountExists when the client id is taken."""

    def rotate_client_secret(self, client_id: str) -> str:
        """A new secret for the client; the old one stops working."""

    def set_client_enabled(self, client_id: str, enabled: bool) -> None:
        """Allow or stop the client's tokens."""


def new_secret() -> str:
    """A password or client secret: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def secret_matches(secret: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt, digest = stored.split("$")
    found = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), **_SCRYPT)
    return hmac.compare_digest(found, base64.b64decode(digest))


class KeycloakDirectory:
    """Accounts and clients in the Keycloak realm."""

    def __init__(self, realm: RealmAdmin) -> None:
        self.realm = realm

    def invite(self, village: str, role: str, username: str, name: str) -> Login:
        password = new_secret()
        sub = self.realm.create_account(village, role, username, name, password)
        return Login(sub=sub, username=username, temporary_password=password)

    def reissue(self, sub: str) -> str:
        password = new_secret()
        self.realm.admin.set_user_password(sub, password, temporary=True)
        return password

    def set_enabled(self, sub: str, enabled: bool) -> None:
        self.realm.admin.update_user(sub, {"enabled": enabled})

    def register_client(self, client_id: str, name: str) -> str:
        return self.realm.create_api_client(client_id, name)

    def rotate_client_secret(self, client_id: str) -> str:
        return self.realm.rotate_client_secret(client_id)

    def set_client_enabled(self, client_id: str, enabled: bool) -> None:
        self.realm.set_client_enabled(client_id, enabled)


class DevDirectory:
    """Accounts and client secrets in the platform schema, for the development issuer.

    Each call is a platform transaction of its own, as a call to Keycloak would be.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def invite(self, village: str, role: str, username: str, name: str) -> Login:
        password = new_secret()
        sub = str(uuid.uuid4())
        with self.db.platform() as conn:
            made = conn.execute(
                insert(pm.dev_accounts)
                .values(
                    sub=sub,
                    username=username,
                    password_hash=hash_secret(password),
                    roles=[role],
                    villages=[village],
                    name=name,
                )
                .on_conflict_do_nothing(index_elements=["username"])
                .returning(pm.dev_accounts.c.sub)
            ).first()
        if made is None:
            raise AccountExists(username)
        return Login(sub=sub, username=username, temporary_password=password)

    def reissue(self, sub: str) -> str:
        password = new_secret()
        with self.db.platform() as conn:
            conn.execute(
                update(pm.dev_accounts)
                .where(pm.dev_accounts.c.sub == sub)
                .values(password_hash=hash_secret(password))
            )
        return password

    def set_enabled(self, sub: str, enabled: bool) -> None:
        with self.db.platform() as conn:
            conn.execute(
                update(pm.dev_accounts).where(pm.dev_accounts.c.sub == sub).values(enabled=enabled)
            )

    def register_client(self, client_id: str, name: str) -> str:
        return self._set_client_secret(client_id, only_new=True)

    def rotate_client_secret(self, client_id: str) -> str:
        return self._set_client_secret(client_id, only_new=False)

    def set_client_enabled(self, client_id: str, enabled: bool) -> None:
        """Nothing to do here: the issuer reads `api_clients.enabled` itself."""

    def _set_client_secret(self, client_id: str, *, only_new: bool) -> str:
        secret = new_secret()
        row = {"client_id": client_id, "secret_hash": hash_secret(secret)}
        statement = insert(pm.dev_client_secrets).values(row)
        with self.db.platform() as conn:
            if only_new:
                made = conn.execute(
                    statement.on_conflict_do_nothing().returning(pm.dev_client_secrets.c.client_id)
                ).first()
                if made is None:
                    raise AccountExists(client_id)
            else:
                conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["client_id"], set_={"secret_hash": row["secret_hash"]}
                    )
                )
        return secret


def account_directory(settings: Settings, db: Database) -> AccountDirectory:
    """Keycloak when it is configured, the development issuer's tables when that runs."""
    if settings.keycloak_url:
        return KeycloakDirectory(RealmAdmin(settings))
    if settings.dev_issuer_enabled:
        return DevDirectory(db)
    raise DirectoryUnavailable(
        "the identity provider is neither Keycloak nor the development issuer: make accounts there"
    )


@dataclass(frozen=True)
class DevGrant:
    """Who the development issuer signs a token for."""

    sub: str
    username: str
    roles: list[str]
    villages: list[str]
    client_id: str | None = None
    regions: list[str] = field(default_factory=list)
    name: str | None = None


def _enabled_account(db: Database, condition: ColumnElement[bool]) -> Row | None:
    a = pm.dev_accounts
    with db.platform() as conn:
        return conn.execute(select(a).where(condition, a.c.enabled.is_(True))).first()


def _grant_of(row: Row) -> DevGrant:
    return DevGrant(
        row.sub,
        row.username,
        list(row.roles),
        list(row.villages),
        regions=list(row.regions),
        name=row.name,
    )


def dev_password_grant(db: Database, username: str, password: str) -> DevGrant | None:
    """The enabled development account with this username and password, or None."""
    row = _enabled_account(db, pm.dev_accounts.c.username == username.strip().lower())
    if row is None or not secret_matches(password, row.password_hash):
        return None
    return _grant_of(row)


def dev_account(db: Database, sub: str) -> DevGrant | None:
    """The enabled development account `sub` as it is now (a refresh re-reads it, so that a
    disabled account or a changed role takes effect at the next refresh), or None."""
    row = _enabled_account(db, pm.dev_accounts.c.sub == sub)
    return None if row is None else _grant_of(row)


def dev_client_grant(db: Database, client_id: str, secret: str) -> DevGrant | None:
    """The enabled API client with this id and secret, as its service account, or None."""
    c, s = pm.api_clients, pm.dev_client_secrets
    with db.platform() as conn:
        row = conn.execute(
            select(s.c.secret_hash)
            .join(c, c.c.client_id == s.c.client_id)
            .where(s.c.client_id == client_id, c.c.enabled.is_(True))
        ).first()
    if row is None or not secret_matches(secret, row.secret_hash):
        return None
    sub = str(uuid.uuid5(uuid.NAMESPACE_URL, f"villagelink:dev-client:{client_id}"))
    return DevGrant(sub, f"service-account-{client_id}", [INTEGRATOR], [], client_id)

"""The built-in development issuer: Keycloak-shaped access tokens signed with a local key.

`make run` needs no Keycloak: this issuer signs tokens whose claims look like the realm's
(realm roles, `/villages/<slug>` and `/regions/<id>` groups, `azp`), so the gateway verifies
them with exactly the code that verifies Keycloak's. It serves its discovery document and
JWKS under the same paths Keycloak uses, and refuses to exist in production.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, Response, abort, jsonify, request
from jwt.algorithms import RSAAlgorithm

from villagelink.platform.db import SLUG_PATTERN, Database, validate_slug
from villagelink.platform.identity.accounts import dev_client_grant, dev_password_grant
from villagelink.platform.identity.principal import (
    GRID_WORKER,
    INTEGRATOR,
    PLATFORM_ADMIN,
    REGION_GROUP_PREFIX,
    REGIONAL_COORDINATOR,
    RESIDENT,
    ROLES,
    VILLAGE_ADMIN,
    VILLAGE_GROUP_PREFIX,
)
from villagelink.platform.settings import Settings

ALGORITHM = "RS256"
CONSOLE_CLIENT = "villagelink-console"
# The residents' app signs its residents in itself (public client, PKCE): the realm's twin.
RESIDENTS_CLIENT = "villagelink-residents"
DEMO_INTEGRATOR_CLIENT = "demo-integrator"
# The realm's clients that sign people in (docs/identity.md, Clients).
PASSWORD_CLIENTS = frozenset({CONSOLE_CLIENT, "villagelink-dev-cli"})
# Fixed so that `villagelink token` gives the same subject on every machine and every run:
# grid workers are linked to their staff record by `sub`.
_SUBJECT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "villagelink:dev-issuer:subjects")


class DevIssuerRefused(RuntimeError):
    """The development issuer was asked to run in production."""


class DevIssuer:
    """Signs development tokens for `settings.issuer` and publishes the key that checks them."""

    def __init__(self, settings: Settings) -> None:
        if settings.production:
            raise DevIssuerRefused(
                "the development issuer refuses to start when VILLAGELINK_ENV=production; "
                "set KEYCLOAK_URL"
            )
        self.settings = settings
        self._private_key = _load_or_create_key(settings.dev_issuer_key_path)
        public_jwk = json.loads(RSAAlgorithm.to_jwk(self._private_key.public_key()))
        self.kid = _rfc7638_thumbprint(public_jwk)
        self._public_jwk = {**public_jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}

    @property
    def jwks_uri(self) -> str:
        return f"{self.settings.issuer}/protocol/openid-connect/certs"

    @property
    def token_endpoint(self) -> str:
        return f"{self.settings.issuer}/protocol/openid-connect/token"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self._public_jwk)]}

    def discovery(self) -> dict[str, Any]:
        """The OpenID discovery document, listing only what this issuer really offers.

                Its token endpoint grants passwords of the accounts invited through the account
        directory and client credentials of registered API clients; there is no authorization
        endpoint: other tokens come from `villagelink token`.
        """
        return {
            "issuer": self.settings.issuer,
            "jwks_uri": self.jwks_uri,
            "token_endpoint": self.token_endpoint,
            "grant_types_supported": ["password", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "claims_supported": [
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "jti",
                "azp",
                "typ",
                "scope",
                "preferred_username",
                "realm_access",
                "groups",
            ],
        }

    def mint(
        self,
        *,
        sub: str,
        username: str,
        roles: Iterable[str],
        villages: Iterable[str] = (),
        regions: Iterable[str] = (),
        client_id: str = CONSOLE_CLIENT,
        lifetime: int = 3600,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """An access token shaped like the Keycloak realm's; `extra` adds or overrides claims."""
        if lifetime <= 0:
            raise ValueError("token lifetime must be positive")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "aud": [self.settings.oidc_audience],
            "azp": client_id,
            "sub": sub,
            "preferred_username": username,
            "realm_access": {"roles": list(roles)},
            "groups": [VILLAGE_GROUP_PREFIX + v for v in villages]
            + [REGION_GROUP_PREFIX + r for r in regions],
            "typ": "Bearer",
            "scope": "openid profile",
            "iat": now,
            "exp": now + lifetime,
            "jti": str(uuid.uuid4()),
        }
        claims.update(extra or {})
        return jwt.encode(claims, self._private_key, algorithm=ALGORITHM, headers={"kid": self.kid})


def mint_for_role(
    settings: Settings,
    role: str,
    *,
    village: str | None = None,
    region: str | None = None,
    client: str | None = None,
    username: str | None = None,
    sub: str | None = None,
    lifetime: int = 3600,
) -> str:
    """A token for one role, as `villagelink token --role ...` prints it.

    Raises ValueError, with a message fit for the command line, when the role and its scope
    do not go together.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if village is not None:
        validate_slug(village)
    if region is not None and not SLUG_PATTERN.fullmatch(region):
        raise ValueError(
            f"region id {region!r} must be 2-39 characters of a-z, 0-9 and _, "
            "starting with a letter"
        )
    if role in (VILLAGE_ADMIN, GRID_WORKER, RESIDENT) and village is None:
        raise ValueError(f"--village is required for role {role}")
    if role == REGIONAL_COORDINATOR and region is None:
        raise ValueError(f"--region is required for role {role}")
    # A village or region on a role that does not use it would silently widen or confuse
    # what the token grants; say so instead.
    if village is not None and role in (PLATFORM_ADMIN, REGIONAL_COORDINATOR):
        raise ValueError(f"--village does not apply to role {role}")
    if region is not None and role not in (REGIONAL_COORDINATOR, INTEGRATOR):
        raise ValueError(f"--region does not apply to role {role}")

    if role == INTEGRATOR:
        if username is not None:
            raise ValueError("an integrator is a service account named after its --client")
        client = client or DEMO_INTEGRATOR_CLIENT
        username = f"service-account-{client}"
    else:
        client = client or (RESIDENTS_CLIENT if role == RESIDENT else CONSOLE_CLIENT)
        username = username or "-".join(part for part in (role, village, region) if part)
    if sub is None:
        identity = f"{role}|{village or ''}|{region or ''}|{username}"
        sub = str(uuid.uuid5(_SUBJECT_NAMESPACE, identity))
    return DevIssuer(settings).mint(
        sub=sub,
        username=username,
        roles=[role],
        villages=[village] if village else [],
        regions=[region] if region else [],
        client_id=client,
        lifetime=lifetime,
    )


def blueprint(issuer: DevIssuer, db: Database | None = None) -> Blueprint:
    """Discovery, JWKS and (given the platform database its accounts live in) tokens over
    HTTP, at Keycloak's paths under `{public_url}/dev-issuer`."""
    bp = Blueprint("dev_issuer", __name__, url_prefix="/dev-issuer")
    realm_name = issuer.settings.keycloak_realm

    def cached_json(realm: str, document: dict[str, Any]) -> Response:
        if realm != realm_name:
            abort(404)
        response = jsonify(document)
        response.cache_control.public = True
        response.cache_control.max_age = 300
        return response

    @bp.get("/realms/<realm>/.well-known/openid-configuration")
    def openid_configuration(realm: str) -> Response:
        return cached_json(realm, issuer.discovery())

    @bp.get("/realms/<realm>/protocol/openid-connect/certs")
    def certs(realm: str) -> Response:
        return cached_json(realm, issuer.jwks())

    if db is None:
        return bp

    @bp.post("/realms/<realm>/protocol/openid-connect/token")
    def token(realm: str) -> tuple[Response, int]:
        """Keycloak's two grants that need no browser: `password` for the development
        accounts (a temporary password keeps working: there is no page to change it here)
        and `client_credentials` for registered API clients (form or HTTP Basic)."""
        if realm != realm_name:
            abort(404)
        form = request.form
        grant_type = form.get("grant_type")
        if grant_type == "password":
            client_id = form.get("client_id") or CONSOLE_CLIENT
            if client_id not in PASSWORD_CLIENTS:
                # Another client's id as `azp` would make a person's token look like it.
                return jsonify(error="unauthorized_client"), 401
            found = dev_password_grant(db, form.get("username", ""), form.get("password", ""))
            failure = "invalid_grant", "Invalid user credentials"
        elif grant_type == "client_credentials":
            basic = request.authorization
            client_id = (basic.username if basic else form.get("client_id")) or ""
            secret = (basic.password if basic else form.get("client_secret")) or ""
            found = dev_client_grant(db, client_id, secret)
            failure = "unauthorized_client", "Invalid client or Invalid client credentials"
        else:
            return jsonify(error="unsupported_grant_type"), 400
        if found is None:
            return jsonify(error=failure[0], error_description=failure[1]), 401
        lifetime = 300
        access_token = issuer.mint(
            sub=found.sub,
            username=found.username,
            roles=found.roles,
            villages=found.villages,
            client_id=found.client_id or client_id,
            lifetime=lifetime,
        )
        body = {"access_token": access_token, "token_type": "Bearer", "expires_in": lifetime}
        response = jsonify(body)
        response.cache_control.no_store = True
        return response, 200

    return bp


def _rfc7638_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The JWK thumbprint: SHA-256 of the required RSA members, sorted, without whitespace."""
    canonical = json.dumps(
        {"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    """The signing key at `path`, created (mode 0600) on first use.

    The new key is written to a private temporary file and hard-linked into place: linking
    fails if another process got there first, and then both use the winner's key, which is
    why the file is always read back.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(pem)
                file.flush()
                os.fsync(file.fileno())
            # If another process won the race, its key is the one everybody reads back.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink()
    loaded = _parse_key(path.read_bytes())
    if not isinstance(loaded, rsa.RSAPrivateKey) or loaded.key_size < 2048:
        raise ValueError(f"{path} does not hold an RSA private key of at least 2048 bits")
    return loaded


@functools.lru_cache(maxsize=4)
def _parse_key(pem: bytes) -> Any:
    """The key a PEM file holds, parsed once per content: parsing checks the RSA key's
    consistency (about 45 ms of CPU), and every `mint_for_role` builds an issuer. The
    file is still read each time, so a replaced key is the one used."""
    return serialization.load_pem_private_key(pem, password=None)

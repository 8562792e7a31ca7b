"""The built-in development issuer: Keycloak-shaped access tokens signed with a local key.

`make run` needs no Keycloak: this issuer signs tokens whose claims look like the realm's
(realm roles, `/villages/<slug>` and `/regions/<id>` groups, `azp`), so the gateway verifies
them with exactly the code that verifies Keycloak's. It serves its discovery document and
JWKS under the same paths Keycloak uses, and refuses to exist in production.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jwt
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, Response, abort, jsonify, redirect, request
from jwt.algorithms import RSAAlgorithm
from werkzeug.wrappers import Response as BaseResponse

from villagelink.platform.db import SLUG_PATTERN, Database, validate_slug
from villagelink.platform.identity.accounts import (
    DevGrant,
    dev_account,
    dev_client_grant,
    dev_password_grant,
)
from villagelink.platform.identity.dev_sign_in import (
    CHALLENGE,
    REFRESH_SECONDS,
    Authorization,
    OAuthError,
    SignInStore,
    check_pkce,
    login_page,
    message_page,
    new_session,
    url_under,
    with_query,
)
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
# The public clients of the browser sign-in, and where each may be sent back to (paths
# under the public URL), as the realm's redirect URIs say.
BROWSER_CLIENTS = {
    CONSOLE_CLIENT: ("/console/", "/graphiql/"),
    RESIDENTS_CLIENT: ("/h5/",),
}
# Access and ID tokens live as long as the realm's.
ACCESS_SECONDS = 300
# The login page's own policy: its inline <style> and a form posting to itself, nothing else.
LOGIN_PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
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
        return self.endpoint("token")

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self._public_jwk)]}

    def endpoint(self, name: str) -> str:
        return f"{self.settings.issuer}/protocol/openid-connect/{name}"

    def discovery(self) -> dict[str, Any]:
        """The OpenID discovery document, listing only what this issuer really offers.

        The consoles sign in by authorization code with PKCE (S256) at its authorization
        endpoint and keep their session with refresh tokens; its token endpoint also grants
        passwords of the development accounts and client credentials of registered API
        clients. Other tokens come from `villagelink token`.
        """
        return {
            "issuer": self.settings.issuer,
            "jwks_uri": self.jwks_uri,
            "authorization_endpoint": self.endpoint("auth"),
            "token_endpoint": self.token_endpoint,
            "end_session_endpoint": self.endpoint("logout"),
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "password",
                "client_credentials",
            ],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile"],
            "token_endpoint_auth_methods_supported": [
                "none",
                "client_secret_post",
                "client_secret_basic",
            ],
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
                "name",
                "nonce",
                "sid",
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

    def access_token(
        self,
        grant: DevGrant,
        client_id: str,
        lifetime: int,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """An access token for an account or API client the directory found."""
        return self.mint(
            sub=grant.sub,
            username=grant.username,
            roles=grant.roles,
            villages=grant.villages,
            regions=grant.regions,
            client_id=client_id,
            lifetime=lifetime,
            extra=extra,
        )

    def id_token(self, grant: DevGrant, authorization: Authorization, lifetime: int) -> str:
        """The OpenID Connect ID token: who signed in, for the client (`aud`) that asked."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "aud": authorization.client_id,
            "azp": authorization.client_id,
            "sub": grant.sub,
            "typ": "ID",
            "preferred_username": grant.username,
            "name": grant.name or grant.username,
            "sid": authorization.session,
            "iat": now,
            "auth_time": now,
            "exp": now + lifetime,
            "jti": str(uuid.uuid4()),
        }
        if authorization.nonce:
            claims["nonce"] = authorization.nonce
        return jwt.encode(claims, self._private_key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def read_id_token(self, token: str) -> dict[str, Any] | None:
        """The claims of an ID token this issuer signed for a browser client, expired or not
        (a logout may come long after the token's five minutes), or None."""
        try:
            claims = jwt.decode(
                token,
                self._private_key.public_key(),
                algorithms=[ALGORITHM],
                issuer=self.settings.issuer,
                audience=list(BROWSER_CLIENTS),
                options={"verify_exp": False, "require": ["sid", "sub", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        return claims if claims.get("typ") == "ID" and isinstance(claims["sid"], str) else None


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
        sub = dev_subject(role, village, region, username)
    return DevIssuer(settings).mint(
        sub=sub,
        username=username,
        roles=[role],
        villages=[village] if village else [],
        regions=[region] if region else [],
        client_id=client,
        lifetime=lifetime,
    )


def dev_subject(role: str, village: str | None, region: str | None, username: str) -> str:
    """The stable subject of a development identity: `villagelink token` and the demo
    accounts of the sign-in page give the same person the same `sub`."""
    identity = f"{role}|{village or ''}|{region or ''}|{username}"
    return str(uuid.uuid5(_SUBJECT_NAMESPACE, identity))


def blueprint(
    issuer: DevIssuer,
    db: Database | None = None,
    store: redis.Redis | None = None,
    demo_usernames: Sequence[str] = (),
    demo_password: str | None = None,
) -> Blueprint:
    """Discovery, JWKS and (given the platform database its accounts live in) tokens over
    HTTP, at Keycloak's paths under `{public_url}/dev-issuer`; given Redis too, the browser
    sign-in of the consoles (dev_sign_in.py). `demo_usernames` and `demo_password` are shown
    on the login page as a development hint."""
    bp = Blueprint("dev_issuer", __name__, url_prefix="/dev-issuer")
    realm_name = issuer.settings.keycloak_realm
    oidc = "/realms/<realm>/protocol/openid-connect"

    @bp.url_value_preprocessor
    def _only_our_realm(_endpoint: str | None, values: dict[str, Any] | None) -> None:
        if values is not None and values.pop("realm", realm_name) != realm_name:
            abort(404)

    def cached_json(document: dict[str, Any]) -> Response:
        response = jsonify(document)
        response.cache_control.public = True
        response.cache_control.max_age = 300
        return response

    @bp.get("/realms/<realm>/.well-known/openid-configuration")
    def openid_configuration() -> Response:
        return cached_json(issuer.discovery())

    @bp.get(f"{oidc}/certs")
    def certs() -> Response:
        return cached_json(issuer.jwks())

    if db is None:
        return bp

    def token_answer(body: dict[str, Any]) -> Response:
        response = jsonify(body)
        response.cache_control.no_store = True
        response.headers["Pragma"] = "no-cache"
        return response

    def refused(error: OAuthError) -> tuple[Response, int]:
        response = jsonify(error=error.error, error_description=error.description)
        response.cache_control.no_store = True
        return response, error.status

    def password_or_client_grant(form: Mapping[str, str], grant_type: str) -> Response:
        if grant_type == "password":
            client_id = form.get("client_id") or CONSOLE_CLIENT
            if client_id not in PASSWORD_CLIENTS:
                # Another client's id as `azp` would make a person's token look like it.
                raise OAuthError("unauthorized_client", "Client not allowed", 401)
            found = dev_password_grant(db, form.get("username", ""), form.get("password", ""))
            if found is None:
                raise OAuthError("invalid_grant", "Invalid user credentials", 401)
        else:
            basic = request.authorization
            client_id = (basic.username if basic else form.get("client_id")) or ""
            secret = (basic.password if basic else form.get("client_secret")) or ""
            found = dev_client_grant(db, client_id, secret)
            if found is None:
                raise OAuthError(
                    "unauthorized_client", "Invalid client or Invalid client credentials", 401
                )
        lifetime = ACCESS_SECONDS
        access_token = issuer.access_token(found, found.client_id or client_id, lifetime)
        return token_answer(
            {"access_token": access_token, "token_type": "Bearer", "expires_in": lifetime}
        )

    # The token endpoint's grants by `grant_type`; the browser sign-in adds its two below.
    grants: dict[str, Callable[[Mapping[str, str]], Response]] = {
        "password": lambda form: password_or_client_grant(form, "password"),
        "client_credentials": lambda form: password_or_client_grant(form, "client_credentials"),
    }

    @bp.post(f"{oidc}/token")
    def token() -> Response | tuple[Response, int]:
        """Keycloak's grants: `authorization_code` (PKCE S256) and `refresh_token` for the
        consoles, `password` for the development accounts (a temporary password keeps
        working: there is no page to change it here) and `client_credentials` for registered
        API clients (form or HTTP Basic)."""
        grant = grants.get(request.form.get("grant_type", ""))
        try:
            if grant is None:
                raise OAuthError("unsupported_grant_type", "Unsupported grant type")
            return grant(request.form)
        except OAuthError as error:
            return refused(error)

    if store is None:
        return bp

    sign_in = SignInStore(store)
    public_url = issuer.settings.public_url

    def page(html_text: str, status: int = 200) -> Response:
        response = Response(html_text, status=status, content_type="text/html; charset=utf-8")
        response.cache_control.no_store = True
        response.headers["Content-Security-Policy"] = LOGIN_PAGE_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def authorization_request(params: Mapping[str, str]) -> dict[str, str]:
        """The request's parameters, checked in RFC 6749's order: a bad client or
        redirect URI is shown to the person (never redirected to); anything else goes
        back to the client as an error. Raises AuthorizationRefused."""
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        if client_id not in BROWSER_CLIENTS:
            raise AuthorizationRefused("未知的应用（client_id），无法登录。", None)
        if not url_under(redirect_uri, public_url, BROWSER_CLIENTS[client_id]):
            raise AuthorizationRefused("登录后的返回地址（redirect_uri）不被允许。", None)
        state = params.get("state")

        def back(error: str, description: str) -> AuthorizationRefused:
            target = with_query(
                redirect_uri, error=error, error_description=description, state=state
            )
            return AuthorizationRefused(description, target)

        if params.get("response_type") != "code":
            raise back("unsupported_response_type", "response_type must be code")
        if params.get("code_challenge_method") != "S256" or not CHALLENGE.fullmatch(
            params.get("code_challenge", "")
        ):
            raise back("invalid_request", "PKCE with code_challenge_method S256 is required")
        if "openid" not in params.get("scope", "openid").split():
            raise back("invalid_scope", "scope must include openid")
        return {
            name: params[name]
            for name in (
                "client_id",
                "redirect_uri",
                "response_type",
                "scope",
                "state",
                "nonce",
                "code_challenge",
                "code_challenge_method",
            )
            if params.get(name)
        }

    @bp.route(f"{oidc}/auth", methods=["GET", "POST"])
    def authorize() -> BaseResponse:
        source = request.form if request.method == "POST" else request.args
        try:
            params = authorization_request(source)
        except AuthorizationRefused as refusal:
            if refusal.redirect_to:
                return redirect(refusal.redirect_to, code=302)
            return page(message_page("无法登录", refusal.message), 400)
        username = source.get("username", "") if request.method == "POST" else ""
        error = None
        if request.method == "POST":
            found = dev_password_grant(db, username, source.get("password", ""))
            if found is None:
                error = "用户名或密码错误，请重新输入。"
            elif (RESIDENT in found.roles) != (params["client_id"] == RESIDENTS_CLIENT):
                error = (
                    "居民账号请在居民端登录。"
                    if RESIDENT in found.roles
                    else "该账号不是居民账号，请在管理控制台登录。"
                )
            else:
                code = sign_in.new_code(
                    Authorization(
                        sub=found.sub,
                        client_id=params["client_id"],
                        redirect_uri=params["redirect_uri"],
                        code_challenge=params["code_challenge"],
                        nonce=params.get("nonce"),
                        session=new_session(),
                        scope=params.get("scope", "openid"),
                    )
                )
                target = with_query(params["redirect_uri"], code=code, state=params.get("state"))
                return redirect(target, code=302)
        form = login_page(
            params,
            error=error,
            username=username,
            demo_usernames=demo_usernames,
            demo_password=demo_password,
        )
        return page(form, 200)

    def tokens_for(authorization: Authorization) -> Response:
        """Access, ID and a new refresh token for the account as it is now."""
        found = dev_account(db, authorization.sub)
        if found is None:
            raise OAuthError("invalid_grant", "Account disabled or removed")
        lifetime = ACCESS_SECONDS
        return token_answer(
            {
                "access_token": issuer.access_token(
                    found,
                    authorization.client_id,
                    lifetime,
                    extra={"sid": authorization.session},
                ),
                "id_token": issuer.id_token(found, authorization, lifetime),
                "refresh_token": sign_in.new_refresh_token(authorization),
                "token_type": "Bearer",
                "expires_in": lifetime,
                "refresh_expires_in": REFRESH_SECONDS,
                "scope": authorization.scope,
                "session_state": authorization.session,
            }
        )

    def code_grant(form: Mapping[str, str]) -> Response:
        client_id = form.get("client_id", "")
        if client_id not in BROWSER_CLIENTS:
            raise OAuthError("invalid_client", "Unknown client", 401)
        authorization = sign_in.take_code(form.get("code", ""))
        if authorization is None:
            raise OAuthError("invalid_grant", "Code not valid")
        if authorization.client_id != client_id:
            raise OAuthError("invalid_grant", "Code was issued to another client")
        if authorization.redirect_uri != form.get("redirect_uri"):
            raise OAuthError("invalid_grant", "Incorrect redirect_uri")
        if not check_pkce(form.get("code_verifier", ""), authorization.code_challenge):
            raise OAuthError("invalid_grant", "PKCE verification failed")
        return tokens_for(authorization)

    def refresh_grant(form: Mapping[str, str]) -> Response:
        client_id = form.get("client_id", "")
        if client_id not in BROWSER_CLIENTS:
            raise OAuthError("invalid_client", "Unknown client", 401)
        authorization = sign_in.take_refresh_token(form.get("refresh_token", ""))
        if authorization is None:
            raise OAuthError("invalid_grant", "Invalid refresh token")
        if authorization.client_id != client_id:
            # Taken all the same: a token shown to the wrong client is spent.
            raise OAuthError("invalid_grant", "Token was issued to another client")
        return tokens_for(authorization)

    grants["authorization_code"] = code_grant
    grants["refresh_token"] = refresh_grant

    @bp.route(f"{oidc}/logout", methods=["GET", "POST"])
    def logout() -> BaseResponse:
        """End the session the ID token names: its refresh tokens stop working. Without a
        valid `id_token_hint` nothing is ended and nobody is redirected."""
        params = request.form if request.method == "POST" else request.args
        claims = issuer.read_id_token(params.get("id_token_hint", ""))
        if claims is None:
            return page(message_page("无法退出登录", "缺少有效的登录凭据（id_token_hint）。"), 400)
        sign_in.end_session(claims["sid"])
        target = params.get("post_logout_redirect_uri")
        if target:
            if not url_under(target, public_url, ("/",)):
                return page(message_page("无法退出登录", "退出后的返回地址不被允许。"), 400)
            return redirect(with_query(target, state=params.get("state")), code=302)
        return page(message_page("已退出登录", "您已安全退出，可以关闭此页面。"))

    return bp


class AuthorizationRefused(Exception):
    """An authorization request that cannot go on: shown, or sent back to `redirect_to`."""

    def __init__(self, message: str, redirect_to: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.redirect_to = redirect_to


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
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey) or loaded.key_size < 2048:
        raise ValueError(f"{path} does not hold an RSA private key of at least 2048 bits")
    return loaded

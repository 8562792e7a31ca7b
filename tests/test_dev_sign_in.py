"""The development issuer's browser sign-in: authorization code + PKCE, refresh, logout.

Driven over HTTP as oidc-client-ts drives it (the Flask test client is the browser here; the
real browser comes in tests/browser/), against the real PostgreSQL and Redis of the session.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from villagelink.platform.identity.accounts import DevDirectory
from villagelink.platform.identity.dev_issuer import DevIssuer
from villagelink.tenants.demo.accounts import DEMO_PASSWORD, demo_accounts, seed_demo_accounts

from .conftest import new_village

OIDC = "/dev-issuer/realms/villagelink/protocol/openid-connect"
ME = "{ me { subject username roles clientId } }"


@dataclass
class Account:
    username: str
    password: str
    sub: str


@pytest.fixture(scope="module")
def admin(db, village) -> Account:
    login = DevDirectory(db).invite(
        village.slug, "village-admin", f"a-{uuid.uuid4().hex[:8]}", "王芳"
    )
    return Account(login.username, login.temporary_password, login.sub)


@pytest.fixture(scope="module")
def village(db):
    return new_village(db)


@pytest.fixture(scope="module")
def resident(db, village) -> Account:
    login = DevDirectory(db).invite(village.slug, "resident", f"r-{uuid.uuid4().hex[:8]}", "李四")
    return Account(login.username, login.temporary_password, login.sub)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def redirect_uri(settings, path: str = "/console/callback") -> str:
    return settings.public_url.rstrip("/") + path


def auth_params(settings, challenge: str, **changes) -> dict[str, str]:
    params = {
        "client_id": "villagelink-console",
        "response_type": "code",
        "redirect_uri": redirect_uri(settings),
        "scope": "openid profile",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return {k: v for k, v in {**params, **changes}.items() if v is not None}


def sign_in(client, params: dict[str, str], account: Account):
    return client.post(
        f"{OIDC}/auth",
        data={**params, "username": account.username, "password": account.password},
    )


def code_of(answer, params) -> str:
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == params["redirect_uri"]
    query = parse_qs(location.query)
    assert query["state"] == [params["state"]]
    return query["code"][0]


def exchange(client, params, code: str, verifier: str, **changes):
    data = {
        "grant_type": "authorization_code",
        "client_id": params["client_id"],
        "redirect_uri": params["redirect_uri"],
        "code": code,
        "code_verifier": verifier,
        **changes,
    }
    return client.post(f"{OIDC}/token", data={k: v for k, v in data.items() if v is not None})


def signed_in(client, settings, account: Account, **changes):
    """A completed sign-in: (authorization params, token answer body)."""
    verifier, challenge = pkce()
    params = auth_params(settings, challenge, **changes)
    code = code_of(sign_in(client, params, account), params)
    answer = exchange(client, params, code, verifier)
    assert answer.status_code == 200, answer.get_json()
    return params, answer.get_json()


def refresh(client, refresh_token: str, client_id: str = "villagelink-console"):
    return client.post(
        f"{OIDC}/token",
        data={
            "grant_type": "refresh_token",
            "client_id": client_id,
            "refresh_token": refresh_token,
        },
    )


def oauth_error(answer, status: int = 400) -> str:
    assert answer.status_code == status, answer.get_data(as_text=True)[:300]
    assert answer.is_json
    assert answer.headers["Cache-Control"] == "no-store"
    return answer.get_json()["error"]


def test_discovery_offers_what_oidc_client_ts_needs(client, settings):
    found = client.get("/dev-issuer/realms/villagelink/.well-known/openid-configuration").json
    base = settings.issuer + "/protocol/openid-connect"
    assert found["authorization_endpoint"] == base + "/auth"
    assert found["token_endpoint"] == base + "/token"
    assert found["end_session_endpoint"] == base + "/logout"
    assert found["response_types_supported"] == ["code"]
    assert found["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "refresh_token"} <= set(found["grant_types_supported"])


def test_login_page_is_chinese_and_labelled(client, settings):
    _, challenge = pkce()
    page = client.get(f"{OIDC}/auth", query_string=auth_params(settings, challenge))
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert '<html lang="zh-CN">' in text
    assert '<label for="username">用户名</label>' in text
    assert '<label for="password">密码</label>' in text
    assert ">登录</button>" in text
    assert "village-admin-xinghua" in text  # the development hint
    assert "script" not in text.lower()
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["Cache-Control"] == "no-store"


def test_wrong_password_is_said_in_chinese_and_gives_no_code(client, settings, admin):
    _, challenge = pkce()
    params = auth_params(settings, challenge)
    answer = sign_in(client, params, Account(admin.username, "wrong-password", admin.sub))
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert "用户名或密码错误" in text and 'role="alert"' in text
    assert f'value="{admin.username}"' in text  # kept for the second try
    assert "Location" not in answer.headers


def test_code_with_pkce_gives_tokens_that_the_api_accepts(client, settings, admin, gql):
    params, body = signed_in(client, settings, admin)
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    status, me = gql(ME, body["access_token"])
    assert status == 200, me
    assert me["data"]["me"]["subject"] == admin.sub
    assert me["data"]["me"]["clientId"] == "villagelink-console"
    key = DevIssuer(settings).jwks()["keys"][0]
    id_token = jwt.decode(
        body["id_token"],
        jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience="villagelink-console",
        issuer=settings.issuer,
    )
    assert id_token["nonce"] == params["nonce"]
    assert id_token["sub"] == admin.sub
    assert id_token["preferred_username"] == admin.username
    assert id_token["name"] == "王芳"
    assert len(body["refresh_token"]) >= 40


def test_a_wrong_verifier_is_refused_and_spends_the_code(client, settings, admin):
    verifier, challenge = pkce()
    params = auth_params(settings, challenge)
    code = code_of(sign_in(client, params, admin), params)
    assert oauth_error(exchange(client, params, code, pkce()[0])) == "invalid_grant"
    # The right verifier comes too late: a code is tried once.
    assert oauth_error(exchange(client, params, code, verifier)) == "invalid_grant"
    # A verifier outside RFC 7636's alphabet or length is refused, never a 500.
    code = code_of(sign_in(client, params, admin), params)
    assert oauth_error(exchange(client, params, code, "short")) == "invalid_grant"


def test_a_code_is_redeemed_once_and_lives_a_minute(client, settings, admin, redis_client):
    verifier, challenge = pkce()
    params = auth_params(settings, challenge)
    code = code_of(sign_in(client, params, admin), params)
    key = "dev-issuer:code:" + hashlib.sha256(code.encode()).hexdigest()
    assert 55 <= redis_client.ttl(key) <= 60
    assert exchange(client, params, code, verifier).status_code == 200
    assert oauth_error(exchange(client, params, code, verifier)) == "invalid_grant"


def test_the_code_is_bound_to_its_redirect_uri_and_client(client, settings, admin):
    verifier, challenge = pkce()
    params = auth_params(settings, challenge)
    code = code_of(sign_in(client, params, admin), params)
    other = redirect_uri(settings, "/console/elsewhere")
    assert oauth_error(exchange(client, params, code, verifier, redirect_uri=other)) == (
        "invalid_grant"
    )
    code = code_of(sign_in(client, params, admin), params)
    answer = exchange(client, params, code, verifier, client_id="villagelink-residents")
    assert oauth_error(answer) == "invalid_grant"
    code = code_of(sign_in(client, params, admin), params)
    answer = exchange(client, params, code, verifier, client_id="demo-integrator")
    assert oauth_error(answer, 401) == "invalid_client"


@pytest.mark.parametrize(
    "redirect",
    [
        "https://evil.example/console/callback",
        "http://127.0.0.1:1/console/callback",
        "/console/callback",
        "{base}/graphql",
        "{base}/console/../graphql",
        "{base}/h5/callback",  # the residents' app's, not the console's
        "{base}/console/callback#x",
        "",
    ],
)
def test_a_redirect_uri_outside_the_consoles_is_never_followed(client, settings, redirect):
    _, challenge = pkce()
    params = auth_params(
        settings, challenge, redirect_uri=redirect.format(base=settings.public_url.rstrip("/"))
    )
    for answer in (
        client.get(f"{OIDC}/auth", query_string=params),
        client.post(f"{OIDC}/auth", data=params),
    ):
        assert answer.status_code == 400
        assert "Location" not in answer.headers
        assert "返回地址" in answer.get_data(as_text=True)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "x" * 10}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "profile"}, "invalid_scope"),
    ],
)
def test_bad_authorization_requests_go_back_as_oauth_errors(client, settings, changes, error):
    _, challenge = pkce()
    params = auth_params(settings, challenge, **changes)
    answer = client.get(f"{OIDC}/auth", query_string=params)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    query = parse_qs(location.query)
    assert query["error"] == [error]
    assert query["state"] == [params["state"]]
    assert "code" not in query


def test_unknown_client_is_shown_not_redirected(client, settings):
    _, challenge = pkce()
    answer = client.get(
        f"{OIDC}/auth", query_string=auth_params(settings, challenge, client_id="demo-integrator")
    )
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert "未知的应用" in answer.get_data(as_text=True)


def test_refresh_tokens_rotate(client, settings, admin, gql):
    _, body = signed_in(client, settings, admin)
    renewed = refresh(client, body["refresh_token"])
    assert renewed.status_code == 200, renewed.get_json()
    fresh = renewed.get_json()
    assert fresh["refresh_token"] != body["refresh_token"]
    assert gql(ME, fresh["access_token"])[1]["data"]["me"]["subject"] == admin.sub
    # The used one is spent; the new one works once, for its own client only.
    assert oauth_error(refresh(client, body["refresh_token"])) == "invalid_grant"
    assert oauth_error(refresh(client, fresh["refresh_token"], "villagelink-residents")) == (
        "invalid_grant"
    )
    assert oauth_error(refresh(client, fresh["refresh_token"])) == "invalid_grant"


def test_a_disabled_account_cannot_refresh(client, settings, db, village):
    login = DevDirectory(db).invite(
        village.slug, "village-admin", f"d-{uuid.uuid4().hex[:8]}", "赵"
    )
    account = Account(login.username, login.temporary_password, login.sub)
    _, body = signed_in(client, settings, account)
    DevDirectory(db).set_enabled(login.sub, False)
    assert oauth_error(refresh(client, body["refresh_token"])) == "invalid_grant"


def test_logout_ends_the_session_and_redirects(client, settings, admin):
    _, body = signed_in(client, settings, admin)
    _, other = signed_in(client, settings, admin)  # another session of the same person
    renewed = refresh(client, body["refresh_token"]).get_json()
    target = redirect_uri(settings, "/console/")
    answer = client.get(
        f"{OIDC}/logout",
        query_string={
            "id_token_hint": body["id_token"],
            "post_logout_redirect_uri": target,
            "state": "s1",
        },
    )
    assert answer.status_code == 302
    assert answer.headers["Location"] == target + "?state=s1"
    # Every refresh token the session had (the rotated one too) is gone; the other stays.
    assert oauth_error(refresh(client, renewed["refresh_token"])) == "invalid_grant"
    assert refresh(client, other["refresh_token"]).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"id_token_hint": "not-a-token"},
        {"id_token_hint": "{access}"},  # an access token is not an ID token
        {"id_token_hint": "{id}", "post_logout_redirect_uri": "https://evil.example/"},
    ],
)
def test_logout_without_a_valid_hint_or_target_redirects_nowhere(client, settings, admin, params):
    _, body = signed_in(client, settings, admin)
    filled = {
        k: v.format(access=body["access_token"], id=body["id_token"]) for k, v in params.items()
    }
    answer = client.get(f"{OIDC}/logout", query_string=filled)
    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert "无法退出登录" in answer.get_data(as_text=True)


def test_residents_sign_in_through_the_residents_app_only(client, settings, resident, admin, gql):
    _, challenge = pkce()
    console = sign_in(client, auth_params(settings, challenge), resident)
    assert console.status_code == 200 and "居民账号请在居民端登录" in console.get_data(as_text=True)
    h5 = {"client_id": "villagelink-residents", "redirect_uri": redirect_uri(settings, "/h5/cb")}
    staff = sign_in(client, auth_params(settings, challenge, **h5), admin)
    assert staff.status_code == 200 and "不是居民账号" in staff.get_data(as_text=True)
    _, body = signed_in(client, settings, resident, **h5)
    me = gql(ME, body["access_token"])[1]["data"]["me"]
    assert me["roles"] == ["resident"] and me["clientId"] == "villagelink-residents"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"grant_type": "authorization_code"},
        {
            "grant_type": "authorization_code",
            "client_id": "villagelink-console",
            "code": "x" * 5000,
        },
        {"grant_type": "refresh_token", "client_id": "villagelink-console"},
        {
            "grant_type": "refresh_token",
            "client_id": "villagelink-console",
            "refresh_token": "\x00",
        },
        {"grant_type": "implicit"},
        {"grant_type": ["authorization_code", "refresh_token"]},
    ],
)
def test_bad_token_requests_are_oauth_errors(client, data):
    answer = client.post(f"{OIDC}/token", data=data)
    assert answer.status_code in (400, 401), answer.get_data(as_text=True)[:300]
    assert answer.get_json()["error"] in (
        "invalid_grant",
        "invalid_client",
        "invalid_request",
        "unsupported_grant_type",
    )


def test_garbage_at_the_authorization_endpoint_is_never_a_500(client):
    for query in (
        "client_id=%FF%FE",
        "redirect_uri=%00&client_id=villagelink-console",
        "x=" + "y" * 9000,
    ):
        answer = client.get(f"{OIDC}/auth?{query}")
        assert answer.status_code == 400


def test_demo_accounts_sign_in_with_the_demo_password(client, settings, db, gql):
    seed_demo_accounts(db)
    assert seed_demo_accounts(db) == 0  # made once
    chosen = {
        "village-admin-xinghua": "/villages/xinghua",
        "regional-coordinator-nanhe": "/regions/nanhe",
    }
    for account in demo_accounts():
        if account.username not in chosen:
            continue
        _, body = signed_in(client, settings, Account(account.username, DEMO_PASSWORD, ""))
        me = gql(ME, body["access_token"])[1]["data"]["me"]
        assert me["subject"] == account.subject
        assert me["roles"] == [account.role]
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["groups"] == [chosen[account.username]]

"""The development issuer's browser sign-in: authorization codes, refresh tokens, the login page.

What Keycloak's standard flow gives the console (authorization code with PKCE S256, refresh
tokens, end of session), kept in Redis because the gateway runs as several processes and a
code made by one is redeemed at another. A code lives 60 seconds and is taken with GETDEL, so
it is redeemed once at most; a refresh token lives 8 hours, is replaced by a new one each time
it is used, and belongs to a session whose logout ends every refresh token it still has.
Codes and tokens are stored under their SHA-256, never as themselves.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from urllib.parse import urlencode, urlsplit

import redis

CODE_SECONDS = 60
REFRESH_SECONDS = 8 * 3600
# RFC 7636: 43 to 128 characters of the unreserved set.
VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")
_PREFIX = "dev-issuer:"


class OAuthError(Exception):
    """A refused OAuth request: `error` is the RFC 6749 code, `description` says why."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class Authorization:
    """Who signed in, for which client, and what the code is bound to."""

    sub: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    session: str
    scope: str = "openid"


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _key(kind: str, secret: str) -> str:
    return _PREFIX + kind + ":" + hashlib.sha256(secret.encode()).hexdigest()


class SignInStore:
    """Codes, refresh tokens and sessions in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def new_code(self, authorization: Authorization) -> str:
        code = secrets.token_urlsafe(32)
        self.redis.set(_key("code", code), json.dumps(asdict(authorization)), ex=CODE_SECONDS)
        return code

    def take_code(self, code: str) -> Authorization | None:
        """The code's authorization, which no later call gets again."""
        raw = self.redis.getdel(_key("code", code))
        return None if raw is None else Authorization(**json.loads(raw))

    def new_refresh_token(self, authorization: Authorization) -> str:
        token = secrets.token_urlsafe(32)
        key = _key("refresh", token)
        session = _PREFIX + "session:" + authorization.session
        with self.redis.pipeline() as pipe:
            pipe.set(key, json.dumps(asdict(authorization)), ex=REFRESH_SECONDS)
            pipe.sadd(session, key)
            pipe.expire(session, REFRESH_SECONDS)
            pipe.execute()
        return token

    def take_refresh_token(self, token: str) -> Authorization | None:
        key = _key("refresh", token)
        raw = self.redis.getdel(key)
        if raw is None:
            return None
        authorization = Authorization(**json.loads(raw))
        self.redis.srem(_PREFIX + "session:" + authorization.session, key)
        return authorization

    def end_session(self, session: str) -> int:
        """Revoke every refresh token of the session; how many there were."""
        members = self.redis.smembers(_PREFIX + "session:" + session)
        if not members:
            return 0
        with self.redis.pipeline() as pipe:
            pipe.delete(*members)
            pipe.delete(_PREFIX + "session:" + session)
            ended = pipe.execute()[0]
        return int(ended)


def new_session() -> str:
    return secrets.token_urlsafe(16)


def check_pkce(verifier: str, challenge: str) -> bool:
    return bool(VERIFIER.fullmatch(verifier)) and secrets.compare_digest(s256(verifier), challenge)


def url_under(url: str, base: str, prefixes: Sequence[str]) -> bool:
    """Whether `url` is on `base`'s origin under one of the path `prefixes`, with no
    fragment and no `..` segment (a browser would resolve it elsewhere)."""
    parts, origin = urlsplit(url), urlsplit(base)
    if (parts.scheme, parts.netloc) != (origin.scheme, origin.netloc) or parts.fragment:
        return False
    if any(segment in ("..", ".") for segment in parts.path.split("/")) or "\\" in url:
        return False
    return any(parts.path == p.rstrip("/") or parts.path.startswith(p) for p in prefixes)


def with_query(url: str, **params: str | None) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return url + ("&" if urlsplit(url).query else "?") + query


# --- the pages --------------------------------------------------------------------------------

_STYLE = """
body{margin:0;font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;
background:#f2f3f5;color:#1f2329}
main{max-width:360px;margin:10vh auto;background:#fff;padding:32px;border-radius:8px;
box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:22px;margin:0 0 24px}
label{display:block;margin:16px 0 6px;font-size:15px}
input{box-sizing:border-box;width:100%;height:44px;padding:0 12px;font-size:16px;
border:1px solid #8a8f99;border-radius:4px}
button{margin-top:24px;width:100%;height:44px;font-size:16px;color:#fff;background:#1d5fd6;
border:0;border-radius:4px;cursor:pointer}
button:focus,input:focus{outline:3px solid #79a6f2;outline-offset:1px}
.error{margin:0 0 8px;padding:10px 12px;background:#fdecec;color:#a3141d;border-radius:4px}
.hint{margin-top:28px;font-size:14px;color:#4e5969}
.hint code{color:#1f2329}
"""


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def login_page(
    request_params: dict[str, str],
    *,
    error: str | None,
    username: str,
    demo_usernames: Sequence[str],
    demo_password: str | None,
) -> str:
    """The zh-CN sign-in form; the authorization request rides along in hidden fields."""
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in request_params.items()
    )
    alert = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    hint = ""
    if demo_usernames:
        names = "、".join(f"<code>{html.escape(u)}</code>" for u in demo_usernames)
        password = (
            f"，密码 <code>{html.escape(demo_password)}</code>（仅限开发环境）"
            if demo_password
            else ""
        )
        hint = f'<p class="hint">开发环境演示账号：{names}{password}。</p>'
    body = (
        "<h1>登录 villagelink</h1>"
        f"{alert}"
        '<form method="post" autocomplete="on">'
        f"{hidden}"
        '<label for="username">用户名</label>'
        f'<input id="username" name="username" autocomplete="username" required autofocus '
        f'value="{html.escape(username)}">'
        '<label for="password">密码</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" '
        "required>"
        '<button type="submit">登录</button>'
        "</form>"
        f"{hint}"
    )
    return _document("登录 - villagelink", body)


def message_page(title: str, message: str) -> str:
    body = f'<h1>{html.escape(title)}</h1><p role="alert">{html.escape(message)}</p>'
    return _document(title, body)

"""API clients (集成方): the one place they change, for GraphQL and the CLI alike.

Platform admins register a client (its id, name and scopes), rotate its secret and disable
or enable it; the client itself lives in the account directory (a confidential Keycloak
client with client credentials, or the development issuer's secret), its reach in
`platform.api_clients`. Which villages it reaches is each village's consent: a village admin
grants or withdraws their own village. A secret is returned once by the call that makes it.
Every change is audited in the same transaction.

The gateway notes when each client was last used, at most once a minute per client.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import redis
from marshmallow import Schema, fields, validate
from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert

from villagelink.platform import models as pm
from villagelink.platform.access import API_SCOPES
from villagelink.platform.audit import Actor, record
from villagelink.platform.db import SLUG_PATTERN
from villagelink.platform.identity.accounts import AccountDirectory
from villagelink.platform.identity.keycloak_admin import AccountExists
from villagelink.tenants.fields import FreeText, messages
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID,
    INVALID_TRANSITION,
    NOT_FOUND,
    Coded,
    refused,
    validated,
)

log = logging.getLogger(__name__)

API_CLIENT = "ApiClient"
# Keycloak client ids of our own making: lower case, digits and dashes.
CLIENT_ID = re.compile(r"^[a-z][a-z0-9-]{2,62}$")
# How often, at most, the gateway writes a client's last use.
LAST_USE_INTERVAL_SECONDS = 60


def _client_id_field() -> fields.String:
    return fields.String(
        required=True,
        validate=validate.Regexp(
            CLIENT_ID,
            error=Coded("客户端标识须为3到63位小写字母、数字和连字符，以字母开头", INVALID),
        ),
        error_messages=messages(),
    )


class ClientRefSchema(Schema):
    """The client a step acts on, and for consent the village (a slug)."""

    client_id = _client_id_field()
    village = fields.String(
        validate=validate.Regexp(SLUG_PATTERN, error=Coded("村标识格式不正确", INVALID)),
        error_messages=messages(),
    )


class ClientSchema(Schema):
    client_id = _client_id_field()
    name = FreeText("名称", 100, required=True)
    scopes = fields.List(
        fields.String(
            validate=validate.OneOf(API_SCOPES, error=Coded("权限范围取值无效", INVALID)),
            error_messages=messages(),
        ),
        required=True,
        error_messages=messages(),
    )


def _locked(conn: Connection, client_id: str, village: str | None = None) -> dict:
    """The client's row, locked, once its id (and village) pass validation."""
    ref = (
        {"client_id": client_id}
        if village is None
        else {"client_id": client_id, "village": village}
    )
    validated(ClientRefSchema(), ref)
    c = pm.api_clients
    row = (
        conn.execute(select(c).where(c.c.client_id == client_id).with_for_update())
        .mappings()
        .first()
    )
    if row is None:
        raise refused("clientId", "客户端不存在", NOT_FOUND)
    return dict(row)


def _changed(conn: Connection, client_id: str, **values: Any) -> dict:
    c = pm.api_clients
    return dict(
        conn.execute(update(c).where(c.c.client_id == client_id).values(**values).returning(*c.c))
        .mappings()
        .one()
    )


def _audit(conn: Connection, actor: Actor, action: str, client_id: str, **what: Any) -> None:
    record(
        conn,
        actor,
        village=what.pop("village", None),
        action=f"api_client.{action}",
        subject_type=API_CLIENT,
        subject_id=client_id,
        **what,
    )


def clients(conn: Connection) -> list[dict]:
    """Every client, by id: one statement."""
    c = pm.api_clients
    return [dict(row) for row in conn.execute(select(c).order_by(c.c.client_id)).mappings()]


def do_register_client(
    conn: Connection, actor: Actor, directory: AccountDirectory, data: dict[str, Any]
) -> tuple[dict, str]:
    """A new client with no village yet; it and its secret."""
    values = validated(ClientSchema(), data)
    values["scopes"] = sorted(set(values["scopes"]))
    c = pm.api_clients
    if conn.execute(select(c.c.client_id).where(c.c.client_id == values["client_id"])).first():
        raise refused("clientId", "该客户端标识已被使用", DUPLICATE)
    try:
        secret = directory.register_client(values["client_id"], values["name"])
    except AccountExists as exists:
        raise refused("clientId", "该客户端标识已被使用", DUPLICATE) from exists
    row = dict(conn.execute(insert(c).values(**values).returning(*c.c)).mappings().one())
    _audit(conn, actor, "register", row["client_id"], details={"scopes": values["scopes"]})
    return row, secret


def do_rotate_client_secret(
    conn: Connection, actor: Actor, directory: AccountDirectory, client_id: str
) -> tuple[dict, str]:
    """A new secret; the old one stops working at once."""
    row = _locked(conn, client_id)
    secret = directory.rotate_client_secret(client_id)
    _audit(conn, actor, "rotate_secret", client_id)
    return row, secret


def do_set_client_enabled(
    conn: Connection, actor: Actor, directory: AccountDirectory, client_id: str, enabled: bool
) -> dict:
    """Disable (its tokens reach nothing, new ones are refused) or enable again."""
    row = _locked(conn, client_id)
    if row["enabled"] == enabled:
        raise refused("clientId", "客户端已启用" if enabled else "客户端已停用", INVALID_TRANSITION)
    directory.set_client_enabled(client_id, enabled)
    row = _changed(conn, client_id, enabled=enabled)
    _audit(conn, actor, "enable" if enabled else "disable", client_id)
    return row


def do_grant_village(conn: Connection, actor: Actor, client_id: str, village: str) -> dict:
    """The village consents: the client reaches it within its scopes."""
    row = _locked(conn, client_id, village)
    t = pm.tenants
    if conn.execute(select(t.c.slug).where(t.c.slug == village)).first() is None:
        raise refused("village", "村不存在", NOT_FOUND)
    if village in row["villages"]:
        raise refused("village", "该客户端已获本村授权", INVALID_TRANSITION)
    row = _changed(conn, client_id, villages=sorted({*row["villages"], village}))
    _audit(conn, actor, "grant", client_id, village=village, details={"scopes": row["scopes"]})
    return row


def do_withdraw_village(conn: Connection, actor: Actor, client_id: str, village: str) -> dict:
    """The village withdraws its consent: the client's tokens stop reaching it at once."""
    row = _locked(conn, client_id, village)
    if village not in row["villages"]:
        raise refused("village", "该客户端未获本村授权", INVALID_TRANSITION)
    row = _changed(conn, client_id, villages=[v for v in row["villages"] if v != village])
    _audit(conn, actor, "withdraw", client_id, village=village)
    return row


# When this process last asked Redis about each client (time.monotonic()).
_noted: dict[str, float] = {}


def note_use(runtime: Any, client_id: str) -> None:
    """Record that `client_id` called the API now, at most once a minute: a Redis key that
    lives for the interval decides who writes. Without Redis nothing is written (the note
    must stay cheap), and a failure never fails the request."""
    # Each gateway process asks Redis at most once an interval per client, so that an
    # integrator's every request does not pay a Redis round trip for this note.
    now = time.monotonic()
    if now - _noted.get(client_id, -LAST_USE_INTERVAL_SECONDS) < LAST_USE_INTERVAL_SECONDS:
        return
    _noted[client_id] = now
    key = f"villagelink:client-used:{client_id}"
    try:
        if not runtime.redis.set(key, 1, nx=True, ex=LAST_USE_INTERVAL_SECONDS):
            return
        with runtime.db.platform() as conn:
            c = pm.api_clients
            conn.execute(
                update(c).where(c.c.client_id == client_id).values(last_used_at=func.now())
            )
    except redis.RedisError as error:
        log.warning("last use of client %s not recorded: %s", client_id, error)
    except Exception:
        log.warning("last use of client %s not recorded", client_id, exc_info=True)

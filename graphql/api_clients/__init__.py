"""API clients in the API: the list, and the platform admins' and villages' mutations.

Platform admins register, rotate, disable and enable clients and see them all; a village
admin sees the enabled clients (to choose whom to consent to) and grants or withdraws
their own village; withdrawing is open to platform admins too. Every other caller gets
FORBIDDEN. Each mutation is a platform transaction of its own, through the same actions
as the CLI (platform/api_clients.py).
"""

from __future__ import annotations

from collections.abc import Callable

from ariadne import MutationType, ObjectType, QueryType
from sqlalchemy import Connection

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.directory import with_directory
from villagelink.graphql.core.errors import Forbidden
from villagelink.graphql.core.payloads import payload
from villagelink.platform import api_clients
from villagelink.platform.identity.accounts import AccountDirectory
from villagelink.platform.identity.principal import VILLAGE_ADMIN

query = QueryType()
mutation = MutationType()
api_client_type = ObjectType("ApiClient")


# A scope is `residents:read` in Python and the tables, ApiScope.RESIDENTS_READ in the API,
# which hands enum values over lower-case (`residents_read`): the colon is swapped here.
def scope_from_api(value: str) -> str:
    return value.replace("_", ":", 1)


@api_client_type.field("scopes")
def resolve_scopes(row: dict, _info) -> list[str]:
    return [scope.replace(":", "_", 1) for scope in row["scopes"]]


def _require_platform_admin(ctx: RequestContext) -> None:
    if not ctx.access.is_platform_admin:
        raise Forbidden("only a platform admin manages API clients")


def _is_village_admin(ctx: RequestContext, village: str) -> bool:
    """The village's own admin: their consent is the village's."""
    return ctx.principal.has(VILLAGE_ADMIN) and village in ctx.principal.villages


def _in_platform(ctx: RequestContext, act: Callable[[Connection], dict], *fields: str) -> dict:
    def run() -> dict:
        with ctx.runtime.db.platform() as conn:
            return act(conn)

    return payload(run, *fields)


@query.field("apiClients")
def resolve_api_clients(_obj, info) -> list[dict]:
    ctx: RequestContext = info.context
    if ctx.access.is_platform_admin:
        with ctx.runtime.db.platform() as conn:
            return api_clients.clients(conn)
    if any(_is_village_admin(ctx, v) for v in ctx.access.writable):
        with ctx.runtime.db.platform() as conn:
            return [c for c in api_clients.clients(conn) if c["enabled"]]
    raise Forbidden("only platform and village admins see API clients")


@mutation.field("registerApiClient")
def resolve_register(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    _require_platform_admin(ctx)
    data = {**input, "scopes": [scope_from_api(s) for s in input["scopes"]]}

    def act(conn: Connection) -> dict:
        def made(directory: AccountDirectory) -> dict:
            row, secret = api_clients.do_register_client(conn, ctx.actor, directory, data)
            return {"api_client": row, "client_secret": secret}

        return with_directory(ctx, made)

    return _in_platform(ctx, act, "api_client", "client_secret")


@mutation.field("rotateApiClientSecret")
def resolve_rotate(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    _require_platform_admin(ctx)

    def act(conn: Connection) -> dict:
        def rotated(directory: AccountDirectory) -> dict:
            row, secret = api_clients.do_rotate_client_secret(
                conn, ctx.actor, directory, input["client_id"]
            )
            return {"api_client": row, "client_secret": secret}

        return with_directory(ctx, rotated)

    return _in_platform(ctx, act, "api_client", "client_secret")


def _switch(enabled: bool) -> Callable:
    def resolve(_obj, info, input: dict) -> dict:
        ctx: RequestContext = info.context
        _require_platform_admin(ctx)

        def act(conn: Connection) -> dict:
            return with_directory(
                ctx,
                lambda directory: {
                    "api_client": api_clients.do_set_client_enabled(
                        conn, ctx.actor, directory, input["client_id"], enabled
                    )
                },
            )

        return _in_platform(ctx, act, "api_client")

    return resolve


mutation.set_field("disableApiClient", _switch(False))
mutation.set_field("enableApiClient", _switch(True))


@mutation.field("grantApiClientVillage")
def resolve_grant(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.village(village)
    if not _is_village_admin(ctx, village):
        raise Forbidden("only the village's own admins consent for it")

    def act(conn: Connection) -> dict:
        row = api_clients.do_grant_village(conn, ctx.actor, input["client_id"], village)
        return {"api_client": row}

    return _in_platform(ctx, act, "api_client")


@mutation.field("withdrawApiClientVillage")
def resolve_withdraw(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.village(village)
    if not (_is_village_admin(ctx, village) or ctx.access.is_platform_admin):
        raise Forbidden("only the village's admins or a platform admin withdraw its consent")

    def act(conn: Connection) -> dict:
        row = api_clients.do_withdraw_village(conn, ctx.actor, input["client_id"], village)
        return {"api_client": row}

    return _in_platform(ctx, act, "api_client")


bindables = [query, mutation, api_client_type]

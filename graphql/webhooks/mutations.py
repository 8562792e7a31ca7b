"""Webhook mutations: the calling integrator client's own subscriptions only.

Each runs in a platform transaction of its own (the subscriptions are the
client's, not a village's), committed before the response is built.
"""

from __future__ import annotations

from collections.abc import Callable

from ariadne import MutationType
from sqlalchemy import Connection

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden
from villagelink.graphql.core.payloads import payload
from villagelink.graphql.webhooks.ids import webhook_key
from villagelink.graphql.webhooks.types import delivery_nodes, subscription_nodes
from villagelink.jobs.webhooks import enqueue_deliveries
from villagelink.platform.identity.principal import INTEGRATOR
from villagelink.platform.webhooks import actions
from villagelink.platform.webhooks.ids import DELIVERY, SUBSCRIPTION, subscription_gid
from villagelink.platform.webhooks.queries import Client, client_of
from villagelink.tenants import clock

mutation = MutationType()


def _client(ctx: RequestContext, conn: Connection) -> Client:
    p = ctx.principal
    if not (p.has(INTEGRATOR) and p.client_id):
        raise Forbidden("only an integrator's client manages its webhook subscriptions")
    client = client_of(conn, p.client_id)
    if client is None:
        raise Forbidden("this client is not registered or is disabled")
    return client


def _run(info, fields: tuple[str, ...], act: Callable[[Connection, Client], dict]) -> dict:
    """`act(conn, client)` in a platform transaction; a refusal rolls it back."""
    ctx: RequestContext = info.context

    def run() -> dict:
        with ctx.runtime.db.platform() as conn:
            return act(conn, _client(ctx, conn))

    return payload(run, *fields)


def _subscription_key(raw: str) -> int:
    return webhook_key(raw, SUBSCRIPTION, "id", "订阅不存在")


def _one(info, row: dict) -> dict:
    [node] = subscription_nodes(info.context.runtime.db, [row])
    return node


@mutation.field("createWebhookSubscription")
def resolve_create(_obj, info, input: dict) -> dict:
    data = {k: input[k] for k in ("url", "event_types")}

    def act(conn: Connection, client: Client) -> dict:
        row, secret = actions.do_create_subscription(conn, info.context.actor, client, data)
        return {"subscription": _one(info, row), "secret": secret}

    return _run(info, ("subscription", "secret"), act)


@mutation.field("updateWebhookSubscription")
def resolve_update(_obj, info, input: dict) -> dict:
    changes = {k: input[k] for k in ("url", "event_types") if input.get(k) is not None}

    def act(conn: Connection, client: Client) -> dict:
        row = actions.do_update_subscription(
            conn, info.context.actor, client, _subscription_key(input["id"]), changes
        )
        return {"subscription": _one(info, row)}

    return _run(info, ("subscription",), act)


@mutation.field("deleteWebhookSubscription")
def resolve_delete(_obj, info, input: dict) -> dict:
    def act(conn: Connection, client: Client) -> dict:
        deleted = actions.do_delete_subscription(
            conn, info.context.actor, client, _subscription_key(input["id"])
        )
        return {"deleted_id": subscription_gid(deleted)}

    return _run(info, ("deleted_id",), act)


@mutation.field("rotateWebhookSecret")
def resolve_rotate(_obj, info, input: dict) -> dict:
    def act(conn: Connection, client: Client) -> dict:
        row, secret = actions.do_rotate_secret(
            conn, info.context.actor, client, _subscription_key(input["id"])
        )
        return {"subscription": _one(info, row), "secret": secret}

    return _run(info, ("subscription", "secret"), act)


@mutation.field("resumeWebhookSubscription")
def resolve_resume(_obj, info, input: dict) -> dict:
    def act(conn: Connection, client: Client) -> dict:
        row = actions.do_resume_subscription(
            conn, info.context.actor, client, _subscription_key(input["id"])
        )
        return {"subscription": _one(info, row)}

    return _run(info, ("subscription",), act)


@mutation.field("redeliverWebhook")
def resolve_redeliver(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context

    def act(conn: Connection, client: Client) -> dict:
        key = webhook_key(input["delivery"], DELIVERY, "delivery", "投递记录不存在")
        row = actions.do_redeliver(conn, ctx.actor, client, key, clock.now())
        ctx.after_commit(lambda: enqueue_deliveries(ctx.settings, [row["id"]]))
        [node] = delivery_nodes(ctx.runtime.db, [row])
        return {"delivery": node}

    return _run(info, ("delivery",), act)


bindables = [mutation]

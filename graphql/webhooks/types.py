"""Webhook subscriptions, deliveries and attempts in the API: read from the platform schema.

A page of subscriptions fetches the deliveries of all its subscriptions in one
statement, and the attempts of all those deliveries in one more, so the page
costs the same whatever its size (pinned in tests/test_webhooks.py).
"""

from __future__ import annotations

from ariadne import ObjectType, QueryType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden
from villagelink.graphql.core.nodes import connection_object
from villagelink.graphql.core.pagination import Page, page_args, paginate
from villagelink.platform.db import Database
from villagelink.platform.identity.principal import INTEGRATOR, PLATFORM_ADMIN
from villagelink.platform.webhooks import EVENT_SCOPES
from villagelink.platform.webhooks import queries as q
from villagelink.platform.webhooks.deliveries import envelope_body
from villagelink.platform.webhooks.ids import delivery_gid, subscription_gid

query = QueryType()
subscription_type = ObjectType("WebhookSubscription")
delivery_type = ObjectType("WebhookDelivery")


def visible_client(ctx: RequestContext) -> str | None:
    """Whose subscriptions the caller sees: its own client's, or every client's (None)
    for a platform admin. Nobody else has any."""
    p = ctx.principal
    if p.has(INTEGRATOR) and p.client_id:
        return p.client_id
    if p.has(PLATFORM_ADMIN):
        return None
    raise Forbidden("webhook subscriptions belong to integrators' clients")


class Attempts:
    """The attempts of a set of deliveries shown together, fetched at the first ask."""

    def __init__(self, db: Database, delivery_ids: list[int]):
        self._db, self._ids = db, delivery_ids
        self._found: dict[int, list[dict]] | None = None

    def of(self, delivery_id: int) -> list[dict]:
        if self._found is None:
            with self._db.platform() as conn:
                self._found = q.attempts_of(conn, self._ids)
        return self._found[delivery_id]


def delivery_nodes(db: Database, rows: list[dict]) -> list[dict]:
    attempts = Attempts(db, [row["id"] for row in rows])
    return [{**row, "_attempts": attempts} for row in rows]


class Deliveries:
    """The deliveries of a page of subscriptions, fetched together for each set of
    arguments asked (normally one)."""

    def __init__(self, db: Database, subscription_ids: list[int]):
        self._db, self._ids = db, subscription_ids
        self._pages: dict[tuple, dict[int, list[dict]]] = {}
        self._counts: dict[str | None, dict[int, int]] = {}

    def page(self, subscription_id: int, state: str | None, page: Page) -> list[dict]:
        key = (state, page.after_id, page.first)
        if key not in self._pages:
            with self._db.platform() as conn:
                found = q.delivery_pages(
                    conn, self._ids, state=state, after_id=page.after_id, limit=page.first + 1
                )
            # One batch of attempts for every delivery this page shows, of all subscriptions.
            shown = delivery_nodes(self._db, [r for rows in found.values() for r in rows])
            by_id = {row["id"]: row for row in shown}
            self._pages[key] = {sid: [by_id[r["id"]] for r in rows] for sid, rows in found.items()}
        return self._pages[key][subscription_id]

    def count(self, subscription_id: int, state: str | None) -> int:
        if state not in self._counts:
            with self._db.platform() as conn:
                self._counts[state] = q.delivery_counts(conn, self._ids, state=state)
        return self._counts[state][subscription_id]


def subscription_nodes(db: Database, rows: list[dict]) -> list[dict]:
    deliveries = Deliveries(db, [row["id"] for row in rows])
    return [{**row, "_deliveries": deliveries} for row in rows]


@query.field("webhookEventTypes")
def resolve_event_types(*_args) -> list[dict]:
    return [{"name": name, "scope": scope} for name, scope in EVENT_SCOPES.items()]


@query.field("webhookSubscriptions")
def resolve_subscriptions(_obj, info, first=None, after=None):
    ctx: RequestContext = info.context
    client_id = visible_client(ctx)
    page = page_args(first, after, ctx.settings.max_page_size)
    db = ctx.runtime.db

    def fetch(limit: int) -> list[dict]:
        with db.platform() as conn:
            rows = q.subscription_page(conn, client_id, after_id=page.after_id, limit=limit)
        # The extra row that tells of a next page is not shown: no deliveries for it.
        return subscription_nodes(db, rows[: page.first]) + rows[page.first :]

    def count() -> int:
        with db.platform() as conn:
            return q.subscription_count(conn, client_id)

    return paginate(fetch, page, count)


@subscription_type.field("id")
def resolve_subscription_id(subscription: dict, _info) -> str:
    return subscription_gid(subscription["id"])


@subscription_type.field("deliveries")
def resolve_deliveries(subscription: dict, info, first=None, after=None, state=None):
    page = page_args(first, after, info.context.settings.max_page_size)
    batch: Deliveries = subscription["_deliveries"]
    return paginate(
        lambda _limit: batch.page(subscription["id"], state, page),
        page,
        count=lambda: batch.count(subscription["id"], state),
    )


@delivery_type.field("id")
def resolve_delivery_id(delivery: dict, _info) -> str:
    return delivery_gid(delivery["id"])


@delivery_type.field("redeliveryOf")
def resolve_redelivery_of(delivery: dict, _info) -> str | None:
    original = delivery["redelivery_of"]
    return None if original is None else delivery_gid(original)


delivery_type.set_field("eventId", lambda delivery, *_: str(delivery["event_id"]))
delivery_type.set_field("attemptCount", lambda delivery, *_: delivery["attempts"])
delivery_type.set_field("body", lambda delivery, *_: envelope_body(delivery).decode())
delivery_type.set_field("attempts", lambda delivery, *_: delivery["_attempts"].of(delivery["id"]))

bindables = [
    query,
    subscription_type,
    delivery_type,
    connection_object("WebhookSubscriptionConnection"),
    connection_object("WebhookDeliveryConnection"),
]

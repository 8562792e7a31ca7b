"""Writes to an integrator's webhook subscriptions: the only place they change.

Each action works on the calling client's own subscriptions (another client's
are simply not found), validates its input, writes inside a savepoint of the
caller's platform transaction and leaves an audit entry (village None: a
subscription is the client's, across its villages). The secret is made here,
server-side, and handed out only by subscribe and rotate.

Subscription states: active ⇄ paused. Delivery failure pauses (the delivery
job); only the client resumes (`do_resume_subscription`). Resuming sends
nothing again by itself: what failed meanwhile is replayed one delivery at a
time with `do_redeliver`, because alerts hours old are better read from the
alerts feed than replayed wholesale into a grid workers' app.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func
from sqlalchemy.exc import IntegrityError

from villagelink.platform.audit import Actor, record
from villagelink.platform.webhooks import EVENT_SCOPES
from villagelink.platform.webhooks.deliveries import SECRET_PREFIX
from villagelink.platform.webhooks.ids import DELIVERY, SUBSCRIPTION
from villagelink.platform.webhooks.queries import Client, owned_delivery, subscription
from villagelink.platform.webhooks.tables import (
    ACTIVE,
    FAILED,
    PAUSED,
    PENDING,
    webhook_deliveries,
    webhook_subscriptions,
)
from villagelink.platform.webhooks.validation import SubscriptionSchema
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID_TRANSITION,
    NOT_FOUND,
    ActionFailed,
    UserError,
    refused,
    validated,
)

# The client lacks the scope an event type needs (EVENT_SCOPES).
MISSING_SCOPE = "MISSING_SCOPE"
SECRET_BYTES = 32

s = webhook_subscriptions


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and the standard base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _require_scopes(client: Client, event_types: list[str]) -> None:
    missing = [t for t in event_types if EVENT_SCOPES[t] not in client.scopes]
    if missing:
        scopes = sorted({EVENT_SCOPES[t] for t in missing})
        raise ActionFailed(
            [
                UserError(
                    "eventTypes",
                    f"客户端未获授权 {'、'.join(scopes)}，不能订阅 {'、'.join(missing)}",
                    MISSING_SCOPE,
                )
            ]
        )


def _subscription(conn: Connection, client: Client, subscription_id: int) -> dict:
    found = subscription(conn, client.client_id, subscription_id)
    if found is None:
        raise refused("id", "订阅不存在", NOT_FOUND)
    return found


def _write(conn: Connection, statement) -> int:
    """Run an insert or update of a subscription; a second one for the same URL is refused."""
    try:
        with conn.begin_nested():
            return conn.execute(statement.returning(s.c.id)).scalar_one()
    except IntegrityError as exc:
        raise refused("url", "该网址已有订阅", DUPLICATE) from exc


def _audit(conn: Connection, actor: Actor, action: str, subject_id: int, **what: Any) -> None:
    record(
        conn,
        actor,
        village=None,
        action=action,
        subject_type=SUBSCRIPTION,
        subject_id=subject_id,
        **what,
    )


def do_create_subscription(
    conn: Connection, actor: Actor, client: Client, data: dict[str, Any]
) -> tuple[dict, str]:
    """Subscribe an endpoint of `client` to event types; returns it and its secret."""
    values = validated(SubscriptionSchema(), data)
    event_types = list(dict.fromkeys(values["event_types"]))
    _require_scopes(client, event_types)
    secret = new_secret()
    subscription_id = _write(
        conn,
        s.insert().values(
            client_id=client.client_id, url=values["url"], event_types=event_types, secret=secret
        ),
    )
    _audit(
        conn,
        actor,
        "webhook.subscribe",
        subscription_id,
        fields=["url", "event_types", "secret"],
        details={"url": values["url"], "event_types": event_types},
    )
    return _subscription(conn, client, subscription_id), secret


def do_update_subscription(
    conn: Connection, actor: Actor, client: Client, subscription_id: int, changes: dict[str, Any]
) -> dict:
    """Change the URL or the event types (the scopes are checked again)."""
    values = validated(SubscriptionSchema(partial=True), changes)
    current = _subscription(conn, client, subscription_id)
    if "event_types" in values:
        values["event_types"] = list(dict.fromkeys(values["event_types"]))
        _require_scopes(client, values["event_types"])
    changed = {k: v for k, v in values.items() if current[k] != v}
    if changed:
        _write(
            conn,
            s.update().where(s.c.id == subscription_id).values(**changed, updated_at=func.now()),
        )
        _audit(
            conn,
            actor,
            "webhook.update",
            subscription_id,
            fields=sorted(changed),
            details=changed,
        )
    return _subscription(conn, client, subscription_id)


def do_delete_subscription(
    conn: Connection, actor: Actor, client: Client, subscription_id: int
) -> int:
    """Remove the subscription with its deliveries and their attempts."""
    current = _subscription(conn, client, subscription_id)
    conn.execute(s.delete().where(s.c.id == subscription_id))
    _audit(conn, actor, "webhook.delete", subscription_id, details={"url": current["url"]})
    return subscription_id


def do_rotate_secret(
    conn: Connection, actor: Actor, client: Client, subscription_id: int
) -> tuple[dict, str]:
    """A new secret, in force for every attempt from now on (retries included)."""
    _subscription(conn, client, subscription_id)
    secret = new_secret()
    conn.execute(
        s.update().where(s.c.id == subscription_id).values(secret=secret, updated_at=func.now())
    )
    _audit(conn, actor, "webhook.rotate_secret", subscription_id, fields=["secret"])
    return _subscription(conn, client, subscription_id), secret


def do_resume_subscription(
    conn: Connection, actor: Actor, client: Client, subscription_id: int
) -> dict:
    """paused → active, with the failure bookkeeping cleared; new events flow again."""
    current = _subscription(conn, client, subscription_id)
    if current["state"] != PAUSED:
        raise refused("id", "订阅未暂停，无需恢复", INVALID_TRANSITION)
    conn.execute(
        s.update()
        .where(s.c.id == subscription_id)
        .values(
            state=ACTIVE,
            consecutive_failures=0,
            failing_since=None,
            paused_at=None,
            pause_reason=None,
            updated_at=func.now(),
        )
    )
    _audit(conn, actor, "webhook.resume", subscription_id, fields=["state"])
    return _subscription(conn, client, subscription_id)


def do_redeliver(
    conn: Connection, actor: Actor, client: Client, delivery_id: int, now: datetime
) -> dict:
    """A new delivery of a failed one's event (same event id, fresh retries), to an active
    subscription, while the client may still receive that village's events of that type."""
    failed = owned_delivery(conn, client.client_id, delivery_id)
    if failed is None:
        raise refused("delivery", "投递记录不存在", NOT_FOUND)
    if failed["state"] != FAILED:
        raise refused("delivery", "只能重发投递失败的事件", INVALID_TRANSITION)
    if failed["subscription_state"] != ACTIVE:
        raise refused("delivery", "订阅已暂停，请先恢复订阅", INVALID_TRANSITION)
    if failed["village"] not in client.villages or EVENT_SCOPES[failed["event_type"]] not in (
        client.scopes
    ):
        raise ActionFailed(
            [UserError("delivery", "客户端已不再获准接收该村的此类事件", MISSING_SCOPE)]
        )
    d = webhook_deliveries
    delivery = (
        conn.execute(
            d.insert()
            .values(
                subscription_id=failed["subscription_id"],
                event_id=failed["event_id"],
                event_type=failed["event_type"],
                village=failed["village"],
                occurred_at=failed["occurred_at"],
                payload=failed["payload"],
                state=PENDING,
                next_attempt_at=now,
                redelivery_of=delivery_id,
            )
            .returning(d)
        )
        .mappings()
        .one()
    )
    record(
        conn,
        actor,
        village=None,
        action="webhook.redeliver",
        subject_type=DELIVERY,
        subject_id=delivery["id"],
        details={"redelivery_of": delivery_id, "subscription_id": failed["subscription_id"]},
    )
    return dict(delivery)

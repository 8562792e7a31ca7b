"""The delivery machine, in the platform schema: fan an event out, claim, record, retry, pause.

The HTTP part lives in jobs/webhooks.py; everything it decides is written here,
so that a delivery's state never lives only in Redis (docs/design.md): a job that is
lost leaves its delivery `pending` with `next_attempt_at` in the past, and the
sweep enqueues it again.

Delivery states: pending → delivered (a 2xx), pending → pending (a failed
attempt with retries left, due again after a backoff with jitter), pending →
failed (retries spent, or its subscription paused). A redelivery is a new
delivery of the same event.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, DateTime, func, literal, select, update

from villagelink.platform import models as pm
from villagelink.platform.audit import record, system_actor
from villagelink.platform.webhooks import EVENT_SCOPES
from villagelink.platform.webhooks.tables import (
    ACTIVE,
    DELIVERED,
    FAILED,
    PAUSED,
    PENDING,
    webhook_attempts,
    webhook_deliveries,
    webhook_subscriptions,
)
from villagelink.tenants.querying import limit_of

s, d, a = webhook_subscriptions, webhook_deliveries, webhook_attempts

# Each wait is stretched or shrunk by up to this fraction, so that the deliveries of a
# burst that failed together do not all come back at the same second.
JITTER = 0.2
# Failed attempts in a row that pause a subscription, however short the time: a dead
# endpoint under a busy stream of events costs workers a timeout per attempt.
PAUSE_AFTER_FAILURES = 1000
# How long a job holds a delivery it is sending (connect and read timeouts, with room).
CLAIM_LEASE = timedelta(seconds=60)
PAUSED_ERROR = "订阅已暂停"

LEGACY_SIGNATURE_PREFIX = "sha256="
SECRET_PREFIX = "whsec_"
# The Standard Webhooks signature scheme's version tag (webhook-signature: `v1,<base64>`).
STANDARD_SIGNATURE_VERSION = "v1"
EVENT_NAMESPACE = uuid.UUID("5f0c7a5e-2f43-4d8e-9a52-7d1b1e6c3a10")

# Who the audit log names for pauses.
SYSTEM_ACTOR = system_actor("webhooks")


# -- what is sent ---------------------------------------------------------------


def envelope_body(delivery: dict) -> bytes:
    """The exact bytes POSTed (and signed): the same for every attempt of a delivery."""
    envelope = {
        "id": str(delivery["event_id"]),
        "type": delivery["event_type"],
        "village": delivery["village"],
        "occurred_at": delivery["occurred_at"].astimezone(UTC).isoformat(),
        "data": delivery["payload"],
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


def standard_signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header of the Standard Webhooks specification: `v1,` and the
    base64 HMAC-SHA256 of `<webhook-id>.<timestamp>.<body>` under the secret's key, so that
    integrators verify with the `standardwebhooks` libraries instead of code of their own."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return f"{STANDARD_SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signing_key(secret: str) -> bytes:
    """The key a `whsec_` secret stands for: the bytes its base64 encodes. Secrets made
    before Standard Webhooks were URL-safe base64 without padding (never valid standard
    base64: 43 characters); they decode by that alphabet, so their v1 signature is made
    with the same 32 bytes a rotation would replace."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


def legacy_signature(secret: str, timestamp: int, body: bytes) -> str:
    """`X-Villagelink-Signature`, deprecated for the Standard Webhooks headers (sent beside
    them until the date in docs/webhooks.md): `sha256=` and the hex HMAC-SHA256 of
    `<timestamp>.<body>` under the secret's text."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return LEGACY_SIGNATURE_PREFIX + digest.hexdigest()


def retry_delay(
    failed_attempts: int, delays: tuple[int, ...], rng: random.Random | None = None
) -> timedelta | None:
    """How long after the `failed_attempts`-th failure to try again, by the schedule
    `delays` (Settings.webhook_retry_delays); None once spent."""
    if failed_attempts > len(delays):
        return None
    spread = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return timedelta(seconds=delays[failed_attempts - 1] * spread)


# -- fan-out ------------------------------------------------------------------


def event_id(
    village: str, event_type: str, payload: dict[str, Any], occurred_at: datetime
) -> uuid.UUID:
    """The same id for the same event: a notify job that runs again after a failed commit
    publishes it again, and its receivers can tell it is one they have seen."""
    canonical = json.dumps(
        [village, event_type, occurred_at.astimezone(UTC).isoformat(), payload],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return uuid.uuid5(EVENT_NAMESPACE, canonical)


def publish(
    conn: Connection,
    village: str,
    event_type: str,
    payload: dict[str, Any],
    occurred_at: datetime,
    now: datetime,
) -> list[int]:
    """One pending delivery per active subscription to `event_type` whose client is
    enabled, granted `village` and holds the event type's scope; returns their ids.
    One statement, whatever the number of subscribers."""
    if event_type not in EVENT_SCOPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    c = pm.api_clients
    subscribers = (
        select(
            s.c.id,
            literal(event_id(village, event_type, payload, occurred_at)),
            literal(event_type),
            literal(village),
            literal(occurred_at, DateTime(timezone=True)),
            literal(payload, d.c.payload.type),
            literal(now, DateTime(timezone=True)),
        )
        .join(c, c.c.client_id == s.c.client_id)
        .where(
            s.c.state == ACTIVE,
            s.c.event_types.any_() == event_type,
            c.c.enabled.is_(True),
            c.c.villages.any_() == village,
            c.c.scopes.any_() == EVENT_SCOPES[event_type],
        )
    )
    columns = ["subscription_id", "event_id", "event_type", "village", "occurred_at"]
    statement = (
        d.insert()
        .from_select([*columns, "payload", "next_attempt_at"], subscribers)
        .returning(d.c.id)
    )
    return list(conn.execute(statement).scalars())


# -- one attempt ----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one POST came to: a status, or an error when there was none."""

    status_code: int | None
    error: str | None
    duration_ms: int
    response_excerpt: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def claim(conn: Connection, delivery_id: int, now: datetime) -> dict | None:
    """The delivery with its endpoint and secret, held for CLAIM_LEASE, if it is pending
    and due; None otherwise (delivered, failed, or another job holds it). A delivery of
    a paused subscription fails here instead of being sent."""
    row = conn.execute(
        update(d)
        .where(
            d.c.id == delivery_id,
            d.c.state == PENDING,
            d.c.next_attempt_at <= now,
            s.c.id == d.c.subscription_id,
        )
        .values(next_attempt_at=now + CLAIM_LEASE)
        .returning(*d.c, s.c.url, s.c.secret, s.c.state.label("subscription_state"))
    ).first()
    if row is None:
        return None
    claimed = dict(row._mapping)
    if claimed["subscription_state"] != ACTIVE:
        _fail_pending(conn, d.c.id == delivery_id, PAUSED_ERROR)
        return None
    return claimed


def _fail_pending(conn: Connection, which: ColumnElement[bool], error: str) -> None:
    conn.execute(
        d.update()
        .where(which, d.c.state == PENDING)
        .values(state=FAILED, next_attempt_at=None, last_error=error)
    )


@dataclass(frozen=True)
class Recorded:
    state: str
    retry_in: timedelta | None  # when to try again, for the job to schedule
    paused: bool  # this attempt paused the subscription


def record_attempt(
    conn: Connection,
    delivery: dict,
    outcome: Outcome,
    now: datetime,
    *,
    pause_after: timedelta,
    retry_delays: tuple[int, ...],
    rng: random.Random | None = None,
) -> Recorded:
    """Log the attempt and move the delivery on; keep the subscription's failure count,
    and pause it when it has failed for longer than `pause_after` or PAUSE_AFTER_FAILURES
    attempts in a row."""
    attempts = delivery["attempts"] + 1
    conn.execute(
        a.insert().values(
            delivery_id=delivery["id"],
            attempted_at=now,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
            response_excerpt=outcome.response_excerpt,
        )
    )
    progress = {
        "attempts": attempts,
        "last_status": outcome.status_code,
        "last_error": outcome.error,
    }
    if outcome.delivered:
        conn.execute(
            d.update()
            .where(d.c.id == delivery["id"])
            .values(**progress, state=DELIVERED, delivered_at=now, next_attempt_at=None)
        )
        conn.execute(
            s.update()
            .where(
                s.c.id == delivery["subscription_id"],
                (s.c.consecutive_failures != 0) | s.c.failing_since.is_not(None),
            )
            .values(consecutive_failures=0, failing_since=None)
        )
        return Recorded(DELIVERED, None, paused=False)

    wait = retry_delay(attempts, retry_delays, rng)
    state = PENDING if wait is not None else FAILED
    conn.execute(
        d.update()
        .where(d.c.id == delivery["id"])
        .values(**progress, state=state, next_attempt_at=now + wait if wait else None)
    )
    paused = _count_failure(conn, delivery["subscription_id"], now, pause_after)
    if paused:
        return Recorded(FAILED, None, paused=True)
    return Recorded(state, wait, paused=False)


def _count_failure(
    conn: Connection, subscription_id: int, now: datetime, pause_after: timedelta
) -> bool:
    """Count one more failure; pause the subscription (and fail its pending deliveries)
    when it has failed long or often enough. True if this call paused it."""
    failures, since = conn.execute(
        s.update()
        .where(s.c.id == subscription_id)
        .values(
            consecutive_failures=s.c.consecutive_failures + 1,
            failing_since=func.coalesce(s.c.failing_since, now),
        )
        .returning(s.c.consecutive_failures, s.c.failing_since)
    ).one()
    too_long = now - since >= pause_after
    if not (too_long or failures >= PAUSE_AFTER_FAILURES):
        return False
    reason = (
        f"自 {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC 起持续投递失败"
        if too_long
        else f"连续 {failures} 次投递失败"
    )
    paused = conn.execute(
        s.update()
        .where(s.c.id == subscription_id, s.c.state == ACTIVE)
        .values(state=PAUSED, paused_at=now, pause_reason=reason, updated_at=now)
        .returning(s.c.id)
    ).first()
    if paused is None:
        return False  # paused meanwhile by another attempt
    _fail_pending(conn, d.c.subscription_id == subscription_id, PAUSED_ERROR)
    record(
        conn,
        SYSTEM_ACTOR,
        village=None,
        action="webhook.pause",
        subject_type="WebhookSubscription",
        subject_id=subscription_id,
        fields=["state"],
        reason=reason,
        details={"consecutive_failures": failures, "failing_since": since.isoformat()},
    )
    return True


# -- the sweep ------------------------------------------------------------------


def overdue(conn: Connection, now: datetime, grace: timedelta, limit: int) -> list[int]:
    """Pending deliveries due for longer than `grace` (their job was lost), marked due
    `now` so that the next sweep leaves them to the job it is about to enqueue."""
    late = (
        select(d.c.id)
        .where(d.c.state == PENDING, d.c.next_attempt_at < now - grace)
        .order_by(d.c.next_attempt_at)
        .limit(limit_of(limit))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return list(
        conn.execute(
            d.update().where(d.c.id.in_(late)).values(next_attempt_at=now).returning(d.c.id)
        ).scalars()
    )

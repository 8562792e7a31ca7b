"""Webhooks on the `notify` queue: publish an event, POST it signed (Standard Webhooks), retry,
sweep.

`publish_event` is called inside other jobs (the alert notify job): it records
one delivery per subscriber in the platform schema and enqueues each. `deliver`
claims a delivery, POSTs it with the standard library's http.client (connect
3 s, read 10 s, no redirects followed), records the attempt and, after a
failure, schedules the next one (jobs/queues.py `enqueue` with a delay; the worker
runs RQ's scheduler). What to do next is always in the tables (platform/webhooks/
deliveries.py), so `sweep_webhook_deliveries`, every minute on the maintenance
queue, re-enqueues deliveries whose job Redis lost.
"""

from __future__ import annotations

# http.client encodes the receiver's host name with the IDNA codec, which Python imports on
# first use: imported here, it is loaded once in the worker, not again in every work horse.
import encodings.idna  # noqa: F401
import http.client
import logging
import ssl
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from villagelink.jobs.queues import NOTIFY, enqueue, queue
from villagelink.jobs.worker import job_database, job_settings
from villagelink.platform.settings import Settings
from villagelink.platform.webhooks import deliveries
from villagelink.platform.webhooks.deliveries import Outcome
from villagelink.platform.webhooks.ids import delivery_gid
from villagelink.tenants import clock

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
# Enough of the receiver's answer to tell an error page from another.
EXCERPT_BYTES = 2048
EXCERPT_CHARS = 500
USER_AGENT = "villagelink-webhooks/1"
DELIVER_JOB_TIMEOUT = 60
FAILURE_TTL = 7 * 24 * 3600
# A pending delivery due this long ago has lost its job; a minute's sweep finds it.
SWEEP_GRACE = timedelta(minutes=2)
SWEEP_BATCH = 1000


def publish_event(
    village: str, event_type: str, payload: dict[str, Any], occurred_at: datetime
) -> int:
    """Record one delivery of the event per matching active subscription (client enabled,
    granted `village`, holding the event type's scope, subscribed to `event_type`) and
    enqueue them on the notify queue; returns how many."""
    with job_database().platform() as conn:
        ids = deliveries.publish(conn, village, event_type, payload, occurred_at, now=clock.now())
    enqueue_deliveries(job_settings(), ids)
    return len(ids)


def enqueue_deliveries(settings: Settings, delivery_ids: list[int]) -> None:
    """Enqueue `deliver` for each delivery (after the rows are committed)."""
    if not delivery_ids:
        return
    notify = queue(NOTIFY, settings)
    notify.enqueue_many([notify.prepare_data(deliver, args=(i,), **_job(i)) for i in delivery_ids])


def _job(delivery_id: int) -> dict[str, Any]:
    # No RQ retry: the retries are ours, with their schedule kept in the table.
    return {
        "timeout": DELIVER_JOB_TIMEOUT,
        "failure_ttl": FAILURE_TTL,
        "description": f"webhook delivery {delivery_id}",
    }


def deliver(delivery_id: int, now: datetime | None = None) -> str | None:
    """Make one attempt at a pending, due delivery; returns its state afterwards, or None
    when there was nothing to do (already delivered or failed, not due, held by another
    job, or its subscription paused). `now` is for tests: the clock of the attempt."""
    moment = now or clock.now()
    db = job_database()
    with db.platform() as conn:
        claimed = deliveries.claim(conn, delivery_id, moment)
    if claimed is None:
        return None
    outcome = post(claimed["url"], *signed_request(claimed, int(moment.timestamp())))
    settings = job_settings()
    with db.platform() as conn:
        recorded = deliveries.record_attempt(
            conn,
            claimed,
            outcome,
            moment,
            pause_after=timedelta(hours=settings.webhook_pause_after_hours),
            retry_delays=settings.webhook_retry_delays,
        )
    if recorded.paused:
        log.warning("webhook subscription %s paused", claimed["subscription_id"])
    if recorded.retry_in is not None:
        enqueue(
            settings, NOTIFY, deliver, (delivery_id,), delay=recorded.retry_in, **_job(delivery_id)
        )
    return recorded.state


def signed_request(delivery: dict, timestamp: int) -> tuple[bytes, dict[str, str]]:
    """The body and headers of an attempt at `timestamp` (unix seconds): the Standard
    Webhooks headers, with the event's id as `webhook-id` (the same on every retry and
    redelivery, so a receiver drops what it has handled), and the deprecated
    X-Villagelink-* ones beside them until docs/webhooks.md's date."""
    body = deliveries.envelope_body(delivery)
    webhook_id = str(delivery["event_id"])
    secret = delivery["secret"]
    return body, {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": deliveries.standard_signature(secret, webhook_id, timestamp, body),
        "X-Villagelink-Event": delivery["event_type"],
        "X-Villagelink-Delivery": delivery_gid(delivery["id"]),
        "X-Villagelink-Timestamp": str(timestamp),
        "X-Villagelink-Signature": deliveries.legacy_signature(secret, timestamp, body),
    }


def post(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST once: the status and the start of the answer, or why there was none."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname,
            parts.port,
            timeout=CONNECT_TIMEOUT,
            context=ssl.create_default_context(),
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    try:
        connection.connect()
        connection.sock.settimeout(READ_TIMEOUT)
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        excerpt = response.read(EXCERPT_BYTES).decode("utf-8", "replace")[:EXCERPT_CHARS]
        return Outcome(response.status, None, _ms_since(started), excerpt or None)
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(None, _describe(exc), _ms_since(started))
    finally:
        connection.close()


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _describe(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS]


def sweep_webhook_deliveries(now: datetime | None = None) -> int:
    """Re-enqueue pending deliveries whose job was lost (due for longer than SWEEP_GRACE);
    returns how many. A delivery enqueued twice is sent once: `deliver` claims it."""
    moment = now or clock.now()
    with job_database().platform() as conn:
        ids = deliveries.overdue(conn, moment, SWEEP_GRACE, SWEEP_BATCH)
    enqueue_deliveries(job_settings(), ids)
    return len(ids)

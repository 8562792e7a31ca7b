"""Integrator webhooks against real servers: a real HTTP receiver on loopback verifies
every signature; deliveries run in-process (the job functions, or an RQ SimpleWorker in
burst mode on the real Valkey). Subscriptions and their scope checks, signing, retry
after a 500 with both attempts visible through GraphQL, the backoff schedule, pausing
on a controlled clock, resume, redelivery, the sweep, and the statement count."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import random
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from rq import Queue, SimpleWorker
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import ProgrammingError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from villagelink.graphql.core.ids import decode_id
from villagelink.jobs import webhooks as jobs
from villagelink.jobs.queues import MAINTENANCE, NOTIFY
from villagelink.jobs.scheduler import WEBHOOK_SWEEP_INTERVAL, build_cron_scheduler
from villagelink.jobs.worker import PromptStop, reset_job_runtime
from villagelink.platform import models as pm
from villagelink.platform.db import Database
from villagelink.platform.settings import load_settings
from villagelink.platform.webhooks import EVENT_TYPES
from villagelink.platform.webhooks import deliveries as machine
from villagelink.platform.webhooks.actions import new_secret
from villagelink.platform.webhooks.ids import delivery_gid
from villagelink.platform.webhooks.tables import (
    webhook_attempts,
    webhook_deliveries,
    webhook_subscriptions,
)

from .conftest import new_village_slug
from .processes import SyncWorker, wait_for
from .test_query_count import count_statements
from .threaded_server import serving

ALERTS_READ = "alerts:read"
RAISED, ASSIGNED, RESOLVED = "alert.raised", "alert.assigned", "alert.resolved"

SUBSCRIPTION_FIELDS = """id clientId url eventTypes state consecutiveFailures failingSince
  pausedAt pauseReason createdAt updatedAt"""
DELIVERY_FIELDS = """id eventId eventType village occurredAt state attemptCount nextAttemptAt
  lastStatus lastError deliveredAt redeliveryOf body
  attempts { attemptedAt statusCode error durationMs responseExcerpt }"""
CREATE = f"""mutation($input: CreateWebhookSubscriptionInput!) {{
  createWebhookSubscription(input: $input) {{
    subscription {{ {SUBSCRIPTION_FIELDS} }} secret userErrors {{ field message code }} }} }}"""
UPDATE = f"""mutation($input: UpdateWebhookSubscriptionInput!) {{
  updateWebhookSubscription(input: $input) {{
    subscription {{ {SUBSCRIPTION_FIELDS} }} userErrors {{ field message code }} }} }}"""
DELETE = """mutation($input: WebhookSubscriptionStepInput!) {
  deleteWebhookSubscription(input: $input) { deletedId userErrors { field message code } } }"""
ROTATE = f"""mutation($input: WebhookSubscriptionStepInput!) {{
  rotateWebhookSecret(input: $input) {{
    subscription {{ {SUBSCRIPTION_FIELDS} }} secret userErrors {{ field message code }} }} }}"""
RESUME = f"""mutation($input: WebhookSubscriptionStepInput!) {{
  resumeWebhookSubscription(input: $input) {{
    subscription {{ {SUBSCRIPTION_FIELDS} }} userErrors {{ field message code }} }} }}"""
REDELIVER = f"""mutation($input: RedeliverWebhookInput!) {{
  redeliverWebhook(input: $input) {{
    delivery {{ {DELIVERY_FIELDS} }} userErrors {{ field message code }} }} }}"""
LIST = f"""query($first: Int, $after: String, $state: WebhookDeliveryState) {{
  webhookSubscriptions(first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }}
    edges {{ node {{ {SUBSCRIPTION_FIELDS}
      deliveries(first: 10, state: $state) {{ totalCount edges {{ node {{ {DELIVERY_FIELDS} }} }} }}
    }} }} }} }}"""


# -- the receiver -------------------------------------------------------------


# The verification docs/webhooks.md shows integrators, as it is run here: the Standard
# Webhooks library, which also refuses a timestamp more than five minutes from now.
def verify_standard(secret: str, headers, body: bytes) -> bool:
    try:
        Webhook(secret).verify(body, dict(headers))
    except WebhookVerificationError:
        return False
    return True


def signed_by(secret: str, headers, body: bytes) -> bool:
    """The Standard Webhooks signature checked by the library's own signing, whatever the
    timestamp's age: for deliveries signed on a controlled clock."""
    moment = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(headers["webhook-id"], moment, body)
    return hmac.compare_digest(expected, headers["webhook-signature"])


# The deprecated X-Villagelink-Signature, as docs/webhooks.md's migration section shows it.
def verify_legacy(secret: str, headers, body: bytes, max_age: int = 300) -> bool:
    timestamp = headers["X-Villagelink-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    fresh = abs(time.time() - int(timestamp)) <= max_age
    return fresh and hmac.compare_digest(
        "sha256=" + expected.hexdigest(), headers["X-Villagelink-Signature"]
    )


def verify(secret: str, headers, body: bytes, max_age: int = 300) -> bool:
    """Both signatures, as sent during the deprecation period: the Standard Webhooks one
    by the library (by its signing alone on a controlled clock), and the old one."""
    standard = verify_standard if max_age <= 300 else signed_by
    return standard(secret, headers, body) and verify_legacy(secret, headers, body, max_age)


class Receiver:
    """An integrator's endpoint: refuses (401) what it cannot verify with its secret,
    answers the scripted statuses in turn (then 200) and keeps what it accepted."""

    def __init__(self) -> None:
        self.secret: str | None = None
        # Controlled clocks sign with timestamps far from now; freshness is checked
        # against the real clock only where the test runs on it.
        self.max_age = 300
        self.answers: deque[int] = deque()
        self.accepted: list[dict] = []
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.secret is None or not verify(
                    receiver.secret, self.headers, body, receiver.max_age
                ):
                    receiver.refused += 1
                    self._answer(401, b"bad signature")
                    return
                receiver.accepted.append({"headers": dict(self.headers), "body": body})
                status = receiver.answers.popleft() if receiver.answers else 200
                self._answer(status, b"ok" if status < 300 else b"receiver broke")

            def _answer(self, status: int, text: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/villagelink"

    def envelopes(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.accepted]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    with serving(found.server):
        yield found


class InProcessWorker(PromptStop, SimpleWorker):
    """RQ's worker without the fork, stopping as promptly as `villagelink worker`."""


def work_off(redis_client: redis.Redis) -> None:
    """Run every queued notify job in this process (the receiver's thread is here)."""
    InProcessWorker([Queue(NOTIFY, connection=redis_client)], connection=redis_client).work(
        burst=True
    )


# -- clients, subscriptions, events -------------------------------------------


@pytest.fixture
def slug() -> str:
    """A village name to grant and publish in. Deliveries go by the clients' grants, so
    tests that do not enter a village schema need not provision one."""
    return new_village_slug()


@pytest.fixture
def integrator(db: Database, token):
    """A new enabled client granted `villages` with `scopes`; returns (client id, token)."""

    def make(villages: list[str], *scopes: str, enabled: bool = True) -> tuple[str, str]:
        client = f"wh-{uuid.uuid4().hex[:10]}"
        with db.platform() as conn:
            conn.execute(
                insert(pm.api_clients).values(
                    client_id=client,
                    name="网格员app",
                    villages=villages,
                    scopes=list(scopes),
                    enabled=enabled,
                )
            )
        return client, token("integrator", client=client)

    return make


def grant(db: Database, client: str, **values) -> None:
    with db.platform() as conn:
        conn.execute(
            update(pm.api_clients).where(pm.api_clients.c.client_id == client).values(**values)
        )


def mutate(gql, bearer: str, document: str, input: dict) -> dict:
    _, body = gql(document, bearer, {"input": input})
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def subscribe(gql, bearer: str, url: str, *event_types: str) -> tuple[dict, str]:
    done = mutate(gql, bearer, CREATE, {"url": url, "eventTypes": list(event_types or [RAISED])})
    assert done["userErrors"] == [], done
    return done["subscription"], done["secret"]


def listed(gql, bearer: str, **variables) -> list[dict]:
    _, body = gql(LIST, bearer, {"first": 20, **variables})
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["webhookSubscriptions"]["edges"]]


def alert_payload(village: str, state: str = "open") -> dict:
    """The shape the alert notify job publishes (no ID numbers, phones of residents or health)."""
    return {
        "alert": {
            "id": "QWxlcnQ6dDE6MQ",
            "village": village,
            "kind": "fall",
            "severity": "critical",
            "state": state,
            "level": "grid",
            "summary": "跌倒报警（毫米波雷达 3号楼2单元101）",
            "location_text": "3号楼2单元101",
            "latitude": 36.65,
            "longitude": 117.12,
            "grid": {"id": "R3JpZDp0MTox", "name": "一组"},
            "assignee": {"name": "王网格", "phone": "13800000000"},
            "raised_at": "2026-12-02T08:00:00+08:00",
            "ack_due_at": "2026-12-02T08:05:00+08:00",
            "acknowledged_at": None,
            "closed_at": None,
            "outcome": None,
        }
    }


def publish(village: str, event_type: str = RAISED) -> int:
    return jobs.publish_event(village, event_type, alert_payload(village), datetime.now(UTC))


def delivery_rows(db: Database, subscription_gid: str) -> list[dict]:
    key = int(decode_id(subscription_gid).key)
    with db.platform() as conn:
        d = webhook_deliveries
        query = select(d).where(d.c.subscription_id == key).order_by(d.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


def attempt_rows(db: Database, delivery_id: int) -> list[dict]:
    with db.platform() as conn:
        a = webhook_attempts
        query = select(a).where(a.c.delivery_id == delivery_id).order_by(a.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


def audit_actions(db: Database, subject_id: str) -> list[str]:
    with db.platform() as conn:
        log = pm.audit_log
        return list(
            conn.execute(
                select(log.c.action)
                .where(log.c.subject_id == subject_id, log.c.village.is_(None))
                .order_by(log.c.occurred_at)
            ).scalars()
        )


def codes(payload: dict) -> list[tuple[str | None, str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


# -- tables -------------------------------------------------------------------


def test_migration_creates_what_the_tables_describe_and_villages_cannot_read(db, village):
    ours = {"webhook_subscriptions", "webhook_deliveries", "webhook_attempts"}

    def only_ours(_object, name, type_, _reflected, _compare_to) -> bool:
        return type_ != "table" or name in ours

    with db.platform() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_server_default": False,
                "include_object": only_ours,
                "include_schemas": True,
                "include_name": lambda name, type_, _parent: (
                    type_ != "schema" or name == "platform"
                ),
            },
        )
        assert compare_metadata(context, pm.metadata) == []

    for table in ours:
        with (
            pytest.raises(ProgrammingError, match="permission denied"),
            db.tenant(village.slug) as conn,
        ):
            conn.exec_driver_sql(f"SELECT 1 FROM platform.{table}")


# -- subscribing ----------------------------------------------------------------


def test_subscribe_returns_the_secret_once_and_lists_without_it(
    gql, db, slug, integrator, receiver
):
    client, bearer = integrator([slug], ALERTS_READ)
    subscription, secret = subscribe(gql, bearer, receiver.url, RAISED, ASSIGNED, RAISED)

    assert secret.startswith("whsec_") and len(secret) > 40
    # Standard Webhooks' form: standard base64 of the 32 key bytes after the prefix.
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert subscription["clientId"] == client
    assert subscription["url"] == receiver.url
    assert subscription["eventTypes"] == [RAISED, ASSIGNED]  # duplicates dropped, order kept
    assert (subscription["state"], subscription["consecutiveFailures"]) == ("ACTIVE", 0)
    [shown] = listed(gql, bearer)
    assert shown == {**subscription, "deliveries": {"totalCount": 0, "edges": []}}
    _, body = gql("{ webhookSubscriptions { edges { node { secret } } } }", bearer)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert audit_actions(db, str(decode_id(subscription["id"]).key)) == ["webhook.subscribe"]

    _, body = gql("{ webhookEventTypes { name scope } }", bearer)
    assert body["data"]["webhookEventTypes"] == [
        {"name": name, "scope": ALERTS_READ} for name in EVENT_TYPES
    ]


@pytest.mark.parametrize(
    ("url", "event_types", "field", "code"),
    [
        ("ftp://example.org/hook", [RAISED], "url", "INVALID"),
        ("example.org/hook", [RAISED], "url", "INVALID"),
        ("https:///no-host", [RAISED], "url", "INVALID"),
        ("https://user:pw@example.org/hook", [RAISED], "url", "INVALID"),
        ("https://example.org:99999/hook", [RAISED], "url", "INVALID"),
        ("https://example.org/" + "a" * 2000, [RAISED], "url", "INVALID"),
        ("https://example.org/hook", [], "eventTypes", "INVALID"),
        ("https://example.org/hook", ["alert.deleted"], "eventTypes", "INVALID"),
    ],
)
def test_subscribe_refuses_bad_input_and_writes_nothing(
    gql, db, slug, integrator, url, event_types, field, code
):
    _client, bearer = integrator([slug], ALERTS_READ)
    refused = mutate(gql, bearer, CREATE, {"url": url, "eventTypes": event_types})
    assert (refused["subscription"], refused["secret"]) == (None, None)
    assert codes(refused) == [(field, code)]
    assert refused["userErrors"][0]["message"]  # in Chinese, for the integrator's admin
    assert listed(gql, bearer) == []


def test_subscribing_needs_the_scope_of_each_event_type(gql, slug, integrator, receiver):
    _client, bearer = integrator([slug], "residents:read", "devices:write")
    refused = mutate(gql, bearer, CREATE, {"url": receiver.url, "eventTypes": [RAISED]})
    assert codes(refused) == [("eventTypes", "MISSING_SCOPE")]
    assert "alerts:read" in refused["userErrors"][0]["message"]
    assert listed(gql, bearer) == []


def test_update_checks_the_scope_again_and_refuses_a_second_subscription_to_a_url(
    gql, db, slug, integrator, receiver
):
    client, bearer = integrator([slug], ALERTS_READ)
    subscription, _ = subscribe(gql, bearer, receiver.url)
    other, _ = subscribe(gql, bearer, receiver.url + "/other")

    again = mutate(gql, bearer, CREATE, {"url": receiver.url, "eventTypes": [RESOLVED]})
    assert codes(again) == [("url", "DUPLICATE")]
    clash = mutate(gql, bearer, UPDATE, {"id": other["id"], "url": receiver.url})
    assert codes(clash) == [("url", "DUPLICATE")]

    changed = mutate(
        gql, bearer, UPDATE, {"id": subscription["id"], "eventTypes": [RAISED, RESOLVED]}
    )
    assert changed["userErrors"] == []
    assert changed["subscription"]["eventTypes"] == [RAISED, RESOLVED]
    unchanged = mutate(gql, bearer, UPDATE, {"id": subscription["id"], "url": receiver.url})
    assert unchanged["userErrors"] == []

    grant(db, client, scopes=["residents:read"])
    refused = mutate(gql, bearer, UPDATE, {"id": subscription["id"], "eventTypes": [ASSIGNED]})
    assert codes(refused) == [("eventTypes", "MISSING_SCOPE")]
    bad = mutate(gql, bearer, UPDATE, {"id": subscription["id"], "url": "gopher://x"})
    assert codes(bad) == [("url", "INVALID")]
    key = str(decode_id(subscription["id"]).key)
    # One entry per change that happened: the unchanged update wrote none.
    assert audit_actions(db, key) == ["webhook.subscribe", "webhook.update"]


# -- who sees and changes what --------------------------------------------------


def test_a_client_sees_and_changes_only_its_own_subscriptions(
    gql, token, db, slug, integrator, receiver
):
    _, a = integrator([slug], ALERTS_READ)
    _, b = integrator([slug], ALERTS_READ)
    a_sub, _ = subscribe(gql, a, receiver.url + "/a")
    b_sub, _ = subscribe(gql, b, receiver.url + "/b")

    assert [s["id"] for s in listed(gql, a)] == [a_sub["id"]]
    assert [s["id"] for s in listed(gql, b)] == [b_sub["id"]]
    everyone = {s["id"] for s in listed(gql, token("platform-admin"))}
    assert {a_sub["id"], b_sub["id"]} <= everyone

    step = {"id": a_sub["id"]}
    assert codes(mutate(gql, b, UPDATE, {**step, "url": receiver.url})) == [("id", "NOT_FOUND")]
    assert codes(mutate(gql, b, DELETE, step)) == [("id", "NOT_FOUND")]
    assert codes(mutate(gql, b, ROTATE, step)) == [("id", "NOT_FOUND")]
    assert codes(mutate(gql, b, RESUME, step)) == [("id", "NOT_FOUND")]
    assert codes(mutate(gql, b, DELETE, {"id": "not-an-id"})) == [("id", "NOT_FOUND")]
    assert [s["url"] for s in listed(gql, a)] == [receiver.url + "/a"]

    deleted = mutate(gql, a, DELETE, step)
    assert (deleted["deletedId"], deleted["userErrors"]) == (a_sub["id"], [])
    assert listed(gql, a) == []
    key = str(decode_id(a_sub["id"]).key)
    assert audit_actions(db, key) == ["webhook.subscribe", "webhook.delete"]


def test_only_integrator_clients_manage_subscriptions(gql, token, slug, integrator, receiver):
    admin = token("village-admin", village=slug)
    platform_admin = token("platform-admin")
    _disabled_client, disabled = integrator([slug], ALERTS_READ, enabled=False)
    create = {"url": receiver.url, "eventTypes": [RAISED]}

    for bearer in (admin, platform_admin, disabled):
        _, body = gql(CREATE, bearer, {"input": create})
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    _, body = gql(LIST, admin, {})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    _, body = gql(LIST, token("grid-worker", village=slug), {})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# -- publishing ---------------------------------------------------------------------


def test_publish_event_reaches_only_clients_granted_the_village_with_the_scope(
    gql, db, job_env, redis_client, slug, integrator, receiver
):
    elsewhere = f"{slug}x"
    _, granted_token = integrator([slug], ALERTS_READ)
    _, other_token = integrator([elsewhere], ALERTS_READ)
    lost_scope, lost_scope_token = integrator([slug], ALERTS_READ)
    disabled, disabled_token = integrator([slug], ALERTS_READ)
    _, other_type_token = integrator([slug], ALERTS_READ)
    wanted, _ = subscribe(gql, granted_token, receiver.url + "/granted")
    subscribe(gql, other_token, receiver.url + "/elsewhere")
    subscribe(gql, lost_scope_token, receiver.url + "/lost-scope")
    subscribe(gql, disabled_token, receiver.url + "/disabled")
    other_type, _ = subscribe(gql, other_type_token, receiver.url + "/resolved-only", RESOLVED)
    grant(db, lost_scope, scopes=["residents:read"])
    grant(db, disabled, enabled=False)

    assert publish(slug) == 1
    [row] = delivery_rows(db, wanted["id"])
    assert (row["state"], row["event_type"], row["village"], row["attempts"]) == (
        "pending",
        RAISED,
        slug,
        0,
    )
    assert row["payload"] == alert_payload(slug)
    notify = Queue(NOTIFY, connection=redis_client)
    [job] = notify.get_jobs()
    assert (job.func, job.args) == (jobs.deliver, (row["id"],))

    # The same event published again (a notify job retried) keeps its id; another does not.
    occurred = row["occurred_at"]
    jobs.publish_event(slug, RAISED, alert_payload(slug), occurred)
    jobs.publish_event(slug, RESOLVED, alert_payload(slug, "resolved"), occurred)
    ours = delivery_rows(db, wanted["id"])
    assert [d["event_id"] == row["event_id"] for d in ours] == [True, True]
    resolved = delivery_rows(db, other_type["id"])
    assert len(resolved) == 1 and resolved[0]["event_id"] != row["event_id"]

    with pytest.raises(ValueError, match="unknown webhook event type"):
        publish(slug, "alert.exploded")


# -- one delivery, signed ---------------------------------------------------------


def test_delivery_is_signed_and_a_tampered_body_fails_verification(
    gql, db, job_env, redis_client, slug, integrator, receiver
):
    _client, bearer = integrator([slug], ALERTS_READ)
    subscription, receiver.secret = subscribe(gql, bearer, receiver.url)

    assert publish(slug) == 1
    work_off(redis_client)

    [got] = receiver.accepted
    [row] = delivery_rows(db, subscription["id"])
    headers = got["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Villagelink-Event"] == RAISED
    assert headers["X-Villagelink-Delivery"] == delivery_gid(row["id"])
    assert abs(int(headers["X-Villagelink-Timestamp"]) - time.time()) < 60
    # The Standard Webhooks headers: the event's id (the same on every retry and
    # redelivery), the attempt's time, one v1 signature.
    assert headers["webhook-id"] == str(row["event_id"])
    assert headers["webhook-timestamp"] == headers["X-Villagelink-Timestamp"]
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(receiver.secret).verify(got["body"], headers) == json.loads(got["body"])
    envelope = json.loads(got["body"])
    assert envelope == {
        "id": str(row["event_id"]),
        "type": RAISED,
        "village": slug,
        "occurred_at": row["occurred_at"].astimezone(UTC).isoformat(),
        "data": alert_payload(slug),
    }
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 1, 200)

    # The same request with one character changed is refused by the receiver.
    tampered = got["body"].replace(b"fall", b"fail")
    outcome = jobs.post(receiver.url, tampered, headers)
    assert outcome.status_code == 401
    assert not verify(receiver.secret, headers, tampered)
    # And with another secret (an attacker's), or a stale timestamp, so is the original.
    assert not verify(new_secret(), headers, got["body"])
    assert not verify(receiver.secret, {**headers, "X-Villagelink-Timestamp": "1"}, got["body"])
    assert not verify_standard(receiver.secret, headers, tampered)
    assert not verify_standard(new_secret(), headers, got["body"])
    assert not verify_standard(receiver.secret, {**headers, "webhook-timestamp": "1"}, got["body"])
    assert not verify_standard(receiver.secret, {**headers, "webhook-id": "another"}, got["body"])
    assert receiver.refused == 1 and len(receiver.accepted) == 1


def test_a_secret_issued_before_standard_webhooks_signs_with_the_key_it_encodes():
    """Secrets made before were URL-safe base64 without padding: their v1 signature uses
    the 32 bytes they encode, which a receiver holding those bytes verifies with the library
    (docs/webhooks.md tells integrators to rotate, which gives a secret in the standard form)."""
    key = bytes(range(200, 232))  # '-' and '_' in its URL-safe spelling
    old_secret = "whsec_" + base64.urlsafe_b64encode(key).decode().rstrip("=")
    assert "-" in old_secret or "_" in old_secret
    body, timestamp = b'{"id":"e"}', int(time.time())
    headers = {
        "webhook-id": "e",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": machine.standard_signature(old_secret, "e", timestamp, body),
    }
    assert Webhook(key).verify(body, headers) == {"id": "e"}
    assert machine.signing_key(old_secret) == key


def test_a_500_is_retried_after_the_backoff_and_both_attempts_are_shown(
    gql, db, job_env, redis_client, slug, integrator, receiver
):
    _client, bearer = integrator([slug], ALERTS_READ)
    subscription, receiver.secret = subscribe(gql, bearer, receiver.url)
    receiver.answers.extend([500, 200])

    assert publish(slug) == 1
    work_off(redis_client)

    [row] = delivery_rows(db, subscription["id"])
    assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 1, 500)
    [first] = attempt_rows(db, row["id"])
    wait = (row["next_attempt_at"] - first["attempted_at"]).total_seconds()
    assert 8 <= wait <= 12  # 10 s, give or take the jitter
    # The retry waits in RQ's scheduled registry (the worker's scheduler enqueues it).
    scheduled = ScheduledJobRegistry(NOTIFY, connection=redis_client)
    [job_id] = scheduled.get_job_ids()
    when = scheduled.get_scheduled_time(job_id).replace(tzinfo=UTC)
    assert abs((when - row["next_attempt_at"]).total_seconds()) < 5
    assert jobs.deliver(row["id"]) is None  # not due yet: nothing sent

    assert jobs.deliver(row["id"], now=row["next_attempt_at"]) == "delivered"

    [shown] = listed(gql, bearer)
    [delivery] = [edge["node"] for edge in shown["deliveries"]["edges"]]
    assert (delivery["state"], delivery["attemptCount"], delivery["lastStatus"]) == (
        "DELIVERED",
        2,
        200,
    )
    assert [(a["statusCode"], a["error"]) for a in delivery["attempts"]] == [
        (500, None),
        (200, None),
    ]
    assert delivery["attempts"][0]["responseExcerpt"] == "receiver broke"
    assert all(a["durationMs"] >= 0 for a in delivery["attempts"])
    assert json.loads(delivery["body"]) == receiver.envelopes()[0] == receiver.envelopes()[1]
    assert (shown["consecutiveFailures"], shown["failingSince"]) == (0, None)
    # Both attempts carried the same delivery and event, each its own signature.
    ids = {(r["headers"]["X-Villagelink-Delivery"]) for r in receiver.accepted}
    assert ids == {delivery["id"]}


@pytest.mark.worker_process
def test_a_real_worker_retries_a_receiver_that_fails_twice_at_the_configured_backoff(
    db, job_env, slug, integrator, receiver, gql, tmp_path, monkeypatch
):
    """The retries are scheduled jobs: a real worker's scheduler must run them (a job
    option passed as the function's argument failed every one of them). The worker runs
    a schedule of 3 s then 9 s (WEBHOOK_RETRY_DELAYS), the default's 1:3 at a tenth of
    its wait; the default schedule itself is asserted below."""
    monkeypatch.setenv("WEBHOOK_RETRY_DELAYS", "3,9")
    _client, bearer = integrator([slug], ALERTS_READ)
    subscription, receiver.secret = subscribe(gql, bearer, receiver.url)
    receiver.answers.extend([500, 503])
    worker = SyncWorker(job_env, tmp_path / "notify.log", NOTIFY)
    worker.start()
    try:
        assert publish(slug) == 1
        wait_for(lambda: len(receiver.accepted) == 3, 30, "three attempts", worker)
        [row] = delivery_rows(db, subscription["id"])
        wait_for(
            lambda: delivery_rows(db, subscription["id"])[0]["state"] == "delivered",
            10,
            "the third attempt recorded",
            worker,
        )
    finally:
        worker.stop()
    attempts = attempt_rows(db, row["id"])
    assert [a["status_code"] for a in attempts] == [500, 503, 200]
    times = [a["attempted_at"] for a in attempts]
    waits = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
    # 3 s then 9 s, each within the 20 % jitter; the scheduler looks every second and
    # a work horse takes a moment to start. The second wait is the longer one.
    assert 2.4 <= waits[0] <= 3.6 + 3, waits
    assert 7.2 <= waits[1] <= 10.8 + 3, waits
    assert waits[1] > waits[0], waits
    assert "TypeError" not in worker.logfile.read_text()


def test_a_delivery_in_a_work_horse_imports_nothing_the_worker_has_not(
    db, job_env, slug, integrator, receiver, gql
):
    """Every job runs in a work horse forked from the worker, so whatever the worker has not
    imported (`ready_for_horses`) each horse imports again: the API's webhook package,
    imported for the delivery header, cost most of a second of every delivery. A process of
    its own stands for the worker, then runs the job as a horse would."""
    _client, bearer = integrator([slug], ALERTS_READ)
    subscription, receiver.secret = subscribe(gql, bearer, receiver.url)
    assert publish(slug) == 1
    [row] = delivery_rows(db, subscription["id"])
    horse = (
        "import sys\n"
        "from villagelink.jobs.worker import job_database, ready_for_horses\n"
        "ready_for_horses()\n"
        "engine = job_database().engine\n"
        "print(engine.dialect.server_version_info is not None, engine.pool.checkedin())\n"
        "loaded = set(sys.modules)\n"
        "from villagelink.jobs.webhooks import deliver\n"
        f"print(deliver({row['id']}))\n"
        "print(sorted(set(sys.modules) - loaded))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", horse], capture_output=True, text=True, timeout=120, check=True
    )
    # The server learnt, no connection left to share across a fork; the job imported nothing.
    assert ran.stdout.splitlines() == ["True 0", "delivered", "[]"], ran.stdout + ran.stderr
    assert len(receiver.accepted) == 1


def test_the_backoff_schedule_has_jitter_and_ends_in_failure():
    rng = random.Random(5)
    schedule = load_settings({}).webhook_retry_delays
    assert schedule == (10, 30, 120, 600, 1800, 7200, 21600)
    for attempt, base in enumerate(schedule, start=1):
        waits = [machine.retry_delay(attempt, schedule, rng).total_seconds() for _ in range(50)]
        assert all(base * 0.8 <= w <= base * 1.2 for w in waits)
        assert len(set(waits)) > 1  # spread, so a burst does not come back at once
    assert machine.retry_delay(3, schedule, random.Random(1)) == machine.retry_delay(
        3, schedule, random.Random(1)
    )
    assert machine.retry_delay(len(schedule) + 1, schedule) is None
    assert load_settings({"WEBHOOK_RETRY_DELAYS": "3, 9"}).webhook_retry_delays == (3, 9)
    with pytest.raises(ValueError):
        load_settings({"WEBHOOK_RETRY_DELAYS": "3,0"})


def test_an_endpoint_that_never_answers_gets_eight_attempts_then_the_delivery_fails(
    gql, db, job_env, slug, integrator
):
    _client, bearer = integrator([slug], ALERTS_READ)
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens there now: connection refused
    subscription, _ = subscribe(gql, bearer, f"http://127.0.0.1:{port}/hook")
    assert publish(slug) == 1
    [row] = delivery_rows(db, subscription["id"])

    schedule = job_env.webhook_retry_delays
    states = []
    for _ in range(len(schedule) + 1):
        states.append(jobs.deliver(row["id"], now=row["next_attempt_at"]))
        [row] = delivery_rows(db, subscription["id"])
    assert states == ["pending"] * 7 + ["failed"]
    assert (row["attempts"], row["next_attempt_at"], row["last_status"]) == (8, None, None)
    attempts = attempt_rows(db, row["id"])
    assert len(attempts) == 8
    assert all(a["status_code"] is None and "Refused" in a["error"] for a in attempts)
    gaps = [
        (later["attempted_at"] - earlier["attempted_at"]).total_seconds()
        for earlier, later in itertools.pairwise(attempts)
    ]
    for gap, base in zip(gaps, schedule, strict=True):
        assert base * 0.8 <= gap <= base * 1.2
    assert jobs.deliver(row["id"], now=datetime.now(UTC) + timedelta(days=2)) is None
    # Nine hours of failures are not yet a day: the subscription stays active.
    [shown] = listed(gql, bearer)
    assert (shown["state"], shown["consecutiveFailures"]) == ("ACTIVE", 8)


def test_a_delivery_is_sent_once_however_often_its_job_runs(
    gql, db, job_env, redis_client, slug, integrator, receiver
):
    _client, bearer = integrator([slug], ALERTS_READ)
    subscription, receiver.secret = subscribe(gql, bearer, receiver.url)
    publish(slug)
    [row] = delivery_rows(db, subscription["id"])
    jobs.enqueue_deliveries(job_env, [row["id"], row["id"]])

    work_off(redis_client)

    assert len(receiver.accepted) == 1
    assert jobs.deliver(row["id"]) is None
    assert len(attempt_rows(db, row["id"])) == 1


# -- pausing, resuming, redelivering ------------------------------------------------


def test_long_failure_pauses_paused_gets_nothing_new_and_resume_restarts(
    gql, db, job_env, monkeypatch, slug, integrator, receiver
):
    monkeypatch.setenv("WEBHOOK_PAUSE_AFTER_HOURS", "2")
    reset_job_runtime()
    _client, bearer = integrator([slug], ALERTS_READ)
    subscription, receiver.secret = subscribe(gql, bearer, receiver.url)
    receiver.max_age = 10**9  # signed on a controlled clock
    receiver.answers.extend([503] * 3)

    publish(slug)
    [first] = delivery_rows(db, subscription["id"])
    t0 = first["next_attempt_at"]
    assert jobs.deliver(first["id"], now=t0) == "pending"
    publish(slug)
    second = delivery_rows(db, subscription["id"])[1]
    assert jobs.deliver(second["id"], now=t0 + timedelta(hours=1)) == "pending"
    [shown] = listed(gql, bearer)
    assert (shown["state"], shown["consecutiveFailures"]) == ("ACTIVE", 2)
    assert datetime.fromisoformat(shown["failingSince"]) == t0

    # Two hours into the run of failures: this failure pauses it.
    assert jobs.deliver(first["id"], now=t0 + timedelta(hours=2, minutes=1)) == "failed"
    [shown] = listed(gql, bearer)
    assert shown["state"] == "PAUSED"
    assert datetime.fromisoformat(shown["pausedAt"]) == t0 + timedelta(hours=2, minutes=1)
    assert "持续投递失败" in shown["pauseReason"]
    # What was still pending failed with it, and is not sent when its retry comes.
    assert [d["state"] for d in delivery_rows(db, subscription["id"])] == ["failed", "failed"]
    assert jobs.deliver(second["id"], now=t0 + timedelta(hours=3)) is None
    assert len(receiver.accepted) == 3
    key = str(decode_id(subscription["id"]).key)
    assert audit_actions(db, key)[-1] == "webhook.pause"

    assert publish(slug) == 0  # paused: no new deliveries

    resumed = mutate(gql, bearer, RESUME, {"id": subscription["id"]})
    assert resumed["userErrors"] == []
    assert {k: resumed["subscription"][k] for k in ("state", "consecutiveFailures")} == {
        "state": "ACTIVE",
        "consecutiveFailures": 0,
    }
    assert resumed["subscription"]["failingSince"] is None
    assert resumed["subscription"]["pausedAt"] is None
    again = mutate(gql, bearer, RESUME, {"id": subscription["id"]})
    assert codes(again) == [("id", "INVALID_TRANSITION")]
    # Resuming sends nothing again by itself; new events flow.
    assert [d["state"] for d in delivery_rows(db, subscription["id"])] == ["failed", "failed"]
    assert publish(slug) == 1
    newest = delivery_rows(db, subscription["id"])[-1]
    assert jobs.deliver(newest["id"]) == "delivered"
    assert audit_actions(db, key)[-1] == "webhook.resume"


def test_a_thousand_failures_in_a_row_pause_however_short_the_time(
    gql, db, job_env, slug, integrator, receiver
):
    _client, bearer = integrator([slug], ALERTS_READ)
    subscription, receiver.secret = subscribe(gql, bearer, receiver.url)
    receiver.answers.append(500)
    key = int(decode_id(subscription["id"]).key)
    with db.platform() as conn:
        s = webhook_subscriptions
        conn.execute(
            update(s)
            .where(s.c.id == key)
            .values(
                consecutive_failures=machine.PAUSE_AFTER_FAILURES - 1,
                failing_since=datetime.now(UTC) - timedelta(minutes=5),
            )
        )
    publish(slug)
    [row] = delivery_rows(db, subscription["id"])
    assert jobs.deliver(row["id"]) == "failed"
    [shown] = listed(gql, bearer)
    assert shown["state"] == "PAUSED"
    assert shown["pauseReason"] == f"连续 {machine.PAUSE_AFTER_FAILURES} 次投递失败"


def test_redeliver_replays_a_failed_delivery_with_the_same_event_id(
    gql, db, job_env, redis_client, slug, integrator, receiver
):
    _client, bearer = integrator([slug], ALERTS_READ)
    _other_client, other = integrator([slug], ALERTS_READ)
    subscription, receiver.secret = subscribe(gql, bearer, receiver.url)
    publish(slug)
    [row] = delivery_rows(db, subscription["id"])
    failed_id = delivery_gid(row["id"])

    not_yet = mutate(gql, bearer, REDELIVER, {"delivery": failed_id})
    assert codes(not_yet) == [("delivery", "INVALID_TRANSITION")]  # still pending
    with db.platform() as conn:
        d = webhook_deliveries
        conn.execute(update(d).where(d.c.id == row["id"]).values(state="failed"))
    assert codes(mutate(gql, other, REDELIVER, {"delivery": failed_id})) == [
        ("delivery", "NOT_FOUND")
    ]

    replay = mutate(gql, bearer, REDELIVER, {"delivery": failed_id})
    assert replay["userErrors"] == []
    delivery = replay["delivery"]
    assert (delivery["state"], delivery["redeliveryOf"], delivery["attempts"]) == (
        "PENDING",
        failed_id,
        [],
    )
    assert delivery["eventId"] == str(row["event_id"])
    work_off(redis_client)  # enqueued after the mutation's commit

    [envelope] = receiver.envelopes()
    assert envelope["id"] == str(row["event_id"])
    states = [d["state"] for d in delivery_rows(db, subscription["id"])]
    assert states == ["failed", "delivered"]
    again = mutate(gql, bearer, REDELIVER, {"delivery": delivery["id"]})
    assert codes(again) == [("delivery", "INVALID_TRANSITION")]  # delivered
    # Filtering a subscription's deliveries by state.
    [shown] = listed(gql, bearer, state="FAILED")
    assert [e["node"]["id"] for e in shown["deliveries"]["edges"]] == [failed_id]


def test_rotating_the_secret_signs_the_next_attempt_with_the_new_one(
    gql, db, job_env, slug, integrator, receiver
):
    _client, bearer = integrator([slug], ALERTS_READ)
    subscription, old_secret = subscribe(gql, bearer, receiver.url)
    rotated = mutate(gql, bearer, ROTATE, {"id": subscription["id"]})
    assert rotated["userErrors"] == []
    new_secret = rotated["secret"]
    assert new_secret != old_secret and new_secret.startswith("whsec_")

    receiver.secret = old_secret
    publish(slug)
    [row] = delivery_rows(db, subscription["id"])
    assert jobs.deliver(row["id"]) == "pending"  # the receiver refused it: 401
    assert attempt_rows(db, row["id"])[0]["status_code"] == 401
    receiver.secret = new_secret
    assert jobs.deliver(row["id"], now=delivery_rows(db, subscription["id"])[0]["next_attempt_at"])
    assert receiver.refused == 1 and len(receiver.accepted) == 1
    key = str(decode_id(subscription["id"]).key)
    assert audit_actions(db, key) == ["webhook.subscribe", "webhook.rotate_secret"]


# -- the sweep --------------------------------------------------------------------


def test_the_sweep_re_enqueues_deliveries_whose_job_redis_lost(
    gql, db, job_env, redis_client, slug, integrator, receiver
):
    _client, bearer = integrator([slug], ALERTS_READ)
    subscription, receiver.secret = subscribe(gql, bearer, receiver.url)
    publish(slug)
    notify = Queue(NOTIFY, connection=redis_client)
    notify.empty()  # the job is lost
    [row] = delivery_rows(db, subscription["id"])

    assert row["id"] not in _swept(datetime.now(UTC))  # due just now: its job may yet run
    with db.platform() as conn:
        d = webhook_deliveries
        lost_at = datetime.now(UTC) - jobs.SWEEP_GRACE - timedelta(seconds=1)
        conn.execute(update(d).where(d.c.id == row["id"]).values(next_attempt_at=lost_at))

    assert jobs.sweep_webhook_deliveries() >= 1
    assert row["id"] in [job.args[0] for job in notify.get_jobs()]
    # Marked due at the sweep: the next sweep leaves it to the job just enqueued.
    assert row["id"] not in _swept(datetime.now(UTC) + timedelta(seconds=30))
    work_off(redis_client)
    assert [d["state"] for d in delivery_rows(db, subscription["id"])] == ["delivered"]

    [registered] = [
        j
        for j in build_cron_scheduler(redis_client).get_jobs()
        if j.func is jobs.sweep_webhook_deliveries
    ]
    assert (registered.queue_name, registered.interval) == (MAINTENANCE, WEBHOOK_SWEEP_INTERVAL)
    assert WEBHOOK_SWEEP_INTERVAL == 60


def _swept(now: datetime) -> list[int]:
    from villagelink.jobs.worker import job_database

    with job_database().platform() as conn:
        return machine.overdue(conn, now, jobs.SWEEP_GRACE, jobs.SWEEP_BATCH)


# -- statement count --------------------------------------------------------------

PAGE = """query($first: Int!) { webhookSubscriptions(first: $first) { edges { node {
  id url state deliveries(first: 5) { totalCount edges { node { id state attemptCount
    attempts { statusCode error durationMs attemptedAt } } } } } } } }"""


def test_statement_count_is_pinned_and_flat(app, gql, db, slug, integrator):
    client, bearer = integrator([slug], ALERTS_READ)
    now = datetime.now(UTC)
    with db.platform() as conn:
        s, d, a = webhook_subscriptions, webhook_deliveries, webhook_attempts
        ids = list(
            conn.execute(
                insert(s).returning(s.c.id),
                [
                    {
                        "client_id": client,
                        "url": f"https://example.org/{n}",
                        "event_types": [RAISED],
                        "secret": "whsec_test",
                    }
                    for n in range(50)
                ],
            ).scalars()
        )
        delivery_ids = list(
            conn.execute(
                insert(d).returning(d.c.id),
                [
                    {
                        "subscription_id": sid,
                        "event_id": uuid.uuid4(),
                        "event_type": RAISED,
                        "village": slug,
                        "occurred_at": now,
                        "payload": {"alert": {"n": n}},
                        "state": "delivered",
                        "attempts": 2,
                    }
                    for sid in ids
                    for n in range(6)
                ],
            ).scalars()
        )
        conn.execute(
            insert(a),
            [
                {"delivery_id": did, "attempted_at": now, "status_code": code, "duration_ms": 3}
                for did in delivery_ids
                for code in (500, 200)
            ],
        )
        assert conn.execute(select(func.count()).select_from(a)).scalar_one() >= 600

    def run(first: int) -> list[str]:
        with count_statements(app.extensions["villagelink"].db.engine) as statements:
            _, body = gql(PAGE, bearer, {"first": first})
        assert "errors" not in body, body
        edges = body["data"]["webhookSubscriptions"]["edges"]
        assert len(edges) == first
        assert all(len(e["node"]["deliveries"]["edges"]) == 5 for e in edges)
        return statements

    run(1)  # warm the pool
    five, fifty = run(5), run(50)
    # the subscriptions page, their deliveries, the deliveries' attempts, delivery counts
    assert len(five) == len(fifty) == 4, "\n".join(fifty)

"""Minutes matter: from a device's fall event to the alert stored, and to the webhook received.

    .venv/bin/python bench/alert_latency.py [--url URL] [--village liulin] [--falls 50]

Against a running `make run` (gateway, RQ worker and scheduler; same environment).
A local HTTP receiver on 127.0.0.1 stands in for the grid workers' app: the demo
device platform (`demo-integrator`) subscribes it to `alert.raised`, then reports
`--falls` falls, one at a time, each from another radar or camera of the village.
For each it measures, from just before `ingestDeviceEvents` is sent:

- stored: the response is back, so the alert is committed (the rules ran in the call);
- webhook: the receiver has the signed `alert.raised` delivery for that alert (the
  notify job ran, the delivery job ran, the POST arrived and its signature checked).

It prints p50/p95/max of both. Afterwards the village admin marks the bench's alerts as
false alarms (their timelines say so) and the subscription is deleted.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from residents_list import graphql, mint_token, percentile, wait_for_quiet_queues
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from villagelink.platform.simulator import INGEST_EVENTS, GraphQLClient, list_devices

SUBSCRIBE = """
mutation Subscribe($input: CreateWebhookSubscriptionInput!) {
  createWebhookSubscription(input: $input) {
    subscription { id }
    secret
    userErrors { field message code }
  }
}
"""
UNSUBSCRIBE = """
mutation Unsubscribe($input: WebhookSubscriptionStepInput!) {
  deleteWebhookSubscription(input: $input) { userErrors { message } }
}
"""
LIVE_FALLS = """
query LiveFalls($village: String!, $after: String) {
  village(slug: $village) {
    alerts(first: 100, after: $after, kind: [FALL], state: [OPEN, ASSIGNED, ACKNOWLEDGED]) {
      edges { node { device { id } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
FALSE_ALARM = """
mutation FalseAlarm($input: MarkAlertFalseAlarmInput!) {
  markAlertFalseAlarm(input: $input) { userErrors { message code } }
}
"""


# p50 and p95 in ms of the last run recorded in bench/README.md, printed beside this
# run's. Update it with the README.
LAST_RECORDED = {
    "event → alert stored": (12.5, 16.4),
    "event → webhook received": (18.7, 23.4),
}


class Receiver(ThreadingHTTPServer):
    """Records when each alert's signed delivery arrived; refuses a bad signature."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.secret = ""
        self.arrived: dict[str, float] = {}
        self.bad_signatures = 0
        self.changed = threading.Condition()

    def wait_for(self, alert_id: str, timeout: float) -> float | None:
        with self.changed:
            self.changed.wait_for(lambda: alert_id in self.arrived, timeout)
            return self.arrived.get(alert_id)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        arrived = time.perf_counter()
        try:
            Webhook(self.server.secret).verify(body, dict(self.headers), json_parse=False)
        except WebhookVerificationError:
            self.server.bad_signatures += 1
            self.send_response(401)
            self.end_headers()
            return
        alert = json.loads(body)["data"]["alert"]["id"]
        with self.server.changed:
            self.server.arrived.setdefault(alert, arrived)
            self.server.changed.notify_all()
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


def live_fall_devices(url: str, admin: str, village: str) -> set[str]:
    busy: set[str] = set()
    after = None
    with requests.Session() as session:
        while True:
            page = graphql(session, url, admin, LIVE_FALLS, {"village": village, "after": after})
            alerts = page["village"]["alerts"]
            busy |= {e["node"]["device"]["id"] for e in alerts["edges"] if e["node"]["device"]}
            if not alerts["pageInfo"]["hasNextPage"]:
                return busy
            after = alerts["pageInfo"]["endCursor"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/graphql")
    parser.add_argument("--village", default="liulin")
    parser.add_argument("--falls", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait per webhook")
    args = parser.parse_args()

    integrator = mint_token("--role", "integrator", "--client", "demo-integrator")
    admin = mint_token("--role", "village-admin", "--village", args.village)
    # A fall on a device whose last fall is still live joins that alert (one episode, one
    # alert) and raises nothing new: take the others.
    busy = live_fall_devices(args.url, admin, args.village)
    devices = [
        d
        for d in list_devices(GraphQLClient(args.url, lambda: integrator), args.village)
        if d["kind"] in ("MMWAVE_RADAR", "AI_CAMERA")
        and d["status"] != "DISABLED"
        and d["id"] not in busy
    ]
    if len(devices) < args.falls:
        sys.exit(f"{args.village} has {len(devices)} radars and cameras; ask for fewer --falls")
    # Under `make run` one worker serves every queue, sync first: a fall's notify job
    # waits for whatever job it is running.
    wait_for_quiet_queues()

    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    session = requests.Session()
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}/hooks"
    created = graphql(
        session,
        args.url,
        integrator,
        SUBSCRIBE,
        {"input": {"url": endpoint, "eventTypes": ["alert.raised"]}},
    )["createWebhookSubscription"]
    if created["userErrors"]:
        sys.exit(f"could not subscribe: {created['userErrors']}")
    receiver.secret = created["secret"]

    stored_ms: list[float] = []
    webhook_ms: list[float] = []
    alerts: list[str] = []
    missed = 0
    print(f"falls → alert → webhook, village {args.village}, {args.falls} falls, {args.url}")
    try:
        for number, device in enumerate(devices[: args.falls]):
            event = {
                "device": device["id"],
                "eventId": f"bench-fall-{time.time_ns()}-{number}",
                "kind": "fall",
                "occurredAt": datetime.now(UTC).isoformat(),
                "details": {"bench": True},
            }
            started = time.perf_counter()
            result = graphql(
                session, args.url, integrator, INGEST_EVENTS, {"input": {"events": [event]}}
            )["ingestDeviceEvents"]
            stored = time.perf_counter()
            if not result["alerts"]:
                sys.exit(f"no alert raised for a fall: {result}")
            alert = result["alerts"][0]
            alerts.append(alert)
            stored_ms.append((stored - started) * 1000)
            arrived = receiver.wait_for(alert, args.timeout)
            if arrived is None:
                missed += 1
            else:
                webhook_ms.append((arrived - started) * 1000)
    finally:
        for alert in alerts:
            graphql(
                session,
                args.url,
                admin,
                FALSE_ALARM,
                {"input": {"id": alert, "note": "压测数据（bench/alert_latency.py）"}},
            )
        graphql(
            session,
            args.url,
            integrator,
            UNSUBSCRIBE,
            {"input": {"id": created["subscription"]["id"]}},
        )
        receiver.shutdown()

    print(
        f"{'step':<30} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
        f" {'last p50':>9} {'last p95':>9}"
    )
    for label, values in (
        ("event → alert stored", stored_ms),
        ("event → webhook received", webhook_ms),
    ):
        if values:
            last_p50, last_p95 = LAST_RECORDED[label]
            print(
                f"{label:<30} {len(values):>4} {percentile(values, 50):>8.1f} "
                f"{percentile(values, 95):>8.1f} {max(values):>8.1f} {last_p50:>9.1f} "
                f"{last_p95:>9.1f}"
            )
    if missed or receiver.bad_signatures:
        print(f"missing webhooks: {missed}, bad signatures: {receiver.bad_signatures}")


if __name__ == "__main__":
    main()

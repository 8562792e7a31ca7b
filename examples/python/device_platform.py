"""A device platform (设备平台) on villagelink, as an integrator writes it: the `gql` package
with its requests transport, and the Standard Webhooks library for the alert webhook.

The whole flow: a token by client credentials, a webhook subscription to our own endpoint,
a smoke sensor registered in a building of a village (its grid's workers get the alert), a
smoke event sent, the alert webhook received and verified, and the refusal of what the
client may not do: acknowledge the alert (the grid workers' step) or read residents.

    ISSUER=http://127.0.0.1:8000/dev-issuer/realms/villagelink
    python examples/python/device_platform.py --graphql-url http://127.0.0.1:8000/graphql \\
        --token-url $ISSUER/protocol/openid-connect/token \\
        --client-id acme-sensors --village liulin --building 3号楼

with the secret in VILLAGELINK_CLIENT_SECRET. docs/getting-started-python.md walks through it;
tests/test_client_examples.py runs `run` against a live gateway and a real notify worker.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from gql import Client, GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.requests import RequestsHTTPTransport
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SUBSCRIBE = gql("""
mutation Subscribe($input: CreateWebhookSubscriptionInput!) {
  createWebhookSubscription(input: $input) {
    subscription { id state eventTypes }
    secret
    userErrors { field message code }
  }
}""")
REGISTER = gql("""
mutation Register($input: RegisterDeviceInput!) {
  registerDevice(input: $input) {
    device { id kind status }
    userErrors { field message code }
  }
}""")
SEND = gql("""
mutation Send($input: IngestDeviceEventsInput!) {
  ingestDeviceEvents(input: $input) {
    accepted duplicates alerts
    itemErrors { index field message code }
    userErrors { field message code }
  }
}""")
ACKNOWLEDGE = gql("""
mutation Acknowledge($input: AcknowledgeAlertInput!) {
  acknowledgeAlert(input: $input) { alert { id state } userErrors { field message code } }
}""")
RESIDENTS = gql("""
query Residents($village: String!) {
  village(slug: $village) { residents(first: 1) { totalCount } }
}""")


@dataclass
class Outcome:
    """What each step brought back, for the caller (and the tests) to check."""

    token_type: str
    subscription_state: str
    device: dict
    ingest: dict
    webhook: dict
    # What it may not do, by operation: the error code the platform answered.
    refusals: dict[str, str]


def client_token(token_url: str, client_id: str, client_secret: str) -> dict:
    """OAuth 2.0 client credentials at the issuer's token endpoint (HTTP Basic)."""
    answer = requests.post(
        token_url,
        data={"grant_type": "client_credentials"},
        auth=(client_id, client_secret),
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()


def graphql_client(graphql_url: str, access_token: str) -> Client:
    transport = RequestsHTTPTransport(
        url=graphql_url,
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=30,
    )
    # The schema is not fetched: the documents are checked by the server.
    return Client(transport=transport, fetch_schema_from_transport=False)


def mutate(session, document: GraphQLRequest, field: str, input: dict) -> dict:
    """The mutation's payload, or an error naming its userErrors (nothing was changed)."""
    payload = session.execute(GraphQLRequest(document, variable_values={"input": input}))[field]
    if payload["userErrors"]:
        raise RuntimeError(f"{field} refused: {payload['userErrors']}")
    return payload


class WebhookEndpoint:
    """Our endpoint for villagelink's webhooks: answers 401 to anything whose Standard
    Webhooks signature does not verify with the subscription's secret, 200 otherwise,
    and hands every verified event on."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.secret: str | None = None
        self.events: queue.Queue[dict] = queue.Queue()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    # Checks the signature and refuses a timestamp over five minutes off.
                    event = Webhook(endpoint.secret or "").verify(body, dict(self.headers))
                except WebhookVerificationError:
                    self._answer(401)
                    return
                endpoint.events.put(event)
                self._answer(200)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/hooks/villagelink"

    @contextmanager
    def serving(self) -> Iterator[WebhookEndpoint]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()

    def next_event(self, event_type: str, timeout: float) -> dict:
        """The next verified event of `event_type`, skipping others."""
        while True:
            event = self.events.get(timeout=timeout)
            if event["type"] == event_type:
                return event


def refusal(session, request: GraphQLRequest) -> str:
    """The error code of a request the client may not make; an error if it went through."""
    try:
        session.execute(request)
    except TransportQueryError as refused:
        return refused.errors[0]["extensions"]["code"]
    raise RuntimeError(f"allowed, though out of this client's reach: {request}")


def run(
    graphql_url: str,
    token_url: str,
    client_id: str,
    client_secret: str,
    village: str,
    building: str,
    webhook_timeout: float = 30,
) -> Outcome:
    token = client_token(token_url, client_id, client_secret)
    client = graphql_client(graphql_url, token["access_token"])
    endpoint = WebhookEndpoint()
    with endpoint.serving(), client as session:
        subscribed = mutate(
            session,
            SUBSCRIBE,
            "createWebhookSubscription",
            {"url": endpoint.url, "eventTypes": ["alert.raised"]},
        )
        # Shown once: a real platform keeps it in its secret store.
        endpoint.secret = subscribed["secret"]

        device = mutate(
            session,
            REGISTER,
            "registerDevice",
            {
                "village": village,
                "kind": "SMOKE_SENSOR",
                "serialNumber": f"SMK-{uuid.uuid4().hex[:8]}",
                "name": f"{building}烟感",
                "building": building,
                "locationText": f"{building}2单元楼道",
            },
        )["device"]

        event = {
            "device": device["id"],
            # Our own id: sent again after a timeout, it counts once.
            "eventId": uuid.uuid4().hex,
            "kind": "smoke",
            "occurredAt": datetime.now(UTC).isoformat(),
            "details": {"obscuration": 0.42},
        }
        ingest = mutate(session, SEND, "ingestDeviceEvents", {"events": [event]})

        webhook = endpoint.next_event("alert.raised", webhook_timeout)

        # A device platform reports; the village's grid workers act on the alert and only
        # they read residents. Out of reach is answered as if it did not exist.
        alert = {"id": webhook["data"]["alert"]["id"], "note": "设备平台已知悉"}
        refusals = {
            "acknowledgeAlert": refusal(
                session, GraphQLRequest(ACKNOWLEDGE, variable_values={"input": alert})
            ),
            "residents": refusal(
                session, GraphQLRequest(RESIDENTS, variable_values={"village": village})
            ),
        }

    return Outcome(
        token_type=token["token_type"],
        subscription_state=subscribed["subscription"]["state"],
        device=device,
        ingest=ingest,
        webhook=webhook,
        refusals=refusals,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graphql-url", required=True)
    parser.add_argument("--token-url", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--village", required=True)
    parser.add_argument("--building", required=True, help="the building's name, e.g. 3号楼")
    args = parser.parse_args()
    outcome = run(
        args.graphql_url,
        args.token_url,
        args.client_id,
        os.environ["VILLAGELINK_CLIENT_SECRET"],
        args.village,
        args.building,
    )
    print(json.dumps(outcome.__dict__, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()

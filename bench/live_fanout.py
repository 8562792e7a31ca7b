"""Live events to many open consoles: from a device's fall to ALERT_RAISED on every stream.

    .venv/bin/python bench/live_fanout.py [--url URL] [--live-url URL] [--village liulin]
        [--subscribers 200] [--falls 10]

Against a running `make run` (gateway and live process). `--subscribers` streams are
opened on the live process as the village's admin (one aiohttp session, as many
connections); then the demo device platform reports `--falls` falls one at a time, each
from another radar or camera, and for each the bench waits until every stream has its
ALERT_RAISED. It prints the percentiles of the delivery latency over every (fall,
stream), counted from just before `ingestDeviceEvents` is sent, and how long a gateway
query took meanwhile. Afterwards the village admin marks the bench's alerts as false
alarms.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime

import aiohttp
import requests
from alert_latency import FALSE_ALARM, live_fall_devices
from residents_list import graphql, mint_token, percentile, wait_for_quiet_queues

from villagelink.platform.live.client import subscription
from villagelink.platform.simulator import INGEST_EVENTS, GraphQLClient, list_devices

LIVE = """subscription Bench($village: String!) {
  liveEvents(village: $village, kinds: [ALERT_RAISED]) { subjectId } }"""


async def run(args: argparse.Namespace, admin: str, integrator: str, devices: list[dict]) -> None:
    arrivals: dict[str, list[float]] = {}
    opened = 0
    all_open = asyncio.Event()

    async def stream(session: aiohttp.ClientSession) -> None:
        nonlocal opened
        async with subscription(
            session, args.live_url, admin, LIVE, {"village": args.village}
        ) as results:
            opened += 1
            if opened == args.subscribers:
                all_open.set()
            async for result in results:
                alert = result["data"]["liveEvents"]["subjectId"]
                arrivals.setdefault(alert, []).append(time.perf_counter())

    connector = aiohttp.TCPConnector(limit=0)
    latencies_ms: list[float] = []
    query_ms: list[float] = []
    alerts: list[str] = []
    http = requests.Session()
    async with aiohttp.ClientSession(connector=connector) as session:
        streams = [asyncio.create_task(stream(session)) for _ in range(args.subscribers)]
        await asyncio.wait_for(all_open.wait(), 120)
        print(
            f"{args.subscribers} streams open on {args.live_url}; {args.falls} falls in "
            f"{args.village}"
        )
        try:
            for number, device in enumerate(devices[: args.falls]):
                event = {
                    "device": device["id"],
                    "eventId": f"bench-live-{time.time_ns()}-{number}",
                    "kind": "fall",
                    "occurredAt": datetime.now(UTC).isoformat(),
                    "details": {"bench": True},
                }
                started = time.perf_counter()
                result = await asyncio.to_thread(
                    graphql,
                    http,
                    args.url,
                    integrator,
                    INGEST_EVENTS,
                    {"input": {"events": [event]}},
                )
                alert = result["ingestDeviceEvents"]["alerts"][0]
                alerts.append(alert)
                deadline = time.perf_counter() + args.timeout
                while len(arrivals.get(alert, ())) < args.subscribers:
                    if time.perf_counter() > deadline:
                        break
                    await asyncio.sleep(0.01)
                latencies_ms += [(t - started) * 1000 for t in arrivals.get(alert, ())]
                asked = time.perf_counter()
                await asyncio.to_thread(graphql, http, args.url, admin, "{ me { subject } }")
                query_ms.append((time.perf_counter() - asked) * 1000)
        finally:
            for stream_task in streams:
                stream_task.cancel()
            for alert in alerts:
                graphql(
                    http,
                    args.url,
                    admin,
                    FALSE_ALARM,
                    {"input": {"id": alert, "note": "压测数据（bench/live_fanout.py）"}},
                )

    expected = args.subscribers * len(alerts)
    print(f"{'measure':<34} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, values in (
        ("fall → ALERT_RAISED on a stream", latencies_ms),
        ("gateway query, streams open", query_ms),
    ):
        if values:
            print(
                f"{label:<34} {len(values):>6} {percentile(values, 50):>8.1f} "
                f"{percentile(values, 95):>8.1f} {percentile(values, 99):>8.1f} "
                f"{max(values):>8.1f}"
            )
    if len(latencies_ms) != expected:
        print(f"missing deliveries: {expected - len(latencies_ms)} of {expected}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/graphql")
    parser.add_argument("--live-url", default="http://127.0.0.1:8001/graphql/stream")
    parser.add_argument("--village", default="liulin")
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--falls", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per fall")
    args = parser.parse_args()
    wait_for_quiet_queues()

    integrator = mint_token("--role", "integrator", "--client", "demo-integrator")
    admin = mint_token("--role", "village-admin", "--village", args.village)
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
    asyncio.run(run(args, admin, integrator, devices))


if __name__ == "__main__":
    main()

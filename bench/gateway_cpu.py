"""The gateway's CPU per request for the race's three reads, in one process.

    .venv/bin/python bench/gateway_cpu.py [--village hedong] [--requests 150] [--rounds 4]

The reads of `race/race.py` (a page of 50 residents with household and grid; 10 aged 80 and
over; one resident by ID) sent as a village admin through Flask's test client to an app
built in this process over `make run`'s database (same environment as the server, as for
every bench; the server itself need not run). No HTTP server, no client beside it, no other
process: the figure is the gateway's own CPU for a request, steady enough to tell levers of
a few percent apart where a race's req/s swings by more. Per read and round, `--requests`
requests after ten untimed ones; it prints each read's CPU ms per request, rounds sorted.
Each round ends with a garbage collection of its own, so that no round pays another's.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from race.race import ELDERLY_AGE, GATEWAY_ELDERLY, GATEWAY_ONE
from residents_list import RESIDENTS_QUERY, mint_token

from villagelink.platform.app import create_app
from villagelink.platform.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--village", default="hedong")
    parser.add_argument("--requests", type=int, default=150, help="per read and round")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    # The cost budget would refuse a few hundred requests a minute from one caller.
    app = create_app(replace(load_settings(), rate_limit_cost_per_minute=10**9))
    client = app.test_client()
    token = mint_token("--role", "village-admin", "--village", args.village)
    headers = {"Authorization": f"Bearer {token}"}

    def send(query: str, variables: dict) -> dict:
        body = client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        ).get_json()
        if body.get("errors"):
            sys.exit(f"{body['errors'][0]['message']}: is `make run`'s demo region seeded?")
        return body["data"]

    page = send(RESIDENTS_QUERY, {"slug": args.village})
    resident = page["village"]["residents"]["edges"][0]["node"]["id"]
    reads = {
        "page of 50 + h + g": (RESIDENTS_QUERY, {"slug": args.village}),
        f"10 aged {ELDERLY_AGE}+": (GATEWAY_ELDERLY, {"slug": args.village, "age": ELDERLY_AGE}),
        "one resident by ID": (GATEWAY_ONE, {"id": resident}),
    }
    rounds: dict[str, list[float]] = {name: [] for name in reads}
    for _ in range(args.rounds):
        for name, (query, variables) in reads.items():
            for _ in range(10):
                send(query, variables)
            gc.collect()
            started = time.process_time()
            for _ in range(args.requests):
                send(query, variables)
            rounds[name].append((time.process_time() - started) * 1000 / args.requests)
    print(f"village {args.village}, {args.rounds} x {args.requests} requests, CPU ms per request")
    for name, figures in rounds.items():
        print(f"{name:<22} " + " ".join(f"{ms:6.2f}" for ms in sorted(figures)))


if __name__ == "__main__":
    main()

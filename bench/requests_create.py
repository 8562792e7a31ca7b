"""Requests per second for registering requests (分类登记) through `createRequest`.

    .venv/bin/python bench/requests_create.py [--url URL] [--village SLUG] [--token TOKEN]

Against a running server: registers `--requests` requests at each concurrency
level (1 and 8 by default, each level bounded by `--time-limit` seconds), each at
a household of the village with one of its categories, and prints p50/p95 latency
and requests per second. Every request is a real write (row, timeline entry,
outbox row, audit entry) that stays in the village: run it against a scratch
server (its own VILLAGELINK_VAR_DIR), not one whose data matters, started with a
cost budget above what it sends (RATE_LIMIT_COST_PER_MINUTE=1000000000; the default
budget per caller would be what it measures). Without --token
it mints a village-admin token with `villagelink token`, which needs the same
environment as the server.
"""

from __future__ import annotations

import argparse
import itertools

import requests
from residents_list import (
    HEADER,
    first_village,
    graphql,
    mint_token,
    report,
    run_round,
    wait_for_quiet_queues,
)

CREATE_REQUEST = """
mutation Create($input: CreateRequestInput!) {
  createRequest(input: $input) {
    request { id state dueAt }
    userErrors { field message code }
  }
}
"""

RATE_LIMITED = (
    "            (429: the server's per-caller limit stopped it; start the server with "
    "RATE_LIMIT_COST_PER_MINUTE=1000000000 to measure the writes instead)"
)

PLACES = """
query Places($slug: String!) {
  village(slug: $slug) {
    requestCategories { id code }
    households(first: 100) { edges { node { id } } }
  }
}
"""


def places(url: str, token: str, slug: str) -> tuple[list[str], list[str]]:
    """The village's category and household IDs, which every new request names."""
    with requests.Session() as session:
        village = graphql(session, url, token, PLACES, {"slug": slug})["village"]
    categories = [c["id"] for c in village["requestCategories"]]
    households = [edge["node"]["id"] for edge in village["households"]["edges"]]
    if not categories or not households:
        raise SystemExit(f"village {slug} has no categories or no households to register at")
    return categories, households


def new_request(slug: str, number: int, categories: list[str], households: list[str]) -> dict:
    return {
        "village": slug,
        "channel": "MINI_PROGRAM",
        "category": categories[number % len(categories)],
        "household": households[number % len(households)],
        "description": f"压测诉求第{number}号：楼道灯不亮",
        "reporterName": "压测居民",
        "reporterPhone": "13800000000",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/graphql")
    parser.add_argument("--village", help="village slug (default: the first the server lists)")
    parser.add_argument("--token", help="bearer token (default: minted for the village admin)")
    parser.add_argument("--requests", type=int, default=1000, help="per concurrency level")
    parser.add_argument("--concurrency", default="1,8", help="comma-separated levels")
    parser.add_argument("--time-limit", type=float, default=120, help="seconds per level")
    args = parser.parse_args()

    slug = args.village or first_village(args.url)
    token = args.token or mint_token("--role", "village-admin", "--village", slug)
    where = places(args.url, token, slug)
    numbers = itertools.count(1)
    wait_for_quiet_queues()
    print(f"createRequest, village {slug}, {args.url}")
    print(HEADER)

    def send(session: requests.Session, _number: int) -> None:
        # Numbers run on across levels, so every registration differs.
        variables = {"input": new_request(slug, next(numbers), *where)}
        data = graphql(session, args.url, token, CREATE_REQUEST, variables)
        refused = data["createRequest"]["userErrors"]
        if refused:
            raise RuntimeError(refused[0]["message"])

    for level in (int(n) for n in args.concurrency.split(",")):
        result = run_round(level, args.requests, args.time_limit, send)
        report(result)
        if any("429" in error for error in result.errors):
            print(RATE_LIMITED)


if __name__ == "__main__":
    main()

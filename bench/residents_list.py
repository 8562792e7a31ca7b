"""Latency of the village admin's resident list (50 per page) against a running server.

    .venv/bin/python bench/residents_list.py [--url URL] [--village SLUG] [--token TOKEN]

Runs the same query at each concurrency for a fixed number of requests (or
until the time bound) and prints p50/p95 latency and throughput. Without
--token it mints a village-admin token with `villagelink token`, which needs
the same environment (VILLAGELINK_VAR_DIR, port) as the server.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

RESIDENTS_QUERY = """
query Residents($slug: String!) {
  village(slug: $slug) {
    residents(first: 50) {
      edges {
        node {
          id name gender birthDate age
          household { id address }
          grid { id name }
        }
      }
    }
  }
}
"""

VILLAGELINK = str(Path(sys.executable).parent / "villagelink")


def mint_token(*args: str) -> str:
    result = subprocess.run([VILLAGELINK, "token", *args], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"could not mint a token ({' '.join(args)}): {result.stderr.strip()}")
    return result.stdout.strip()


def graphql(
    session: requests.Session, url: str, token: str, query: str, variables: dict | None = None
) -> dict:
    response = session.post(
        url,
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"][0].get("message", body["errors"]))
    return body["data"]


def first_village(url: str) -> str:
    with requests.Session() as session:
        token = mint_token("--role", "platform-admin")
        data = graphql(session, url, token, "{ villages { slug } }")
    if not data["villages"]:
        sys.exit("the server has no villages: run `make run` first, which seeds the demo region")
    return data["villages"][0]["slug"]


@dataclass
class Round:
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def run_round(
    concurrency: int,
    total: int,
    time_limit: float,
    send: Callable[[requests.Session, int], None],
    warm_up: int = 0,
) -> Round:
    """`total` calls of `send(session, number)` over `concurrency` threads, each with its
    own session; a call that raises counts as an error. Stops early at `time_limit`.

    With `warm_up`, each thread first makes that many calls numbered from `total` on,
    untimed, and the clock starts once all have: each connection then reaches a gateway
    process that has served the call before, as a long-running client's do. A process's
    first call of a kind pays for its statements' compiling and its new database
    connections (a batch of readings: about a tenth of a second), which a short round
    would otherwise count as the gateway's rate."""
    result = Round(concurrency)
    remaining = iter(range(total))
    lock = threading.Lock()
    ready = threading.Barrier(concurrency + 1)

    def call(session: requests.Session, number: int) -> float | None:
        started = time.perf_counter()
        try:
            send(session, number)
        except (requests.RequestException, RuntimeError) as exc:
            with lock:
                result.errors.append(str(exc))
            return None
        return (time.perf_counter() - started) * 1000

    def client(position: int) -> None:
        with requests.Session() as session:
            for n in range(warm_up):
                call(session, total + position * warm_up + n)
            ready.wait()
            deadline = time.monotonic() + time_limit
            while time.monotonic() < deadline:
                with lock:
                    number = next(remaining, None)
                if number is None:
                    return
                elapsed = call(session, number)
                if elapsed is not None:
                    with lock:
                        result.latencies_ms.append(elapsed)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    result.elapsed_s = time.perf_counter() - started
    return result


def wait_for_quiet_queues(limit_s: float = 120.0) -> None:
    """Wait, up to `limit_s`, until the platform's job queues hold nothing queued or
    running (same environment as the server): every bench `make bench` times calls it
    before its clock starts. An earlier bench's leftovers (about 440 sync jobs after
    `requests_create.py`, seven seconds of both cores) would otherwise share the machine
    with this one's clock, or hold up its jobs."""
    from redis.exceptions import RedisError

    from villagelink.jobs.queues import QUEUES, queue
    from villagelink.platform.settings import load_settings

    settings = load_settings()
    queues = [queue(name, settings) for name in QUEUES]
    started = time.monotonic()
    try:
        while any(len(q) or q.started_job_registry.count for q in queues):
            if time.monotonic() - started > limit_s:
                print(f"the job queues were still busy after {limit_s:.0f} s; timing anyway")
                return
            time.sleep(0.5)
    except RedisError as exc:
        # A server of another environment (--url elsewhere): its queues are not here.
        print(f"could not look at the job queues ({exc}); timing anyway")
        return
    waited = time.monotonic() - started
    if waited >= 1:
        print(f"waited {waited:.0f} s for the job queues to empty")


HEADER = (
    f"{'concurrency':>11} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>8}"
)


def report(result: Round) -> None:
    """One line per concurrency level: latency percentiles and throughput."""
    done = result.latencies_ms
    level = result.concurrency
    if not done:
        print(f"{level:>11} {0:>9} {len(result.errors):>7}  all failed: {result.errors[0]}")
        return
    print(
        f"{level:>11} {len(done):>9} {len(result.errors):>7} {percentile(done, 50):>8.1f} "
        f"{percentile(done, 95):>8.1f} {len(done) / result.elapsed_s:>8.1f}"
    )


def percentile(values: list[float], p: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/graphql")
    parser.add_argument("--village", help="village slug (default: the first the server lists)")
    parser.add_argument("--token", help="bearer token (default: minted for the village admin)")
    parser.add_argument("--requests", type=int, default=200, help="per concurrency level")
    parser.add_argument("--concurrency", default="1,8", help="comma-separated levels")
    parser.add_argument("--time-limit", type=float, default=60, help="seconds per level")
    args = parser.parse_args()
    wait_for_quiet_queues()

    slug = args.village or first_village(args.url)
    token = args.token or mint_token("--role", "village-admin", "--village", slug)
    with requests.Session() as session:  # fail early, with the server's message
        data = graphql(session, args.url, token, RESIDENTS_QUERY, {"slug": slug})
    page = len(data["village"]["residents"]["edges"])
    print(f"resident list, {page} per page, village {slug}, {args.url}")
    print(HEADER)

    def send(session: requests.Session, _number: int) -> None:
        graphql(session, args.url, token, RESIDENTS_QUERY, {"slug": slug})

    for level in (int(n) for n in args.concurrency.split(",")):
        report(run_round(level, args.requests, args.time_limit, send))


if __name__ == "__main__":
    main()

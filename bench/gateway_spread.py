"""Keep-alive clients over the gateway's gunicorn workers: one shared listening socket
against a socket per worker (`--reuse-port`, platform/serving.py).

    .venv/bin/python bench/gateway_spread.py [--clients 8] [--workers 2] [--seconds 10]

Uses the database and Valkey of a running `make run` (same environment, as for every
bench) and starts two gateways of its own on free ports, one after the other: gunicorn's
command as `villagelink run` gives it, once without `--reuse-port` (every worker accepting
from the one socket the master bound, as before issue 17) and once with it. For each, the
clients connect at once (a load balancer's pool, the race's threads), then post the
village admin's page of 50 residents over their own connection for `--seconds`. It prints
req/s, p50 and p95 and how many requests each worker served: which worker accepted a
client's connection is read from /proc (the worker holding its other end).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from residents_list import (
    RESIDENTS_QUERY,
    first_village,
    mint_token,
    percentile,
    wait_for_quiet_queues,
)

from villagelink.platform.embedded import free_port
from villagelink.platform.serving import gunicorn_command
from villagelink.platform.settings import load_settings

SHARED = "--reuse-port"
START_TIMEOUT = 60


def start_gateway(port: int, workers: int, per_worker_socket: bool) -> subprocess.Popen:
    env = {
        **os.environ,
        "VILLAGELINK_PORT": str(port),
        "GUNICORN_WORKERS": str(workers),
        # The issuer of `make run`'s tokens, the development issuer's among them.
        "VILLAGELINK_PUBLIC_URL": load_settings().public_url,
        # The budget is not what is measured.
        "RATE_LIMIT_COST_PER_MINUTE": "1000000000",
    }
    command = gunicorn_command(load_settings(env))
    if not per_worker_socket:
        command.remove(SHARED)
    gateway = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return gateway
        except requests.RequestException:
            pass
        if gateway.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the gateway did not start:\n{gateway.stderr.read().decode()}")
        time.sleep(0.2)


def worker_of(connections: list[HTTPConnection], gateway: subprocess.Popen, port: int) -> list:
    """For each client connection, the gunicorn worker holding its other end."""
    holders: dict[int, int] = {}
    for worker in psutil.Process(gateway.pid).children():
        for c in worker.net_connections(kind="tcp"):
            if c.raddr and c.laddr.port == port:
                holders[c.raddr.port] = worker.pid
    return [holders.get(conn.sock.getsockname()[1]) for conn in connections]


def measure(args: argparse.Namespace, per_worker_socket: bool, token: str, slug: str) -> None:
    port = free_port()
    gateway = start_gateway(port, args.workers, per_worker_socket)
    body = json.dumps({"query": RESIDENTS_QUERY, "variables": {"slug": slug}})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        connections = [HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(args.clients)]
        for conn in connections:
            conn.connect()
        counts = [0] * args.clients
        latencies: list[float] = []
        lock = threading.Lock()
        deadline = time.monotonic() + args.seconds

        def client(number: int) -> None:
            conn = connections[number]
            while time.monotonic() < deadline:
                started = time.perf_counter()
                conn.request("POST", "/graphql", body, headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)
                counts[number] += 1

        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        while not all(counts) and time.monotonic() < deadline:
            time.sleep(0.05)  # until every connection has been accepted and answered
        holders = worker_of(connections, gateway, port)
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        per_worker: dict[int | None, int] = {
            w.pid: 0 for w in psutil.Process(gateway.pid).children()
        }
        for holder, count in zip(holders, counts, strict=True):
            per_worker[holder] = per_worker.get(holder, 0) + count
        for conn in connections:
            conn.close()
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=30)
    name = "socket per worker" if per_worker_socket else "one shared socket"
    served = " / ".join(str(n) for n in sorted(per_worker.values(), reverse=True))
    print(
        f"{name:<18} {len(latencies):>8} {len(latencies) / elapsed:>8.1f} "
        f"{percentile(latencies, 50):>8.1f} {percentile(latencies, 95):>8.1f}  {served}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    wait_for_quiet_queues()
    settings = load_settings()
    slug = first_village(f"http://127.0.0.1:{settings.http_port}/graphql")
    token = mint_token("--role", "village-admin", "--village", slug)
    print(f"{args.clients} keep-alive clients, {args.workers} workers, page of 50 in {slug}")
    print(f"{'listening':<18} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}  per worker")
    for per_worker_socket in (False, True):
        measure(args, per_worker_socket, token, slug)


if __name__ == "__main__":
    main()

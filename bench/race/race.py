"""The gateway beside PostGraphile v5 on the same three reads of one village.

    .venv/bin/python bench/race/race.py [--url URL] [--village SLUG] [--seconds 5]
        [--rounds 2] [--concurrency 1,8]

Uses a running `make run` (start it with RATE_LIMIT_COST_PER_MINUTE raised, or the budget
is what it measures) and that server's database: DATABASE_URL, or the embedded PostgreSQL
of `make run` (same environment as the server, as for every bench). It starts PostGraphile
(bench/race/server.mjs, under Node 22 from bench/race/node_modules: `npm ci` there first)
on the village's schema under the village's own role, checks that each read returns the
same rows through both, then times them interleaved (gateway, PostGraphile, PostGraphile,
gateway, ...) at each concurrency and prints req/s, p50, p95, the ratios and the CPU the
HTTP server processes spent per request (from /proc; PostgreSQL's is not counted: it runs
the same for both). PostGraphile and the SQL function it reads through are removed after.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from residents_list import (  # noqa: E402  (bench/ is scripts, not a package)
    RESIDENTS_QUERY,
    Round,
    first_village,
    mint_token,
    percentile,
    run_round,
    wait_for_quiet_queues,
)

from villagelink.graphql.core.ids import decode_id  # noqa: E402
from villagelink.platform.db import tenant_role  # noqa: E402
from villagelink.platform.settings import load_settings  # noqa: E402
from villagelink.tenants.clock import today  # noqa: E402
from villagelink.tenants.residents.queries import _years_before  # noqa: E402

NODE = HERE / "node_modules" / ".bin" / "node"
# Where the race's one SQL function lives: outside the village schema, dropped after.
FUNCTIONS_SCHEMA = "vl_race"
ELDERLY_AGE = 80
WARM_UP_SECONDS = 0.5

GATEWAY_ELDERLY = """
query Elderly($slug: String!, $age: Int!) {
  village(slug: $slug) {
    residents(first: 10, filter: {ageMin: $age}) {
      edges { node { id name gender birthDate } }
    }
  }
}
"""
GATEWAY_ONE = """
query OneResident($id: ID!) {
  node(id: $id) {
    ... on Resident { id name gender birthDate household { id address } grid { id name } }
  }
}
"""
POSTGRAPHILE_PAGE = """
query Residents {
  allResidents(first: 50, orderBy: PRIMARY_KEY_ASC, condition: {status: "active"}) {
    nodes {
      rowId name gender birthDate
      householdByHouseholdId { rowId address }
      gridByGridId { rowId name }
    }
  }
}
"""
POSTGRAPHILE_ELDERLY = """
query Elderly($bornBy: Date!) {
  vlRaceElderlyResidents(bornBy: $bornBy, first: 10) { nodes { rowId name gender birthDate } }
}
"""
POSTGRAPHILE_ONE = """
query OneResident($id: BigInt!) {
  residentByRowId(rowId: $id) {
    rowId name gender birthDate
    householdByHouseholdId { rowId address }
    gridByGridId { rowId name }
  }
}
"""


def libpq_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


def create_function(dsn: str, slug: str) -> None:
    """The "aged N and over" read as PostGraphile reads it: a set-returning function
    (amber's conditions are equality only), with the gateway's filter and order."""
    schema = tenant_role(slug)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {FUNCTIONS_SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {FUNCTIONS_SCHEMA}")
        conn.execute(f'GRANT USAGE, CREATE ON SCHEMA {FUNCTIONS_SCHEMA} TO "{schema}"')
        # Only the village's role reaches its schema; the function is the village's own.
        conn.execute(f'SET ROLE "{schema}"')
        conn.execute(
            f"""CREATE FUNCTION {FUNCTIONS_SCHEMA}.elderly_residents(born_by date)
            RETURNS SETOF "{schema}".residents LANGUAGE sql STABLE AS $$
              SELECT * FROM "{schema}".residents
              WHERE status = 'active' AND birth_date <= born_by ORDER BY id
            $$"""
        )


def drop_function(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {FUNCTIONS_SCHEMA} CASCADE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_postgraphile(dsn: str, slug: str, port: int) -> subprocess.Popen:
    if not NODE.exists():
        sys.exit(f"no Node 22 in {NODE.parent}: run `npm ci` in {HERE} first")
    server = subprocess.Popen(
        [str(NODE), str(HERE / "server.mjs"), dsn, tenant_role(slug), FUNCTIONS_SCHEMA, str(port)],
        cwd=HERE,
        env={**os.environ, "GRAPHILE_ENV": "production"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()  # the schema is built before it listens
    if not line.startswith("listening"):
        server.kill()
        sys.exit(f"PostGraphile did not start: {line!r}")
    return server


def listening_pids(port: int) -> list[int]:
    """The processes holding the socket that listens on `port`: gunicorn's master and
    all its workers (they inherit it), or the one Node process."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue
        if links & inodes:
            pids.append(int(pid))
    return pids


TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def cpu_ms(pids: list[int]) -> float:
    """User and system CPU the processes have spent so far."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total * TICK_MS


@dataclass
class Side:
    """One server: its URL, token and server processes, and how it sends each read."""

    name: str
    url: str
    headers: dict[str, str]
    pids: list[int]

    def post(self, session: requests.Session, query: str, variables: dict) -> dict:
        response = session.post(
            self.url,
            json={"query": query, "variables": variables},
            headers=self.headers,
            timeout=30,
        )
        if response.status_code == 429:
            sys.exit(
                f"{self.name}: 429 RATE_LIMITED; start the server with RATE_LIMIT_COST_PER_MINUTE "
                "raised (bench/README.md)"
            )
        if response.status_code >= 300 and "json" not in response.headers.get("Content-Type", ""):
            response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"{self.name}: {body['errors'][0].get('message')}")
        return body["data"]


@dataclass
class Read:
    name: str
    gateway: tuple[str, dict]
    postgraphile: tuple[str, dict]


def gateway_rows(nodes: list[dict]) -> list[tuple]:
    return [
        (
            int(decode_id(n["id"]).key),
            n["name"],
            n["gender"].lower(),
            n["birthDate"],
            (n.get("household") or {}).get("address"),
            (n.get("grid") or {}).get("name"),
        )
        for n in nodes
    ]


def postgraphile_rows(nodes: list[dict]) -> list[tuple]:
    return [
        (
            int(n["rowId"]),
            n["name"],
            n["gender"].lower(),
            n["birthDate"],
            (n.get("householdByHouseholdId") or {}).get("address"),
            (n.get("gridByGridId") or {}).get("name"),
        )
        for n in nodes
    ]


def check_same_rows(read: Read, gateway: Side, postgraphile: Side) -> int:
    """Send `read` through both; exit unless they return the same rows. Returns how many."""
    with requests.Session() as session:
        ours = gateway.post(session, *read.gateway)
        theirs = postgraphile.post(session, *read.postgraphile)
    if "village" in ours:
        mine = gateway_rows([e["node"] for e in ours["village"]["residents"]["edges"]])
        other = postgraphile_rows(next(iter(theirs.values()))["nodes"])
    else:
        mine = gateway_rows([ours["node"]])
        other = postgraphile_rows([theirs["residentByRowId"]])
    if mine != other or not mine:
        sys.exit(f"{read.name}: the two return different rows:\n  {mine[:3]}\n  {other[:3]}")
    return len(mine)


@dataclass
class Timing:
    rounds: list[Round]
    cpu_ms: float

    @property
    def latencies(self) -> list[float]:
        return [ms for r in self.rounds for ms in r.latencies_ms]

    @property
    def rate(self) -> float:
        return len(self.latencies) / sum(r.elapsed_s for r in self.rounds)

    @property
    def cpu_per_request(self) -> float:
        return self.cpu_ms / max(len(self.latencies), 1)


def time_side(side: Side, query: str, variables: dict, concurrency: int, seconds: float) -> Round:
    def send(session: requests.Session, _number: int) -> None:
        side.post(session, query, variables)

    # As many requests as fit in `seconds`: run_round stops at its time limit.
    return run_round(concurrency, 10**9, seconds, send)


def race(read: Read, sides: list[Side], concurrency: int, seconds: float, rounds: int) -> None:
    timings = {side.name: Timing([], 0.0) for side in sides}
    for side in sides:
        # Untimed: every server process has the document parsed and its pool filled.
        time_side(side, *getattr(read, side.name), concurrency, WARM_UP_SECONDS)
    for number in range(rounds):
        # ABBA: neither server always runs first, on a machine whose load drifts.
        for side in sides if number % 2 == 0 else sides[::-1]:
            query, variables = getattr(read, side.name)
            before = cpu_ms(side.pids)
            result = time_side(side, query, variables, concurrency, seconds)
            timings[side.name].cpu_ms += cpu_ms(side.pids) - before
            timings[side.name].rounds.append(result)
            if result.errors:
                sys.exit(f"{side.name}: {len(result.errors)} errors, first: {result.errors[0]}")
    for side in sides:
        t = timings[side.name]
        print(
            f"{read.name:<22} {concurrency:>4} {side.name:<13} {len(t.latencies):>8} "
            f"{t.rate:>8.1f} {percentile(t.latencies, 50):>8.1f} "
            f"{percentile(t.latencies, 95):>8.1f} {t.cpu_per_request:>9.2f}"
        )
    ours, theirs = timings["gateway"], timings["postgraphile"]
    print(
        f"{'':<22} {'':>4} {'ratio':<13} {'':>8} {ours.rate / theirs.rate:>7.2f}x "
        f"{'':>8} {'':>8} {ours.cpu_per_request / max(theirs.cpu_per_request, 1e-9):>8.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    settings = load_settings()
    parser.add_argument("--url", default=f"{settings.public_url}/graphql")
    parser.add_argument("--village", help="village slug (default: the first the server lists)")
    parser.add_argument("--seconds", type=float, default=5, help="per round and server")
    parser.add_argument("--rounds", type=int, default=2, help="per read and concurrency")
    parser.add_argument("--concurrency", default="1,8", help="comma-separated levels")
    args = parser.parse_args()

    slug = args.village or first_village(args.url)
    token = mint_token("--role", "village-admin", "--village", slug)
    dsn = libpq_url(settings.database_url)
    gateway_port = int(args.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    gateway = Side(
        "gateway", args.url, {"Authorization": f"Bearer {token}"}, listening_pids(gateway_port)
    )
    if not gateway.pids:
        sys.exit(f"no process listens on port {gateway_port} here: the gateway must run locally")

    create_function(dsn, slug)
    wait_for_quiet_queues()
    port = free_port()
    server = start_postgraphile(dsn, slug, port)
    try:
        postgraphile = Side("postgraphile", f"http://127.0.0.1:{port}/graphql", {}, [server.pid])
        with requests.Session() as session:
            first = gateway.post(session, RESIDENTS_QUERY, {"slug": slug})
        resident_id = first["village"]["residents"]["edges"][0]["node"]["id"]
        born_by = _years_before(today(), ELDERLY_AGE).isoformat()
        reads = [
            Read("page of 50 + h + g", (RESIDENTS_QUERY, {"slug": slug}), (POSTGRAPHILE_PAGE, {})),
            Read(
                f"10 aged {ELDERLY_AGE}+",
                (GATEWAY_ELDERLY, {"slug": slug, "age": ELDERLY_AGE}),
                (POSTGRAPHILE_ELDERLY, {"bornBy": born_by}),
            ),
            Read(
                "one resident by ID",
                (GATEWAY_ONE, {"id": resident_id}),
                (POSTGRAPHILE_ONE, {"id": decode_id(resident_id).key}),
            ),
        ]
        for read in reads:
            rows = check_same_rows(read, gateway, postgraphile)
            print(f"{read.name}: the same {rows} rows through both")
        print(
            f"\nvillage {slug}, {today()}, {os.cpu_count()} CPUs, "
            f"{args.rounds} rounds x {args.seconds:g} s per server, interleaved"
        )
        print(
            f"{'read':<22} {'conc':>4} {'server':<13} {'requests':>8} {'req/s':>8} "
            f"{'p50 ms':>8} {'p95 ms':>8} {'CPU ms/req':>9}"
        )
        for level in (int(n) for n in args.concurrency.split(",")):
            for read in reads:
                race(read, [gateway, postgraphile], level, args.seconds, args.rounds)
    finally:
        server.terminate()
        server.wait(timeout=10)
        drop_function(dsn)


if __name__ == "__main__":
    main()

"""Many villages on one PostgreSQL, measured: provisioning, catalog, memory, migrations,
the sync sweep, the gateway's and a worker's memory, and every region query.

    .venv/bin/python bench/scale_villages.py [--villages 1000] [--sizes 5,100,1000]
        [--real 50] [--requests 20] [--jobs 1,4] [--migrate-at 100] [--workdir DIR [--reuse]]

Self-contained: starts its own embedded PostgreSQL (not durable, as the tests') and
Valkey in a scratch directory, a gateway (gunicorn, one worker process of 4 threads) and
one sync worker (`villagelink worker --queue sync`), on free ports, and stops them at the
end. The villages go into one region, one after the other: the first `--real` through the
real path (`provision_village`, what `villagelink tenants create` and the `createVillage`
mutation run: role, schema, migrations, bucket, platform row, audit), the others replayed
from the village template (the tests' path: the schema the migrations built, dumped once
and replayed in one round trip), so that a loaded machine reaches the sizes. Each village
publishes its statistics and the sync copies them to the region. At each size:

- the catalog (relations in `pg_class`, the database's size) and a backend's memory
  (`pg_backend_memory_contexts`, and its RSS) once it has read every village once;
- one sync sweep (`jobs.sync.sweep`, every minute in production): its duration is its
  cost per minute;
- every region query (graphql/linkage/region.py: villages, stats, sharedAlerts,
  jointCases, escalatedRequests) `--requests` times, one at a time, p50/p95/max.

At `--migrate-at` villages, `villagelink tenants migrate --all --jobs N` (the real CLI,
every village already at head) for each N of `--jobs`. At the end the RSS of the
gateway's worker process and of the sync worker. The bench villages are empty but for
one request escalated to the region in every tenth village: their statistics are zeros
and short lists, and the region holds no alerts or joint cases, so those two queries
measure the empty case.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import psycopg
import requests
from residents_list import VILLAGELINK, graphql, percentile
from sqlalchemy import create_engine, select, text
from sqlalchemy.pool import NullPool

from villagelink.platform.audit import system_actor
from villagelink.platform.db import Database, tenant_role
from villagelink.platform.embedded import (
    EmbeddedPostgres,
    EmbeddedValkey,
    free_port,
    postgres_bin,
    wait_for_port,
)
from villagelink.platform.identity.dev_issuer import mint_for_role
from villagelink.platform.linkage.sync import sync_village
from villagelink.platform.migrate import upgrade_platform
from villagelink.platform.runner import gunicorn_command
from villagelink.platform.settings import EMBEDDED_DB_USER, load_settings
from villagelink.platform.villages import provision_village
from villagelink.storage.factory import object_store
from villagelink.tenants import provisioning
from villagelink.tenants.requests.actions import do_create_request, do_escalate_overdue
from villagelink.tenants.requests.queries import WHOLE_VILLAGE
from villagelink.tenants.requests.tables import REGION as REGION_LEVEL
from villagelink.tenants.requests.tables import request_categories
from villagelink.tenants.stats import publish_village_stats

REGION = "bscale"
PREFIX = "bscale"
ACTOR = system_actor("bench")
ESCALATING_EVERY = 10

REGION_QUERIES = {
    "villages": "query($id: String!) { region(id: $id) { villages { slug name } } }",
    "stats": """query($id: String!) { region(id: $id) { stats {
      total { residents households elderlyLivingAlone volunteerHours pointsBalance
        residentsByAgeBand { band count } requestsOpenByCategory { category name count }
        requestsOverdueByCategory { category count } alertsByKindPerWeek { week kind count } }
      villages { village { slug } computedAt stats { residents elderlyLivingAlone } }
      missing } } }""",
    "sharedAlerts": """query($id: String!) { region(id: $id) {
      sharedAlerts(first: 20) { totalCount edges { node { id kind state } } } } }""",
    "jointCases": """query($id: String!) { region(id: $id) {
      jointCases(first: 20) { totalCount edges { node { id title state } } } } }""",
    "escalatedRequests": """query($id: String!) { region(id: $id) {
      escalatedRequests(first: 20, includeClosed: true) { totalCount
        edges { node { id origin { slug name } state categoryName dueAt overdue } } } } }""",
}


def say(line: str) -> None:
    print(line, flush=True)


class Stack:
    """PostgreSQL, Valkey, a gateway and a sync worker of the bench's own."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.postgres = EmbeddedPostgres(workdir / "postgres", free_port(), durable=False)
        self.valkey = EmbeddedValkey(workdir / "valkey", free_port(), durable=False)
        self.port = free_port()
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        self.postgres.start()
        # A backend's memory contexts are for roles that may read every statistic.
        with psycopg.connect(
            host=str(self.postgres.socket_dir),
            port=self.postgres.port,
            user="postgres",
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(f"GRANT pg_read_all_stats TO {EMBEDDED_DB_USER}")
        self.valkey.start()
        self.env = {
            **os.environ,
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": self.valkey.url,
            "VILLAGELINK_VAR_DIR": str(self.workdir / "var"),
            "VILLAGELINK_PORT": str(self.port),
            "GUNICORN_WORKERS": "1",
            # The bench measures the queries, not the per-caller budget.
            "RATE_LIMIT_COST_PER_MINUTE": "1000000000",
            "GRAPHQL_MAX_COST": "100000000",
        }
        os.environ.update(self.env)  # the jobs run here (the sweep) read it too
        self.settings = load_settings()

    def start_processes(self) -> None:
        log = (self.workdir / "processes.log").open("ab")
        for name, command in (
            ("gateway", gunicorn_command(self.settings)),
            ("worker", [VILLAGELINK, "worker", "--queue", "sync"]),
        ):
            self.processes[name] = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for_port("127.0.0.1", self.port, 60)

    def rss_mb(self, name: str) -> float:
        """RSS of the gateway's worker process (gunicorn's child) or of the RQ worker."""
        process = psutil.Process(self.processes[name].pid)
        if name == "gateway":
            process = process.children()[0]
        return process.memory_info().rss / 2**20

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.valkey.stop()
        self.postgres.stop()


def provision(
    stack: Stack,
    db: Database,
    numbers: range,
    real: int,
    timings: dict[str, list[float]],
    existing: set[str],
) -> None:
    """The first `real` villages through the real path; the others replayed from the
    village template (what the test suite does: the schema the migrations built, dumped
    once, in one round trip), so that the sizes are reached on a loaded machine. Villages
    in `existing` (a reused workdir's) are left as they are."""
    store = object_store(stack.settings)
    template = None
    for n in numbers:
        slug, name = f"{PREFIX}_{n:05d}", f"规模村{n}"
        if slug in existing:
            continue
        began = time.perf_counter()
        if n <= real:
            data = {"slug": slug, "name": name, "region": REGION}
            provision_village(stack.settings, db, store, ACTOR, data)
            timings["real"].append(time.perf_counter() - began)
        else:
            if template is None:
                pg_dump = postgres_bin() / "pg_dump"
                template = provisioning.VillageTemplate.capture(db, REGION, pg_dump)
                began = time.perf_counter()
            template.create_village(db, slug, name, REGION)
            timings["template"].append(time.perf_counter() - began)
        # Its statistics, published and copied to the region (the sync, in this process);
        # every tenth village also has a request escalated to the region (the SLA sweep's
        # action on a clock past its deadline), so escalatedRequests has copies to read.
        with db.tenant(slug) as conn:
            publish_village_stats(conn)
            if n % ESCALATING_EVERY == 0:
                escalate_a_request(conn, slug)
        sync_village(db, slug)
        if n % 100 == 0:
            say(f"  {n} villages provisioned (load {os.getloadavg()[0]:.1f})")


def escalate_a_request(conn, slug: str) -> None:
    category = conn.execute(
        select(request_categories.c.id).where(request_categories.c.code == "sanitation")
    ).scalar_one()
    do_create_request(
        conn,
        ACTOR,
        slug,
        {
            "channel": "phone",
            "description": "村道塌陷需片区协调",
            "location_text": "村东桥头",
            "reporter_name": "规模测试",
        },
        category_id=category,
        household_id=None,
        building=None,
        grid_id=None,
        reporter_resident_id=None,
        scope=WHOLE_VILLAGE,
    )
    later = datetime.now(UTC) + timedelta(days=40)
    rose = do_escalate_overdue(conn, ACTOR, slug, later)
    assert [row["to"] for row in rose] == [REGION_LEVEL], rose


def report_provisioning(timings: dict[str, list[float]]) -> None:
    for path, label in (("real", "provision_village"), ("template", "from the template")):
        if timings[path]:
            per = [t * 1000 for t in timings[path]]
            say(
                f"  {label}: {len(per)} villages in {sum(timings[path]):.0f} s, per village "
                f"p50 {percentile(per, 50):.0f} ms p95 {percentile(per, 95):.0f} ms"
            )


def catalog(db: Database, size: int) -> None:
    with db.platform() as conn:
        relations, database_bytes = conn.execute(
            text("SELECT (SELECT count(*) FROM pg_class), pg_database_size(current_database())")
        ).one()
    say(
        f"  catalog: {relations} relations in pg_class, database {database_bytes / 2**20:.0f} MiB "
        f"({database_bytes / 2**10 / size:.0f} KiB per village)"
    )


def backend_memory(db: Database, slugs: list[str]) -> None:
    """One backend's memory once it has read something in every village: PostgreSQL
    caches each relation and catalog row a backend touches, for as long as it lives. A
    backend of its own: the pool's have served the provisioning."""
    fresh = create_engine(db.engine.url, poolclass=NullPool)
    with fresh.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        before = _backend_bytes(conn)
        conn.commit()
        for slug in slugs:
            role = tenant_role(slug)
            conn.exec_driver_sql(f'SET LOCAL ROLE "{role}"; SET LOCAL search_path TO "{role}"')
            conn.execute(text("SELECT count(*) FROM residents, outbox WHERE false")).scalar_one()
            conn.commit()
        after = _backend_bytes(conn)
        rss = psutil.Process(pid).memory_info().rss / 2**20
    fresh.dispose()
    say(
        f"  backend memory: {before / 2**20:.1f} MiB fresh, {after / 2**20:.1f} MiB after "
        f"reading {len(slugs)} villages (RSS {rss:.0f} MiB)"
    )


def _backend_bytes(conn) -> int:
    return conn.execute(text("SELECT sum(total_bytes) FROM pg_backend_memory_contexts")).scalar()


def sweep(size: int) -> None:
    from villagelink.jobs.sync import sweep as sync_sweep
    from villagelink.jobs.worker import reset_job_runtime

    reset_job_runtime()
    began = time.perf_counter()
    enqueued = sync_sweep()
    took = time.perf_counter() - began
    say(
        f"  sync sweep: {took * 1000:.0f} ms for {size} villages ({len(enqueued)} enqueued), "
        f"{took / 60 * 100:.1f} % of each minute"
    )


def region_queries(stack: Stack, size: int, count: int) -> None:
    url = f"http://127.0.0.1:{stack.port}/graphql"
    token = mint_for_role(stack.settings, "regional-coordinator", region=REGION)
    session = requests.Session()
    for name, query in REGION_QUERIES.items():
        graphql(session, url, token, query, {"id": REGION})  # warm
        times = []
        for _ in range(count):
            began = time.perf_counter()
            graphql(session, url, token, query, {"id": REGION})
            times.append((time.perf_counter() - began) * 1000)
        say(
            f"  region {name:<17} {size:>5} villages: p50 {percentile(times, 50):6.0f} ms  "
            f"p95 {percentile(times, 95):6.0f} ms  max {max(times):6.0f} ms ({count} requests)"
        )


def migrate_all(stack: Stack, jobs: int, size: int) -> None:
    began = time.perf_counter()
    subprocess.run(
        [VILLAGELINK, "tenants", "migrate", "--all", "--jobs", str(jobs)],
        env=stack.env,
        check=True,
        capture_output=True,
    )
    took = time.perf_counter() - began
    say(
        f"villagelink tenants migrate --all --jobs {jobs}: {took:.1f} s for {size} villages "
        f"at head ({took / size * 1000:.0f} ms per village)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--villages", type=int, default=1000)
    parser.add_argument("--sizes", default="5,100,1000")
    parser.add_argument("--requests", type=int, default=20, help="per region query and size")
    parser.add_argument("--jobs", default="1,4", help="`tenants migrate --all --jobs N` for each")
    parser.add_argument("--migrate-at", type=int, default=100, help="the size migrated at")
    parser.add_argument("--real", type=int, default=50, help="villages by provision_village")
    parser.add_argument("--workdir", type=Path, help="default: a scratch directory, removed")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --workdir: keep the villages an earlier run there made (provision the rest)",
    )
    args = parser.parse_args()
    if args.reuse and args.workdir is None:
        parser.error("--reuse needs --workdir")
    sizes = sorted({int(s) for s in args.sizes.split(",")} | {args.villages, args.migrate_at})
    sizes = [s for s in sizes if s <= args.villages]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vl-scale-"))
    stack = Stack(workdir)
    began = time.perf_counter()
    try:
        stack.start()
        db = Database(stack.settings.database_url, statement_timeout_ms=0)
        upgrade_platform(db)
        provisioning.ensure_region(db, REGION, "规模基准片区")
        existing: set[str] = set()
        if args.reuse:
            with db.platform() as conn:
                existing = set(
                    conn.execute(
                        text("SELECT slug FROM platform.tenants WHERE region_id = :region"),
                        {"region": REGION},
                    ).scalars()
                )
        stack.start_processes()
        say(f"load average at the start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        timings: dict[str, list[float]] = {"real": [], "template": []}
        done = 0
        for size in sizes:
            provision(stack, db, range(done + 1, size + 1), args.real, timings, existing)
            done = size
            say(f"{size} villages (load {os.getloadavg()[0]:.1f}):")
            report_provisioning(timings)
            catalog(db, size)
            backend_memory(db, [f"{PREFIX}_{n:05d}" for n in range(1, size + 1)])
            sweep(size)
            region_queries(stack, size, args.requests)
            if size == args.migrate_at:
                for jobs in (int(j) for j in args.jobs.split(",")):
                    migrate_all(stack, jobs, size)
        say(
            f"RSS: gateway worker process {stack.rss_mb('gateway'):.0f} MiB, "
            f"sync worker {stack.rss_mb('worker'):.0f} MiB"
        )
        say(
            f"done in {time.perf_counter() - began:.0f} s; "
            f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        db.dispose()
    finally:
        stack.stop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""`villagelink run` end to end: embedded servers, gunicorn, worker, scheduler, clean stop.

Starts the real supervisor twice on one var directory, as `make run` does on
a developer's machine: the second start reuses the data and does not seed again.
"""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC
from functools import partial
from pathlib import Path

import psutil
import pytest
import redis
import requests
from rq import Worker
from rq.cron import CronScheduler
from sqlalchemy import func, select, text

from villagelink.platform.db import Database
from villagelink.platform.embedded import port_is_free
from villagelink.platform.linkage.catalogue import SHARED_RESOURCE
from villagelink.platform.linkage.sync import sync_village
from villagelink.platform.linkage.tables import log, records
from villagelink.platform.settings import load_settings
from villagelink.tenants import models as tm
from villagelink.tenants.demo.plans import DEMO_VILLAGES
from villagelink.tenants.provisioning import list_villages
from villagelink.tenants.resources.tables import shared_resources

from .processes import VILLAGELINK, WriteBurst, free_ports, is_alive, run_environment, running

pytestmark = pytest.mark.worker_process


def wait_until(condition, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, message
        time.sleep(0.2)
    return result


def count_residents(database_url: str) -> int:
    db = Database(database_url)
    try:
        total = 0
        for village in list_villages(db):
            with db.tenant(village.slug) as conn:
                total += conn.execute(select(func.count()).select_from(tm.residents)).scalar_one()
        return total
    finally:
        db.dispose()


@pytest.mark.timeout(900)
def test_run_serves_everything_and_stops_cleanly(tmp_path: Path) -> None:
    ports = free_ports()
    env = run_environment(tmp_path / "var", ports)
    settings = load_settings(env)
    base = f"http://127.0.0.1:{ports['http']}"

    with running(env) as platform:
        assert "PostgreSQL: embedded" in platform.output
        assert "Redis:      embedded" in platform.output
        assert "demo region seeded" in platform.output
        assert f"{base}/graphql" in platform.output
        live = f"http://127.0.0.1:{ports['live']}"
        assert f"{live}/graphql/stream" in platform.output
        wait_until(
            lambda: _answers(f"{live}/healthz"),
            30,
            f"the live process is not up:\n{platform.output}",
        )
        assert "villagelink token --role village-admin --village " in platform.output

        ready = requests.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.headers["Server"].startswith("gunicorn")

        connection = redis.Redis.from_url(settings.redis_url)
        wait_until(lambda: Worker.all(connection=connection), 30, "no RQ worker registered")
        schedulers = wait_until(
            lambda: CronScheduler.all(connection=connection), 30, "no cron scheduler registered"
        )
        assert [job.func_name for job in schedulers[0].get_jobs()] == [
            "villagelink.jobs.maintenance.refresh_village_stats",
            "villagelink.jobs.escalation.escalate_overdue_requests",
            "villagelink.jobs.storage.sweep_objects",
            "villagelink.jobs.webhooks.sweep_webhook_deliveries",
            "villagelink.jobs.devices.mark_silent_devices_offline",
            "villagelink.jobs.alerts.escalate_unacknowledged_alerts",
            "villagelink.jobs.sync.sweep",
            "villagelink.jobs.agreements.expire_agreements",
        ]
        connection.close()

        token = subprocess.run(
            [VILLAGELINK, "token", "--role", "platform-admin"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        answer = requests.post(
            f"{base}/graphql",
            json={"query": "query RunnerProbe { __typename }"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"] == {"__typename": "Query"}
        # Several gunicorn workers, one /metrics: the multiprocess files add up.
        metrics = requests.get(f"{base}/metrics", timeout=10).text
        assert 'villagelink_graphql_request_seconds_count{operation="RunnerProbe"} 1.0' in metrics

        residents = count_residents(settings.database_url)
        assert residents > 0
        children = platform.descendants()
        names = " ".join(_cmdline(p) for p in children)
        assert "gunicorn" in names and " worker" in names and " scheduler" in names
        assert " live" in names
        assert " worker --queue sync" in names  # the sync's own worker

        assert platform.interrupt() == 0, platform.output

    # Only the supervisor saw the Ctrl-C; it stopped the others in order, by SIGTERM.
    steps = [
        "stopping gunicorn",
        "stopping live",
        "stopping scheduler",
        "stopping sync",
        "stopping worker",
        "stopping embedded Valkey",
        "stopping embedded Postgres",
    ]
    positions = [platform.output.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), platform.output
    assert "Handling signal: int" not in platform.output
    assert [p.pid for p in children if is_alive(p)] == [], platform.output
    for name, port in ports.items():
        assert port_is_free(port), f"{name} port {port} still in use"

    with running(env) as again:
        assert "demo region already seeded" in again.output
        assert "demo region seeded" not in again.output
        assert count_residents(settings.database_url) == residents
        children = again.descendants()
        assert again.interrupt() == 0, again.output

    assert [p.pid for p in children if is_alive(p)] == [], again.output
    for name, port in ports.items():
        assert port_is_free(port), f"{name} port {port} still in use"


def workers_beating_since(redis_url: str, since: float) -> int:
    """RQ workers whose last heartbeat came after `since` (unix seconds)."""
    connection = redis.Redis.from_url(redis_url)
    try:
        return sum(
            w.last_heartbeat.replace(tzinfo=UTC).timestamp() > since
            for w in Worker.all(connection=connection)
        )
    finally:
        connection.close()


PROBE = "query HealProbe { villages { slug name } }"
CREATE_RESOURCE = """mutation($input: CreateSharedResourceInput!) {
  createSharedResource(input: $input) { resource { id } userErrors { code } } }"""


def exchange_duplicates(database_url: str) -> list[tuple]:
    """Deliveries the exchange log holds more than once (a sync run twice over the
    same change after a crash must log nothing the second time)."""
    db = Database(database_url)
    try:
        with db.platform() as conn:
            return conn.execute(
                text(
                    "SELECT origin, record_type, origin_id, audience, version, action "
                    "FROM exchange.log GROUP BY 1, 2, 3, 4, 5, 6 HAVING count(*) > 1"
                )
            ).all()
    finally:
        db.dispose()


@dataclass
class Shared:
    """What became of the burst's shared resources, once the sync has caught up: how
    many rows of the village carry each marker, and per resource the neighbours holding
    a copy and how many log rows each delivery has."""

    rows: dict[str, int]
    ids: dict[str, int]
    copies: dict[int, set[str]]
    logged: dict[tuple[int, str], int]


def shared_outcome(database_url: str, village: str, markers: list[str]) -> Shared:
    db = Database(database_url)
    try:
        # Whatever the platform's own sync had not reached yet (a sync asked for while
        # Valkey was down waits for the minute's sweep).
        sync_village(db, village)
        resources = shared_resources.c
        with db.tenant(village) as conn:
            found = conn.execute(
                select(resources.name, resources.id).where(resources.name.in_(markers))
            ).all()
            every_id = set(conn.execute(select(resources.id)).scalars())
        with db.platform() as conn:
            mine = (records.c.origin == village) & (records.c.record_type == SHARED_RESOURCE)
            copies: dict[int, set[str]] = {}
            for origin_id, audience in conn.execute(
                select(records.c.origin_id, records.c.audience).where(mine)
            ):
                copies.setdefault(origin_id, set()).add(audience)
            logged = conn.execute(
                select(log.c.origin_id, log.c.audience, func.count())
                .where(log.c.origin == village, log.c.record_type == SHARED_RESOURCE)
                .group_by(log.c.origin_id, log.c.audience)
            ).all()
    finally:
        db.dispose()
    # A copy of a resource the village does not have: a failed write that got out.
    assert set(copies) <= every_id, set(copies) - every_id
    rows = {marker: 0 for marker in markers}
    for name, _ in found:
        rows[name] += 1
    return Shared(
        rows, {name: id_ for name, id_ in found}, copies, {(o, a): n for o, a, n in logged}
    )


@pytest.mark.timeout(900)
def test_whatever_dies_is_restarted_and_queries_are_answered_within_10_s(tmp_path: Path) -> None:
    """Each child and each embedded server killed once, as the kernel's OOM killer
    would (both kinds of RQ worker, the scheduler, the live process, one gunicorn
    worker mid-request and gunicorn's master, Valkey, PostgreSQL's postmaster), while a
    village admin shares new resources with the neighbours: the runner says what died,
    starts it again, and the gateway answers a query that reads PostgreSQL within 10 s,
    nobody touching anything. The RQ workers live through Valkey's restart in the same
    processes. Every resource acknowledged is there once, and in each agreed neighbour's
    copy with one log row; every one refused is nowhere; one left without an answer is
    there at most once."""
    ports = free_ports()
    env = run_environment(tmp_path / "var", ports)
    settings = load_settings(env)
    base = f"http://127.0.0.1:{ports['http']}"
    village = DEMO_VILLAGES[0].slug
    # The demo ring: each village shares its resources with the one before and after it.
    neighbours = {DEMO_VILLAGES[1].slug, DEMO_VILLAGES[-1].slug}
    with running(env) as platform:

        def token(*args: str) -> str:
            return subprocess.run(
                [VILLAGELINK, "token", *args], env=env, capture_output=True, text=True, check=True
            ).stdout.strip()

        platform_admin = token("--role", "platform-admin")
        admin = token("--role", "village-admin", "--village", village)

        def answered() -> bool:
            try:
                answer = requests.post(
                    f"{base}/graphql",
                    json={"query": PROBE},
                    headers={"Authorization": f"Bearer {platform_admin}"},
                    timeout=3,
                )
            except requests.RequestException:
                return False
            return answer.status_code == 200 and "errors" not in answer.json()

        def child(*words: str) -> psutil.Process:
            return next(
                p
                for p in psutil.Process(platform.proc.pid).children()
                if is_alive(p) and p.cmdline()[-len(words) :] == list(words)
            )

        def valkey() -> psutil.Process:
            return next(
                p for p in platform.descendants() if is_alive(p) and "valkey-server" in p.name()
            )

        def postmaster() -> psutil.Process:
            pid_file = settings.var_dir / "postgres" / "data" / "postmaster.pid"
            return psutil.Process(int(pid_file.read_text().split()[0]))

        def gunicorn() -> psutil.Process:
            # The master leads the session the runner started it in. Its workers,
            # orphaned when it is killed, are the runner's children too (it is their
            # subreaper) for the moment they take to notice and leave.
            return next(
                p
                for p in psutil.Process(platform.proc.pid).children()
                if is_alive(p) and "gunicorn" in _cmdline(p) and _leads_session(p)
            )

        def running_a_job(worker: psutil.Process) -> bool:
            connection = redis.Redis.from_url(settings.redis_url)
            try:
                return any(
                    w.pid == worker.pid and w.get_state() == "busy"
                    for w in Worker.all(connection=connection)
                )
            finally:
                connection.close()

        def serving_a_request(worker: psutil.Process) -> bool:
            # The burst opens a connection per request: one still open is in flight. A
            # worker just killed may still be listed while the master reaps it.
            try:
                connections = worker.net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                return False
            return any(
                c.status == psutil.CONN_ESTABLISHED
                for c in connections
                if c.laddr.port == ports["http"]
            )

        def rq_registered() -> set[int]:
            connection = redis.Redis.from_url(settings.redis_url)
            try:
                workers = {w.pid for w in Worker.all(connection=connection)}
                schedulers = {s.pid for s in CronScheduler.all(connection=connection)}
                return workers | schedulers
            finally:
                connection.close()

        served: set[int] = set()  # gunicorn workers seen serving a request

        def gunicorn_up() -> bool:
            workers = [p for p in gunicorn().children() if is_alive(p)]
            served.update(p.pid for p in workers if serving_a_request(p))
            return len(workers) == settings.gunicorn_workers and {p.pid for p in workers} <= (
                served
            )

        # What a replacement has done once it has booted. Each fault is measured on its
        # own: the next one waits for this, not for the previous replacements to finish
        # importing the platform side by side with its own.
        up = {
            "worker": lambda: child("worker").pid in rq_registered(),
            "sync": lambda: child("worker", "--queue", "sync").pid in rq_registered(),
            "scheduler": lambda: child("scheduler").pid in rq_registered(),
            "live": lambda: _answers(f"http://127.0.0.1:{ports['live']}/healthz"),
            "gunicorn worker": gunicorn_up,
            "gunicorn": gunicorn_up,
        }

        # (what, how to find it, whether the runner restarts it: gunicorn replaces its
        # own workers, what to wait for before killing it)
        victims = [
            ("worker", lambda: child("worker"), True, None),
            ("sync", lambda: child("worker", "--queue", "sync"), True, running_a_job),
            ("scheduler", lambda: child("scheduler"), True, None),
            ("live", lambda: child("live"), True, None),
            (
                "gunicorn worker",
                lambda: next(p for p in gunicorn().children() if serving_a_request(p)),
                False,
                None,
            ),
            ("gunicorn", gunicorn, True, None),
            ("embedded Valkey", valkey, True, None),
            ("embedded Postgres", postmaster, True, None),
        ]
        wait_until(answered, 10, f"no answer to begin with:\n{platform.output}")
        burst = WriteBurst(
            f"{base}/graphql",
            admin,
            CREATE_RESOURCE,
            lambda marker: {
                "input": {
                    "village": village,
                    "kind": "VENUE",
                    "name": marker,
                    "locationText": "村委会院内",
                    "shared": True,
                }
            },
        )
        with burst:
            for name, find, by_runner, busy in victims:
                workers = [child("worker").pid, child("worker", "--queue", "sync").pid]
                # Mid-job, mid-request: as soon as the burst makes it so.
                victim = wait_until(partial(_found, find, busy), 20, f"{name}: never busy")
                _kill_and_recover(platform, settings, name, victim, find, by_runner, answered)
                if name in up:
                    wait_until(up[name], 60, f"{name}: the replacement never came up")
                if name == "embedded Valkey":
                    # Not one RQ worker quit over it: the same processes work on.
                    assert [child("worker").pid, child("worker", "--queue", "sync").pid] == (
                        workers
                    ), platform.output
            # Enough writes to judge by, however slowly a loaded machine let the burst
            # run while things were dying: the healed platform takes the rest.
            wait_until(
                lambda: len(burst.acknowledged) > 20,
                60,
                f"the healed platform acknowledged {len(burst.acknowledged)} writes",
            )
        shared = shared_outcome(settings.database_url, village, burst.markers)
        assert len(burst.acknowledged) > 20, (burst.acknowledged, burst.refused)
        assert [m for m in burst.acknowledged if shared.rows[m] != 1] == []
        assert [m for m in burst.refused if shared.rows[m] != 0] == []
        assert [m for m in burst.unanswered if shared.rows[m] > 1] == []
        for marker in burst.acknowledged + [m for m in burst.unanswered if shared.rows[m]]:
            resource = shared.ids[marker]
            assert shared.copies.get(resource) == neighbours, marker
            assert [shared.logged[(resource, n)] for n in sorted(neighbours)] == [1, 1]
        assert exchange_duplicates(settings.database_url) == []
        # Each RQ worker died once, when killed above, and not again over Valkey's restart.
        deaths = [line.split(" died")[0] for line in platform.lines if " died (" in line]
        assert (deaths.count("worker"), deaths.count("sync")) == (1, 1), platform.output

        children = platform.descendants()
        assert platform.interrupt() == 0, platform.output

    assert [p.pid for p in children if is_alive(p)] == [], platform.output
    for name, port in ports.items():
        assert port_is_free(port), f"{name} port {port} still in use"


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _found(find, busy) -> psutil.Process | None:
    try:
        process = find()
    except StopIteration:
        return None
    return process if busy is None or busy(process) else None


def _leads_session(process: psutil.Process) -> bool:
    try:
        return os.getsid(process.pid) == process.pid
    except ProcessLookupError:
        return False


def _cmdline(process: psutil.Process) -> str:
    """Its command line, or nothing when it ended meanwhile (a work horse's job is short)."""
    with suppress(psutil.NoSuchProcess):
        return " ".join(process.cmdline())
    return ""


def _kill_and_recover(platform, settings, name, victim, find, by_runner, answered) -> None:
    """SIGKILL `victim`; the platform must answer again within 10 s, and `find` find
    another in its place."""
    limit = 10
    # An RQ worker's work horse is in a process group of its own: killed with its worker,
    # mid-job if the burst keeps it busy.
    horses = victim.children(recursive=True) if name in ("worker", "sync") else []
    for process in [victim, *horses]:
        with suppress(psutil.NoSuchProcess):
            process.kill()
    killed = time.monotonic()
    if by_runner:
        wait_until(
            lambda: f"restarted {name}" in platform.output,
            10,
            f"{name} was not restarted:\n{platform.output}",
        )
        assert f"{name} died" in platform.output
    try:
        wait_until(answered, limit - (time.monotonic() - killed), "no answer")
    except AssertionError:
        # The runner's and gunicorn's lines, the access log's among them (who answered);
        # the RQ workers' job chatter would crowd them out.
        said = [line for line in platform.lines if not line.startswith(("worker ", "sync "))]
        raise AssertionError(
            f"no answer within {limit} s of killing {name}:\n" + "\n".join(said[-80:])
        ) from None
    print(f"{name}: killed → queries answered again in {time.monotonic() - killed:.1f} s")
    # A killed process can linger unreaped for a moment, still listed as its parent's child.
    wait_until(
        lambda: getattr(_found(find, None), "pid", victim.pid) != victim.pid,
        10,
        f"{name} was not replaced",
    )
    if name == "embedded Valkey":
        # The RQ workers work again after the restart: beating again.
        restarted = time.time()
        wait_until(
            lambda: workers_beating_since(settings.redis_url, restarted) >= 2,
            30,
            f"the workers never beat again:\n{platform.output}",
        )


def test_external_servers_are_used_and_no_embedded_one_starts(
    tmp_path: Path, settings, demo_region
) -> None:
    """DATABASE_URL and REDIS_URL point at servers of their own: nothing embedded starts."""
    ports = free_ports()
    env = run_environment(tmp_path, ports)
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        # The same size the suite seeded the demo region at: this run must find it seeded.
        DEMO_RESIDENTS_PER_VILLAGE=str(demo_region.residents_per_village),
    )
    with running(env) as platform:
        assert "PostgreSQL: external" in platform.output, platform.output
        assert "Redis:      external" in platform.output, platform.output
        assert "already seeded" in platform.output
        assert not (tmp_path / "postgres").exists() and not (tmp_path / "valkey").exists()
        assert port_is_free(ports["postgres"]) and port_is_free(ports["redis"])
        ready = requests.get(f"http://127.0.0.1:{ports['http']}/readyz", timeout=10)
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
        assert platform.interrupt() == 0, platform.output


def test_production_without_keycloak_refuses_before_starting_anything(tmp_path: Path) -> None:
    env = run_environment(tmp_path, free_ports())
    env["VILLAGELINK_ENV"] = "production"
    result = subprocess.run(
        [VILLAGELINK, "run"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "refuses to start when VILLAGELINK_ENV=production" in result.stdout + result.stderr
    assert not (tmp_path / "postgres").exists()

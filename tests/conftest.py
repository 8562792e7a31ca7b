"""Fixtures: real PostgreSQL and Valkey servers for the whole run, fresh villages per test.

The servers are the embedded ones from the PyPI wheels, started in a temporary
directory on free loopback ports, without durability (a crash loses nothing the
suite needs). Under pytest-xdist every worker starts its own. TEST_DATABASE_URL /
TEST_REDIS_URL point the suite at external servers instead (a database of its own:
the suite creates and drops village roles, and flushes Redis), with one pytest
process (`make test PYTEST_XDIST=`). The gateway and the jobs reach PostgreSQL through
PgBouncer in transaction mode, as in production (tests/pgbouncer.py, Debian's pgbouncer).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
import redis
from playwright.sync_api import Browser, sync_playwright
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import Connection, text
from xdist.scheduler import LoadFileScheduling

from villagelink.jobs.queues import QUEUES
from villagelink.jobs.sync import PENDING_KEY
from villagelink.jobs.worker import reset_job_runtime
from villagelink.platform.db import Database
from villagelink.platform.embedded import EmbeddedPostgres, EmbeddedValkey, free_port, postgres_bin
from villagelink.platform.migrate import upgrade_platform
from villagelink.platform.services import KeycloakServer, MinioServer
from villagelink.platform.settings import Settings, load_settings
from villagelink.tenants import provisioning

TEST_REGION = "testregion"
T = TypeVar("T")
_village_numbers = itertools.count(1)


def _server_url(variable: str, server) -> Iterator[str]:
    """The external server's URL if `variable` names one, else a started embedded one."""
    external = os.environ.get(variable)
    if external:
        if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
            pytest.fail(f"{variable} is one server for every xdist worker: run without -n")
        yield external
        return
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


# What a test needs beyond PostgreSQL and Valkey, by the fixture that starts it: the mark
# it gets (a test that starts a worker process without the fixture is marked by hand).
MARK_BY_FIXTURE = {
    "keycloak": "keycloak",
    "minio": "minio",
    "helm": "helm",  # tests/test_helm.py: Helm is built from source, like MinIO
    "sync_worker": "worker_process",
    "browser_stack": "browser",  # tests/browser/: the stack every browser test runs against
}
# Run first, in this order: what goes through every village there is (its cost grows
# with each village the run has made), then the run's longest stretches (each file goes
# whole to one xdist worker: the long ones first, the short ones last even out the end).
FIRST = ("every_village", "keycloak", "browser", "worker_process", "slow")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the services it needs (`make test-fast` leaves those out).

    The tests marked in FIRST run first (each file's in its order): a fan-out over every
    village costs minutes once the run has made hundreds, seconds at the start; Keycloak's
    and the worker processes' tests are the longest stretches, beside which the other xdist
    worker runs the rest."""
    for item in items:
        for fixture, mark in MARK_BY_FIXTURE.items():
            if fixture in item.fixturenames:
                item.add_marker(mark)
    items.sort(key=_rank)


def _rank(item: pytest.Item) -> int:
    return next((n for n, mark in enumerate(FIRST) if item.get_closest_marker(mark)), len(FIRST))


class _BrowserFilesTogether(LoadFileScheduling):
    """`--dist loadfile`, except that tests/browser/ goes whole to one xdist worker: one
    `villagelink run` stack and one Chromium serve every browser test (a stack's start and
    stop, and the browser's, cost half a minute on each worker that would need them)."""

    def _split_scope(self, nodeid: str) -> str:
        scope = super()._split_scope(nodeid)
        return BROWSER_TESTS if scope.startswith(BROWSER_TESTS) else scope


BROWSER_TESTS = "tests/browser/"


@pytest.hookimpl(optionalhook=True)  # `-p no:xdist` runs have no such hook
def pytest_xdist_make_scheduler(config: pytest.Config, log) -> LoadFileScheduling | None:
    """The run's scheduler under `--dist loadfile` (the Makefile's); xdist's own otherwise."""
    if config.getoption("dist") == "loadfile":
        return _BrowserFilesTogether(config, log)
    return None


# Where the test cluster keeps its files when the machine has room in RAM for them. A
# village is some 400 tables, indexes, sequences and constraints, each a file or a catalog
# row made on disk: on tmpfs a village is made in 0.11 s instead of 0.14 s, and the fast
# suite makes about 650. A run's cluster grows to about 1.5 GB; without that much free in
# /dev/shm (a container's default is 64 MB) it stays in the run's temporary directory.
RAM = Path("/dev/shm")
RAM_NEEDED = 4 * 2**30
RAM_PREFIX = "villagelink-test-"


@contextmanager
def _in_ram(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A directory in RAM for the block, else one in the run's temporary directory. Its
    server's log is copied to the temporary directory at the end, where a failure's is."""
    kept = tmp_path_factory.mktemp(name)
    if not (RAM.is_dir() and os.access(RAM, os.W_OK)):
        yield kept
        return
    _remove_dead_runs()
    free = os.statvfs(RAM)
    if free.f_bavail * free.f_frsize < RAM_NEEDED:
        yield kept
        return
    path = Path(tempfile.mkdtemp(prefix=f"{RAM_PREFIX}{os.getpid()}-{name}-", dir=RAM))
    try:
        yield path
    finally:
        for log in path.glob("*.log"):
            shutil.copy(log, kept)
        # Removing the cluster's files takes a second that the run need not wait for.
        subprocess.Popen(["rm", "-rf", str(path)], start_new_session=True)


def _remove_dead_runs() -> None:
    """What a killed run left in RAM (its directories name its pid): memory, until removed."""
    for left in RAM.glob(f"{RAM_PREFIX}*"):
        pid = int(left.name.removeprefix(RAM_PREFIX).split("-")[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(left, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _in_ram(tmp_path_factory, "postgres") as data_dir:
        # No autovacuum: the run's hundreds of villages churn the catalogs, and vacuuming
        # them cost 13-17 s of PostgreSQL's 94-99 s of CPU in `make test-fast`, for a
        # cluster that lives one run and whose tables stay small.
        server = EmbeddedPostgres(
            data_dir, free_port(), durable=False, settings=("autovacuum=off",)
        )
        yield from _server_url("TEST_DATABASE_URL", server)


@pytest.fixture(scope="session")
def pooled_database_url(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """PgBouncer in transaction mode in front of the run's PostgreSQL: the URL the gateway,
    the jobs and the processes the tests start use (tests/pgbouncer.py)."""
    from .pgbouncer import PgBouncer

    bouncer = PgBouncer(tmp_path_factory.mktemp("pgbouncer"), free_port(), database_url)
    bouncer.start()
    try:
        yield bouncer.url
    finally:
        bouncer.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _server_url(
        "TEST_REDIS_URL",
        EmbeddedValkey(tmp_path_factory.mktemp("valkey"), free_port(), durable=False),
    )


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeycloakServer]:
    """A real Keycloak (start-dev) with the project's realm imported, its database a copy
    of the one `make test` made ahead (platform/services.py: `keycloak_database`)."""
    server = KeycloakServer(tmp_path_factory.mktemp("keycloak"), free_port(), free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (`make test` installs it) driven by Playwright's sync API: its own
    browser download cannot work here. For tests/browser/ and the Keycloak login page."""
    chromium = "/usr/bin/chromium"
    assert os.path.exists(chromium), f"{chromium} is missing: `make test` installs it"
    # Chromium's sandbox needs user namespaces it does not get as root in a container.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=chromium, headless=True, args=args)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def minio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    """A real MinIO server on loopback."""
    server = MinioServer(tmp_path_factory.mktemp("minio"), free_port(), free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def settings(
    database_url: str,
    pooled_database_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    var_dir = tmp_path_factory.mktemp("var")
    return load_settings(
        {
            "DATABASE_URL": pooled_database_url,
            "DATABASE_DIRECT_URL": database_url,
            "REDIS_URL": redis_url,
            "VILLAGELINK_VAR_DIR": str(var_dir),
            "VILLAGELINK_ENV": "test",
            # The suite's tokens share a few subjects per role, and a run sends more than a
            # caller's minute of requests: the budget's own tests set theirs (test_limits.py).
            "RATE_LIMIT_COST_PER_MINUTE": str(10**9),
        }
    )


@pytest.fixture(scope="session")
def db(settings: Settings) -> Iterator[Database]:
    # The fixtures' own path: provisioning and templates need a session (pg_dump).
    database = Database(
        settings.database_direct_url, statement_timeout_ms=settings.statement_timeout_ms
    )
    upgrade_platform(database)
    provisioning.ensure_region(database, TEST_REGION, "测试片区")
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def job_env(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, redis_client: redis.Redis
) -> Iterator[Settings]:
    """Jobs read settings from the environment, as in a worker started by `villagelink run`;
    the queues start and end empty. Every commit in the suite enqueues a sync job and
    no worker runs in-process, so without this a real worker first worked off hundreds
    of other tests' jobs, and a sync mark left behind kept a test's own sync from being
    enqueued."""
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    reset_job_runtime()
    _empty_queues(redis_client)
    yield settings
    _empty_queues(redis_client)
    reset_job_runtime()


def _empty_queues(redis_client: redis.Redis) -> None:
    for name in QUEUES:
        Queue(name, connection=redis_client).empty()
        scheduled = ScheduledJobRegistry(name, connection=redis_client)
        for job_id in scheduled.get_job_ids():
            scheduled.remove(job_id, delete_job=True)
    marks = list(redis_client.scan_iter(PENDING_KEY.format("*")))
    if marks:
        redis_client.delete(*marks)


def agree(
    db: Database,
    first: str,
    second: str,
    types: dict[str, list[str]] | list[str],
    *,
    region: str = TEST_REGION,
) -> int:
    """An agreement in force between two villages, both parties accepted, written
    directly (the agreement actions are tested in test_agreements.py): `types` maps
    record types to their allowed fields, or lists types allowed every catalogue field."""
    from villagelink.platform.linkage.catalogue import RECORD_TYPES
    from villagelink.platform.linkage.tables import agreement_parties, agreements

    if not isinstance(types, dict):
        types = {t: list(RECORD_TYPES[t].fields) for t in types}
    with db.platform() as conn:
        agreement_id = conn.execute(
            agreements.insert()
            .values(
                proposer=first,
                region_id=region,
                scope="neighbour",
                purpose="测试协议",
                record_types=list(types),
                fields=types,
                valid_from=datetime.now(UTC) - timedelta(days=1),
                state="active",
            )
            .returning(agreements.c.id)
        ).scalar_one()
        conn.execute(
            agreement_parties.insert(),
            [
                {"agreement_id": agreement_id, "village": v, "state": "accepted"}
                for v in (first, second)
            ],
        )
    return agreement_id


def new_village_slug() -> str:
    return f"t{next(_village_numbers)}_{uuid.uuid4().hex[:6]}"


# One template per database the run uses and kind of village, made on first need by the
# real migrations (and, for the populated kind, the demo's own writer).
_templates: dict[tuple[str, bool], provisioning.VillageTemplate] = {}


def _template(db: Database, populated: bool) -> provisioning.VillageTemplate:
    template = _templates.get((db.url, populated))
    if template is None:
        template = _templates[db.url, populated] = provisioning.VillageTemplate.capture(
            db, TEST_REGION, postgres_bin() / "pg_dump", _populate if populated else None
        )
    return template


def new_village(
    db: Database, name: str = "测试村", region: str = TEST_REGION, slug: str | None = None
) -> provisioning.Village:
    """A fresh, empty village of the run's test database, replayed from the village
    template (tests of provisioning itself call `provisioning.create_village`)."""
    return _template(db, populated=False).create_village(
        db, slug or new_village_slug(), name, region
    )


@pytest.fixture
def village(db: Database) -> provisioning.Village:
    """A freshly provisioned, empty village of its own for one test."""
    return new_village(db)


@dataclass(frozen=True)
class SeededRegion:
    seeded: bool  # whether this run's seed call did the seeding
    residents_per_village: int
    slugs: list[str]
    # Each village's last outbox entry when the seed was done. Read-only for tests, the
    # region is not for the platform: `villagelink run` against it (tests/test_runner.py)
    # runs the SLA sweeps, which escalate the demo's overdue requests, new versions.
    seed_outbox_ends: dict[str, int]


@pytest.fixture(scope="session")
def demo_region(db: Database) -> SeededRegion:
    """The five demo villages, seeded once per run at a small size. Read-only:
    tests that write use `populated_village`."""
    from villagelink.tenants.demo.plans import DEMO_VILLAGES
    from villagelink.tenants.demo.region import seed_demo_region

    # Large enough for several micro-grids, so that a grid worker sees only part.
    size = 600
    seeded = seed_demo_region(db, residents_per_village=size, progress=False)
    slugs = [plan.slug for plan in DEMO_VILLAGES]
    ends = {}
    for slug in slugs:
        with db.tenant(slug) as conn:
            ends[slug] = conn.execute(text("SELECT coalesce(max(id), 0) FROM outbox")).scalar_one()
    return SeededRegion(seeded, size, slugs, ends)


def _populate(conn: Connection, slug: str) -> None:
    """Grids, staff, households and 60 residents, as the demo writes them."""
    from villagelink.tenants.demo.plans import DEMO_VILLAGES
    from villagelink.tenants.demo.residents import build_village, write_village

    plan = replace(DEMO_VILLAGES[0], slug=slug, name="测试村", residents=60)
    write_village(conn, build_village(plan, seed=7))


def new_populated_village(db: Database) -> provisioning.Village:
    """A fresh village with grids, staff, households and 60 residents (replayed from a
    template the demo's writer filled once: writing them again row by row costs more)."""
    return _template(db, populated=True).create_village(
        db, new_village_slug(), "测试村", TEST_REGION
    )


@pytest.fixture
def populated_village(db: Database) -> provisioning.Village:
    """A fresh populated village of its own for one test."""
    return new_populated_village(db)


def written_since_now(read: Callable[[], list[T]]) -> Callable[[], list[T]]:
    """What `read` will return beyond what it returns now: in a village a module's tests
    share one after another, what the test wrote (its audit entries, say), as all of a
    fresh village's would be."""
    before = len(read())
    return lambda: read()[before:]


@pytest.fixture(scope="module")
def shared_village(db: Database) -> provisioning.Village:
    """One populated village for a module's cases that write nothing (each checks it) or
    only rows of their own: provisioning one per case costs more than all the cases."""
    return new_populated_village(db)


@pytest.fixture(scope="module")
def other_village(db: Database) -> provisioning.Village:
    """An empty village of the module's, beside the one its cases work in, with no
    agreement: another village whose admin, IDs, devices or granted integrators must reach
    nothing there. Cases write nothing here that another case reads."""
    return new_village(db, "邻村")


@pytest.fixture
def case_village(request: pytest.FixtureRequest, shared_village) -> provisioning.Village:
    """The village a case works in: the module's `shared_village`, where cases run one
    after another and each reads only what it made; or, when the case also names
    `populated_village` (it lists, counts or numbers the whole village, or changes what
    is village-wide), that fresh one of its own."""
    if "populated_village" in request.fixturenames:
        return request.getfixturevalue("populated_village")
    return shared_village


@pytest.fixture(scope="session")
def app(settings: Settings, db: Database):
    from villagelink.platform.app import create_app

    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def token(settings: Settings):
    """Mint a development-issuer token: token("village-admin", village="liulin")."""
    from villagelink.platform.identity.dev_issuer import mint_for_role

    def mint(role: str, **scope) -> str:
        return mint_for_role(settings, role, **scope)

    return mint


@pytest.fixture
def gql(client):
    """POST a GraphQL document with a bearer token; returns (status, body)."""

    def post(query: str, token: str, variables: dict | None = None, **headers):
        response = client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}", **headers},
        )
        return response.status_code, response.get_json()

    return post

"""`villagelink run` (`make run`): the whole platform on one machine, under one supervisor.

It starts the embedded PostgreSQL and Valkey unless DATABASE_URL / REDIS_URL
point elsewhere, migrates, seeds the demo region once, then runs gunicorn, the RQ
workers, the cron scheduler and the live process (subscriptions, LIVE_PORT) as
child processes and prints where to reach them. Each child has a session of its
own, so a terminal Ctrl-C reaches only the supervisor, which stops them in reverse
order (gunicorn, the live process, the scheduler, the workers) and then the
embedded servers.

Whatever dies on its way (a child, the embedded PostgreSQL or Valkey) is started
again, at once the first time, then after a back-off that doubles with each failure
in a row (1 s up to 30 s),
and the log says what died and how; only Ctrl-C (or SIGTERM) stops the platform.

DEMO_RESIDENTS_PER_VILLAGE=N seeds N residents per village instead of the full
2,000-4,000 (quick starts and the end-to-end test).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
from sqlalchemy.engine import make_url

from villagelink.jobs.queues import SYNC
from villagelink.platform.db import Database
from villagelink.platform.embedded import (
    EmbeddedPostgres,
    EmbeddedServerError,
    EmbeddedValkey,
)
from villagelink.platform.identity.dev_issuer import DevIssuerRefused
from villagelink.platform.identity.keycloak_admin import KeycloakProvisioningError, sync_village
from villagelink.platform.identity.tokens import make_verifier
from villagelink.platform.migrate import upgrade_platform
from villagelink.platform.serving import (
    PortTaken,
    gunicorn_command,
    metrics_dir,
    refuse_a_taken_port,
    reset_metrics_dir,
)
from villagelink.platform.settings import Settings
from villagelink.storage.factory import object_store
from villagelink.tenants.demo.accounts import DEMO_PASSWORD, demo_hint, seed_demo_accounts
from villagelink.tenants.demo.plans import DEMO_CLIENT_ID, DEMO_VILLAGES, REGION_ID
from villagelink.tenants.demo.region import seed_demo_region
from villagelink.tenants.provisioning import list_villages, migrate_all_villages

READY_TIMEOUT = 120  # seconds for gunicorn to answer /readyz
# What died is started again at once the first time, then after 1 s, 2 s, 4 s ... up to
# RESTART_MAX while it keeps dying (a crash loop must not spin).
RESTART_FIRST = 1.0
RESTART_MAX = 30.0
STABLE_AFTER = 60.0  # seconds up after which a restart counts as a success
PR_SET_CHILD_SUBREAPER = 36  # prctl(2)
STOP_TIMEOUT = 15  # seconds a child gets between SIGTERM and SIGKILL

# Reentrant: the signal handler that reports a second Ctrl-C prints from the main
# thread, which may be inside say() at that moment.
_print_lock = threading.RLock()


def say(line: str) -> None:
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class StopRequested(Exception):
    """SIGINT or SIGTERM reached the supervisor."""


class StartupFailed(Exception):
    """Something the platform needs did not come up; the message says what."""


class Child:
    """One child process in its own session, its output relayed line by line with its name."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]):
        self.name = name
        self.argv = argv
        self.env = env
        self.popen: subprocess.Popen[bytes] | None = None
        self._relay: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> None:
        self.popen = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._relay = threading.Thread(target=self._relay_output, daemon=True)
        self._relay.start()

    def _relay_output(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None
        for raw in iter(self.popen.stdout.readline, b""):
            say(f"{self.name:<9} | {raw.decode('utf-8', 'replace').rstrip()}")

    def exit_code(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def running(self) -> bool:
        return self.popen is not None and self.exit_code() is None

    def restart(self) -> None:
        """Start again, after clearing what the dead process left (its work horse or
        gunicorn workers still holding the port)."""
        self.stop()
        self.start()

    def describe_exit(self) -> str:
        code = self.exit_code()
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def stop(self) -> None:
        """SIGTERM to the child, which stops its own children gracefully; SIGKILL to its
        process group after STOP_TIMEOUT; then make sure nothing outlives it: neither
        its group (gunicorn workers of a master that died) nor a descendant in a group
        of its own (an RQ work horse)."""
        self.finish_stopping(self.begin_stopping())

    def begin_stopping(self) -> list[psutil.Process]:
        """SIGTERM to the child; returns its descendants as they were, for
        `finish_stopping` to make sure of."""
        if self.popen is None:
            return []
        try:
            descendants = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            descendants = []
        if self.popen.poll() is None:
            say(f"stopping {self.name} (pid {self.pid})")
            self.popen.terminate()
        return descendants

    def finish_stopping(self, descendants: list[psutil.Process]) -> None:
        if self.popen is None:
            return
        try:
            self.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            say(f"{self.name} did not stop within {STOP_TIMEOUT}s; killing it")
            _signal_group(self.pid, signal.SIGKILL)
            self.popen.wait()
        _signal_group(self.pid, signal.SIGKILL)
        _, alive = psutil.wait_procs(descendants, timeout=0)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.terminate()
        _, alive = psutil.wait_procs(alive, timeout=5)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        if self._relay is not None:
            self._relay.join(timeout=2)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


class Server:
    """An embedded server under the supervisor, like a child."""

    def __init__(self, server: EmbeddedPostgres | EmbeddedValkey):
        self.server = server
        self.name = f"embedded {type(server).__name__.removeprefix('Embedded')}"

    def start(self) -> None:
        self.server.start()

    def restart(self) -> None:
        self.server.start()

    def running(self) -> bool:
        return self.server.running()

    def describe_exit(self) -> str:
        return "no longer running"

    def stop(self) -> None:
        say(f"stopping {self.name}")
        self.server.stop()


class Supervisor:
    """Starts servers and children in order, restarts whatever dies, stops them in
    reverse order."""

    def __init__(self) -> None:
        self.units: list[Child | Server] = []

    def add(self, unit: Child | Server) -> None:
        """Supervise `unit` from now on (stopped at the end even if its start fails)."""
        self.units.append(unit)

    def start(self, child: Child) -> None:
        self.add(child)
        child.start()
        say(f"started {child.name} (pid {child.pid})")

    def exited(self) -> Child | Server | None:
        return next((u for u in self.units if not u.running()), None)

    def heal(self) -> None:
        """Until a signal raises StopRequested: restart whatever died, in start order
        (servers before the children that need them), each after its back-off."""
        failures = dict.fromkeys(self.units, 0)
        started = dict.fromkeys(self.units, time.monotonic())
        due: dict[Child | Server, float] = {}
        while True:
            now = time.monotonic()
            for unit in self.units:
                if unit.running():
                    if failures[unit] and now - started[unit] > STABLE_AFTER:
                        failures[unit] = 0
                    continue
                if unit not in due:
                    delay = min(RESTART_MAX, RESTART_FIRST * 2 ** (failures[unit] - 1))
                    delay = delay if failures[unit] else 0
                    say(f"{unit.name} died ({unit.describe_exit()}); restarting in {delay:g}s")
                    due[unit] = now + delay
                # Without a back-off, started again in the same pass.
                if now >= due[unit]:
                    del due[unit]
                    failures[unit] += 1
                    started[unit] = time.monotonic()
                    try:
                        unit.restart()
                    except Exception as exc:  # said, and tried again after the next back-off
                        say(f"{unit.name} did not start again: {exc}")
                    else:
                        say(f"restarted {unit.name}")
            self._reap_orphans()
            time.sleep(0.25)

    def _reap_orphans(self) -> None:
        """Collect descendants handed to this process when their parent died (a work
        horse, gunicorn's workers) and since exited; the children started here are
        left to their own `poll`, which says how they ended."""
        own = {u.pid for u in self.units if isinstance(u, Child) and u.popen is not None}
        for process in psutil.Process().children():
            with contextlib.suppress(psutil.NoSuchProcess, ChildProcessError):
                if process.pid not in own and process.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(process.pid, os.WNOHANG)

    def stop(self) -> None:
        """The children told to stop in reverse start order, all before any is waited
        for (each one's graceful end then overlaps the others'), then the servers they
        used, one by one."""
        children = [u for u in reversed(self.units) if isinstance(u, Child)]
        stopping = [(child, child.begin_stopping()) for child in children]
        for child, descendants in stopping:
            child.finish_stopping(descendants)
        for unit in reversed(self.units):
            if isinstance(unit, Server):
                unit.stop()


def run(settings: Settings) -> int:
    """Serve, restarting whatever dies, until SIGINT/SIGTERM (exit 0); non-zero when
    the platform cannot start."""
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    supervisor = Supervisor()
    try:
        residents_per_village = demo_residents_per_village()
        # The gateway's token verifier, built before anything starts: in production
        # without KEYCLOAK_URL it refuses here, not after the servers are up.
        make_verifier(settings)
        refuse_a_taken_port(settings)
        _adopt_orphans()
        postgres = start_servers(settings, supervisor)
        prepare_database(settings, residents_per_village)
        if postgres is not None:
            postgres.checkpoint()
        reset_metrics_dir(settings)
        env = child_environment(settings)
        villagelink = _script("villagelink")
        supervisor.start(Child("worker", [villagelink, "worker"], env))
        # The sync between villages never waits behind a long maintenance job.
        supervisor.start(Child("sync", [villagelink, "worker", "--queue", SYNC], env))
        supervisor.start(Child("scheduler", [villagelink, "scheduler"], env))
        # The consoles' live events: an asyncio process, so open streams hold no
        # request thread of gunicorn's.
        supervisor.start(Child("live", [villagelink, "live"], env))
        supervisor.start(Child("gunicorn", gunicorn_command(settings), env))
        wait_until_ready(settings, supervisor)
        say(banner(settings, villagelink))
        supervisor.heal()
        return 0  # heal() returns only by StopRequested
    except StopRequested as stop:
        say(f"{stop}: stopping")
        return 0
    except (
        StartupFailed,
        EmbeddedServerError,
        DevIssuerRefused,
        KeycloakProvisioningError,
        PortTaken,
    ) as exc:
        say(f"villagelink run: {exc}")
        return 1
    finally:
        for sig in previous:
            signal.signal(sig, _note_already_stopping)
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        say("stopped")


def _raise_stop(signum: int, _frame: object) -> None:
    raise StopRequested(signal.Signals(signum).name)


def _note_already_stopping(_signum: int, _frame: object) -> None:
    say("already stopping, please wait")


def _adopt_orphans() -> None:
    """Become the parent of orphaned descendants (Linux): pg_ctl leaves the postmaster
    behind it, and a postmaster killed under a parent that reaps nothing stays a zombie
    whose pid keeps PostgreSQL's lock file "held", so it could never start again."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def start_servers(settings: Settings, supervisor: Supervisor) -> EmbeddedPostgres | None:
    """Start the embedded servers that no URL replaces, each supervised before it
    starts, so that a failure half-way stops it too; the embedded PostgreSQL, if any."""
    postgres = None
    if settings.external_database_url:
        say(f"PostgreSQL: external, {_without_password(settings.database_url)}")
    else:
        postgres = EmbeddedPostgres(settings.var_dir / "postgres", settings.embedded_postgres_port)
        supervisor.add(Server(postgres))
        postgres.start()
        say(f"PostgreSQL: embedded, port {postgres.port}, data in {postgres.data_dir}")
    if settings.external_redis_url:
        say(f"Redis:      external, {_without_password(settings.redis_url)}")
    else:
        valkey = EmbeddedValkey(settings.var_dir / "valkey", settings.embedded_redis_port)
        supervisor.add(Server(valkey))
        valkey.start()
        say(f"Redis:      embedded Valkey, port {valkey.port}, data in {valkey.data_dir}")
    return postgres


def _without_password(url: str) -> str:
    if url.startswith("postgresql"):
        return make_url(url).render_as_string(hide_password=True)
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)


def prepare_database(settings: Settings, residents_per_village: int | None) -> None:
    """Migrate the platform and every village, seed the demo region once."""
    db = Database(settings.database_direct_url, statement_timeout_ms=0)
    try:
        upgrade_platform(db)
        # One process: for a handful of villages already at head, starting
        # migration processes would cost more than it saves.
        count, failures = migrate_all_villages(db, jobs=1)
        if failures:
            raise StartupFailed(
                "migration failed for " + "; ".join(f"{f.slug}: {f.error}" for f in failures)
            )
        say(f"数据库已迁移 / database migrated: platform schema and {count} villages at head")
        store = object_store(settings)
        if seed_demo_region(db, residents_per_village=residents_per_village, store=store):
            say("演示片区已生成 / demo region seeded")
        else:
            say("演示片区已存在 / demo region already seeded, left as it is")
        if settings.dev_issuer_enabled and seed_demo_accounts(db):
            say("演示账号已创建 / demo sign-in accounts made (docs/identity.md)")
        if settings.keycloak_url:
            # Village groups in the realm, as `tenants create` makes them (idempotent).
            for village in list_villages(db):
                sync_village(settings, village.slug, village.name, village.region_id)
            say("Keycloak 村组已同步 / village groups synced in the realm")
    finally:
        db.dispose()


def demo_residents_per_village() -> int | None:
    raw = os.environ.get("DEMO_RESIDENTS_PER_VILLAGE", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise StartupFailed(f"DEMO_RESIDENTS_PER_VILLAGE must be a positive number, not {raw!r}")
    return int(raw)


def child_environment(settings: Settings) -> dict[str, str]:
    """The children resolve the same servers as the supervisor, embedded or not."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "VILLAGELINK_VAR_DIR": str(settings.var_dir),
        # gunicorn's workers share their metrics through files here (platform/metrics.py).
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir(settings)),
        "PYTHONUNBUFFERED": "1",
        "PYTHONIOENCODING": "utf-8",
    }


def _script(name: str) -> str:
    """A console script of this installation: next to the interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise StartupFailed(f"the {name!r} command is not installed; run `make install`")
    return found


def wait_until_ready(settings: Settings, supervisor: Supervisor) -> None:
    url = f"http://{_connect_host(settings.http_host)}:{settings.http_port}/readyz"
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if (child := supervisor.exited()) is not None:
            raise StartupFailed(f"{child.name} exited while starting ({child.describe_exit()})")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise StartupFailed(f"{url} did not answer 200 within {READY_TIMEOUT}s")


def _connect_host(bind_host: str) -> str:
    return "127.0.0.1" if bind_host in ("0.0.0.0", "") else bind_host


def banner(settings: Settings, villagelink: str) -> str:
    base = settings.public_url.rstrip("/")
    command = _shown_path(villagelink)
    slug = DEMO_VILLAGES[0].slug
    lines = [
        "",
        "=" * 78,
        "villagelink 已启动 / is running",
        f"  console     {base}/console/",
        f"  GraphQL     {base}/graphql",
        f"  live (SSE)  {settings.live_public_url.rstrip('/')}/graphql/stream",
        f"  health      {base}/healthz",
        f"  readiness   {base}/readyz",
        f"  metrics     {base}/metrics",
        f"  {'dev issuer' if settings.dev_issuer_enabled else 'issuer':<11} "
        f"{settings.issuer}/.well-known/openid-configuration",
    ]
    if settings.dev_issuer_enabled:
        roles: list[tuple[str, str]] = [
            ("平台管理员 platform admin", "--role platform-admin"),
            (
                "联动协调员 regional coordinator",
                f"--role regional-coordinator --region {REGION_ID}",
            ),
            ("村务管理员 village admin", f"--role village-admin --village {slug}"),
            ("网格员 grid worker", f"--role grid-worker --village {slug}"),
            ("第三方集成方 integrator", f"--role integrator --client {DEMO_CLIENT_ID}"),
        ]
        query = json.dumps(
            {"query": f'{{ village(slug: "{slug}") {{ name stats {{ residents aged60Plus }} }} }}'},
            ensure_ascii=False,
        )
        lines += [
            "",
            f"控制台演示账号 / console demo accounts (password {DEMO_PASSWORD}, development only):",
            f"  {', '.join(demo_hint())}",
            "",
            "开发用令牌 (有效期一小时) / development tokens (valid one hour):",
            *(f"  {label}\n      {command} token {args}" for label, args in roles),
            "",
            "试一试 / try it:",
            f"  TOKEN=$({command} token --role village-admin --village {slug})",
            f'  curl -s {base}/graphql -H "Authorization: Bearer $TOKEN" \\',
            f"       -H 'Content-Type: application/json' -d '{query}'",
        ]
    else:
        lines += [
            "",
            "令牌由 Keycloak 签发 / tokens come from Keycloak: see docs/identity.md "
            "(users invite, the console's login, client credentials for integrators)",
        ]
    lines += [
        "",
        "进程意外退出会自动重启 / whatever dies is restarted; Ctrl-C 停止全部 / stops everything",
        "=" * 78,
    ]
    return "\n".join(lines)


def _shown_path(path: str) -> str:
    """`.venv/bin/villagelink` when it lives under the working directory."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path

"""`villagelink run` end to end: embedded servers, gunicorn, worker, scheduler, clean stop.

Starts the real supervisor twice on one var directory, as `make run` does on
a developer's machine: the second start reuses the data and does not seed again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import pytest
import redis
import requests
from rq import Worker
from rq.cron import CronScheduler
from sqlalchemy import func, select

from villagelink.platform.db import Database
from villagelink.platform.embedded import free_port, port_is_free
from villagelink.platform.settings import load_settings
from villagelink.tenants import models as tm
from villagelink.tenants.provisioning import list_villages

VILLAGELINK = str(Path(sys.executable).parent / "villagelink")
BANNER = "villagelink 已启动 / is running"
START_TIMEOUT = 240

pytestmark = pytest.mark.worker_process


class Platform:
    """One `villagelink run` subprocess and everything it printed."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [VILLAGELINK, "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            # Its own process group, standing for a terminal's foreground job.
            start_new_session=True,
        )
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_banner(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not any(BANNER in line for line in self.lines):
            assert self.proc.poll() is None, f"villagelink run exited early:\n{self.output}"
            assert time.monotonic() < deadline, f"no banner after {START_TIMEOUT}s:\n{self.output}"
            time.sleep(0.2)

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def interrupt(self) -> int:
        """Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout=120)


@contextmanager
def running(env: dict[str, str]) -> Iterator[Platform]:
    platform = Platform(env)
    try:
        platform.wait_for_banner()
        yield platform
    finally:
        if platform.proc.poll() is None:
            # A failed assertion above: stop it the way a user would, then for sure.
            leftovers = platform.descendants()
            platform.proc.send_signal(signal.SIGTERM)
            try:
                platform.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                platform.proc.kill()
            for process in leftovers:
                with suppress(psutil.NoSuchProcess):
                    process.kill()


def is_alive(process: psutil.Process) -> bool:
    try:
        # An orphan whose parent is gone may linger as a zombie where PID 1 reaps nothing.
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


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


def run_environment(var_dir: Path, ports: dict[str, int]) -> dict[str, str]:
    """Embedded servers on free ports under `var_dir`, whatever the caller's environment says."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "KEYCLOAK_URL", "OIDC_ISSUER")
    }
    env.update(
        VILLAGELINK_VAR_DIR=str(var_dir),
        EMBEDDED_POSTGRES_PORT=str(ports["postgres"]),
        EMBEDDED_REDIS_PORT=str(ports["redis"]),
        VILLAGELINK_PORT=str(ports["http"]),
        DEMO_RESIDENTS_PER_VILLAGE="12",
        PYTHONIOENCODING="utf-8",
    )
    return env


def free_ports() -> dict[str, int]:
    return {"postgres": free_port(), "redis": free_port(), "http": free_port()}


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
        names = " ".join(" ".join(p.cmdline()) for p in children)
        assert "gunicorn" in names and " worker" in names and " scheduler" in names
        assert " worker --queue sync" in names  # the sync's own worker

        assert platform.interrupt() == 0, platform.output

    # Only the supervisor saw the Ctrl-C; it stopped the others in order, by SIGTERM.
    steps = [
        "stopping gunicorn",
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


@pytest.mark.timeout(600)
def test_a_child_dying_stops_everything_with_an_error(tmp_path: Path) -> None:
    ports = free_ports()
    with running(run_environment(tmp_path / "var", ports)) as platform:
        children = platform.descendants()
        [scheduler] = [p for p in children if p.cmdline()[-1:] == ["scheduler"]]
        scheduler.kill()

        assert platform.proc.wait(timeout=120) == 1, platform.output
        assert "scheduler exited unexpectedly (killed by SIGKILL)" in platform.output

    assert [p.pid for p in children if is_alive(p)] == [], platform.output
    for name, port in ports.items():
        assert port_is_free(port), f"{name} port {port} still in use"


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

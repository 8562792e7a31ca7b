"""Platform processes started for real in tests: `villagelink run` itself (the runner's
tests and the browser tests' stack), the gateway's gunicorn alone, an RQ worker as
`villagelink run` starts it, a burst of writes to kill things under, and polling for what
it should bring about."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from villagelink.jobs.queues import SYNC
from villagelink.platform.embedded import free_port
from villagelink.platform.serving import gunicorn_command
from villagelink.platform.settings import Settings, load_settings

VILLAGELINK = str(Path(sys.executable).parent / "villagelink")
BANNER = "villagelink 已启动 / is running"
START_TIMEOUT = 240
STOP_WITHIN = 15  # seconds from SIGTERM to the worker's exit, a job in flight included


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


@dataclass(frozen=True)
class Gateway:
    url: str
    master: psutil.Process
    settings: Settings

    def workers(self) -> set[int]:
        return {child.pid for child in self.master.children()}


@contextmanager
def gateway(settings: Settings, log: Path, **environ: str) -> Iterator[Gateway]:
    """The gateway's gunicorn as `villagelink run` starts it, on a free port, over the
    session's PostgreSQL and Valkey, with `environ` (GUNICORN_WORKERS, ...) added; its
    output in `log`. Answering /healthz on entry, stopped on exit."""
    port = free_port()
    environ = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "VILLAGELINK_VAR_DIR": str(settings.var_dir),
        "VILLAGELINK_ENV": "test",
        "VILLAGELINK_PORT": str(port),
        **environ,
    }
    served = load_settings(environ)
    proc = subprocess.Popen(
        gunicorn_command(served),
        env={**os.environ, **environ},
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, f"gunicorn exited:\n{log.read_text()}"
        with suppress(requests.RequestException):
            return requests.get(f"{url}/healthz", timeout=1).ok
        return False

    started = Gateway(url, psutil.Process(proc.pid), served)

    def every_worker_listens() -> bool:
        # Forked from a preloaded master, the first worker answers before the next is
        # forked; each binds a socket of its own (SO_REUSEPORT).
        listening = 0
        for worker in started.master.children():
            with suppress(psutil.NoSuchProcess):
                listening += any(
                    c.status == psutil.CONN_LISTEN and c.laddr.port == port
                    for c in worker.net_connections(kind="tcp")
                )
        return listening == served.gunicorn_workers

    try:
        wait_for(lambda: healthy() and every_worker_listens(), 60, "every worker's /healthz")
        yield started
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def is_alive(process: psutil.Process) -> bool:
    try:
        # A dead child stays a zombie until its parent reaps it (an orphan, where PID 1
        # reaps nothing).
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


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
        # The live process's default, the gateway's port + 1, need not be free.
        LIVE_PORT=str(ports["live"]),
        DEMO_RESIDENTS_PER_VILLAGE="12",
        PYTHONIOENCODING="utf-8",
    )
    return env


def free_ports() -> dict[str, int]:
    return {name: free_port() for name in ("postgres", "redis", "http", "live")}


class SyncWorker:
    """The sync's RQ worker in a process of its own, as `villagelink run` starts it
    (`villagelink worker --queue sync`: an rq Worker forking a work horse per job, with
    RQ's scheduler for delayed jobs; settings from the environment). `queue` runs it on
    another queue instead."""

    def __init__(self, settings: Settings, logfile: Path, queue: str = SYNC):
        self.settings, self.logfile, self.queue = settings, logfile, queue
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": self.settings.database_url,
            "REDIS_URL": self.settings.redis_url,
        }
        with self.logfile.open("a") as out:
            self.process = subprocess.Popen(
                [VILLAGELINK, "worker", "--queue", self.queue],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its work horses too, for the kill
            )

    def kill(self) -> None:
        """SIGKILL the worker and its work horse: no clean-up of any kind. The horse
        has a process group of its own (RQ's), so it is killed by its pid."""
        horses = psutil.Process(self.process.pid).children(recursive=True)
        os.killpg(self.process.pid, signal.SIGKILL)
        for horse in horses:
            with suppress(psutil.NoSuchProcess):
                horse.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, as `villagelink run` stops it: the worker must exit by itself, and
        promptly (an idle one used to start over, a stopping one to wait a minute on RQ's
        command listener)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_WITHIN)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"the worker did not stop within {STOP_WITHIN} s of SIGTERM"
                ) from None


class WriteBurst:
    """One mutation sent through the gateway over and over, each time naming a new
    record by a marker of its own (`variables(marker)`), while something is killed:
    which were acknowledged, which refused, which got no answer at all (their outcome
    unknown to the caller)."""

    def __init__(
        self, url: str, token: str, mutation: str, variables: Callable[[str], dict]
    ) -> None:
        self.url, self.token, self.mutation, self.variables = url, token, mutation, variables
        self.acknowledged: list[str] = []
        self.refused: list[str] = []
        self.unanswered: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def markers(self) -> list[str]:
        return self.acknowledged + self.refused + self.unanswered

    def __enter__(self) -> WriteBurst:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        # A pause between writes: the burst must not be what starves the healing stack.
        while not self._stop.wait(0.2):
            marker = f"故障测试 {uuid.uuid4()}"
            try:
                answer = requests.post(
                    self.url,
                    json={"query": self.mutation, "variables": self.variables(marker)},
                    headers={"Authorization": f"Bearer {self.token}"},
                    timeout=5,
                )
                body = answer.json()
            except (requests.RequestException, ValueError):
                self.unanswered.append(marker)
                continue
            payload = next(iter((body.get("data") or {}).values()), None) or {}
            if (
                answer.status_code == 200
                and "errors" not in body
                and payload.get("userErrors") == []
            ):
                self.acknowledged.append(marker)
            else:
                self.refused.append(marker)


def wait_for(condition, timeout: float, what: str, worker: SyncWorker | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    tail = worker.logfile.read_text()[-3000:] if worker else ""
    raise AssertionError(f"{what}: not within {timeout} s\n{tail}")

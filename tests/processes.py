"""Platform processes started for real in tests: an RQ worker as `villagelink run`
starts it, and polling for what it should bring about."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from villagelink.jobs.queues import SYNC
from villagelink.platform.settings import Settings

VILLAGELINK = str(Path(sys.executable).parent / "villagelink")


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
        """SIGKILL the worker and its work horse: no clean-up of any kind."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(condition, timeout: float, what: str, worker: SyncWorker | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    tail = worker.logfile.read_text()[-3000:] if worker else ""
    raise AssertionError(f"{what}: not within {timeout} s\n{tail}")

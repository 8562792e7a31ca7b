"""Faults injected into a running platform: what happens around the data heals, and
no acknowledged write is lost or doubled. Every server is real and on loopback; every
wait polls against a deadline."""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import timedelta
from functools import partial

import psutil
import pytest
from rq import Worker
from rq.job import Job, JobStatus
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from villagelink.jobs import alerts as alert_jobs
from villagelink.jobs import sync as sync_jobs
from villagelink.jobs.queues import NOTIFY, SYNC, enqueue, redis_connection
from villagelink.jobs.sync import enqueue_sync
from villagelink.platform.db import Database
from villagelink.platform.embedded import EmbeddedValkey, free_port
from villagelink.platform.linkage.sync import sync_village

from .processes import SyncWorker, is_alive, wait_for
from .test_alerts import NOW
from .test_sync import neighbours, ring, sync_worker  # noqa: F401 (fixtures, used by name)


def test_a_jobs_change_reaches_the_neighbours_without_the_sweep(ring, sync_worker):  # noqa: F811
    """An escalation made by the maintenance job asks for the sync on commit, as a
    request does; no sweep runs here, so only that can bring it across."""
    db, a = ring.db, ring.a.slug
    alert_id = ring.missing_person()
    sync_village(db, a)
    before = {key: copy["version"] for key, copy in ring.copies().items()}
    assert len(before) == 2  # B and E

    done = alert_jobs.escalate_village_alerts(a, NOW + timedelta(days=1))

    assert alert_id in done["escalated"]
    wait_for(
        lambda: all(copy["version"] > before[key] for key, copy in ring.copies().items()),
        10,
        "the escalation never reached B and E",
        sync_worker,
    )


def _metric(client, name: str, **labels: str) -> float:
    """One sample of /metrics, by name and labels."""
    pairs = ",".join(f'{k}="{v}"' for k, v in labels.items())
    wanted = f"{name}{{{pairs}}}" if labels else name
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{wanted} not in /metrics")


def test_a_dead_sync_worker_and_a_failing_sync_show_in_health_and_metrics(
    ring,  # noqa: F811
    sync_worker,  # noqa: F811
    client,
):
    workers = "/healthz/workers"
    wait_for(
        lambda: client.get(workers).get_json()["queues"][SYNC]["workers"] == 1,
        15,
        "the live worker never showed",
        sync_worker,
    )
    assert _metric(client, "villagelink_queue_without_worker", queue=SYNC) == 0
    # The other queues have no worker in this test: said so, not hidden.
    assert client.get(workers).status_code == 503
    assert _metric(client, "villagelink_queue_without_worker", queue=NOTIFY) == 1

    sync_worker.kill()
    killed = time.monotonic()
    ring.missing_person()
    enqueue_sync(sync_worker.settings, [ring.a.slug])
    wait_for(
        lambda: _metric(client, "villagelink_queue_without_worker", queue=SYNC) == 1,
        60,
        "the dead worker still counts",
    )
    assert time.monotonic() - killed < 60
    sync = client.get(workers).get_json()["queues"][SYNC]
    assert sync["workers"] == 0 and sync["waiting"] == 1 and sync["oldestWaitingSeconds"] > 0
    assert _metric(client, "villagelink_queue_oldest_job_age_seconds", queue=SYNC) > 0

    # A village whose sync fails counts as failing until a sync of it succeeds.
    failing = _metric(client, "villagelink_sync_failing_villages")
    with ring.db.tenant(ring.a.slug) as conn:
        conn.execute(text("ALTER TABLE outbox RENAME TO outbox_away"))
    with pytest.raises(ProgrammingError):
        sync_village(ring.db, ring.a.slug)
    assert _metric(client, "villagelink_sync_failing_villages") == failing + 1
    with ring.db.tenant(ring.a.slug) as conn:
        conn.execute(text("ALTER TABLE outbox_away RENAME TO outbox"))
    sync_village(ring.db, ring.a.slug)
    assert _metric(client, "villagelink_sync_failing_villages") == failing


def _taken_by(job: Job) -> int | None:
    """The pid of the worker process that finished `job`, once one has."""
    job.refresh()
    if job.get_status() != JobStatus.FINISHED or not job.worker_name:
        return None
    worker = Worker.find_by_key(
        Worker.redis_worker_namespace_prefix + job.worker_name, connection=job.connection
    )
    return worker.pid if worker else None


@pytest.mark.worker_process
def test_a_worker_rides_out_valkey_restarts_in_the_same_process(job_env, village, tmp_path):
    """A worker started before its Valkey, then Valkey killed twice under it (once
    back at once, once down until RQ's scheduler process has died of it), then the
    scheduler killed alone: the same worker process takes a job after each, delayed
    ones included, and logs why it waited. It used to end with exit code 1 when it met
    no Redis while building its RQ worker, and its scheduler stayed dead for RQ's
    ten-minute maintenance."""
    valkey = EmbeddedValkey(tmp_path / "valkey", free_port(), durable=False)
    settings = dataclasses.replace(job_env, external_redis_url=valkey.url)
    worker = SyncWorker(settings, tmp_path / "worker.log")

    def runs_job(delay: timedelta | None = None) -> None:
        job = enqueue(settings, SYNC, sync_jobs.sync_village, (village.slug,), delay=delay)
        wait_for(lambda: _taken_by(job), 20, "no job taken after the restart", worker)
        assert _taken_by(job) == worker.process.pid

    def scheduler_alive() -> bool:
        return any(is_alive(p) for p in psutil.Process(worker.process.pid).children())

    def waits_for_jobs() -> bool:
        """RQ retries Redis errors from here on, until a job comes; before, it quits its
        work loop on them and the worker starts over (a new RQ worker, same process)."""
        return [w.get_state() for w in Worker.all(connection=redis_connection(settings))] == [
            "idle"
        ]

    def says_it_waits() -> bool:
        assert worker.process.poll() is None, worker.logfile.read_text()[-3000:]
        return "worker lost Redis (ConnectionError" in worker.logfile.read_text()

    worker.start()
    try:
        wait_for(says_it_waits, 60, "the worker never said it waits for Redis", worker)
        valkey.start()
        runs_job()

        valkey.process.kill()  # back at once, as `villagelink run` restarts it
        valkey.process.wait()
        valkey.start()
        runs_job()

        # Down until RQ's scheduler process has died of it. Where the worker itself was
        # when Redis went (waiting for a job, or sending its heartbeat) decides whether
        # RQ retries in its loop, and the scheduler is started again alone, or leaves it,
        # and the worker starts over: either way, the same process moves and runs a
        # delayed job.
        wait_for(lambda: waits_for_jobs() and scheduler_alive(), 20, "not idle", worker)
        valkey.process.kill()
        valkey.process.wait()
        wait_for(lambda: not scheduler_alive(), 20, "RQ's scheduler outlived Redis", worker)
        valkey.start()
        runs_job(delay=timedelta(seconds=1))  # moved onto the queue by the scheduler

        # The scheduler dead under a worker that stays in its loop (Redis up): the worker
        # starts it again by itself, and says so, without starting over.
        wait_for(lambda: waits_for_jobs() and scheduler_alive(), 20, "not idle", worker)
        started = worker.logfile.read_text().count(": started with PID")
        for process in psutil.Process(worker.process.pid).children():
            process.kill()  # RQ's scheduler: the worker's one child while it is idle
        runs_job(delay=timedelta(seconds=1))
        log = worker.logfile.read_text()
        assert "RQ's scheduler (pid" in log and log.count(": started with PID") == started

        assert worker.process.poll() is None
    finally:
        worker.stop()
        redis_connection(settings).close()
        valkey.stop()


def test_a_write_while_redis_is_down_is_said_in_one_line(settings, caplog):
    """A committed write's request for its sync meets Redis down (restarting, as the
    runner restarts Valkey): one warning line naming the failure, not a traceback per
    request, and the write stands. A failure of any other kind keeps its traceback."""
    down = dataclasses.replace(settings, external_redis_url=f"redis://127.0.0.1:{free_port()}/0")

    def bug(_slugs: list[str]) -> None:
        raise ValueError("not a transport failure")

    quiet = Database(settings.database_url, after_shared_commit=partial(enqueue_sync, down))
    loud = Database(settings.database_url, after_shared_commit=bug)
    try:
        with caplog.at_level(logging.WARNING, logger="villagelink.platform.db"):
            quiet.shared_committed(["liulin"])
            loud.shared_committed(["liulin"])
    finally:
        quiet.dispose()
        loud.dispose()
    outage, other = caplog.records
    assert outage.levelno == logging.WARNING and outage.exc_info is None
    assert outage.getMessage().startswith("could not ask for the sync of liulin: ")
    assert "Connection refused" in outage.getMessage() or "111" in outage.getMessage()
    assert other.levelno == logging.ERROR and other.exc_info is not None

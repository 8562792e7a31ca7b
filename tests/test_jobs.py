"""Jobs against the real servers: a worker in burst mode runs them as in production."""

from __future__ import annotations

import itertools
import os
import socket
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import redis
from rq import Queue
from sqlalchemy import select

from villagelink.jobs import maintenance
from villagelink.jobs.queues import MAINTENANCE, enqueue, queue
from villagelink.jobs.scheduler import VILLAGE_STATS_INTERVAL, build_cron_scheduler
from villagelink.jobs.worker import VillageWorker, job_database, worker_queues
from villagelink.platform import models as pm
from villagelink.platform.db import Database
from villagelink.platform.settings import Settings
from villagelink.tenants import models as tm
from villagelink.tenants.id_numbers import compose, gender
from villagelink.tenants.provisioning import Village

_sequence = itertools.count(1)


def add_household(db: Database, slug: str, birth_dates: list[date]) -> None:
    with db.tenant(slug) as conn:
        grid_id = conn.execute(
            tm.grids.insert()
            .values(level="micro", code=f"G-{uuid.uuid4().hex[:8]}", name="一组")
            .returning(tm.grids.c.id)
        ).scalar_one()
        household_id = conn.execute(
            tm.households.insert()
            .values(address="柳林村一组 1 号", grid_id=grid_id)
            .returning(tm.households.c.id)
        ).scalar_one()
        id_numbers = [compose("370124", born, next(_sequence)) for born in birth_dates]
        conn.execute(
            tm.residents.insert(),
            [
                {
                    "name": f"居民{i}",
                    "gender": gender(id_number),
                    "birth_date": born,
                    "id_number": id_number,
                    "household_id": household_id,
                    "grid_id": grid_id,
                }
                for i, (born, id_number) in enumerate(zip(birth_dates, id_numbers, strict=True))
            ],
        )


def stats_rows(db: Database, slug: str) -> list:
    with db.platform() as conn:
        return conn.execute(
            select(pm.village_stats).where(pm.village_stats.c.village == slug)
        ).all()


def work_off(settings: Settings) -> None:
    """Run every queued job, in forked work horses as `villagelink worker` does."""
    queues = worker_queues(settings)
    VillageWorker(queues, connection=queues[0].connection).work(burst=True)


def test_village_stats_counts_inside_the_village(
    job_env: Settings, db: Database, village: Village
) -> None:
    add_household(db, village.slug, [date(1950, 3, 1), date(1961, 1, 1), date(2001, 5, 5)])

    job = queue(MAINTENANCE, job_env).enqueue(maintenance.refresh_village_stats_for, village.slug)
    work_off(job_env)

    assert job.get_status(refresh=True) == "finished", job.latest_result().exc_string
    assert job.return_value() == {
        "village": village.slug,
        "residents": 3,
        "households": 1,
        "aged_60_plus": 2,
    }
    [first] = stats_rows(db, village.slug)
    assert (first.residents, first.households, first.aged_60_plus) == (3, 1, 2)

    add_household(db, village.slug, [date(1940, 1, 1), date(1990, 1, 1)])
    queue(MAINTENANCE, job_env).enqueue(maintenance.refresh_village_stats_for, village.slug)
    work_off(job_env)

    [second] = stats_rows(db, village.slug)
    assert (second.residents, second.households, second.aged_60_plus) == (5, 2, 3)
    assert second.computed_at > first.computed_at


@pytest.mark.every_village
def test_periodic_refresh_fans_out_one_retried_job_per_village(
    job_env: Settings, db: Database, village: Village
) -> None:
    add_household(db, village.slug, [date(1955, 6, 1)])

    job_ids = maintenance.refresh_village_stats()

    jobs = [queue(MAINTENANCE, job_env).fetch_job(job_id) for job_id in job_ids]
    [ours] = [job for job in jobs if job.args == (village.slug,)]
    assert ours.origin == MAINTENANCE
    assert ours.retries_left == maintenance.STATS_RETRY.max
    assert ours.retry_intervals == maintenance.STATS_RETRY.intervals
    assert ours.failure_ttl == maintenance.FAILURE_TTL

    work_off(job_env)

    [row] = stats_rows(db, village.slug)
    assert (row.residents, row.households, row.aged_60_plus) == (1, 1, 1)


def test_cron_scheduler_registers_stats_every_ten_minutes(redis_client: redis.Redis) -> None:
    scheduler = build_cron_scheduler(redis_client)

    [job] = [j for j in scheduler.get_jobs() if j.func is maintenance.refresh_village_stats]
    assert job.queue_name == MAINTENANCE
    assert job.interval == VILLAGE_STATS_INTERVAL == 600
    assert job.cron is None


def test_worker_takes_queues_in_priority_order(job_env: Settings) -> None:
    assert [q.name for q in worker_queues(job_env)] == [
        "sync",
        "notify",
        "ingest",
        "maintenance",
        "reports",
    ]
    with pytest.raises(ValueError, match="unknown queue"):
        queue("default", job_env)


def test_a_delayed_job_is_never_scheduled_before_its_delay_is_over(job_env: Settings) -> None:
    """RQ keeps a scheduled time in whole seconds; cut down, a job due at 12.7 s ran at
    12 s, found its row not yet due and did nothing. It is rounded up instead."""
    for delay in (0.2, 2.5, 2.999, 3.0):
        before = datetime.now(UTC)
        job = enqueue(job_env, MAINTENANCE, time.sleep, (0,), delay=timedelta(seconds=delay))
        scheduled = Queue(MAINTENANCE, connection=job.connection).scheduled_job_registry
        try:
            at = scheduled.get_scheduled_time(job)
            assert at >= before + timedelta(seconds=delay), (delay, at, before)
            assert at <= before + timedelta(seconds=delay + 2), (delay, at, before)
        finally:
            scheduled.remove(job)
            job.delete()


def test_a_burst_worker_stops_without_waiting_out_its_pubsub_read(job_env: Settings) -> None:
    """RQ's command listener, unsubscribed before it was told to stop, used to wait 60 s
    for a new subscription: about one stop in ten took a minute. Twenty in a row now
    take well under a second each."""
    queues = worker_queues(job_env)
    for _ in range(20):
        started = time.monotonic()
        VillageWorker(queues, connection=queues[0].connection).work(burst=True)
        assert time.monotonic() - started < 5


def _client_port(conn) -> int:
    """The local port of a connection's socket: which connection it is, whatever server
    process PgBouncer pairs it with."""
    with socket.socket(fileno=os.dup(conn.connection.dbapi_connection.pgconn.socket)) as sock:
        return sock.getsockname()[1]


def test_a_forked_child_opens_its_own_connections_and_leaves_the_workers(
    job_env: Settings,
) -> None:
    """The notify queue's jobs run in the worker, so its pool holds connections when it
    forks a work horse for another job: the horse must open its own, never speak on the
    worker's (two processes on one socket), and the worker's must still serve it after."""
    db = job_database()
    with db.platform() as conn:
        workers = _client_port(conn)
    assert db.engine.pool.checkedin() == 1
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            with db.platform() as conn:
                conn.execute(select(1))
                os.write(write, str(_client_port(conn)).encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(child, 0)
    horses = int(os.read(read, 64) or 0)
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert horses not in (0, workers)
    with db.platform() as conn:
        assert conn.execute(select(1)).scalar_one() == 1
        assert _client_port(conn) == workers


@pytest.mark.every_village
def test_object_sweep_runs_hourly_once_per_village(
    job_env: Settings, db: Database, village: Village, redis_client: redis.Redis
) -> None:
    from villagelink.jobs import storage as storage_jobs
    from villagelink.jobs.scheduler import OBJECT_SWEEP_INTERVAL

    [job] = [
        j
        for j in build_cron_scheduler(redis_client).get_jobs()
        if j.func is storage_jobs.sweep_objects
    ]
    assert (job.queue_name, job.interval) == (MAINTENANCE, OBJECT_SWEEP_INTERVAL)

    job_ids = storage_jobs.sweep_objects()
    jobs = [queue(MAINTENANCE, job_env).fetch_job(job_id) for job_id in job_ids]
    [ours] = [j for j in jobs if j.args == (village.slug,)]
    assert ours.func is storage_jobs.sweep_village_objects
    assert ours.retries_left == storage_jobs.STORAGE_RETRY.max
    work_off(job_env)
    assert ours.get_status(refresh=True) == "finished"

"""The RQ queues, one per kind of work, and the Redis connection they share.

Queues are split by purpose (docs/design.md, Jobs) so that a burst of exports or a
slow webhook receiver never delays the sync between villages: a worker takes
jobs from the first non-empty queue in `QUEUES` order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import redis
from rq import Queue
from rq.job import Job

from villagelink.platform.settings import Settings

SYNC = "sync"  # outbox → exchange schema, between neighbouring villages
NOTIFY = "notify"  # webhooks to integrators
INGEST = "ingest"  # imports and uploaded files (thumbnails)
MAINTENANCE = "maintenance"  # SLA sweeps, stats roll-ups, sync sweeps
REPORTS = "reports"  # exports and cross-village reports

# Highest priority first.
QUEUES = (SYNC, NOTIFY, INGEST, MAINTENANCE, REPORTS)


def redis_connection(settings: Settings) -> redis.Redis:
    """The process's connection pool to the Redis/Valkey at `settings.redis_url`."""
    return _connection(settings.redis_url)


@cache
def _connection(url: str) -> redis.Redis:
    # RQ stores pickled payloads: responses must stay bytes (no decode_responses).
    return redis.Redis.from_url(url, health_check_interval=30)


def queue(name: str, settings: Settings) -> Queue:
    """The queue called `name`, which must be one of `QUEUES`."""
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}; the queues are {', '.join(QUEUES)}")
    return Queue(name, connection=redis_connection(settings))


def enqueue(
    settings: Settings,
    name: str,
    func: Any,
    args: tuple = (),
    *,
    delay: timedelta | None = None,
    **options: Any,
) -> Job:
    """Put `func(*args)` on the queue `name`, now or after `delay` (the worker's
    scheduler moves it onto the queue when due); `options` are RQ's job options
    (`timeout`, `retry`, `failure_ttl`, `description`, `on_failure`).

    Every job goes through here rather than RQ's `enqueue`/`enqueue_in`/`enqueue_at`,
    which hand any keyword they do not know to the function: a misspelt option
    (`timeout` where they expect `job_timeout`) is found only when the job runs, and
    fails every time. `create_job` takes job options alone, so a wrong one fails here.
    """
    target = queue(name, settings)
    job = target.create_job(func, args=args, **options)
    if delay is None:
        return target.enqueue_job(job)
    return target.schedule_job(job, not_before(datetime.now(UTC) + delay))


def not_before(due: datetime) -> datetime:
    """`due` rounded up to a whole second. RQ keeps a scheduled time in whole seconds,
    cut down: a job due at 12.7 s ran at 12 s, before the time its row in the tables
    names, found nothing due yet and did nothing (a webhook retry was then left to the
    two-minute sweep)."""
    if due.microsecond == 0:
        return due
    return due.replace(microsecond=0) + timedelta(seconds=1)

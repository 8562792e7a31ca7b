"""The RQ queues, one per kind of work, and the Redis connection they share.

Queues are split by purpose (docs/design.md, Jobs) so that a burst of exports or a
slow webhook receiver never delays the sync between villages: a worker takes
jobs from the first non-empty queue in `QUEUES` order.
"""

from __future__ import annotations

from functools import cache

import redis
from rq import Queue

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

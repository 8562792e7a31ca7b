"""Sync jobs on the `sync` queue: each village's outbox into the exchange schema.

`enqueue_sync` runs right after a commit that wrote to an outbox (the gateway does
it for every request) and after agreements change (`reconcile`: withdraw what no
agreement covers any more, publish what a new one does). A sweep every minute
enqueues every village whose outbox is ahead of its cursor, so a lost job, a
flushed Redis or a crashed worker only delays a change, never loses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from rq import Retry

from villagelink.jobs.queues import SYNC, enqueue, queue
from villagelink.jobs.worker import job_database, job_settings
from villagelink.platform.linkage import sync
from villagelink.platform.settings import Settings

# A failing village is retried on its own, backing off; after the last attempt the
# job stays in the failed registry (replayable) and the next sweep tries again.
SYNC_RETRY = Retry(max=5, interval=[2, 10, 60, 300, 900])
SYNC_JOB_TIMEOUT = 300
FAILURE_TTL = 7 * 24 * 3600
# A sync job takes every change since the cursor, so one waiting job per village is
# enough: commits while it waits do not enqueue another. The mark is dropped when
# the job starts, and expires in case the job is lost with Redis or a worker.
PENDING_KEY = "villagelink:sync:pending:{}"
PENDING_TTL = 30
# A sync that found committed changes waiting behind an older transaction still
# running looks again this much later (that transaction's commit asks only for its
# own village's sync).
WAITING_RECHECK = timedelta(seconds=1)


def enqueue_sync(
    settings: Settings,
    villages: Iterable[str],
    *,
    reconcile: bool = False,
    delay: timedelta | None = None,
) -> None:
    """Ask for `villages` to be synced (all their changes since the cursor; with
    `reconcile`, every shared copy of theirs checked against the agreements), now or
    after `delay`."""
    sync_queue = queue(SYNC, settings)
    villages = sorted(set(villages))
    # A delayed sync (a look again at changes waiting behind a running transaction)
    # leaves no mark: the mark would turn away that transaction's own commit, whose
    # changes then waited for the delay and the scheduler's next round (1-2 s at 50
    # commits a second, bench/sync_lag.py) instead of being synced at once.
    if not reconcile and delay is None:
        marks = sync_queue.connection.pipeline(transaction=False)
        for slug in villages:
            marks.set(PENDING_KEY.format(slug), 1, nx=True, ex=PENDING_TTL)
        villages = [slug for slug, fresh in zip(villages, marks.execute(), strict=True) if fresh]
    func = reconcile_village if reconcile else sync_village
    if delay is not None:
        for slug in villages:
            enqueue(settings, SYNC, func, (slug,), delay=delay, **_job(slug, reconcile))
        return
    jobs = [
        sync_queue.prepare_data(func, args=(slug,), **_job(slug, reconcile)) for slug in villages
    ]
    if jobs:
        sync_queue.enqueue_many(jobs)


def _job(slug: str, reconcile: bool) -> dict[str, Any]:
    return {
        "retry": SYNC_RETRY,
        "timeout": SYNC_JOB_TIMEOUT,
        "failure_ttl": FAILURE_TTL,
        "description": f"{'reconcile' if reconcile else 'sync'}: {slug}",
    }


def sync_village(slug: str) -> dict:
    """Publish one village's outbox since its cursor."""
    settings = job_settings()
    queue(SYNC, settings).connection.delete(PENDING_KEY.format(slug))
    result = sync.sync_village(job_database(), slug)
    if result.waiting:
        enqueue_sync(settings, [slug], delay=WAITING_RECHECK)
    return result.as_dict()


def reconcile_village(slug: str) -> dict:
    """Bring one village's shared copies in line with the agreements now in force."""
    return sync.reconcile_village(job_database(), slug).as_dict()


def sweep() -> list[str]:
    """Every minute: enqueue the sync of every village whose outbox is ahead of its
    cursor or whose last sync failed, and a reconcile of every village whose copies
    may not match the agreements any more. Rebuilds the queue from Postgres alone,
    so a flushed Redis or a lost job costs at most a minute. Returns the villages."""
    db = job_database()
    behind = sync.villages_behind(db)
    enqueue_sync(job_settings(), behind)
    stale = sync.villages_to_reconcile(db)
    enqueue_sync(job_settings(), stale, reconcile=True)
    return sorted(set(behind) | set(stale))

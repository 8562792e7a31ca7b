"""The RQ worker process, and the database handle every job in it shares.

Jobs read their settings from the worker's environment (`villagelink run`
passes DATABASE_URL and REDIS_URL to it), never from arguments, so a job
enqueued anywhere runs against the servers of the worker that takes it.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import os
import pkgutil
import signal
import time
from functools import cache, partial

import redis
from redis.client import Pipeline
from rq import Queue, Worker, worker_registration
from rq.job import Job
from rq.logutils import setup_loghandlers
from rq.worker import WorkerStatus
from sqlalchemy.exc import SQLAlchemyError

from villagelink.jobs.queues import NOTIFY, QUEUES, redis_connection
from villagelink.platform.db import Database
from villagelink.platform.live.channel import publisher
from villagelink.platform.settings import Settings, load_settings

log = logging.getLogger(__name__)

# Queues whose jobs run in the worker process, not in a forked work horse (VillageWorker).
IN_PROCESS = frozenset({NOTIFY})
# A lost Redis is asked again after 0.5 s, 1 s, 2 s ... then every REDIS_WAIT_MAX seconds.
REDIS_WAIT_FIRST = 0.5
REDIS_WAIT_MAX = 8.0


@cache
def job_settings() -> Settings:
    return load_settings()


@cache
def job_database() -> Database:
    """One engine per process, built on first use.

    The worker builds it before it forks its work horses, which inherit it and
    drop the connections it holds (the notify queue's jobs run in the worker) unused,
    starting with an empty pool of their own rather than sockets shared across the
    fork (`_drop_inherited_connections`). A job's village
    transaction that wrote to the outbox asks for the sync once committed, as a
    request's does, and its live events are announced as a request's are.
    """
    from villagelink.jobs.sync import enqueue_sync  # it imports this module

    settings = job_settings()
    return Database(
        settings.database_url,
        statement_timeout_ms=settings.statement_timeout_ms,
        pool_size=2,
        after_shared_commit=partial(enqueue_sync, settings),
        announce_committed=publisher(settings.redis_url),
    )


def _drop_inherited_connections() -> None:
    """In a forked child (a work horse, RQ's scheduler): forget the pooled connections of
    the parent without closing them, which are the parent's still (SQLAlchemy's recipe
    for forks); the child opens its own."""
    if job_database.cache_info().currsize:
        job_database().engine.dispose(close=False)


os.register_at_fork(after_in_child=_drop_inherited_connections)


def reset_job_runtime() -> None:
    """Forget the cached settings and database (tests, or after the environment changed)."""
    if job_database.cache_info().currsize:
        job_database().dispose()
    job_database.cache_clear()
    job_settings.cache_clear()


class PromptStop:
    """A worker whose stop does not wait out its pubsub thread's read.

    RQ listens for commands (kill-horse, shutdown) on a pubsub thread reading with a
    60 s timeout. On stop it unsubscribes, then stops and joins the thread; the
    unsubscribe's reply wakes the read, but the thread, not yet told to stop, reads
    again: unsubscribed, redis-py's `get_message` waits the whole 60 s for a
    subscription, and since redis-py 8 `PubSubWorkerThread.stop()` joins without a
    timeout. So every stop (a burst worker's end, SIGTERM) took a minute. Tripping the
    thread's flag before the unsubscribe lets the reply's wake-up be its last read.
    """

    def unsubscribe(self) -> None:
        if self.pubsub_thread:
            self.pubsub_thread.stop(timeout=0)  # the flag only: the join follows the reply
        super().unsubscribe()  # type: ignore[misc]


class VillageWorker(PromptStop, Worker):
    """The worker of `villagelink worker`: a work horse forked per job (the notify
    queue's run in the worker itself), which says whether a signal (or RQ's shutdown
    command) stopped it, and rides out a Redis restart.

    The notify queue's jobs (an alert's notification, a webhook delivery) are short and
    minutes matter: in a fresh horse each paid for the fork, new database connections and
    compiling its SQL again (about half of a notification's 200 ms), twice between a fall
    and the signed webhook. In the worker they find all of it ready. Their time-outs hold
    (RQ's alarm in the worker), their failures and retries are RQ's as before.

    RQ notes a stop request only when it comes during a job; an idle worker just
    leaves `work()`, as it does when it gives up on Redis. Without this, SIGTERM to an
    idle worker started it over, and whoever stopped it waited its time-out to SIGKILL.
    """

    stop_requested = False
    _mourned_scheduler: int | None = None  # the dead scheduler's pid, once logged
    # RQ retries a lost Redis while it waits for jobs, doubling its wait up to this, and
    # starts again from one second only once a job comes: with RQ's minute, an idle
    # worker that had seen a few Valkey restarts slept up to a minute on a Redis long back.
    max_connection_wait_time = REDIS_WAIT_MAX

    def request_stop(self, signum, frame) -> None:
        self.stop_requested = True
        super().request_stop(signum, frame)

    def execute_job(self, job: Job, queue: Queue) -> None:
        if queue.name not in IN_PROCESS:
            super().execute_job(job, queue)
            return
        # RQ's SimpleWorker.execute_job: the job in this process.
        execution = self.prepare_execution(job)
        self.perform_job(job, queue, execution)
        self.set_state(WorkerStatus.IDLE)

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        # During an in-process job there is no horse: RQ would signal the process group of
        # "horse 0", which is the worker's own. The job ends at its time-out instead.
        if self.horse_pid:
            super().kill_horse(sig)

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        super().heartbeat(timeout, pipeline)
        if pipeline is None and not self.is_horse:
            self._register_again()
            self._revive_scheduler()

    def _register_again(self) -> None:
        """Register again in a Redis that lost its data (restarted without its
        append-only file, flushed) while this worker waited for jobs: its heartbeat alone
        wrote one field back, and neither RQ's worker lists nor /healthz/workers counted
        a worker that was working all along."""
        if self.connection.hexists(self.key, "birth"):
            return
        log.warning("Redis had forgotten worker %s; registering it again", self.name)
        with self.connection.pipeline() as pipeline:
            pipeline.hset(self.key, mapping=self.serialize())
            worker_registration.register(self, pipeline)
            pipeline.expire(self.key, self.worker_ttl + 60)
            pipeline.execute()

    def _revive_scheduler(self) -> None:
        """Start RQ's scheduler again once its process is gone.

        It ends on the first Redis error (a Valkey restart), and RQ starts it again only
        at its ten-minute maintenance: until then delayed jobs, webhook retries among
        them, stayed where they were. Every heartbeat (a few seconds) looks instead; a
        worker whose scheduler never got the lock (another worker's has it) takes over
        here once that lock expires."""
        scheduler = self.scheduler
        if scheduler is None or self.stop_requested:
            # Stopping: RQ has stopped the scheduler, and one forked now would inherit
            # the handler that ignores a second SIGTERM within a second, and outlive us.
            return
        process = scheduler._process
        if process is not None:
            if process.is_alive():
                return
            if process.exitcode != 0 and process.pid != self._mourned_scheduler:
                log.warning(
                    "RQ's scheduler (pid %s) ended with exit code %s; starting it again",
                    process.pid,
                    process.exitcode,
                )
                self._mourned_scheduler = process.pid
        scheduler.acquire_locks(auto_start=True)


def ready_for_horses() -> None:
    """Do in the worker, once, what every work horse forked from it would do again.

    Import every module of villagelink.jobs, and so all that its jobs use: a job module
    RQ first meets by name in the horse, or a job's import of the API's packages, cost
    most of a second per job on a loaded machine (the webhook delivery's did). And
    connect once: SQLAlchemy learns the server (version, settings: a few statements) on
    the engine's first connection, which took about 60 ms of every horse's first
    transaction. The pool is emptied again, so no socket is shared across the fork; a
    database not up yet leaves the learning to the horses, as before.
    """
    import villagelink.jobs

    for module in pkgutil.iter_modules(villagelink.jobs.__path__, "villagelink.jobs."):
        importlib.import_module(module.name)
    db = job_database()
    with contextlib.suppress(SQLAlchemyError), db.platform():
        pass
    db.engine.dispose()
    # What is loaded now lives as long as the worker: out of the collector's sight, the
    # horses' collections no longer visit (and so copy, page by page) the whole of it.
    # With every job module loaded, that had made a sync job 0.1 s → 0.45 s.
    gc.collect()
    gc.freeze()


def worker_queues(settings: Settings, names: tuple[str, ...] = QUEUES) -> list[Queue]:
    connection = redis_connection(settings)
    return [Queue(name, connection=connection) for name in names]


def run_worker(settings: Settings, names: tuple[str, ...] = QUEUES) -> None:
    """Work on the queues `names` (by default every queue), highest priority first,
    until SIGINT/SIGTERM.

    `with_scheduler` runs RQ's scheduler next to the worker, which moves
    delayed jobs and retries with a backoff interval back onto their queue. What
    every job would otherwise do again in its work horse is done here, once
    (`ready_for_horses`).

    A worker that loses Redis waits for it, backing off, and works again in the same
    process: it never quits over Redis. RQ gives up on some Redis errors (a timeout,
    one outside its wait for jobs), and building a worker talks to Redis too: that
    raised out of here when Redis was down at that moment (a worker started before
    Valkey, or starting over right after a Valkey restart) and the process ended with
    exit code 1.
    """
    from villagelink.jobs.health import JOB_MONITORING_INTERVAL, WORKER_TTL

    # RQ sets up its own loggers when it starts working; the reasons logged here would
    # otherwise be lost while Redis is down, before it does.
    setup_loghandlers("INFO", name=log.name)
    ready_for_horses()
    queues = worker_queues(settings, names)
    connection = redis_connection(settings)
    log.info("worker on queues %s", ", ".join(q.name for q in queues))
    while True:
        worker: VillageWorker | None = None
        try:
            worker = VillageWorker(
                queues,
                connection=connection,
                # Frequent heartbeats: /healthz/workers tells a dead worker from a live one
                # by them.
                worker_ttl=WORKER_TTL,
                job_monitoring_interval=JOB_MONITORING_INTERVAL,
            )
            worker.work(with_scheduler=True, logging_level="INFO")
            reason = "RQ left its work loop (its log above says why)"
        except redis.RedisError as exc:
            reason = f"{type(exc).__name__}: {exc}"
        if worker is not None and worker.stop_requested:
            return
        log.warning("worker lost Redis (%s); waiting for it to work again", reason)
        _wait_for_redis(connection)


def _wait_for_redis(connection: redis.Redis) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)  # RQ's handlers belong to the worker that quit
    delay = REDIS_WAIT_FIRST
    while True:
        time.sleep(delay)
        try:
            connection.ping()
        except redis.RedisError:
            delay = min(delay * 2, REDIS_WAIT_MAX)
        else:
            log.warning("Redis answers again; the worker starts over")
            return

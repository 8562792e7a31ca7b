"""What the queues look like from outside: live workers and the oldest waiting job.

`/healthz/workers` and `/metrics` read it from Redis, whichever process serves
them. A worker counts as live while its heartbeat is recent: RQ keeps a killed
worker's entry for minutes, but its heartbeat stops at once, so a dead sync
worker shows within LIVE_WITHIN.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from rq import Queue, Worker

from villagelink.jobs.queues import QUEUES

# How often a worker beats while idle (RQ: its TTL less 15 s) and while running a job.
WORKER_TTL = 20
JOB_MONITORING_INTERVAL = 10
# Longer than either beat, with room for a slow Redis.
LIVE_WITHIN = timedelta(seconds=WORKER_TTL)


@dataclass(frozen=True)
class QueueHealth:
    name: str
    workers: int  # live workers taking jobs from it
    waiting: int  # jobs waiting to be taken
    oldest_waiting_seconds: float  # age of the oldest of them; 0 when none waits

    @property
    def unattended(self) -> bool:
        """No live worker takes this queue's jobs: they wait until one starts."""
        return self.workers == 0


def queue_health(connection: redis.Redis, now: datetime | None = None) -> list[QueueHealth]:
    """Each queue's live workers and its oldest waiting job's age, in QUEUES order."""
    moment = now or datetime.now(UTC)
    found = []
    for name in QUEUES:
        queue = Queue(name, connection=connection)
        live = [
            w
            for w in Worker.all(queue=queue)
            if w.last_heartbeat is not None
            and moment - w.last_heartbeat.replace(tzinfo=UTC) < LIVE_WITHIN
        ]
        oldest = 0.0
        first = queue.get_job_ids(0, 1)
        job = queue.fetch_job(first[0]) if first else None
        if job is not None and job.enqueued_at is not None:
            oldest = max(0.0, (moment - job.enqueued_at.replace(tzinfo=UTC)).total_seconds())
        found.append(QueueHealth(name, len(live), queue.count, oldest))
    return found

"""The platform's periodic jobs, enqueued by RQ's cron scheduler.

One scheduler process runs next to the workers (`villagelink scheduler`); it
only enqueues, the workers run. An interval job is first enqueued when the
scheduler starts, then every interval.
"""

from __future__ import annotations

import redis
from rq.cron import CronScheduler

from villagelink.jobs.agreements import AGREEMENT_EXPIRY_INTERVAL, expire_agreements
from villagelink.jobs.alerts import escalate_unacknowledged_alerts
from villagelink.jobs.devices import mark_silent_devices_offline
from villagelink.jobs.escalation import escalate_overdue_requests
from villagelink.jobs.maintenance import FAILURE_TTL, refresh_village_stats
from villagelink.jobs.queues import MAINTENANCE, SYNC, redis_connection
from villagelink.jobs.storage import sweep_objects
from villagelink.jobs.sync import sweep as sweep_sync
from villagelink.jobs.webhooks import sweep_webhook_deliveries
from villagelink.platform.settings import Settings

VILLAGE_STATS_INTERVAL = 10 * 60
# Deadlines are hours to days: five minutes late to escalate is on time.
ESCALATION_INTERVAL = 5 * 60
# Abandoned uploads and removals whose job was lost: nothing waits on them.
OBJECT_SWEEP_INTERVAL = 60 * 60
# The shortest silence that counts as offline is ten minutes (cameras, radars).
DEVICE_OFFLINE_INTERVAL = 5 * 60
# Minutes matter: a fire waits two for its grid worker before the village admin is called.
ALERT_ESCALATION_INTERVAL = 60
# Webhook deliveries whose job Redis lost: late by a few minutes at most.
WEBHOOK_SWEEP_INTERVAL = 60
# Changes whose sync job was lost (Redis flushed, worker killed) or that failed:
# a neighbour sees them a minute late at worst.
SYNC_SWEEP_INTERVAL = 60


def build_cron_scheduler(connection: redis.Redis) -> CronScheduler:
    """A cron scheduler with every periodic job registered, not yet started."""
    scheduler = CronScheduler(connection=connection)
    scheduler.register(
        refresh_village_stats,
        queue_name=MAINTENANCE,
        interval=VILLAGE_STATS_INTERVAL,
        # The fan-out only lists villages; a run that outlives the next tick is stuck.
        job_timeout=60,
        failure_ttl=FAILURE_TTL,
    )
    scheduler.register(
        escalate_overdue_requests,
        queue_name=MAINTENANCE,
        interval=ESCALATION_INTERVAL,
        job_timeout=60,
        failure_ttl=FAILURE_TTL,
    )
    scheduler.register(
        sweep_objects,
        queue_name=MAINTENANCE,
        interval=OBJECT_SWEEP_INTERVAL,
        job_timeout=60,
        failure_ttl=FAILURE_TTL,
    )
    scheduler.register(
        sweep_webhook_deliveries,
        queue_name=MAINTENANCE,
        interval=WEBHOOK_SWEEP_INTERVAL,
        job_timeout=60,
        failure_ttl=FAILURE_TTL,
    )
    scheduler.register(
        mark_silent_devices_offline,
        queue_name=MAINTENANCE,
        interval=DEVICE_OFFLINE_INTERVAL,
        job_timeout=60,
        failure_ttl=FAILURE_TTL,
    )
    scheduler.register(
        escalate_unacknowledged_alerts,
        queue_name=MAINTENANCE,
        interval=ALERT_ESCALATION_INTERVAL,
        job_timeout=60,
        failure_ttl=FAILURE_TTL,
    )
    scheduler.register(
        sweep_sync,
        queue_name=SYNC,
        interval=SYNC_SWEEP_INTERVAL,
        job_timeout=120,
        failure_ttl=FAILURE_TTL,
    )
    scheduler.register(
        expire_agreements,
        queue_name=MAINTENANCE,
        interval=AGREEMENT_EXPIRY_INTERVAL,
        job_timeout=60,
        failure_ttl=FAILURE_TTL,
    )
    return scheduler


def run_scheduler(settings: Settings) -> None:
    """Enqueue the periodic jobs on time until SIGINT/SIGTERM."""
    build_cron_scheduler(redis_connection(settings)).start()

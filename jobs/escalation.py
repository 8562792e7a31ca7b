"""跟踪督办: overdue requests escalate grid → village → region, on the `maintenance` queue.

`escalate_overdue_requests` runs every five minutes (jobs/scheduler.py) and
fans out one job per active village, each retried on its own. The fan-out
fixes the moment every village is judged at and passes it on, so a retried
job judges by the same clock; the escalation itself is idempotent
(`do_escalate_overdue`), so a rerun changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from rq import Retry

from villagelink.jobs.maintenance import for_each_village
from villagelink.jobs.worker import job_database
from villagelink.platform.audit import system_actor
from villagelink.tenants import clock
from villagelink.tenants.requests.actions import do_escalate_overdue

ESCALATION_RETRY = Retry(max=3, interval=[30, 120, 600])
ESCALATION_JOB_TIMEOUT = 300
# Who the timeline and the audit log name for escalations.
ESCALATION_ACTOR = system_actor("escalation")


def escalate_overdue_requests(now: datetime | None = None) -> list[str]:
    """Enqueue `escalate_village_requests` for every active village at one moment
    (`now`, by default the present); returns the job ids."""
    moment = now or clock.now()
    return for_each_village(
        escalate_village_requests,
        args=(moment,),
        retry=ESCALATION_RETRY,
        timeout=ESCALATION_JOB_TIMEOUT,
        label="escalate overdue requests",
    )


def escalate_village_requests(slug: str, now: datetime) -> list[dict]:
    """Escalate one village's overdue requests as of `now`, under the village's role;
    returns what rose (id, from and to level)."""
    with job_database().tenant(slug) as conn:
        return do_escalate_overdue(conn, ESCALATION_ACTOR, slug, now)

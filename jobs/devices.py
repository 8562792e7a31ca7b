"""Devices gone silent are marked offline, on the `maintenance` queue.

`mark_silent_devices_offline` runs every five minutes (jobs/scheduler.py) and fans out
one job per active village at one moment, each retried on its own; the moment travels
with the job, so a retry judges by the same clock. Marking is idempotent
(`do_mark_silent_devices_offline`): a rerun finds nothing more to mark. A device that
reports again is active again at once (tenants/sensing/ingest.py).
"""

from __future__ import annotations

from datetime import datetime

from rq import Retry

from villagelink.jobs.maintenance import for_each_village
from villagelink.jobs.worker import job_database
from villagelink.platform.audit import system_actor
from villagelink.tenants import clock
from villagelink.tenants.sensing.devices import do_mark_silent_devices_offline

OFFLINE_RETRY = Retry(max=3, interval=[30, 120, 600])
OFFLINE_JOB_TIMEOUT = 120
# Who the audit log names for devices marked offline.
DEVICE_WATCH_ACTOR = system_actor("device-watch")


def mark_silent_devices_offline(now: datetime | None = None) -> list[str]:
    """Enqueue `mark_village_devices_offline` for every active village at one moment
    (`now`, by default the present); returns the job ids."""
    moment = now or clock.now()
    return for_each_village(
        mark_village_devices_offline,
        args=(moment,),
        retry=OFFLINE_RETRY,
        timeout=OFFLINE_JOB_TIMEOUT,
        label="silent devices offline",
    )


def mark_village_devices_offline(slug: str, now: datetime) -> list[int]:
    """Mark one village's silent devices offline as of `now`, under the village's role;
    returns their ids."""
    with job_database().tenant(slug) as conn:
        return do_mark_silent_devices_offline(conn, DEVICE_WATCH_ACTOR, slug, now)

"""到期: agreements past their end expire, on the `maintenance` queue every minute
(jobs/scheduler.py).

The expiry and its history are one platform transaction; the parties of what was
in force are then reconciled, which withdraws the copies the agreement allowed. A
lost reconcile job is made up by the sync sweep, which reconciles the parties of
agreements changed in the last minutes (`sync.villages_to_reconcile`).
"""

from __future__ import annotations

from villagelink.jobs.sync import enqueue_sync
from villagelink.jobs.worker import job_database, job_settings
from villagelink.platform.linkage.agreements import expire_due

AGREEMENT_EXPIRY_INTERVAL = 60


def expire_agreements() -> list[str]:
    """Expire what is due; returns the villages whose copies are being reconciled."""
    with job_database().platform() as conn:
        villages = expire_due(conn)
    if villages:
        enqueue_sync(job_settings(), villages, reconcile=True)
    return villages

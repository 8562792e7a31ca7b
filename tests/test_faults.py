"""Faults injected into a running platform: what happens around the data heals, and
no acknowledged write is lost or doubled. Every server is real and on loopback; every
wait polls against a deadline."""

from __future__ import annotations

from datetime import timedelta

from villagelink.jobs import alerts as alert_jobs
from villagelink.platform.linkage.sync import sync_village

from .processes import wait_for
from .test_alerts import NOW
from .test_jobs import job_env  # noqa: F401 (a fixture, used by name)
from .test_sync import ring, sync_worker  # noqa: F401 (fixtures, used by name)


def test_a_jobs_change_reaches_the_neighbours_without_the_sweep(ring, sync_worker):  # noqa: F811
    """An escalation made by the maintenance job asks for the sync on commit, as a
    request does; no sweep runs here, so only that can bring it across."""
    db, a = ring.db, ring.a.slug
    alert_id = ring.missing_person()
    sync_village(db, a)
    before = {key: copy["version"] for key, copy in ring.copies().items()}
    assert len(before) == 2  # B and E

    done = alert_jobs.escalate_village_alerts(a, NOW + timedelta(days=1))

    assert alert_id in done["escalated"]
    wait_for(
        lambda: all(copy["version"] > before[key] for key, copy in ring.copies().items()),
        10,
        "the escalation never reached B and E",
        sync_worker,
    )

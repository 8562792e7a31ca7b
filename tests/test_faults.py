"""Faults injected into a running platform: what happens around the data heals, and
no acknowledged write is lost or doubled. Every server is real and on loopback; every
wait polls against a deadline."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from villagelink.jobs import alerts as alert_jobs
from villagelink.jobs.queues import NOTIFY, SYNC
from villagelink.jobs.sync import enqueue_sync
from villagelink.platform.linkage.sync import sync_village

from .processes import wait_for
from .test_alerts import NOW
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


def _metric(client, name: str, **labels: str) -> float:
    """One sample of /metrics, by name and labels."""
    pairs = ",".join(f'{k}="{v}"' for k, v in labels.items())
    wanted = f"{name}{{{pairs}}}" if labels else name
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{wanted} not in /metrics")


def test_a_dead_sync_worker_and_a_failing_sync_show_in_health_and_metrics(
    ring,  # noqa: F811
    sync_worker,  # noqa: F811
    client,
):
    workers = "/healthz/workers"
    wait_for(
        lambda: client.get(workers).get_json()["queues"][SYNC]["workers"] == 1,
        15,
        "the live worker never showed",
        sync_worker,
    )
    assert _metric(client, "villagelink_queue_without_worker", queue=SYNC) == 0
    # The other queues have no worker in this test: said so, not hidden.
    assert client.get(workers).status_code == 503
    assert _metric(client, "villagelink_queue_without_worker", queue=NOTIFY) == 1

    sync_worker.kill()
    killed = time.monotonic()
    ring.missing_person()
    enqueue_sync(sync_worker.settings, [ring.a.slug])
    wait_for(
        lambda: _metric(client, "villagelink_queue_without_worker", queue=SYNC) == 1,
        60,
        "the dead worker still counts",
    )
    assert time.monotonic() - killed < 60
    sync = client.get(workers).get_json()["queues"][SYNC]
    assert sync["workers"] == 0 and sync["waiting"] == 1 and sync["oldestWaitingSeconds"] > 0
    assert _metric(client, "villagelink_queue_oldest_job_age_seconds", queue=SYNC) > 0

    # A village whose sync fails counts as failing until a sync of it succeeds.
    failing = _metric(client, "villagelink_sync_failing_villages")
    with ring.db.tenant(ring.a.slug) as conn:
        conn.execute(text("ALTER TABLE outbox RENAME TO outbox_away"))
    with pytest.raises(ProgrammingError):
        sync_village(ring.db, ring.a.slug)
    assert _metric(client, "villagelink_sync_failing_villages") == failing + 1
    with ring.db.tenant(ring.a.slug) as conn:
        conn.execute(text("ALTER TABLE outbox_away RENAME TO outbox"))
    sync_village(ring.db, ring.a.slug)
    assert _metric(client, "villagelink_sync_failing_villages") == failing

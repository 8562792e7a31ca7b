"""Telling people of alerts at once, on the `notify` queue, and the escalation sweep.

An alert raised, reassigned, escalated, acknowledged or closed is enqueued right
after its transaction commits (`enqueue_alert_notifications`, one job per alert);
`notify_alert` then hands it to the integrators subscribed to that event (the
grid workers' app, the village's call centre) through the webhooks
(jobs/webhooks.py), and writes who was told on the alert's timeline.

Every minute `escalate_unacknowledged_alerts` fans out one job per village (on
the maintenance queue, like jobs/escalation.py) that raises alerts nobody
acknowledged in time a level (tenants/sensing/actions.py) and enqueues their
`alert.escalated` notifications. The same job finds alerts still waiting, more
than LOST_AFTER after they were raised, reassigned or escalated, for a
notification that never went out (Redis lost the job: Redis is a transport, the
tables know) and enqueues it again: nobody's fall goes unanswered.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from rq import Retry
from sqlalchemy import Connection, select, update

from villagelink.graphql.core.ids import encode_id
from villagelink.jobs.escalation import ESCALATION_ACTOR
from villagelink.jobs.maintenance import FAILURE_TTL, for_each_village
from villagelink.jobs.queues import NOTIFY, queue
from villagelink.jobs.webhooks import publish_event
from villagelink.jobs.worker import job_database, job_settings
from villagelink.platform.audit import system_actor
from villagelink.platform.settings import Settings
from villagelink.platform.webhooks import (
    ALERT_ACKNOWLEDGED,
    ALERT_ASSIGNED,
    ALERT_ESCALATED,
    ALERT_RAISED,
    ALERT_RESOLVED,
)
from villagelink.tenants import clock
from villagelink.tenants import models as m
from villagelink.tenants.sensing import queries
from villagelink.tenants.sensing.actions import LEVEL_LABELS, do_escalate_unacknowledged
from villagelink.tenants.sensing.alerting import ALERT
from villagelink.tenants.sensing.tables import GRID, REGION, alert_events, alerts
from villagelink.tenants.sensitive import mask_phone

log = logging.getLogger(__name__)

# Minutes matter: retry within seconds, and give up (into the failed registry, and to
# the sweep, which finds the alert still unnotified) after about ten minutes.
NOTIFY_RETRY = Retry(max=5, interval=[5, 15, 60, 120, 300])
NOTIFY_JOB_TIMEOUT = 60
ESCALATION_RETRY = Retry(max=3, interval=[10, 30, 60])
ESCALATION_JOB_TIMEOUT = 120
# A notification not out this long after its step has lost its job.
LOST_AFTER = timedelta(seconds=30)
# Steps that must reach someone: their notification marks `notified_at`, and one that
# never does is sent again by the sweep.
MUST_REACH = (ALERT_RAISED, ALERT_ASSIGNED, ALERT_ESCALATED)
NOTIFY_ACTOR = system_actor("notify")


def enqueue_alert_notifications(
    settings: Settings,
    village: str,
    alert_ids: list[int],
    event_type: str,
    *,
    only_if_unnotified: bool = False,
) -> list[str]:
    """Enqueue `notify_alert` for each alert on the notify queue, in one round trip;
    call after the transaction that changed them has committed. Returns the job ids."""
    if not alert_ids:
        return []
    notify = queue(NOTIFY, settings)
    jobs = notify.enqueue_many(
        [
            notify.prepare_data(
                notify_alert,
                args=(village, alert_id, event_type),
                kwargs={"only_if_unnotified": only_if_unnotified},
                retry=NOTIFY_RETRY,
                timeout=NOTIFY_JOB_TIMEOUT,
                failure_ttl=FAILURE_TTL,
                description=f"{event_type}: {village} alert {alert_id}",
            )
            for alert_id in alert_ids
        ]
    )
    return [job.id for job in jobs]


def notify_alert(
    village: str, alert_id: int, event_type: str, *, only_if_unnotified: bool = False
) -> int | None:
    """Publish the alert's `event_type` to its subscribers and write on its timeline whom
    that told; returns how many deliveries it made (None: nothing to do). The alert stays
    locked meanwhile, so that a job sent again by the sweep (`only_if_unnotified`) waits
    for the first and then finds it done. At least once: a retry after a failed commit
    publishes again."""
    with job_database().tenant(village) as conn:
        alert = _locked_for_notice(conn, alert_id)
        if alert is None or (only_if_unnotified and alert["notified_at"] is not None):
            return None
        deliveries = publish_event(
            village, event_type, alert_payload(village, alert), _occurred_at(alert, event_type)
        )
        now = clock.now()
        if event_type in MUST_REACH:
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(notified_at=now))
        conn.execute(
            alert_events.insert().values(
                alert_id=alert_id,
                action="notify",
                from_state=alert["state"],
                to_state=alert["state"],
                level=alert["level"],
                staff_id=alert["assignee_staff_id"] if alert["level"] == GRID else None,
                note=f"{event_type}：已通知{_whom(alert)}（推送{deliveries}个对接系统）",
                actor_sub=NOTIFY_ACTOR.principal.sub,
                actor_name=NOTIFY_ACTOR.principal.display_name,
                created_at=now,
            )
        )
    return deliveries


def _locked_for_notice(conn: Connection, alert_id: int) -> dict | None:
    a, g, s = alerts, m.grids, m.grid_staff
    query = (
        select(
            a,
            g.c.name.label("grid_name"),
            s.c.name.label("assignee_name"),
            s.c.phone.label("assignee_phone"),
        )
        .outerjoin(g, g.c.id == a.c.grid_id)
        .outerjoin(s, s.c.id == a.c.assignee_staff_id)
        .where(a.c.id == alert_id)
        .with_for_update(of=a)
    )
    found = conn.execute(query).mappings().first()
    return None if found is None else dict(found)


def _whom(alert: dict) -> str:
    """Who is to act at the alert's level, as the timeline names them."""
    if alert["level"] == GRID and alert["assignee_name"]:
        return f"网格员{alert['assignee_name']}"
    if alert["level"] == REGION:
        return "联动片区协调员"
    return f"{LEVEL_LABELS[alert['level']]}管理员"


def _occurred_at(alert: dict, event_type: str) -> datetime:
    moment = {
        ALERT_RAISED: alert["raised_at"],
        ALERT_ESCALATED: alert["escalated_at"],
        ALERT_ACKNOWLEDGED: alert["acknowledged_at"],
        ALERT_RESOLVED: alert["closed_at"],
    }.get(event_type)
    return moment or alert["updated_at"]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def alert_payload(village: str, alert: dict) -> dict[str, Any]:
    """What a subscriber is told: where, what, who is on it. Never a resident's ID
    number, phone or health conditions; the assignee's phone masked as in the API."""
    grid = None
    if alert["grid_id"] is not None:
        grid = {"id": encode_id("Grid", village, alert["grid_id"]), "name": alert["grid_name"]}
    assignee = None
    if alert["assignee_staff_id"] is not None:
        assignee = {"name": alert["assignee_name"], "phone": mask_phone(alert["assignee_phone"])}
    return {
        "alert": {
            "id": encode_id(ALERT, village, alert["id"]),
            "village": village,
            "kind": alert["kind"],
            "severity": alert["severity"],
            "state": alert["state"],
            "level": alert["level"],
            "summary": alert["summary"],
            "location_text": alert["location_text"],
            "latitude": alert["latitude"],
            "longitude": alert["longitude"],
            "grid": grid,
            "assignee": assignee,
            "raised_at": _iso(alert["raised_at"]),
            "ack_due_at": _iso(alert["ack_due_at"]),
            "acknowledged_at": _iso(alert["acknowledged_at"]),
            "closed_at": _iso(alert["closed_at"]),
            "outcome": alert["outcome"],
        }
    }


# -- the sweep (逐级上报) ---------------------------------------------------------------


def escalate_unacknowledged_alerts(now: datetime | None = None) -> list[str]:
    """Enqueue `escalate_village_alerts` for every active village at one moment (`now`,
    by default the present); returns the job ids."""
    moment = now or clock.now()
    return for_each_village(
        escalate_village_alerts,
        args=(moment,),
        retry=ESCALATION_RETRY,
        timeout=ESCALATION_JOB_TIMEOUT,
        label="escalate unacknowledged alerts",
    )


# The step whose notification is missing -> the event to send for it.
STEP_EVENTS = {
    "raise": ALERT_RAISED,
    "assign": ALERT_RAISED,
    "reassign": ALERT_ASSIGNED,
    "escalate": ALERT_ESCALATED,
}


def escalate_village_alerts(slug: str, now: datetime) -> dict[str, list[int]]:
    """Escalate one village's unacknowledged alerts as of `now` and enqueue what must be
    told: the escalations, and notifications lost on the way. Returns the alert ids."""
    with job_database().tenant(slug) as conn:
        risen = do_escalate_unacknowledged(conn, ESCALATION_ACTOR, slug, now)
        lost = queries.unnotified_alerts(conn, now - LOST_AFTER, list(STEP_EVENTS))
    settings = job_settings()
    enqueue_alert_notifications(settings, slug, [r["id"] for r in risen], ALERT_ESCALATED)
    by_event: dict[str, list[int]] = {}
    for alert_id, step in lost:
        by_event.setdefault(STEP_EVENTS[step], []).append(alert_id)
    for event_type, ids in by_event.items():
        log.warning("%s: %s for alerts %s lost its job; sent again", slug, event_type, ids)
        enqueue_alert_notifications(settings, slug, ids, event_type, only_if_unnotified=True)
    return {"escalated": [r["id"] for r in risen], "renotified": [i for i, _ in lost]}

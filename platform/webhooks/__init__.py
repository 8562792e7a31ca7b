"""Webhooks: integrators' endpoints told of what happens in the villages they are granted.

The event types, and the scope a client must hold for each: a webhook carries
what the API would show the client, so it needs the same grant.
"""

from villagelink.platform.access import ALERTS_READ_SCOPE

ALERT_RAISED = "alert.raised"
ALERT_ASSIGNED = "alert.assigned"
ALERT_ESCALATED = "alert.escalated"
ALERT_ACKNOWLEDGED = "alert.acknowledged"
# The payload's alert carries state `resolved` or `false_alarm`, and the outcome.
ALERT_RESOLVED = "alert.resolved"

EVENT_SCOPES: dict[str, str] = {
    ALERT_RAISED: ALERTS_READ_SCOPE,
    ALERT_ASSIGNED: ALERTS_READ_SCOPE,
    ALERT_ESCALATED: ALERTS_READ_SCOPE,
    ALERT_ACKNOWLEDGED: ALERTS_READ_SCOPE,
    ALERT_RESOLVED: ALERTS_READ_SCOPE,
}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_SCOPES)

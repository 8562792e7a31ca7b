"""Live events: what an action declares for the open consoles, announced once committed.

An action that raises or changes an alert or a request calls `announce` with the
transaction it writes in; nothing leaves the process then. `Database.commit_tenant`
takes the announcements after the commit (`taken`) and hands them to the publisher
(platform/live/channel.py), so a rolled-back transaction announces nothing. A
savepoint rolled back takes back what was announced inside it: a bulk write that
skips a failed item must not announce that item's alert.

Events are small JSON objects (the Redis message): the live process turns them into
the API's `LiveEvent` (graphql/live/) and decides who receives which.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, event

# Kinds, lower-case inside (the API spells them SCREAMING_SNAKE_CASE).
ALERT_RAISED = "alert_raised"
ALERT_CHANGED = "alert_changed"
REQUEST_CHANGED = "request_changed"
# Derived by the live process for each subscriber whose 待办 an event touches.
TASKS_CHANGED = "tasks_changed"
LIVE_EVENT_KINDS = (ALERT_RAISED, ALERT_CHANGED, REQUEST_CHANGED, TASKS_CHANGED)

# How much of a request's description a notification quotes.
TEXT_LENGTH = 40

_PENDING = "villagelink.live.pending"
_MARKS = "villagelink.live.savepoints"


def announce(
    conn: Connection,
    village: str,
    kind: str,
    *,
    subject_type: str,
    subject: Mapping[str, Any],
    state: str,
    text: str,
    shared: bool = False,
    note: str | None = None,
    previous_staff_id: int | None = None,
    at: datetime | None = None,
) -> None:
    """Declare that `subject` (an alert's or request's row: id, grid_id,
    assignee_staff_id) was raised or changed in this transaction. `state` is its
    state after the change, `text` what names it in a notification (the alert's
    summary, the request's description), `note` what happened when the state alone
    does not say it (an escalation). `previous_staff_id`: the staff member it was
    assigned to before, whose 待办 changed too. `shared`: neighbours and the region's
    coordinators see this record (a shared alert kind)."""
    staff = {subject.get("assignee_staff_id"), previous_staff_id} - {None}
    conn.info.setdefault(_PENDING, []).append(
        {
            "kind": kind,
            "village": village,
            "subjectType": subject_type,
            "subjectKey": subject["id"],
            "grid": subject.get("grid_id"),
            "staff": sorted(staff),
            "shared": shared,
            "state": state,
            "text": text[:TEXT_LENGTH],
            "note": note,
            "occurredAt": (at or datetime.now(UTC)).isoformat(),
        }
    )


def taken(conn: Connection) -> list[dict[str, Any]]:
    """The announcements of the transaction just committed, cleared from the pooled
    connection (whose `info` outlives the transaction)."""
    conn.info.pop(_MARKS, None)
    return conn.info.pop(_PENDING, [])


# Savepoints nest, so a stack of marks (how many events were pending when each began)
# follows them; SQLAlchemy names a savepoint only after its `savepoint` event.
@event.listens_for(Engine, "savepoint")
def _mark_savepoint(conn: Connection, _name: str | None) -> None:
    conn.info.setdefault(_MARKS, []).append(len(conn.info.get(_PENDING, ())))


@event.listens_for(Engine, "release_savepoint")
def _keep(conn: Connection, _name: str, _context: object) -> None:
    marks = conn.info.get(_MARKS)
    if marks:
        marks.pop()


@event.listens_for(Engine, "rollback_savepoint")
def _take_back(conn: Connection, _name: str, _context: object) -> None:
    marks = conn.info.get(_MARKS)
    if marks:
        del conn.info.get(_PENDING, [])[marks.pop() :]

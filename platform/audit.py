"""The audit log: who did or saw what, when, in the same transaction as the act itself."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from villagelink.platform import models as pm
from villagelink.platform.identity.principal import Principal


@dataclass(frozen=True)
class Actor:
    """The principal behind a request or job, with the request id that ties log lines together."""

    principal: Principal
    request_id: str | None = None


def system_actor(name: str) -> Actor:
    """The platform itself acting (a sweep, a job), named `system:<name>` in timelines
    and the audit log."""
    sub = f"system:{name}"
    return Actor(Principal(sub, sub, frozenset(), frozenset(), frozenset(), None))


def entry(
    actor: Actor,
    *,
    village: str,
    action: str,
    subject_type: str | None = None,
    subject_id: str | int | None = None,
    fields: Iterable[str] = (),
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One audit row, ready to insert."""
    principal = actor.principal
    return {
        "village": village,
        "actor_sub": principal.sub,
        "actor_name": principal.username,
        "actor_roles": sorted(principal.roles),
        "client_id": principal.client_id,
        "action": action,
        "subject_type": subject_type,
        "subject_id": None if subject_id is None else str(subject_id),
        "fields": list(fields),
        "reason": reason,
        "details": details or {},
        "request_id": actor.request_id,
    }


def record(conn: Connection, actor: Actor, **what: Any) -> None:
    """Append one entry (see `entry` for what it holds). Inside a village
    transaction the row-level policy lets it name that village only."""
    record_many(conn, [entry(actor, **what)])


def record_many(conn: Connection, entries: list[dict[str, Any]]) -> None:
    """Append several entries in one statement."""
    if entries:
        conn.execute(pm.audit_log.insert(), entries)

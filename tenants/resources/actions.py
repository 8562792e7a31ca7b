"""Writes to shared resources and their bookings: the only place they change.

A resource shared with neighbours is appended to the outbox (`SharedResource`,
the catalogue's `shared_resource`) at every change while it is shared and in
service, and withdrawn (a DELETE) when it is retired or no longer shared.

A booking moves pending → approved | rejected, and pending or approved →
cancelled. No two approved bookings of a resource overlap: the overlap is checked
when a booking is asked for and again when it is approved, with the resource's
row locked (`FOR UPDATE`), so of two concurrent approvals of overlapping
bookings the second waits for the first and then sees it. Every booking change
is audited in the owner's village, naming the village that asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select

from villagelink.platform.audit import Actor, record
from villagelink.platform.linkage.catalogue import RECORD_TYPES, SHARED_RESOURCE
from villagelink.tenants.outbox import emit_shared
from villagelink.tenants.resources import queries
from villagelink.tenants.resources.tables import RETIRED, resource_bookings, shared_resources
from villagelink.tenants.resources.validation import (
    CONFLICT,
    FORBIDDEN_STATE,
    BookingSchema,
    DecisionSchema,
    NewResourceSchema,
    RejectionSchema,
    ResourceDetailsSchema,
)
from villagelink.tenants.user_errors import (
    DUPLICATE,
    NOT_FOUND,
    ActionFailed,
    refused,
    validated,
)

RESOURCE = "SharedResource"  # the outbox's record type and the API's type name
BOOKING = "ResourceBooking"
PAYLOAD_FIELDS = RECORD_TYPES[SHARED_RESOURCE].fields

BOOKING_STATE_NAMES = {
    "pending": "待审批",
    "approved": "已批准",
    "rejected": "已驳回",
    "cancelled": "已取消",
}
NO_RESOURCE = "资源不存在"
NO_BOOKING = "预约不存在"


# --- resources ----------------------------------------------------------------


def _shared(resource: dict) -> bool:
    """Neighbours see a resource while it is offered to them and in service."""
    return resource["shared"] and resource["status"] != RETIRED


def _share(conn: Connection, before: dict | None, after: dict) -> None:
    emit_shared(
        conn,
        RESOURCE,
        before,
        after,
        shared=_shared,
        payload=lambda resource: {name: resource[name] for name in PAYLOAD_FIELDS},
    )


def _require_unique_name(conn: Connection, name: str, besides: int | None = None) -> None:
    r = shared_resources
    query = select(r.c.id).where(r.c.name == name, r.c.status != RETIRED)
    if besides is not None:
        query = query.where(r.c.id != besides)
    if conn.execute(query).first() is not None:
        raise refused("name", "本村已有同名资源", DUPLICATE)


def _locked_resource(conn: Connection, resource_id: int, field: str = "id") -> dict:
    resource = queries.resource_for_update(conn, resource_id)
    if resource is None:
        raise refused(field, NO_RESOURCE, NOT_FOUND)
    return resource


def _save(conn: Connection, resource_id: int, **values: Any) -> dict:
    """Change a resource and bump its version (what receivers of the outbox compare)."""
    r = shared_resources
    return dict(
        conn.execute(
            r.update()
            .where(r.c.id == resource_id)
            .values(**values, version=r.c.version + 1, updated_at=func.now())
            .returning(*r.columns)
        )
        .mappings()
        .one()
    )


def do_create_resource(conn: Connection, actor: Actor, village: str, data: dict) -> dict:
    values = validated(NewResourceSchema(), data)
    with conn.begin_nested():
        _require_unique_name(conn, values["name"])
        resource = dict(
            conn.execute(
                shared_resources.insert().values(**values).returning(*shared_resources.columns)
            )
            .mappings()
            .one()
        )
        record(
            conn,
            actor,
            village=village,
            action="resource.create",
            subject_type=RESOURCE,
            subject_id=resource["id"],
            fields=sorted(k for k, v in values.items() if v is not None),
        )
        _share(conn, None, resource)
    return resource


def do_update_resource(
    conn: Connection, actor: Actor, village: str, resource_id: int, changes: dict
) -> dict:
    values = validated(ResourceDetailsSchema(partial=True), changes)
    with conn.begin_nested():
        before = _locked_resource(conn, resource_id)
        if before["status"] == RETIRED:
            raise refused("id", "资源已停用，不能再修改", FORBIDDEN_STATE)
        changed = {k: v for k, v in values.items() if before[k] != v}
        if not changed:
            return before
        if "name" in changed:
            _require_unique_name(conn, changed["name"], besides=resource_id)
        after = _save(conn, resource_id, **changed)
        record(
            conn,
            actor,
            village=village,
            action="resource.update",
            subject_type=RESOURCE,
            subject_id=resource_id,
            fields=sorted(changed),
        )
        _share(conn, before, after)
    return after


def do_retire_resource(
    conn: Connection, actor: Actor, village: str, resource_id: int, data: dict
) -> dict:
    """Take a resource out of service for good: neighbours lose it, and its pending
    and future approved bookings are cancelled with the reason given."""
    reason = validated(DecisionSchema(), data)["reason"] or "资源已停用"
    with conn.begin_nested():
        before = _locked_resource(conn, resource_id)
        if before["status"] == RETIRED:
            raise refused("id", "资源已停用", FORBIDDEN_STATE)
        after = _save(conn, resource_id, status=RETIRED)
        b = resource_bookings
        cancelled = (
            conn.execute(
                b.update()
                .where(
                    b.c.resource_id == resource_id,
                    b.c.state.in_(("pending", "approved")),
                    b.c.ends_at > func.now(),
                )
                .values(
                    state="cancelled",
                    cancelled_by=actor.principal.sub,
                    cancelled_by_village=village,
                    cancelled_at=func.now(),
                    reason=reason,
                    updated_at=func.now(),
                )
                .returning(b.c.id)
            )
            .scalars()
            .all()
        )
        record(
            conn,
            actor,
            village=village,
            action="resource.retire",
            subject_type=RESOURCE,
            subject_id=resource_id,
            fields=["status"],
            reason=reason,
            details={"cancelled_bookings": sorted(cancelled)},
        )
        _share(conn, before, after)
    return after


# --- bookings -----------------------------------------------------------------


def _audit_booking(
    conn: Connection, actor: Actor, village: str, action: str, booking: dict, **details: Any
) -> None:
    record(
        conn,
        actor,
        village=village,
        action=f"resource.{action}",
        subject_type=BOOKING,
        subject_id=booking["id"],
        fields=["state"],
        reason=booking["reason"],
        details={
            "resource_id": booking["resource_id"],
            "requester_village": booking["requester_village"],
            "state": booking["state"],
            **details,
        },
    )


def _booking(conn: Connection, booking_id: int) -> dict:
    found = queries.bookings_by_ids(conn, [booking_id]).get(booking_id)
    if found is None:
        raise refused("booking", NO_BOOKING, NOT_FOUND)
    return found


def do_book_resource(
    conn: Connection,
    actor: Actor,
    village: str,
    resource_id: int,
    requester_village: str,
    data: dict,
    *,
    agreement_ids: Sequence[int] = (),
) -> dict:
    """Ask for a resource of `village` (the owner) over a period, for `requester_village`:
    the owner itself, or a neighbour under `agreement_ids` (the agreements in force that
    cover shared resources between the two; the caller checked them). A neighbour sees
    only resources shared with it; anything else does not exist for it."""
    values = validated(BookingSchema(), data)
    neighbour = requester_village != village
    with conn.begin_nested():
        resource = _locked_resource(conn, resource_id, "resource")
        if neighbour and not _shared(resource):
            raise refused("resource", NO_RESOURCE, NOT_FOUND)
        _require_bookable(resource)
        if queries.overlapping(conn, resource_id, values["starts_at"], values["ends_at"]):
            raise refused("from", "该时段与已批准的预约冲突", CONFLICT)
        b = resource_bookings
        booking = dict(
            conn.execute(
                b.insert()
                .values(
                    resource_id=resource_id,
                    requester_village=requester_village,
                    requester_name=values["contact_name"],
                    requester_phone=values.get("contact_phone"),
                    purpose=values["purpose"],
                    starts_at=values["starts_at"],
                    ends_at=values["ends_at"],
                    requested_by=actor.principal.sub,
                    agreement_ids=list(agreement_ids),
                )
                .returning(*b.columns)
            )
            .mappings()
            .one()
        )
        _audit_booking(conn, actor, village, "book", booking, agreement_ids=list(agreement_ids))
    return _booking(conn, booking["id"])


def _require_bookable(resource: dict) -> None:
    if resource["status"] == RETIRED:
        raise refused("resource", "资源已停用", FORBIDDEN_STATE)
    if resource["status"] != "available":
        raise refused("resource", "资源暂不可用", FORBIDDEN_STATE)
    if not resource["bookable"]:
        raise refused("resource", "该资源不接受预约", FORBIDDEN_STATE)


def _move(conn: Connection, booking_id: int, sources: tuple[str, ...], **values: Any) -> dict:
    """Move a booking on if it is still in one of `sources`; FORBIDDEN_STATE otherwise.
    The UPDATE takes the booking's row lock, so a concurrent step decides first."""
    b = resource_bookings
    row = (
        conn.execute(
            b.update()
            .where(b.c.id == booking_id, b.c.state.in_(sources))
            .values(**values, updated_at=func.now())
            .returning(*b.columns)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise _wrong_state(_booking(conn, booking_id)["state"])
    return dict(row)


def _wrong_state(state: str) -> ActionFailed:
    return refused(
        "booking", f"预约当前为“{BOOKING_STATE_NAMES[state]}”，不能这样处理", FORBIDDEN_STATE
    )


def do_approve_booking(conn: Connection, actor: Actor, village: str, booking_id: int) -> dict:
    found = _booking(conn, booking_id)
    if found["state"] != "pending":
        raise _wrong_state(found["state"])
    with conn.begin_nested():
        # The resource first: approvals of one resource queue here, and each sees
        # what the one before it approved (READ COMMITTED reads anew per statement).
        resource = _locked_resource(conn, found["resource_id"], "booking")
        _require_bookable(resource)
        if found["ends_at"] <= conn.execute(select(func.now())).scalar_one():
            raise refused("booking", "预约时段已过，不能再批准", FORBIDDEN_STATE)
        clash = queries.overlapping(
            conn, resource["id"], found["starts_at"], found["ends_at"], besides=booking_id
        )
        if clash:
            raise refused("booking", "该时段与已批准的预约冲突", CONFLICT)
        booking = _move(
            conn,
            booking_id,
            ("pending",),
            state="approved",
            decided_by=actor.principal.sub,
            decided_at=func.now(),
        )
        _audit_booking(conn, actor, village, "approve", booking)
    return _booking(conn, booking_id)


def do_reject_booking(
    conn: Connection, actor: Actor, village: str, booking_id: int, data: dict
) -> dict:
    reason = validated(RejectionSchema(), data)["reason"]
    _booking(conn, booking_id)
    with conn.begin_nested():
        booking = _move(
            conn,
            booking_id,
            ("pending",),
            state="rejected",
            decided_by=actor.principal.sub,
            decided_at=func.now(),
            reason=reason,
        )
        _audit_booking(conn, actor, village, "reject", booking)
    return _booking(conn, booking_id)


def do_cancel_booking(
    conn: Connection,
    actor: Actor,
    village: str,
    booking_id: int,
    acting_village: str,
    data: dict,
) -> dict:
    """Cancel a pending or approved booking, as the owner (`acting_village == village`)
    or as the village that asked for it; another neighbour does not see it at all."""
    reason = validated(DecisionSchema(), data)["reason"]
    found = _booking(conn, booking_id)
    if acting_village not in (village, found["requester_village"]):
        raise refused("booking", NO_BOOKING, NOT_FOUND)
    with conn.begin_nested():
        booking = _move(
            conn,
            booking_id,
            ("pending", "approved"),
            state="cancelled",
            cancelled_by=actor.principal.sub,
            cancelled_by_village=acting_village,
            cancelled_at=func.now(),
            reason=reason or None,
        )
        _audit_booking(conn, actor, village, "cancel", booking, acting_village=acting_village)
    return _booking(conn, booking_id)

"""Writes of the service orders (便民服务): the only place they change (Zulip's `do_*` actions).

基层点单 → 中心派单 → 志愿组织接单 → 群众评单: a resident orders a place in a time
slot, the centre dispatches the order to a volunteer team, the team accepts (or
declines, and the centre dispatches again), completes it, and the resident rates it.

Every action validates its input, writes inside a savepoint of the caller's village
transaction, adds a timeline entry for every change of an order's state, and
appends an audit entry (and, for the shareable catalogue, an outbox row) to the
same transaction. A refused input raises ActionFailed and leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from villagelink.platform.audit import Actor, record
from villagelink.tenants import clock
from villagelink.tenants.outbox import emit
from villagelink.tenants.residents.queries import Grids, residents_by_ids
from villagelink.tenants.service_orders import queries
from villagelink.tenants.service_orders.tables import (
    ACCEPTED,
    CANCELLED,
    COMPLETED,
    DECLINED,
    DISPATCHED,
    ORDERED,
    RATED,
    service_items,
    service_order_events,
    service_orders,
    service_slots,
)
from villagelink.tenants.service_orders.validation import (
    ITEM_INACTIVE,
    SLOT_CLOSED,
    SLOT_FULL,
    TEAM_DECLINED,
    NoteSchema,
    RatingSchema,
    ServiceItemSchema,
    ServiceSlotSchema,
)
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID_TRANSITION,
    NOT_FOUND,
    refused,
    validated,
)

SERVICE_ITEM = "ServiceItem"
SERVICE_SLOT = "ServiceSlot"
SERVICE_ORDER = "ServiceOrder"

# Each step of an order: the state it leads to -> the states it may start from.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    DISPATCHED: (ORDERED, DECLINED),  # a declined order goes to another team
    ACCEPTED: (DISPATCHED,),
    DECLINED: (DISPATCHED,),
    COMPLETED: (ACCEPTED,),
    RATED: (COMPLETED,),
    CANCELLED: (ORDERED, DISPATCHED, ACCEPTED, DECLINED),
}

STATE_LABELS = {
    ORDERED: "已下单",
    DISPATCHED: "已派单",
    ACCEPTED: "已接单",
    DECLINED: "已拒单",
    COMPLETED: "已完成",
    RATED: "已评价",
    CANCELLED: "已取消",
}
STEPS = {
    DISPATCHED: ("dispatch", "派单"),
    ACCEPTED: ("accept", "接单"),
    DECLINED: ("decline", "拒单"),
    COMPLETED: ("complete", "完成"),
    RATED: ("rate", "评价"),
    CANCELLED: ("cancel", "取消"),
}


# -- catalogue ----------------------------------------------------------------


def _item(conn: Connection, item_id: int, field: str) -> dict:
    found = queries.items_by_ids(conn, [item_id]).get(item_id)
    if found is None:
        raise refused(field, "服务项目不存在", NOT_FOUND)
    return found


def _publish_item(conn: Connection, item: dict) -> None:
    """Neighbours may book a village's services: the catalogue goes to the outbox."""
    payload = {k: item[k] for k in ("id", "name", "category", "description", "active")}
    emit(conn, SERVICE_ITEM, item["id"], payload, version=item["version"])


def _write_item(conn: Connection, statement) -> dict:
    try:
        with conn.begin_nested():
            item = dict(conn.execute(statement.returning(*service_items.c)).mappings().one())
            _publish_item(conn, item)
    except IntegrityError as exc:  # the unique name
        raise refused("name", "该服务名称已存在", DUPLICATE) from exc
    return item


def do_create_service_item(
    conn: Connection, actor: Actor, village: str, data: dict[str, Any]
) -> dict:
    values = validated(ServiceItemSchema(), data)
    item = _write_item(conn, service_items.insert().values(**values))
    record(
        conn,
        actor,
        village=village,
        action="service_item.create",
        subject_type=SERVICE_ITEM,
        subject_id=item["id"],
        fields=sorted(k for k, v in values.items() if v is not None),
    )
    return item


def do_update_service_item(
    conn: Connection, actor: Actor, village: str, item_id: int, changes: dict[str, Any]
) -> dict:
    """Change name, category, description or `active` (a withdrawn item takes no new
    orders; its slots and orders stay)."""
    values = validated(ServiceItemSchema(partial=True), changes)
    item = _item(conn, item_id, "id")
    changed = {k: v for k, v in values.items() if item[k] != v}
    if not changed:
        return item
    t = service_items
    item = _write_item(
        conn,
        t.update()
        .where(t.c.id == item_id)
        .values(**changed, version=t.c.version + 1, updated_at=func.now()),
    )
    record(
        conn,
        actor,
        village=village,
        action="service_item.update",
        subject_type=SERVICE_ITEM,
        subject_id=item_id,
        fields=sorted(changed),
    )
    return item


# -- time slots ---------------------------------------------------------------


def do_create_service_slot(
    conn: Connection, actor: Actor, village: str, item_id: int, data: dict[str, Any]
) -> dict:
    values = validated(ServiceSlotSchema(), data)
    if not _item(conn, item_id, "item")["active"]:
        raise refused("item", "该服务项目已停用", ITEM_INACTIVE)
    statement = service_slots.insert().values(service_item_id=item_id, **values)
    with conn.begin_nested():
        slot = dict(conn.execute(statement.returning(*service_slots.c)).mappings().one())
    record(
        conn,
        actor,
        village=village,
        action="service_slot.create",
        subject_type=SERVICE_SLOT,
        subject_id=slot["id"],
        details={"item": item_id, "capacity": slot["capacity"]},
    )
    return slot


# -- orders -------------------------------------------------------------------


def _log(
    conn: Connection,
    actor: Actor,
    order_id: int,
    from_state: str | None,
    to_state: str,
    *,
    team_id: int | None,
    note: str | None,
) -> None:
    """One timeline entry: who moved the order from where to where, when, and why."""
    conn.execute(
        service_order_events.insert().values(
            service_order_id=order_id,
            from_state=from_state,
            to_state=to_state,
            volunteer_team_id=team_id,
            actor_sub=actor.principal.sub,
            actor_name=actor.principal.display_name,
            note=note,
        )
    )


def _bookable_slot(conn: Connection, slot_id: int) -> dict:
    s, i = service_slots, service_items
    slot = (
        conn.execute(
            select(s, i.c.active.label("item_active"))
            .join(i, i.c.id == s.c.service_item_id)
            .where(s.c.id == slot_id)
        )
        .mappings()
        .first()
    )
    if slot is None:
        raise refused("slot", "服务时段不存在", NOT_FOUND)
    if not slot["item_active"]:
        raise refused("slot", "该服务项目已停用", ITEM_INACTIVE)
    if slot["starts_at"] <= clock.now():
        raise refused("slot", "该时段已开始，不能再预约", SLOT_CLOSED)
    return dict(slot)


def _take_place(conn: Connection, slot_id: int) -> None:
    """One place in the slot, or SLOT_FULL. The condition is checked by the UPDATE itself
    under the row lock, so concurrent orders queue on the row and never overbook."""
    s = service_slots
    taken = conn.execute(
        s.update()
        .where(s.c.id == slot_id, s.c.booked < s.c.capacity)
        .values(booked=s.c.booked + 1, updated_at=func.now())
        .returning(s.c.id)
    ).first()
    if taken is None:
        raise refused("slot", "该时段已约满", SLOT_FULL)


def _free_place(conn: Connection, slot_id: int) -> None:
    s = service_slots
    conn.execute(
        s.update().where(s.c.id == slot_id).values(booked=s.c.booked - 1, updated_at=func.now())
    )


def _order(conn: Connection, order_id: int, allowed_grids: Grids) -> dict:
    return queries.orders_by_ids(conn, [order_id], allowed_grids=allowed_grids)[order_id]


def do_order_service(
    conn: Connection,
    actor: Actor,
    village: str,
    slot_id: int,
    resident_id: int,
    data: dict[str, Any],
    *,
    allowed_grids: Grids,
) -> dict:
    """基层点单: a place in a slot for a resident (of the grid worker's grids, for one)."""
    note = validated(NoteSchema(), data)["note"]
    if resident_id not in residents_by_ids(conn, [resident_id], allowed_grids=allowed_grids):
        raise refused("resident", "居民不存在或不在您的管辖范围内", NOT_FOUND)
    slot = _bookable_slot(conn, slot_id)
    try:
        with conn.begin_nested():
            _take_place(conn, slot_id)
            order_id = conn.execute(
                service_orders.insert()
                .values(
                    service_item_id=slot["service_item_id"],
                    service_slot_id=slot_id,
                    resident_id=resident_id,
                    state=ORDERED,
                    note=note,
                )
                .returning(service_orders.c.id)
            ).scalar_one()
            _log(conn, actor, order_id, None, ORDERED, team_id=None, note=note)
    except IntegrityError as exc:  # one live order per resident and slot
        raise refused("resident", "该居民已预约此时段", DUPLICATE) from exc
    record(
        conn,
        actor,
        village=village,
        action="service_order.create",
        subject_type=SERVICE_ORDER,
        subject_id=order_id,
        details={"slot": slot_id, "resident": resident_id},
    )
    return _order(conn, order_id, None)


def _step(
    conn: Connection,
    actor: Actor,
    village: str,
    order_id: int,
    to_state: str,
    *,
    note: str | None,
    allowed_grids: Grids,
    changes: dict[str, Any] | None = None,
    team_id: int | None = None,
) -> dict:
    """Move an order to `to_state` if its current state allows it. The order's row is
    locked first, so two concurrent steps cannot both start from the same state."""
    order = queries.orders_by_ids(conn, [order_id], allowed_grids=allowed_grids, lock=True).get(
        order_id
    )
    if order is None:
        raise refused("order", "订单不存在或不在您的管辖范围内", NOT_FOUND)
    name, label = STEPS[to_state]
    if order["state"] not in TRANSITIONS[to_state]:
        message = f"订单{STATE_LABELS[order['state']]}，不能{label}"
        raise refused("order", message, INVALID_TRANSITION)
    team = team_id if team_id is not None else order["volunteer_team_id"]
    o = service_orders
    with conn.begin_nested():
        conn.execute(
            o.update()
            .where(o.c.id == order_id)
            .values(
                state=to_state, version=o.c.version + 1, updated_at=func.now(), **(changes or {})
            )
        )
        if to_state == CANCELLED:
            _free_place(conn, order["service_slot_id"])
        _log(conn, actor, order_id, order["state"], to_state, team_id=team, note=note)
    record(
        conn,
        actor,
        village=village,
        action=f"service_order.{name}",
        subject_type=SERVICE_ORDER,
        subject_id=order_id,
        fields=sorted(["state", *(changes or {})]),
        details={"from": order["state"], "to": to_state, "team": team},
    )
    return _order(conn, order_id, None)


def _note(data: dict[str, Any]) -> str | None:
    return validated(NoteSchema(), data)["note"]


def do_dispatch_service_order(
    conn: Connection,
    actor: Actor,
    village: str,
    order_id: int,
    team_id: int,
    data: dict[str, Any],
) -> dict:
    """中心派单: give an ordered (or declined) order to a volunteer team that has not
    declined it before."""
    note = _note(data)
    if not queries.team_exists(conn, team_id):
        raise refused("team", "志愿服务队不存在", NOT_FOUND)
    if queries.team_declined(conn, order_id, team_id):
        raise refused("team", "该志愿服务队已拒绝此订单，请派给其他队伍", TEAM_DECLINED)
    return _step(
        conn,
        actor,
        village,
        order_id,
        DISPATCHED,
        note=note,
        allowed_grids=None,
        changes={"volunteer_team_id": team_id},
        team_id=team_id,
    )


def do_accept_service_order(
    conn: Connection, actor: Actor, village: str, order_id: int, data: dict[str, Any]
) -> dict:
    """志愿组织接单, recorded by the centre for the team."""
    return _step(conn, actor, village, order_id, ACCEPTED, note=_note(data), allowed_grids=None)


def do_decline_service_order(
    conn: Connection, actor: Actor, village: str, order_id: int, data: dict[str, Any]
) -> dict:
    """The team declines: the order waits for the centre to dispatch it to another team."""
    return _step(
        conn,
        actor,
        village,
        order_id,
        DECLINED,
        note=_note(data),
        allowed_grids=None,
        changes={"volunteer_team_id": None},
    )


def do_complete_service_order(
    conn: Connection, actor: Actor, village: str, order_id: int, data: dict[str, Any]
) -> dict:
    return _step(conn, actor, village, order_id, COMPLETED, note=_note(data), allowed_grids=None)


def do_cancel_service_order(
    conn: Connection,
    actor: Actor,
    village: str,
    order_id: int,
    data: dict[str, Any],
    *,
    allowed_grids: Grids,
) -> dict:
    """Cancel before completion (by the resident, through staff, or by the centre);
    the place in the slot is free again."""
    return _step(
        conn, actor, village, order_id, CANCELLED, note=_note(data), allowed_grids=allowed_grids
    )


def do_rate_service_order(
    conn: Connection,
    actor: Actor,
    village: str,
    order_id: int,
    data: dict[str, Any],
    *,
    allowed_grids: Grids,
) -> dict:
    """群众评单: 1-5 and a comment, once the service is completed."""
    values = validated(RatingSchema(), data)
    return _step(
        conn,
        actor,
        village,
        order_id,
        RATED,
        note=values["comment"],
        allowed_grids=allowed_grids,
        changes={"rating": values["rating"], "rating_comment": values["comment"]},
    )

"""The demo's service orders (便民服务): the catalogue, slots in the history and the
coming weeks, and orders walked through the service orders' transitions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from villagelink.tenants.activities.recurrence import Rule, dates, span
from villagelink.tenants.demo.activities import SERVICE_DAY
from villagelink.tenants.demo.bulk import (
    columns,
    insert_returning_ids,
    optional_id,
    outbox_row,
)
from villagelink.tenants.demo.residents import ELDERLY_AGE
from villagelink.tenants.demo.village import (
    BOOKING_DAYS_AHEAD,
    DEMO_SUB,
    HISTORY_DAYS,
    Village,
)
from villagelink.tenants.service_orders.actions import TRANSITIONS as ORDER_TRANSITIONS
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

if TYPE_CHECKING:
    from villagelink.tenants.demo.affairs import AffairsRows
    from villagelink.tenants.demo.residents import VillageIds


@dataclass(frozen=True)
class ServiceItemRow:
    name: str
    category: str
    description: str
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SlotRow:
    item: int
    starts_at: datetime
    ends_at: datetime
    capacity: int
    booked: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class OrderEventRow:
    from_state: str | None
    to_state: str
    team: int | None
    note: str | None
    created_at: datetime


@dataclass(frozen=True)
class OrderRow:
    item: int
    slot: int
    resident: int
    state: str
    team: int | None
    note: str | None
    rating: int | None
    rating_comment: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    events: tuple[OrderEventRow, ...]


# --- service orders (便民服务): catalogue, slots, orders ---------------------------------


@dataclass(frozen=True)
class _ServicePlan:
    name: str
    category: str
    description: str
    team: str  # the volunteer team it is dispatched to
    capacity: int
    # When its slots are: on the service day (hours of the morning), or weekly.
    hours: tuple[int, ...] = ()
    weekdays: tuple[int, ...] = ()
    at: time = time(9)
    minutes: int = 60
    elderly_only: bool = False
    note: str | None = None


SERVICE_TEAM = "便民服务志愿队"
SERVICE_PLANS = (
    _ServicePlan(
        "理发", "haircut", "便民服务日现场理发，老年人免费", SERVICE_TEAM, 4, hours=(9, 10, 11)
    ),
    _ServicePlan(
        "磨刀磨剪", "knife_sharpening", "便民服务日现场磨刀磨剪", SERVICE_TEAM, 6, hours=(9, 10)
    ),
    _ServicePlan(
        "家电维修", "home_repair", "小家电检测维修，只收材料费", SERVICE_TEAM, 3, hours=(9, 10, 11)
    ),
    _ServicePlan(
        "义诊",
        "free_clinic",
        "测血压血糖、健康咨询",
        "银龄互助志愿服务队",
        10,
        hours=(9, 10),
        elderly_only=True,
    ),
    _ServicePlan(
        "上门水电维修",
        "home_repair",
        "志愿者上门维修水管、电路、灯具",
        SERVICE_TEAM,
        2,
        weekdays=(2, 4),
        at=time(14),
        minutes=180,
        note="行动不便，请上门",
    ),
    _ServicePlan(
        "法律咨询",
        "legal_advice",
        "律师志愿者解答婚姻家庭、劳动用工等问题",
        "党员先锋志愿服务队",
        4,
        weekdays=(3,),
        minutes=120,
    ),
    _ServicePlan(
        "助浴助洁",
        "elderly_care",
        "为失能半失能老人上门助浴、清洁",
        "银龄互助志愿服务队",
        2,
        weekdays=(5,),
        minutes=150,
        elderly_only=True,
    ),
)
# Withdrawn from the catalogue (停用, a second version): it keeps its name, takes no slots.
RETIRED_SERVICE = ("修鞋配钥匙", "other", "师傅退休，暂停服务")
ORDER_FILL = (0.4, 1.25)
ORDER_CANCEL_SHARE = 0.1
DECLINE_SHARE = 0.06
RATE_SHARE = 0.75
ORDER_RATINGS = (
    (5, "师傅手艺好"),
    (5, "很方便，感谢志愿者"),
    (5, None),
    (4, "服务很耐心"),
    (4, None),
    (3, "排队时间有点长"),
)


def _require_step(state: str, to_state: str) -> None:
    """The service orders' own rule: the step to `to_state` starts only from the
    states their TRANSITIONS allow."""
    if state not in ORDER_TRANSITIONS[to_state]:
        raise ValueError(f"an order may not go from {state} to {to_state}")


class Services:
    """The catalogue, its slots in the history and the coming weeks, and orders taking a
    place while there is one (`orderService`), freeing it when cancelled; each order
    walked through dispatch, acceptance (sometimes after a team declined), completion
    once its slot is over, and the resident's rating, as far as the seeding day."""

    def __init__(self, v: Village, rows: AffairsRows):
        self.v = v
        self.rows = rows
        self.teams = {team.name: n for n, team in enumerate(rows.teams)}
        self.booked_up: set[str] = set()

    def build(self) -> None:
        v = self.v
        for plan in SERVICE_PLANS:
            created_at = v.daytime(v.start - timedelta(days=300), v.start - timedelta(days=100))
            item = len(self.rows.service_items)
            self.rows.service_items.append(
                ServiceItemRow(
                    plan.name, plan.category, plan.description, True, 1, created_at, created_at
                )
            )
            pool = v.residents_where(
                lambda r, plan=plan: v.ages[r] >= (ELDERLY_AGE if plan.elderly_only else 18)
            )
            for starts_at, ends_at in self._periods(plan):
                self._slot(plan, item, starts_at, ends_at, pool)
        created_at = v.daytime(v.start - timedelta(days=300), v.start - timedelta(days=200))
        retired_at = v.daytime(v.start - timedelta(days=80), v.start - timedelta(days=20))
        self.rows.service_items.append(
            ServiceItemRow(*RETIRED_SERVICE, False, 2, created_at, retired_at)
        )

    def _periods(self, plan: _ServicePlan) -> list[tuple[datetime, datetime]]:
        v = self.v
        first = v.today - timedelta(days=HISTORY_DAYS)
        last = v.today + timedelta(days=BOOKING_DAYS_AHEAD)
        if plan.hours:  # on the service days (便民服务日)
            days = dates(Rule("monthly", first, month_day=SERVICE_DAY), first, last)
            return [span(day, time(hour), plan.minutes) for day in days for hour in plan.hours]
        days = [
            day
            for weekday in plan.weekdays
            for day in dates(Rule("weekly", first, weekday=weekday), first, last)
        ]
        return [span(day, plan.at, plan.minutes) for day in sorted(days)]

    def _slot(
        self, plan: _ServicePlan, item: int, starts_at: datetime, ends_at: datetime, pool: list[int]
    ) -> None:
        """A slot and its orders, in the order residents came: a place while there is
        one (a cancelled order frees its place for those after it), no order when full."""
        v = self.v
        # Opened a week or two ahead (a slot is created in the future), before today.
        created_at = min(starts_at - timedelta(days=v.rng.randint(7, 14)), v.start - v.hours(1, 20))
        closes = min(starts_at, v.start)
        slot = len(self.rows.slots)
        wanted, cancelling = round(plan.capacity * v.rng.uniform(*ORDER_FILL)), ORDER_CANCEL_SHARE
        if starts_at > v.start and plan.name not in self.booked_up:
            # The next visit of each service is booked up, one more turned away.
            self.booked_up.add(plan.name)
            wanted, cancelling = plan.capacity + 1, 0
        residents = v.rng.sample(pool, min(wanted, len(pool)))
        arrivals = sorted(v.between(created_at, closes) for _ in residents)
        booked, frees, changes = 0, [], [created_at]
        for resident, at in zip(residents, arrivals, strict=True):
            booked -= sum(free <= at for free in frees)
            frees = [free for free in frees if free > at]
            if booked >= plan.capacity:
                continue  # 该时段已约满: the order is refused
            booked += 1
            cancel_at = v.between(at, closes) if v.rng.random() < cancelling else None
            self._order(plan, item, slot, resident, at, cancel_at, ends_at)
            changes.append(at)
            if cancel_at is not None:
                frees.append(cancel_at)
                changes.append(cancel_at)
        booked -= len(frees)
        self.rows.slots.append(
            SlotRow(item, starts_at, ends_at, plan.capacity, booked, created_at, max(changes))
        )

    def _order(
        self,
        plan: _ServicePlan,
        item: int,
        slot: int,
        resident: int,
        ordered_at: datetime,
        cancel_at: datetime | None,
        slot_ends: datetime,
    ) -> None:
        v = self.v
        note = plan.note if plan.note and v.rng.random() < 0.5 else None
        steps = [OrderEventRow(None, ORDERED, None, note, ordered_at)]
        state, team, rating, comment = ORDERED, None, None, None
        home = self.teams.get(plan.team)
        others = [n for n in range(len(self.rows.teams)) if n != home]

        def step(
            to_state: str, at: datetime, team_now: int | None, note: str | None = None
        ) -> bool:
            """Take the step if it happens before today (and before a cancellation)."""
            nonlocal state
            limit = min(v.start, cancel_at) if cancel_at else v.start
            if at >= limit:
                return False
            _require_step(state, to_state)
            steps.append(OrderEventRow(state, to_state, team_now, note, at))
            state = to_state
            return True

        at = ordered_at
        if home is not None:
            at += v.hours(0.5, 12)
            first = home
            if others and v.rng.random() < DECLINE_SHARE:
                first = v.rng.choice(others)
            taken = step(DISPATCHED, at, first)
            team = first if taken else None
            if taken and first != home:
                at += v.hours(1, 8)
                if step(DECLINED, at, first, "本队人手不足"):
                    team = None
                    at += v.hours(1, 6)
                    if step(DISPATCHED, at, home):
                        team = home
            if state == DISPATCHED:
                at += v.hours(0.5, 10)
                step(ACCEPTED, at, team)
            done = max(slot_ends, at) + v.hours(0.2, 1)
            if state == ACCEPTED and step(COMPLETED, done, team):
                at = done + v.hours(2, 72)
                if v.rng.random() < RATE_SHARE:
                    rating, comment = v.rng.choice(ORDER_RATINGS)
                    if not step(RATED, at, team, comment):
                        rating, comment = None, None
        if cancel_at is not None and state in ORDER_TRANSITIONS[CANCELLED]:
            steps.append(OrderEventRow(state, CANCELLED, team, "居民临时有事", cancel_at))
            state = CANCELLED
        self.rows.orders.append(
            OrderRow(
                item,
                slot,
                resident,
                state,
                team,
                note,
                rating,
                comment,
                len(steps),
                ordered_at,
                steps[-1].created_at,
                tuple(steps),
            )
        )


def write_services(
    conn: Connection, affairs: AffairsRows, ids: VillageIds, team_ids: list[int]
) -> list[dict]:
    items = affairs.service_items
    item_ids = insert_returning_ids(conn, service_items, [columns(i, service_items) for i in items])
    slot_ids = insert_returning_ids(
        conn,
        service_slots,
        [{**columns(s, service_slots), "service_item_id": item_ids[s.item]} for s in affairs.slots],
    )
    order_ids = insert_returning_ids(
        conn,
        service_orders,
        [
            {
                **columns(o, service_orders),
                "service_item_id": item_ids[o.item],
                "service_slot_id": slot_ids[o.slot],
                "resident_id": ids.residents[o.resident],
                "volunteer_team_id": optional_id(team_ids, o.team),
            }
            for o in affairs.orders
        ],
    )
    events = [
        {
            **columns(e, service_order_events),
            "service_order_id": order_id,
            "volunteer_team_id": optional_id(team_ids, e.team),
            "actor_sub": DEMO_SUB,
            "actor_name": DEMO_SUB,
        }
        for order_id, o in zip(order_ids, affairs.orders, strict=True)
        for e in o.events
    ]
    if events:
        conn.execute(service_order_events.insert(), events)
    # The catalogue is what neighbours may book (service_orders.actions).
    return [
        outbox_row(
            "ServiceItem",
            item_id,
            i.version,
            {
                "id": item_id,
                **{k: getattr(i, k) for k in ("name", "category", "description", "active")},
            },
        )
        for item_id, i in zip(item_ids, items, strict=True)
    ]

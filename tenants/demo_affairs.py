"""The demo villages' affairs (村务): ninety days of requests, activities, service
orders, notices and mediation before the seeding day, and the weeks ahead of it.

Same split as `demo.py`: `build_affairs` makes every row from a seed, a day and the
village's people (the `VillageRows` of `build_village`) without a database, and
`write_affairs` bulk-inserts them once the people have database ids.

Time. The domains judge their records by the real clock (overdue requests, sign-ups
that open until a session starts, slots bookable while in the future), so the affairs
are laid out around `today`, the seeding day in Beijing time: the history ends at its
midnight, the coming sessions and slots start the day after. The same seed and day give
the same rows; a village seeded on another day gets the same story moved to that day.

Why bulk, not the actions. An action step costs about 13 ms on a two-core machine
(measured: create, accept, assign, start, resolve, rate of 200 requests, 17 s), so the
request history of the full-size region alone (≈1,400 requests, ≈8,000 steps) would take
well over a minute; and the activities' and service orders' actions refuse what lies in
the past (sign-ups after the start, slots that have begun). The rows are therefore
written in the shapes the actions write, step by step as they would have happened:
state machines walked one allowed step at a time, a timeline entry for every step
(escalations as the five-minute sweep would have made them, by `system:escalation`),
capacity and balances checked as the actions check them, versions counted as the actions
count them, and one outbox row per shareable record at its current version (what a
neighbour receiving every change would end up holding). Every other step is by
`system:demo`, and the seeding itself is one audit entry (demo.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from faker import Faker
from sqlalchemy import Connection, Table, select

from villagelink.platform.audit import system_actor
from villagelink.tenants.activities.actions import SIGN_UP
from villagelink.tenants.activities.points import DEFAULT_POINTS_PER_VOLUNTEER_HOUR, MANUAL
from villagelink.tenants.activities.points import REDEMPTION as POINTS_REDEMPTION
from villagelink.tenants.activities.recurrence import Rule, dates, day_start, span
from villagelink.tenants.activities.tables import (
    VOLUNTEER_SERVICE,
    activities,
    activity_occurrences,
    activity_sign_ups,
    points_ledger,
    volunteer_team_members,
    volunteer_teams,
)
from villagelink.tenants.activities.validation import DEFAULT_HORIZON_DAYS
from villagelink.tenants.mediation.tables import (
    mediation_case_numbers,
    mediation_cases,
    mediation_parties,
    mediation_sessions,
)
from villagelink.tenants.notices.tables import (
    DRAFT,
    FINANCES,
    PARTY_AFFAIRS,
    PUBLISHED,
    VILLAGE_AFFAIRS,
    WITHDRAWN,
    notice_reads,
    notices,
)
from villagelink.tenants.outbox import DELETE, UPSERT, outbox
from villagelink.tenants.requests.actions import LEVEL_LABELS, TIER_LABELS, UNSATISFIED_AT_MOST
from villagelink.tenants.requests.tables import (
    ACCEPTED,
    ASSIGNED,
    CLOSED,
    DEFAULT_DEADLINE_HOURS,
    ESCALATION_LEVELS,
    GRID,
    IN_PROGRESS,
    OPEN_STATES,
    REGION,
    REJECTED,
    REOPENED,
    RESOLVED,
    SIMPLE,
    SUBMITTED,
    VILLAGE,
    action_list_requests,
    action_lists,
    request_categories,
    request_events,
    requests,
)
from villagelink.tenants.service_orders.tables import (
    ACCEPTED as ORDER_ACCEPTED,
)
from villagelink.tenants.service_orders.tables import (
    CANCELLED as ORDER_CANCELLED,
)
from villagelink.tenants.service_orders.tables import (
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
    from villagelink.tenants.demo import VillageIds, VillageRows

HISTORY_DAYS = 90
# Sign-ups and service orders are taken this far ahead of today.
BOOKING_DAYS_AHEAD = 21
# Residents aged 60+ count as elderly (DOMAIN.md: over 30% in 中北斜村).
ELDERLY_AGE = 60

DEMO_ACTOR = system_actor("demo")
DEMO_SUB = DEMO_ACTOR.principal.sub
# Who jobs/escalation.py names on the timeline: the seeded escalations are the ones
# its five-minute sweep would have made.
ESCALATION_SUB = "system:escalation"
SWEEP_EVERY = timedelta(minutes=5)


# --- rows ------------------------------------------------------------------------
# Fields named like their table's columns are written as they are; the others are
# references: positions in VillageRows (residents, households, grids, staff,
# buildings) or in AffairsRows (teams, activities, occurrences, items, slots, sign-ups).


@dataclass(frozen=True)
class RequestEventRow:
    action: str
    from_state: str | None
    to_state: str
    escalation_level: str | None
    note: str | None
    actor_sub: str
    created_at: datetime


@dataclass(frozen=True)
class RequestRow:
    channel: str
    category: str  # a seeded category's code
    grade: str
    state: str
    description: str
    household: int | None
    building: int | None
    location_text: str | None
    grid: int | None
    reporter: int | None
    reporter_name: str
    reporter_phone: str | None
    assignee: int | None
    due_at: datetime
    escalation_level: str
    needs_coordination: bool
    escalated_at: datetime | None
    rejection_reason: str | None
    resolution: str | None
    resolved_at: datetime | None
    closed_at: datetime | None
    rating: int | None
    rating_comment: str | None
    rated_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
    events: tuple[RequestEventRow, ...]


@dataclass(frozen=True)
class ActionListRow:
    title: str
    description: str | None
    owner: str
    due_date: date
    status: str
    version: int
    created_at: datetime
    updated_at: datetime
    requests: tuple[int, ...]


@dataclass(frozen=True)
class TeamMemberRow:
    resident: int
    skills: tuple[str, ...]
    joined_at: datetime


@dataclass(frozen=True)
class TeamRow:
    name: str
    description: str
    leader: int
    version: int
    created_at: datetime
    updated_at: datetime
    members: tuple[TeamMemberRow, ...]


@dataclass(frozen=True)
class ActivityRow:
    kind: str
    title: str
    description: str
    place: str
    capacity: int
    state: str
    open_to_neighbours: bool
    repeat: str
    weekday: int | None
    month_day: int | None
    starts_on: date
    until: date | None
    start_time: time
    duration_minutes: int
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class OccurrenceRow:
    activity: int
    starts_at: datetime
    ends_at: datetime
    capacity: int
    created_at: datetime


@dataclass(frozen=True)
class SignUpRow:
    occurrence: int
    resident: int
    state: str
    signed_up_at: datetime
    cancelled_at: datetime | None
    checked_in_at: datetime | None
    volunteer_hours: Decimal | None
    updated_at: datetime


@dataclass(frozen=True)
class PointsRow:
    resident: int
    points: int
    reason: str
    source_type: str
    sign_up: int | None  # the check-in that earned the points, if any
    created_at: datetime


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


@dataclass(frozen=True)
class NoticeReadRow:
    reader_hash: bytes
    reads: int
    first_read_at: datetime
    last_read_at: datetime


@dataclass(frozen=True)
class NoticeRow:
    category: str
    title: str
    body: str
    state: str
    publish_from: datetime | None
    publish_until: datetime | None
    published_at: datetime | None
    withdrawn_at: datetime | None
    withdrawal_reason: str | None
    reader_salt: bytes
    version: int
    created_at: datetime
    updated_at: datetime
    reads: tuple[NoticeReadRow, ...]


@dataclass(frozen=True)
class PartyRow:
    role: str
    resident: int | None
    name: str
    phone: str | None


@dataclass(frozen=True)
class SessionRow:
    held_on: date
    place: str
    attendees: tuple[str, ...]
    notes: str
    created_at: datetime


@dataclass(frozen=True)
class CaseRow:
    year: int
    number: int
    category: str
    summary: str
    status: str
    mediator_name: str | None
    mediator_staff: int | None
    outcome: str | None
    agreement_text: str | None
    referred_to: str | None
    closing_note: str | None
    concluded_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
    parties: tuple[PartyRow, ...]
    sessions: tuple[SessionRow, ...]


@dataclass
class AffairsRows:
    today: date
    requests: list[RequestRow] = field(default_factory=list)
    action_lists: list[ActionListRow] = field(default_factory=list)
    teams: list[TeamRow] = field(default_factory=list)
    activities: list[ActivityRow] = field(default_factory=list)
    occurrences: list[OccurrenceRow] = field(default_factory=list)
    sign_ups: list[SignUpRow] = field(default_factory=list)
    points: list[PointsRow] = field(default_factory=list)
    service_items: list[ServiceItemRow] = field(default_factory=list)
    slots: list[SlotRow] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    notices: list[NoticeRow] = field(default_factory=list)
    cases: list[CaseRow] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many of each, for the seeding's audit entry."""
        return {f.name: len(getattr(self, f.name)) for f in fields(self) if f.name != "today"}


# --- the village as the affairs see it ----------------------------------------------

# The order in which automatic assignment prefers grid staff (requests.queries).
TIER_RANK = {"micro_grid_worker": 0, "grid_worker": 1, "grid_chief": 2}


class _Village:
    """The people, places and staff of one village, with the groups the affairs draw
    from, and one random source for everything (so a seed gives one village)."""

    def __init__(self, rows: VillageRows, name: str, ages_as_of: date, today: date, seed: int):
        self.rows = rows
        self.name = name
        self.today = today
        self.start = day_start(today)  # the end of the history: midnight before the seeding
        self.history_start = self.start - timedelta(days=HISTORY_DAYS)
        self.rng = random.Random(f"affairs:{seed}")
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(seed)
        self.ages = [age_on(r.birth_date, ages_as_of) for r in rows.residents]
        tags: dict[int, set[str]] = {}
        for tag in rows.tags:
            tags.setdefault(tag.resident, set()).add(tag.tag)
        self.tags = tags
        self.members: dict[int, list[int]] = {}
        for position, resident in enumerate(rows.residents):
            self.members.setdefault(resident.household, []).append(position)
        self._assignees: dict[int, int | None] = {}

    def residents_where(self, keep: Callable[[int], bool]) -> list[int]:
        return [r for r in range(len(self.rows.residents)) if keep(r)]

    def adults_of(self, household: int) -> list[int]:
        return [r for r in self.members.get(household, []) if self.ages[r] >= 18]

    def moment(self, day: date, at: time) -> datetime:
        return span(day, at, 0)[0]

    def between(self, first: datetime, last: datetime) -> datetime:
        """A moment in [first, last), to the second."""
        seconds = max(0, int((last - first).total_seconds()) - 1)
        return first + timedelta(seconds=self.rng.randint(0, seconds))

    def daytime(self, first: datetime, last: datetime) -> datetime:
        """A moment in [first, last) in office hours (8:00-20:00 Beijing) when there are any."""
        for _ in range(20):
            moment = self.between(first, last)
            if 8 <= moment.astimezone(self.start.tzinfo).hour < 20:
                return moment
        return self.between(first, last)

    def hours(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=round(self.rng.uniform(low, high) * 3600))

    def auto_assignee(self, grid: int) -> int | None:
        """Whom `assignRequest` picks without an assignee (requests.queries.auto_assignee):
        a micro-grid worker, else a grid worker, else the grid chief, of the request's grid
        or the nearest one above it; staff are written in order, so position breaks ties
        as the id does."""
        if grid not in self._assignees:
            depth: dict[int, int] = {}
            g: int | None = grid
            while g is not None:
                depth[g] = len(depth)
                g = self.rows.grids[g].parent
            ranked = [
                (TIER_RANK[s.tier], depth[g], position)
                for position, s in enumerate(self.rows.staff)
                for g in s.grids
                if g in depth
            ]
            self._assignees[grid] = min(ranked)[2] if ranked else None
        return self._assignees[grid]


def age_on(born: date, as_of: date) -> int:
    return as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))


def _allotted(weights: Sequence[tuple[str, float]], total: int) -> list[str]:
    """`total` labels in the weights' proportions, exactly (largest remainder), each at
    least once when there are enough; unshuffled. Fixed shares rather than coin flips,
    so that a small test village carries every kind too."""
    counts = dict.fromkeys((label for label, _ in weights), 0)
    rest = total
    if total >= len(weights):
        counts = dict.fromkeys(counts, 1)
        rest -= len(weights)
    whole = sum(w for _, w in weights)
    shares = [(label, rest * w / whole) for label, w in weights]
    for label, share in shares:
        counts[label] += int(share)
    left = total - sum(counts.values())
    by_remainder = sorted(shares, key=lambda item: item[1] - int(item[1]), reverse=True)
    for label, _ in by_remainder[:left]:
        counts[label] += 1
    return [label for label, count in counts.items() for _ in range(count)]


def _next_sweep(moment: datetime) -> datetime:
    """The first run of the five-minute escalation sweep at or after `moment`."""
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    runs = -(-(moment - epoch) // SWEEP_EVERY)
    return epoch + runs * SWEEP_EVERY


def _joined(*parts: str | None) -> str | None:
    return "；".join(p for p in parts if p) or None


# --- requests (诉求) -------------------------------------------------------------------

REQUESTS_PER_1000_RESIDENTS_A_DAY = 1.0
CATEGORY_WEIGHTS = (
    ("sanitation", 22),
    ("property_service", 20),
    ("parking", 16),
    ("facility_repair", 10),
    ("noise", 8),
    ("neighbour_dispute", 6),
    ("elderly_care", 6),
    ("safety_hazard", 6),
    ("other", 4),
    ("legal_aid", 2),
)
CHANNEL_WEIGHTS = (
    ("mini_program", 35),
    ("grid_worker", 30),
    ("phone", 15),
    ("walk_in", 10),
    ("hotline_12345", 10),
)
GRADE_WEIGHTS = (("simple", 65), ("complex", 28), ("hard", 7))
# (what the resident reported, what was done about it), by category.
PROBLEMS = {
    "sanitation": (
        ("楼道内堆放纸箱杂物，影响通行，存在消防隐患", "已联系住户清理楼道杂物，环卫队已清运"),
        ("垃圾桶满溢，连续两天无人清运", "已协调环卫公司增加清运频次，现场已清理"),
        ("楼下草坪有宠物粪便，气味难闻", "已清理并张贴文明养犬提示"),
        ("绿化带内建筑垃圾长期未清理", "已安排车辆清运建筑垃圾"),
        ("单元门口污水外溢，地面湿滑", "已疏通污水井并冲洗地面"),
    ),
    "property_service": (
        ("单元门禁损坏，外来人员随意进出", "物业已更换门禁控制器，恢复正常"),
        ("电梯经常停运，老人上下楼困难", "已督促物业联系维保单位检修，电梯恢复运行"),
        ("楼顶漏水，雨天顶层住户屋内渗水", "物业已对楼顶防水层进行修补"),
        ("楼道长期无人打扫", "已约谈物业，恢复每日保洁并公示保洁时间"),
        ("小区路灯不亮，夜间出行不便", "物业已更换损坏路灯"),
    ),
    "parking": (
        ("消防通道被私家车长期占用", "已联系车主挪车，并在通道口设置警示桩"),
        ("车辆乱停，堵住单元门口", "已张贴挪车通知，物业加强夜间巡查"),
        ("外来车辆长期占用小区车位", "已登记外来车辆并劝离，门岗加强管理"),
        ("僵尸车长期停放，占用车位", "已联系车主移走废弃车辆"),
    ),
    "facility_repair": (
        ("楼道声控灯损坏", "已更换楼道声控灯"),
        ("健身器材损坏，存在安全隐患", "已拆除损坏器材并报修更换"),
        ("下水道堵塞，污水反流", "已疏通下水管道"),
        ("单元门破损无法关闭", "已维修单元门闭门器"),
        ("路面塌陷形成坑洼", "已修补坑洼路面"),
    ),
    "noise": (
        ("楼上装修噪音大，中午和晚上也施工", "已告知装修时间规定，住户承诺按时施工"),
        ("广场舞音响声音过大，影响休息", "已与广场舞队协商降低音量、21点前结束"),
        ("夜间餐馆排风扇噪音扰民", "已协调商户加装减震降噪设施"),
    ),
    "neighbour_dispute": (
        ("楼上卫生间漏水，渗到楼下天花板", "已组织双方协商，楼上住户已维修防水"),
        ("邻居在公共走廊堆放杂物并加装铁门", "经协调，邻居已拆除铁门并清理走廊"),
        ("邻居家的狗夜间吠叫，多次沟通无果", "已上门劝导，狗主人承诺加强管理"),
    ),
    "elderly_care": (
        ("独居老人行动不便，希望提供助餐服务", "已为老人登记长者食堂助餐服务"),
        ("老人申请安装紧急呼叫设备", "已为老人安装一键呼叫设备并测试"),
        ("希望为失能老人提供上门助浴", "已安排志愿者每周上门助浴一次"),
    ),
    "safety_hazard": (
        ("楼道内飞线给电动车充电，存在火灾隐患", "已拆除飞线，引导使用集中充电桩"),
        ("小区内井盖缺失", "已补装井盖并设置警示标志"),
        ("楼道灭火器过期未更换", "已更换楼道灭火器"),
        ("燃气管道有异味", "已通知燃气公司上门检测，更换老化软管"),
    ),
    "legal_aid": (
        ("被拖欠务工工资，咨询如何维权", "已提供法律咨询并协助联系劳动监察部门"),
        ("房屋租赁合同纠纷，咨询法律意见", "法律顾问已提供书面咨询意见"),
    ),
    "other": (
        ("咨询居住证办理流程", "已告知办理材料和地点"),
        ("建议在小区增设快递柜", "已与快递企业对接，近期安装"),
    ),
}
PUBLIC_PLACES = ("小区南门", "小区北门停车场", "村委会东侧广场", "菜市场入口", "幼儿园门口")
REJECTION_REASONS = (
    "属于商业合同纠纷，建议通过司法途径解决",
    "重复反映，已并入原诉求办理",
    "不属于本村管辖范围，已告知向相关部门反映",
)
ACCEPT_NOTES = {"complex": ("需物业配合", "需多方协调"), "hard": ("需上报街道专项解决",)}
SATISFIED = (
    (5, "处理及时，很满意"),
    (5, None),
    (5, "网格员态度很好"),
    (4, "基本满意"),
    (4, None),
    (3, "处理有点慢"),
)
UNSATISFIED = ((2, "问题没有彻底解决"), (1, "第二天又出现了"), (2, "处理结果不满意"))
CLOSE_NOTE = "多次联系居民未果，按期结案"

# Where each request ends up by the seeding day, in these shares.
FATE_WEIGHTS = (
    ("closed_rated", 52),
    ("closed_unrated", 8),
    ("reopened_closed", 5),
    ("rejected", 4),
    ("resolved", 6),
    ("in_progress", 6),
    ("assigned", 4),
    ("accepted", 2),
    ("submitted", 3),
    ("overdue", 7),
    ("reopened", 3),
)
# Every LATE_EVERY-th request closed on time is resolved late instead.
LATE_EVERY = 6


def _window(grade: str) -> timedelta:
    return timedelta(hours=DEFAULT_DEADLINE_HOURS[grade])


def _scaled(span_: timedelta, times: float) -> timedelta:
    """`times` the span, to the second."""
    return timedelta(seconds=round(span_.total_seconds() * times))


class _RequestLife:
    """One request walked through the steps of requests/states.py: each step changes the
    row as its action does and adds the action's timeline entry. Escalations come last
    (`escalate`), from the steps: they depend on when the request was registered, which
    is chosen once its steps are known (`move`)."""

    def __init__(self, fields_: dict[str, Any], created_at: datetime):
        self.row: dict[str, Any] = {
            **fields_,
            "grade": SIMPLE,  # graded when accepted (分级处置)
            "state": SUBMITTED,
            "assignee": None,
            "due_at": created_at + _window(SIMPLE),
            "escalation_level": GRID,
            "needs_coordination": False,
            "escalated_at": None,
            "rejection_reason": None,
            "resolution": None,
            "resolved_at": None,
            "closed_at": None,
            "rating": None,
            "rating_comment": None,
            "rated_at": None,
            "version": 1,
            "created_at": created_at,
            "updated_at": created_at,
        }
        self.events = [RequestEventRow("create", None, SUBMITTED, None, None, DEMO_SUB, created_at)]
        # (from when, state, deadline, grade) after each step: what the sweep would see.
        self.stages: list[tuple[datetime, str, datetime, str]] = [
            (created_at, SUBMITTED, self.row["due_at"], SIMPLE)
        ]

    @property
    def state(self) -> str:
        return self.row["state"]

    def step(self, action: str, to_state: str, at: datetime, note: str | None = None, **changes):
        self.events.append(RequestEventRow(action, self.state, to_state, None, note, DEMO_SUB, at))
        self.row.update(changes, state=to_state, version=self.row["version"] + 1, updated_at=at)
        self.stages.append((at, to_state, self.row["due_at"], self.row["grade"]))

    def move(self, by: timedelta) -> None:
        """The same story, registered `by` later."""
        self.row = {k: v + by if isinstance(v, datetime) else v for k, v in self.row.items()}
        self.events = [replace(e, created_at=e.created_at + by) for e in self.events]
        self.stages = [(at + by, state, due + by, grade) for at, state, due, grade in self.stages]

    def escalate(self, until: datetime) -> None:
        """The escalations the five-minute sweep made before `until` (跟踪督办): while the
        request was open, to the village once past its deadline, to the region once past
        it by another whole deadline of its grade. Levels only rise."""
        ends = [at for at, *_ in self.stages[1:]] + [until]
        for (since, state, due, grade), end in zip(self.stages, ends, strict=True):
            if state not in OPEN_STATES:
                continue
            for level, threshold in ((VILLAGE, due), (REGION, due + _window(grade))):
                at = _next_sweep(max(threshold, since))
                reached = ESCALATION_LEVELS.index(self.row["escalation_level"])
                if at < end and ESCALATION_LEVELS.index(level) > reached:
                    self._escalated(level, state, at)

    def _escalated(self, level: str, state: str, at: datetime) -> None:
        self.row.update(
            escalation_level=level,
            escalated_at=at,
            needs_coordination=self.row["needs_coordination"] or level == REGION,
            version=self.row["version"] + 1,
            updated_at=max(self.row["updated_at"], at),
        )
        note = f"逾期未办结，升级至{LEVEL_LABELS[level]}督办"
        self.events.append(
            RequestEventRow("escalate", state, state, level, note, ESCALATION_SUB, at)
        )

    def state_at(self, moment: datetime) -> str:
        return max((e for e in self.events if e.created_at <= moment), key=_when).to_state

    def finished(self) -> RequestRow:
        return RequestRow(**self.row, events=tuple(sorted(self.events, key=_when)))


def _when(event: RequestEventRow) -> datetime:
    return event.created_at


class _RequestSteps:
    """The steps of one request's fate, played on a `_RequestLife` with their moments."""

    def __init__(self, village: _Village, life: _RequestLife, grade: str, problem: tuple[str, str]):
        self.v = village
        self.life = life
        self.grade = grade
        self.resolution = problem[1]
        self.at = life.row["created_at"]

    def after(self, low: float, high: float) -> datetime:
        self.at += self.v.hours(low, high)
        return self.at

    def accept(self) -> None:
        notes = ACCEPT_NOTES.get(self.grade)
        self.life.step(
            "accept",
            ACCEPTED,
            self.after(0.2, 3),
            self.v.rng.choice(notes) if notes else None,
            grade=self.grade,
            due_at=self.life.row["created_at"] + _window(self.grade),
        )

    def assign(self, low: float = 0.1, high: float = 1.5) -> None:
        staff = self.v.auto_assignee(self.life.row["grid"])
        person = self.v.rows.staff[staff]
        note = f"自动派单：{person.name}（{TIER_LABELS[person.tier]}）"
        self.life.step("assign", ASSIGNED, self.after(low, high), note, assignee=staff)

    def start(self) -> None:
        self.life.step("start", IN_PROGRESS, self.after(0.3, 4))

    def resolve(self, share_of_deadline: float) -> None:
        """Resolved when `share_of_deadline` of the deadline since registration (or since
        reopening) has passed, or shortly after starting if that comes first."""
        began = self.life.row["due_at"] - _window(self.grade)
        self.at = max(began + _scaled(_window(self.grade), share_of_deadline), self.after(0.3, 2))
        self.life.step(
            "resolve",
            RESOLVED,
            self.at,
            self.resolution,
            resolution=self.resolution,
            resolved_at=self.at,
        )

    def rate(self, choices: Sequence[tuple[int, str | None]]) -> None:
        rating, comment = self.v.rng.choice(choices)
        at = self.after(2, 60)
        note = _joined(f"评分：{rating}分", comment)
        rated = {"rating": rating, "rating_comment": comment, "rated_at": at}
        if rating <= UNSATISFIED_AT_MOST:
            self.life.step(
                "rate_unsatisfied",
                REOPENED,
                at,
                note,
                **rated,
                due_at=at + _window(self.grade),
                resolved_at=None,
                closed_at=None,
            )
        else:
            self.life.step("rate_satisfied", CLOSED, at, note, **rated, closed_at=at)

    def close(self) -> None:
        at = self.after(72, 120)
        self.life.step("close", CLOSED, at, CLOSE_NOTE, closed_at=at)

    def reject(self) -> None:
        reason = self.v.rng.choice(REJECTION_REASONS)
        self.life.step("reject", REJECTED, self.after(0.5, 8), reason, rejection_reason=reason)


def _play(fate: str, steps: _RequestSteps, late: float | None) -> None:
    """The steps of `fate` (FATE_WEIGHTS); `late`, if given, is how many deadlines pass
    before the request is resolved."""
    rng = steps.v.rng
    on_time = rng.uniform(0.25, 0.9)
    if fate == "rejected":
        if rng.random() < 0.4:
            steps.accept()
        steps.reject()
        return
    if fate == "submitted":
        return
    steps.accept()
    if fate == "accepted":
        return
    steps.assign()
    if fate == "assigned" or (fate == "overdue" and rng.random() < 0.4):
        return
    steps.start()
    if fate in ("in_progress", "overdue"):
        return
    steps.resolve(late or on_time)
    if fate == "resolved":
        return
    if fate == "closed_unrated":
        steps.close()
        return
    if fate in ("reopened", "reopened_closed"):
        steps.rate(UNSATISFIED)
        if fate == "reopened":
            return
        steps.assign(1, 6)
        steps.start()
        steps.resolve(rng.uniform(0.3, 0.9))
    steps.rate(SATISFIED)


def _request_start(v: _Village, fate: str, grade: str, length: timedelta, serial: int) -> datetime:
    """When a request of this fate is registered, so that by the seeding day it has got
    exactly as far as its fate says: finished ones anywhere in the ninety days, open ones
    recently enough to be within their deadline, overdue ones past it (every other one
    past it twice over, so that it reached the region)."""
    window = _window(grade)
    if fate == "overdue":
        lateness = v.rng.uniform(1.1, 1.9) if serial % 2 == 0 else v.rng.uniform(2.1, 3.0)
        return v.start - _scaled(window, lateness)
    if fate in ("submitted", "accepted", "assigned", "in_progress"):
        room = 0.85 * window - length
        return v.start - length - v.hours(0.5, max(0.6, room.total_seconds() / 3600))
    if fate in ("resolved", "reopened"):
        return v.start - length - v.hours(1, 48)
    latest = v.start - length - timedelta(hours=1)
    return v.daytime(v.history_start, max(latest, v.history_start + timedelta(hours=1)))


def _request_place(v: _Village) -> dict[str, Any]:
    """Where and who: a household (its grid, a grown-up of it reporting), a building, or
    words for a public place with the grid given by hand (a caller not on record then
    gives a name and phone)."""
    rows, rng = v.rows, v.rng
    roll = rng.random()
    household = rng.randrange(len(rows.households))
    adults = v.adults_of(household)
    reporter = rng.choice(adults) if adults else None
    place: dict[str, Any] = {"household": None, "building": None, "location_text": None}
    if roll < 0.65:
        place.update(household=household, building=rows.households[household].building)
        grid = rows.households[household].grid
    elif roll < 0.8:
        building = rows.households[household].building
        place.update(building=building)
        grid = rows.buildings[building].grid
    else:
        large = [g for g, grid_row in enumerate(rows.grids) if grid_row.level == "large"] or [0]
        grid = rng.choice(large)
        place.update(location_text=rng.choice(PUBLIC_PLACES))
        if rng.random() < 0.5:
            reporter = None
    if reporter is None:
        name, phone = v.fake.name(), v.fake.phone_number()
    else:
        name, phone = rows.residents[reporter].name, rows.residents[reporter].phone
    return {
        **place,
        "grid": grid,
        "reporter": reporter,
        "reporter_name": name,
        "reporter_phone": phone,
    }


def _build_requests(v: _Village) -> list[_RequestLife]:
    rng = v.rng
    count = round(len(v.rows.residents) * HISTORY_DAYS * REQUESTS_PER_1000_RESIDENTS_A_DAY / 1000)
    if not v.rows.households:
        return []
    fates = _allotted(FATE_WEIGHTS, count)
    categories = _allotted(CATEGORY_WEIGHTS, count)
    rng.shuffle(categories)
    lives = []
    for serial, (fate, category) in enumerate(zip(fates, categories, strict=True)):
        grade = rng.choices([g for g, _ in GRADE_WEIGHTS], [w for _, w in GRADE_WEIGHTS])[0]
        problem = rng.choice(PROBLEMS[category])
        channel = rng.choices([c for c, _ in CHANNEL_WEIGHTS], [w for _, w in CHANNEL_WEIGHTS])[0]
        late = None
        if fate == "closed_rated" and serial % LATE_EVERY == 0:
            late = rng.uniform(1.05, 1.9) if serial % (2 * LATE_EVERY) else rng.uniform(2.05, 2.6)
        fields_ = {
            "channel": channel,
            "category": category,
            "description": problem[0],
            **_request_place(v),
        }
        # Played from the seeding day first, to learn how long the story takes, then
        # moved to when it began.
        life = _RequestLife(fields_, v.start)
        _play(fate, _RequestSteps(v, life, grade, problem), late)
        length = life.events[-1].created_at - v.start
        life.move(_request_start(v, fate, life.row["grade"], length, serial) - v.start)
        life.escalate(v.start)
        lives.append(life)
    lives.sort(key=lambda life: life.row["created_at"])
    return lives


# 行动清单: (categories of its requests, title, owner, description, status it reaches).
ACTION_LIST_PLANS = (
    (("parking",), "整治小区停车秩序", "物业公司", "清理占用消防通道车辆，施划停车位", "done"),
    (("sanitation",), "楼道杂物集中清理行动", "村环卫队", "逐楼清理楼道堆物", "in_progress"),
    (("facility_repair",), "楼道灯与路灯维修", "物业公司", "排查并更换损坏灯具", "planned"),
    (("noise", "property_service"), "规范装修施工", "村委会", "张贴装修时间告知书", "cancelled"),
)
LIST_SIZE = 6
# The statuses a list passes through to reach its last (states.ACTION_LIST_TRANSITIONS),
# and when each is reached, in days after the list is created.
LIST_PATHS = {
    "planned": (),
    "in_progress": ("in_progress",),
    "done": ("in_progress", "done"),
    "cancelled": ("cancelled",),
}
LIST_PROGRESS = {"in_progress": (1, 5), "done": (8, 20), "cancelled": (2, 10)}
# Lists gather requests at least this old, so that they have had time to move on.
LIST_AFTER = timedelta(days=35)


def _build_action_lists(v: _Village, lives: list[_RequestLife]) -> list[ActionListRow]:
    """Lists grouping requests of a kind (心声清单 → 行动清单); each request put on a
    list gets the timeline entry `addRequestsToActionList` writes."""
    lists = []
    for categories, title, owner, description, status in ACTION_LIST_PLANS:
        candidates = [
            n
            for n, life in enumerate(lives)
            if life.row["category"] in categories and life.row["created_at"] < v.start - LIST_AFTER
        ]
        if not candidates:
            continue
        chosen = sorted(v.rng.sample(candidates, min(LIST_SIZE, len(candidates))))
        created_at = max(lives[n].row["created_at"] for n in chosen) + v.hours(2, 48)
        reached, version, updated_at = "planned", 1, created_at
        for next_status in LIST_PATHS[status]:
            at = created_at + timedelta(days=v.rng.uniform(*LIST_PROGRESS[next_status]))
            if at >= v.start:
                break
            reached, version, updated_at = next_status, version + 1, at
        for n in chosen:
            state = lives[n].state_at(created_at)
            lives[n].events.append(
                RequestEventRow(
                    "add_to_action_list",
                    state,
                    state,
                    None,
                    f"纳入行动清单：{title}",
                    DEMO_SUB,
                    created_at,
                )
            )
        lists.append(
            ActionListRow(
                title,
                description,
                owner,
                (created_at + timedelta(days=30)).date(),
                reached,
                version,
                created_at,
                updated_at,
                tuple(chosen),
            )
        )
    return lists


# --- volunteer teams (志愿服务队) -------------------------------------------------------


@dataclass(frozen=True)
class _TeamPlan:
    name: str
    description: str
    skills: tuple[str, ...]
    size: int
    # Who joins: (age, tags) -> bool
    joins: Callable[[int, set[str]], bool]


TEAM_PLANS = (
    _TeamPlan(
        "便民服务志愿队",
        "每月20日便民服务日理发、磨刀、家电维修，平日上门维修",
        ("理发", "磨刀磨剪", "家电维修", "水电维修", "缝补衣物"),
        8,
        lambda age, tags: "volunteer" in tags and 20 <= age <= 70,
    ),
    _TeamPlan(
        "党员先锋志愿服务队",
        "党员带头开展政策宣传、环境整治和矛盾调解",
        ("政策宣传", "环境整治", "矛盾调解"),
        12,
        lambda age, tags: "party_member" in tags and 18 <= age <= 75,
    ),
    _TeamPlan(
        "银龄互助志愿服务队",
        "低龄老人帮扶高龄、独居老人：陪聊、代购、助洁",
        ("助老陪护", "代购代办", "文艺演出"),
        10,
        lambda age, tags: "volunteer" in tags and 55 <= age <= 75,
    ),
    _TeamPlan(
        "青年志愿服务队",
        "周末环境整治、教老人用手机、为孩子辅导功课",
        ("环境整治", "手机教学", "课业辅导"),
        10,
        lambda age, tags: "volunteer" in tags and 16 <= age <= 35,
    ),
)


def _build_teams(v: _Village) -> list[TeamRow]:
    """Teams of volunteers and party members, each led by its first member. As through
    the actions: created with the leader (version 1), then every member's skills set one
    at a time (a version each); the service team's members between them cover its skills."""
    teams = []
    for plan in TEAM_PLANS:
        pool = v.residents_where(lambda r, plan=plan: plan.joins(v.ages[r], v.tags.get(r, set())))
        chosen = v.rng.sample(pool, min(plan.size, len(pool)))
        if not chosen:
            continue
        created_at = v.daytime(v.start - timedelta(days=400), v.start - timedelta(days=120))
        members = []
        joined_at = created_at
        for n, resident in enumerate(chosen):
            skills = {plan.skills[n % len(plan.skills)], v.rng.choice(plan.skills)}
            members.append(TeamMemberRow(resident, tuple(sorted(skills)), joined_at))
            joined_at += v.hours(2, 24 * 8)
        teams.append(
            TeamRow(
                plan.name,
                plan.description,
                chosen[0],
                1 + len(members),
                created_at,
                members[-1].joined_at,
                tuple(members),
            )
        )
    return teams


# --- activities (文明实践活动), sign-ups and check-ins -------------------------------------


@dataclass(frozen=True)
class _ActivityPlan:
    kind: str
    title: str
    description: str
    place: str  # after the village's name
    capacity: int
    repeat: str
    at: time
    minutes: int
    # Who signs up: (age, tags) -> bool
    joins: Callable[[int, set[str]], bool]
    weekday: int | None = None
    month_day: int | None = None
    # A one-off's day, counted from today.
    day: int = 0
    state: str = "published"
    open_to_neighbours: bool = False


def _elderly(age: int, _tags: set[str]) -> bool:
    return age >= ELDERLY_AGE


def _grown_up(age: int, _tags: set[str]) -> bool:
    return age >= 18


def _volunteering(age: int, tags: set[str]) -> bool:
    return 16 <= age <= 75 and bool(tags & {"volunteer", "party_member"})


SERVICE_DAY = 20  # 每月20日便民服务日
ACTIVITY_PLANS = (
    _ActivityPlan(
        "service_day",
        "每月20日便民服务日",
        "理发、磨刀、家电维修、义诊、法律咨询等服务集中进村，现场预约、排队办理",
        "村委会广场",
        150,
        "monthly",
        time(9),
        180,
        _elderly,
        month_day=SERVICE_DAY,
        open_to_neighbours=True,
    ),
    _ActivityPlan(
        "weekend_class",
        "周末课堂·书法",
        "老少同堂学书法，笔墨纸砚由文明实践站提供",
        "新时代文明实践站",
        20,
        "weekly",
        time(9, 30),
        90,
        lambda age, _tags: age >= 50 or 8 <= age <= 14,
        weekday=6,
    ),
    _ActivityPlan(
        "weekend_class",
        "周末课堂·少儿科普",
        "大学生志愿者带孩子们做科学小实验",
        "新时代文明实践站",
        25,
        "weekly",
        time(14, 30),
        90,
        lambda age, _tags: 6 <= age <= 14,
        weekday=7,
    ),
    _ActivityPlan(
        VOLUNTEER_SERVICE,
        "环境整治志愿服务",
        "清理楼道杂物、捡拾垃圾、整理非机动车",
        "党群服务中心门前集合",
        15,
        "weekly",
        time(8),
        120,
        _volunteering,
        weekday=6,
    ),
    _ActivityPlan(
        VOLUNTEER_SERVICE,
        "敬老助老志愿服务",
        "走访独居老人：陪聊、打扫卫生、代购生活用品",
        "老年活动中心",
        10,
        "weekly",
        time(15),
        90,
        _volunteering,
        weekday=3,
    ),
    _ActivityPlan(
        "talk",
        "老年人防跌倒健康讲座",
        "社区卫生服务站医生讲解居家防跌倒要点",
        "党群服务中心会议室",
        60,
        "once",
        time(9, 30),
        90,
        _elderly,
        day=-40,
        state="finished",
    ),
    _ActivityPlan(
        "culture",
        "邻里文化节文艺汇演",
        "村民自编自演的歌舞、快板和戏曲",
        "村委会广场",
        200,
        "once",
        time(19),
        120,
        _grown_up,
        day=-62,
        state="finished",
        open_to_neighbours=True,
    ),
    _ActivityPlan(
        "talk",
        "防范电信网络诈骗宣传讲座",
        "派出所民警讲解常见诈骗手法",
        "党群服务中心会议室",
        80,
        "once",
        time(14, 30),
        90,
        _grown_up,
        day=9,
        open_to_neighbours=True,
    ),
    _ActivityPlan(
        "clinic",
        "社区卫生服务站义诊",
        "测血压血糖、中医把脉、用药咨询",
        "社区卫生服务站",
        40,
        "once",
        time(9),
        150,
        _elderly,
        day=16,
    ),
    _ActivityPlan(
        "culture",
        "广场舞展演",
        "因场地施工取消",
        "健身广场",
        100,
        "once",
        time(19),
        90,
        _grown_up,
        day=5,
        state="cancelled",
    ),
    _ActivityPlan(
        "culture",
        "迎新春联欢会",
        "节目征集中",
        "村委会礼堂",
        200,
        "once",
        time(14),
        150,
        _grown_up,
        day=40,
        state="draft",
    ),
)
# A share of the places taken on an occurrence, by those who sign up at all.
FILL = (0.5, 1.1)
CANCEL_SHARE = 0.08
CHECK_IN_SHARE = 0.88
# Sign-ups open this long before a session.
SIGN_UP_OPENS = timedelta(days=10)


class _Activities:
    """Activities with their occurrences of the history and of the scheduling horizon
    (as `createActivity` and `scheduleActivity` make them), sign-ups taken in the order
    residents came (a place while there is one, else the waitlist; a cancelled place
    goes to the first on the waitlist), check-ins at past sessions, and the hours and
    points of volunteer service."""

    def __init__(self, v: _Village, rows: AffairsRows):
        self.v = v
        self.rows = rows

    def build(self) -> None:
        for plan in ACTIVITY_PLANS:
            self._activity(plan)

    def _activity(self, plan: _ActivityPlan) -> None:
        v = self.v
        if plan.repeat == "once":
            starts_on = v.today + timedelta(days=plan.day)
        else:
            starts_on = v.today - timedelta(days=HISTORY_DAYS)
        created_at = min(
            v.moment(starts_on - timedelta(days=v.rng.randint(7, 20)), time(10)),
            v.start - v.hours(24, 72),
        )
        published_at = created_at + v.hours(2, 20)
        rule = Rule(plan.repeat, starts_on, None, plan.weekday, plan.month_day)
        days = dates(rule, starts_on, v.today + timedelta(days=DEFAULT_HORIZON_DAYS))
        state, version, updated_at = self._life(plan, days, created_at, published_at)
        activity = len(self.rows.activities)
        self.rows.activities.append(
            ActivityRow(
                plan.kind,
                plan.title,
                plan.description,
                v.name + plan.place,
                plan.capacity,
                state,
                plan.open_to_neighbours,
                plan.repeat,
                plan.weekday,
                plan.month_day,
                starts_on,
                None,
                plan.at,
                plan.minutes,
                version,
                created_at,
                updated_at,
            )
        )
        pool = v.residents_where(lambda r: plan.joins(v.ages[r], v.tags.get(r, set())))
        for day in days:
            starts_at, ends_at = span(day, plan.at, plan.minutes)
            # Scheduled at creation, or later as the horizon moved on.
            scheduled = max(created_at, starts_at - timedelta(days=DEFAULT_HORIZON_DAYS))
            occurrence = len(self.rows.occurrences)
            self.rows.occurrences.append(
                OccurrenceRow(activity, starts_at, ends_at, plan.capacity, scheduled)
            )
            if state in ("published", "finished"):
                opens = max(published_at, starts_at - SIGN_UP_OPENS)
                self._sign_ups(plan, occurrence, pool, opens)

    def _life(
        self, plan: _ActivityPlan, days: list[date], created_at: datetime, published_at: datetime
    ) -> tuple[str, int, datetime]:
        """State, version and last change: created (1), published (2), then finished
        after its last session or cancelled (3); a draft stays at 1."""
        v = self.v
        if plan.state == "draft":
            return "draft", 1, created_at
        if plan.state == "cancelled":
            return "cancelled", 3, v.between(published_at, v.start)
        if plan.state == "finished" and days:
            last_end = span(days[-1], plan.at, plan.minutes)[1]
            finished_at = last_end + v.hours(20, 60)
            if finished_at < v.start:
                return "finished", 3, finished_at
        return "published", 2, published_at

    def _sign_ups(self, plan: _ActivityPlan, occurrence: int, pool: list[int], opens: datetime):
        """Residents signing up for one occurrence, in the order they came."""
        v, occ = self.v, self.rows.occurrences[occurrence]
        closes = min(occ.starts_at, v.start)
        if closes <= opens or occ.starts_at > v.start + timedelta(days=BOOKING_DAYS_AHEAD):
            return
        wanted, cancelling = round(plan.capacity * v.rng.uniform(*FILL)), CANCEL_SHARE
        if occ.starts_at > v.start and plan.kind == "weekend_class":
            # The coming classes are popular: full, with a waitlist nobody has left yet.
            wanted, cancelling = plan.capacity + 3, 0
        residents = v.rng.sample(pool, min(wanted, len(pool)))
        arrivals = sorted(v.between(opens, closes) for _ in residents)
        cancels = {
            n: v.between(arrivals[n], closes)
            for n in range(len(residents))
            if v.rng.random() < cancelling
        }
        sign_ups = self._queue(occ.capacity, arrivals, cancels)
        for n, resident in enumerate(residents):
            state, cancelled_at, updated_at = sign_ups[n]
            checked_in_at, hours = None, None
            if state == "signed_up" and occ.ends_at <= v.start and v.rng.random() < CHECK_IN_SHARE:
                checked_in_at = occ.starts_at - timedelta(minutes=v.rng.randint(0, 55))
                state, updated_at = "checked_in", checked_in_at
                if plan.kind == VOLUNTEER_SERVICE:
                    hours = _volunteer_hours(occ)
            position = len(self.rows.sign_ups)
            self.rows.sign_ups.append(
                SignUpRow(
                    occurrence,
                    resident,
                    state,
                    arrivals[n],
                    cancelled_at,
                    checked_in_at,
                    hours,
                    updated_at,
                )
            )
            if hours is not None:
                self._earn(position, resident, plan.title, hours, checked_in_at)

    @staticmethod
    def _queue(
        capacity: int, arrivals: list[datetime], cancels: dict[int, datetime]
    ) -> list[tuple[str, datetime | None, datetime]]:
        """(state, cancelled_at, last change) of each arrival: the sign-ups and
        cancellations replayed in time order as `signUpForActivity` and
        `cancelActivitySignUp` take them, so the places taken never exceed `capacity`."""
        moments = sorted(
            [(at, 0, n) for n, at in enumerate(arrivals)]
            + [(at, 1, n) for n, at in cancels.items()]
        )
        states: list[tuple[str, datetime | None, datetime]] = [("", None, at) for at in arrivals]
        taken = 0
        for at, is_cancel, n in moments:
            if not is_cancel:
                full = taken >= capacity
                states[n] = ("waitlisted" if full else "signed_up", None, at)
                taken += not full
                continue
            was = states[n][0]
            states[n] = ("cancelled", at, at)
            if was != "signed_up":
                continue
            waiting = [k for k, (state, *_) in enumerate(states) if state == "waitlisted"]
            if waiting:
                states[waiting[0]] = ("signed_up", None, at)  # 递补: the first in the queue
            else:
                taken -= 1
        return states

    def _earn(self, sign_up: int, resident: int, title: str, hours: Decimal, at: datetime) -> None:
        """The points a volunteer's check-in earns (`checkInToActivity`)."""
        points = int((hours * DEFAULT_POINTS_PER_VOLUNTEER_HOUR).to_integral_value(ROUND_HALF_UP))
        hours_text = format(hours.normalize(), "f")
        reason = f"志愿服务：{title}（{hours_text}小时）"
        self.rows.points.append(PointsRow(resident, points, reason, SIGN_UP, sign_up, at))


def _volunteer_hours(occurrence: OccurrenceRow) -> Decimal:
    """The session's length, as check-in records it when no hours are given."""
    minutes = int((occurrence.ends_at - occurrence.starts_at).total_seconds() // 60)
    return min(Decimal(minutes) / 60, Decimal(24)).quantize(Decimal("0.01"), ROUND_HALF_UP)


# --- points (积分): awards by the village and redemptions at the points shop ------------

AWARDS = (
    ("垃圾分类示范户", 20),
    ("美丽庭院示范户", 30),
    ("好人好事表彰", 50),
    ("参与邻里互助", 10),
)
AWARDS_SHARE_A_MONTH = 0.015
SHOP = (("食用油一桶", 80), ("洗衣液一瓶", 40), ("抽纸一提", 30), ("鸡蛋一盒", 25), ("香皂", 10))
REDEEM_SHARE = 0.4


def _build_points(v: _Village, rows: AffairsRows) -> None:
    """Monthly awards to a few grown-ups, then redemptions by those with points, each
    no more than the balance at that moment (`redeemPoints` refuses more). The ledger is
    written oldest first, as it grew."""
    adults = v.residents_where(lambda r: v.ages[r] >= 18)
    for month in range(3):
        first = v.history_start + timedelta(days=30 * month)
        for resident in v.rng.sample(adults, round(AWARDS_SHARE_A_MONTH * len(adults))):
            reason, points = v.rng.choice(AWARDS)
            rows.points.append(
                PointsRow(
                    resident,
                    points,
                    reason,
                    MANUAL,
                    None,
                    v.daytime(first, first + timedelta(days=30)),
                )
            )
    earned: dict[int, list[PointsRow]] = {}
    for entry in rows.points:
        earned.setdefault(entry.resident, []).append(entry)
    for resident in sorted(earned):
        entries = sorted(earned[resident], key=lambda e: e.created_at)
        if v.rng.random() >= REDEEM_SHARE:
            continue
        at = v.daytime(entries[0].created_at + timedelta(hours=1), v.start)
        balance = sum(e.points for e in entries if e.created_at <= at)
        affordable = [(item, cost) for item, cost in SHOP if cost <= balance]
        if affordable:
            item, cost = v.rng.choice(affordable)
            rows.points.append(
                PointsRow(resident, -cost, f"积分超市兑换：{item}", POINTS_REDEMPTION, None, at)
            )
    rows.points.sort(key=lambda e: e.created_at)


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


class _Services:
    """The catalogue, its slots in the history and the coming weeks, and orders taking a
    place while there is one (`orderService`), freeing it when cancelled; each order
    walked through dispatch, acceptance (sometimes after a team declined), completion
    once its slot is over, and the resident's rating, as far as the seeding day."""

    def __init__(self, v: _Village, rows: AffairsRows):
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
                step(ORDER_ACCEPTED, at, team)
            done = max(slot_ends, at) + v.hours(0.2, 1)
            if state == ORDER_ACCEPTED and step(COMPLETED, done, team):
                at = done + v.hours(2, 72)
                if v.rng.random() < RATE_SHARE:
                    rating, comment = v.rng.choice(ORDER_RATINGS)
                    if not step(RATED, at, team, comment):
                        rating, comment = None, None
        if cancel_at is not None and state in (ORDERED, DISPATCHED, ORDER_ACCEPTED, DECLINED):
            steps.append(OrderEventRow(state, ORDER_CANCELLED, team, "居民临时有事", cancel_at))
            state = ORDER_CANCELLED
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


# --- notices (村务公开) ------------------------------------------------------------------


@dataclass(frozen=True)
class _NoticePlan:
    category: str
    title: str  # str.format fields from `_notice_values`
    body: str
    state: str
    days_ago: int  # published (a draft: written) this many days before today
    visible_days: int | None = None  # a publish window closing this many days after publishing
    opens_in_days: int | None = None  # a publish window opening this many days after today
    withdrawal_reason: str | None = None


NOTICE_PLANS = (
    _NoticePlan(
        PARTY_AFFAIRS,
        "关于召开{month}月主题党日活动的通知",
        "全体党员：定于{later}上午9:00在村党群服务中心召开{month}月主题党日活动，"
        "内容为集中学习和志愿服务。因故不能参加的，请提前向支部书记请假。",
        PUBLISHED,
        75,
    ),
    _NoticePlan(
        PARTY_AFFAIRS,
        "{year}年第{quarter}季度党费收缴情况公示",
        "本支部现有党员{members}名，第{quarter}季度应缴党费{dues}元，实缴{dues}元，收缴率100%。"
        "如有疑问请联系支部委员。",
        PUBLISHED,
        48,
    ),
    _NoticePlan(
        PARTY_AFFAIRS,
        "发展对象公示",
        "经支部委员会研究，拟将{candidate}同志列为发展对象，公示期5个工作日。"
        "如有意见，请向村党支部反映。",
        PUBLISHED,
        20,
    ),
    _NoticePlan(
        PARTY_AFFAIRS,
        "党员积分考评结果公示",
        "本季度党员积分考评已完成，结果见附件。",
        WITHDRAWN,
        33,
        withdrawal_reason="统计口径有误，核对后重新公示",
    ),
    _NoticePlan(
        PARTY_AFFAIRS,
        "关于开展党员志愿服务月活动的通知",
        "全体党员：为发挥党员先锋模范作用，本月开展党员志愿服务月活动，具体安排如下：（待完善）",
        DRAFT,
        3,
    ),
    _NoticePlan(
        VILLAGE_AFFAIRS,
        "关于开展消防安全隐患排查的通知",
        "各位村民：近期将逐楼开展消防安全隐患排查，重点检查楼道堆物、飞线充电和灭火器配置，"
        "请配合网格员入户检查。",
        PUBLISHED,
        70,
    ),
    _NoticePlan(
        VILLAGE_AFFAIRS,
        "{month}月低保评议结果公示",
        "经村民代表评议，拟新增低保{new_households}户、停保{stopped_households}户，"
        "名单张贴于村务公开栏。公示期7天，如有异议请向村委会反映。",
        PUBLISHED,
        41,
    ),
    _NoticePlan(
        VILLAGE_AFFAIRS,
        "停水通知",
        "因供水管网维修，{later}8:00至18:00全村停水，请提前储水。",
        PUBLISHED,
        12,
        visible_days=3,
    ),
    _NoticePlan(
        VILLAGE_AFFAIRS,
        "关于{next_month}月便民服务日安排的通知",
        "{next_month}月20日便民服务日照常举行，服务项目有理发、磨刀磨剪、家电维修、义诊和法律咨询，"
        "请通过网格员或小程序提前预约。",
        PUBLISHED,
        1,
        opens_in_days=2,
    ),
    _NoticePlan(
        VILLAGE_AFFAIRS,
        "关于调整垃圾清运时间的通知",
        "自下周起，生活垃圾清运时间调整为每日7:00和17:00。",
        WITHDRAWN,
        27,
        withdrawal_reason="清运时间另行确定，暂不执行",
    ),
    _NoticePlan(
        VILLAGE_AFFAIRS,
        "关于老旧小区改造意见征集的通知",
        "各位居民：我村拟申报老旧小区改造项目，现就改造内容征集意见：（待完善）",
        DRAFT,
        1,
    ),
    _NoticePlan(
        FINANCES,
        "{year}年第{quarter}季度村级财务收支公开",
        "本季度收入{income}元（集体资产租赁{rent}元、上级补助{subsidy}元），"
        "支出{expense}元（环境卫生{cleaning}元、办公及水电{office}元、便民服务{services}元）。"
        "明细张贴于村务公开栏。",
        PUBLISHED,
        60,
    ),
    _NoticePlan(
        FINANCES,
        "惠民补贴资金发放公示",
        "本期发放高龄津贴{aged}人、{aged_amount}元；残疾人两项补贴{disabled}人、{disabled_amount}元。",
        PUBLISHED,
        35,
    ),
    _NoticePlan(
        FINANCES,
        "集体经济收益分配方案公示",
        "经村民代表会议讨论通过，本年度集体经济收益{profit}元，拟按人均{per_head}元分配。",
        PUBLISHED,
        8,
    ),
    _NoticePlan(
        FINANCES,
        "村集体资产租赁收入公示",
        "本年度集体资产租赁收入{rent}元，明细见附件。",
        WITHDRAWN,
        52,
        withdrawal_reason="金额录入错误，更正后重新发布",
    ),
    _NoticePlan(FINANCES, "{month}月财务收支明细", "（待审核）", DRAFT, 2),
)
READER_SHARE = (0.05, 0.3)


def _notice_values(v: _Village, day: date) -> dict[str, Any]:
    """What a notice of `day` may mention: dates around it and the village's figures."""
    quarter = (day.month - 1) // 3 or 4  # the quarter just ended
    later = day + timedelta(days=3)
    party = [t.resident for t in v.rows.tags if t.tag == "party_member"]
    rent, subsidy = v.rng.randrange(80, 400) * 1000, v.rng.randrange(50, 200) * 1000
    cleaning, office = v.rng.randrange(30, 90) * 1000, v.rng.randrange(10, 40) * 1000
    services = v.rng.randrange(5, 30) * 1000
    aged = sum(age >= 80 for age in v.ages)
    disabled = sum(t.tag == "disabled" for t in v.rows.tags)
    profit = v.rng.randrange(200, 900) * 1000
    return {
        "month": day.month,
        "next_month": day.month % 12 + 1,
        "year": day.year if day.month > 3 else day.year - 1,
        "quarter": quarter,
        "later": f"{later.month}月{later.day}日",
        "members": len(party),
        "dues": len(party) * v.rng.randrange(30, 60),
        "candidate": v.rows.residents[v.rng.choice(party)].name if party else "王明",
        "new_households": v.rng.randint(1, 4),
        "stopped_households": v.rng.randint(0, 2),
        "income": rent + subsidy,
        "rent": rent,
        "subsidy": subsidy,
        "expense": cleaning + office + services,
        "cleaning": cleaning,
        "office": office,
        "services": services,
        "aged": aged,
        "aged_amount": aged * 100,
        "disabled": disabled,
        "disabled_amount": disabled * 160,
        "profit": profit,
        "per_head": profit // max(1, len(v.rows.residents)),
    }


def _build_notices(v: _Village) -> list[NoticeRow]:
    """Notices of every category: published ones (one with a window already closed,
    one opening in a few days), a withdrawn one and a draft each; versions as created (1),
    published (2), withdrawn (3). Residents' reads while each was visible."""
    built = []
    for plan in sorted(NOTICE_PLANS, key=lambda p: -p.days_ago):
        written = v.daytime(
            v.start - timedelta(days=plan.days_ago, hours=48),
            v.start - timedelta(days=plan.days_ago),
        )
        values = _notice_values(v, written.date())
        title, body = plan.title.format(**values), plan.body.format(**values)
        salt = v.rng.randbytes(16)
        if plan.state == DRAFT:
            built.append(
                NoticeRow(
                    plan.category,
                    title,
                    body,
                    DRAFT,
                    None,
                    None,
                    None,
                    None,
                    None,
                    salt,
                    1,
                    written,
                    written,
                    (),
                )
            )
            continue
        published_at = written + v.hours(1, 20)
        publish_from = v.start + timedelta(days=plan.opens_in_days) if plan.opens_in_days else None
        publish_until = (
            published_at + timedelta(days=plan.visible_days) if plan.visible_days else None
        )
        withdrawn_at = None
        if plan.state == WITHDRAWN:
            withdrawn_at = published_at + v.hours(24, 24 * 10)
        seen_until = min(t for t in (publish_until, withdrawn_at, v.start) if t is not None)
        reads = _reads(v, publish_from or published_at, seen_until)
        built.append(
            NoticeRow(
                plan.category,
                title,
                body,
                plan.state,
                publish_from,
                publish_until,
                published_at,
                withdrawn_at,
                plan.withdrawal_reason,
                salt,
                3 if withdrawn_at else 2,
                written,
                withdrawn_at or published_at,
                reads,
            )
        )
    return built


def _reads(v: _Village, first: datetime, last: datetime) -> tuple[NoticeReadRow, ...]:
    """Residents' reads between `first` and `last`. Readers are fictional, so their
    hashes (HMAC-SHA256 in `markNoticeRead`) are random bytes of the same length."""
    if last <= first:
        return ()
    readers = round(len(v.rows.households) * v.rng.uniform(*READER_SHARE))
    reads = []
    for _ in range(readers):
        first_read = v.between(first, last)
        count = v.rng.choice((1, 1, 1, 2, 3))
        last_read = v.between(first_read, last) if count > 1 else first_read
        reads.append(NoticeReadRow(v.rng.randbytes(32), count, first_read, last_read))
    return tuple(reads)


# --- mediation (调解) --------------------------------------------------------------------

MEDIATION_ROOM = "村人民调解室"


def _neighbours_above_and_below(v: _Village) -> tuple[int, int] | None:
    """Grown-ups of two households of one unit, one floor apart (漏水 disputes)."""
    flats = {
        (h.building, h.unit_no, h.room_no): n
        for n, h in enumerate(v.rows.households)
        if v.adults_of(n)
    }
    for (building, unit, room), below in sorted(flats.items()):
        above = flats.get((building, unit, str(int(room) + 100)))
        if above is not None:
            return v.adults_of(below)[0], v.adults_of(above)[0]
    return None


def _build_cases(v: _Village) -> list[CaseRow]:
    """Two to four cases by the village's size: a leak between floors settled by
    agreement, a family dispute under mediation, a quarrel with the property company
    just registered, and (in the largest villages) unpaid wages referred onwards."""
    rows, rng, fake = v.rows, v.rng, v.fake
    chief = next((n for n, s in enumerate(rows.staff) if s.tier == "grid_chief"), None)
    elderly = [r for r in range(len(rows.residents)) if v.ages[r] >= 70]
    adults = v.residents_where(lambda r: v.ages[r] >= 18)
    wanted = 2 + (len(rows.residents) >= 500) + (len(rows.residents) >= 3000)
    mediator = fake.name()
    cases: list[dict[str, Any]] = []

    def party(role: str, resident: int) -> PartyRow:
        return PartyRow(role, resident, rows.residents[resident].name, None)

    pair = _neighbours_above_and_below(v)
    if pair and chief is not None:
        cases.append(
            {
                "category": "neighbour",
                "summary": "楼上卫生间漏水致楼下天花板受损，双方就维修费用分担产生争议",
                "days_ago": rng.randint(50, 80),
                "parties": (party("applicant", pair[0]), party("respondent", pair[1])),
                "mediator": (rows.staff[chief].name, chief),
                "sessions": ("双方陈述损失情况，约定现场查看", "查看现场后双方就费用分担达成一致"),
                "end": (
                    "resolved",
                    "agreement",
                    "楼上住户承担防水维修费用，楼下天花板修复费用双方各半",
                    None,
                ),
            }
        )
    if elderly and len(adults) > 1:
        parent = rng.choice(elderly)
        child = next(
            (r for r in v.adults_of(rows.residents[parent].household) if r != parent), None
        )
        child = child if child is not None else rng.choice([r for r in adults if r != parent])
        cases.append(
            {
                "category": "family",
                "summary": "老人与子女就赡养费和日常照料安排协商不成",
                "days_ago": rng.randint(10, 25),
                "parties": (party("applicant", parent), party("respondent", child)),
                "mediator": (mediator, None),
                "sessions": ("听取双方意见，子女同意每周轮流照料，赡养费数额待下次商定",),
                "end": None,
            }
        )
    if adults:
        cases.append(
            {
                "category": "property",
                "summary": "业主认为物业服务不到位拒交物业费，物业公司要求补缴",
                "days_ago": rng.randint(1, 5),
                "parties": (
                    party("applicant", rng.choice(adults)),
                    PartyRow("respondent", None, fake.name(), fake.phone_number()),
                ),
                "mediator": None,
                "sessions": (),
                "end": None,
            }
        )
    if len(cases) < wanted and adults:
        cases.append(
            {
                "category": "labour",
                "summary": "装修工人被拖欠劳务费，与包工头协商未果",
                "days_ago": rng.randint(30, 60),
                "parties": (
                    party("applicant", rng.choice(adults)),
                    PartyRow("respondent", None, fake.name(), fake.phone_number()),
                ),
                "mediator": (mediator, None),
                "sessions": ("包工头称工程款未结清，双方分歧较大",),
                "end": ("referred", "referred", None, "区劳动保障监察大队"),
            }
        )
    return _numbered(v, [_case(v, plan) for plan in cases[:wanted]])


def _case(v: _Village, plan: dict[str, Any]) -> CaseRow:
    """One case as the actions leave it: registered (1), mediation started (2), a
    version for each session, concluded last."""
    created_at = v.daytime(
        v.start - timedelta(days=plan["days_ago"]), v.start - timedelta(days=plan["days_ago"] - 1)
    )
    status, version, updated_at = "registered", 1, created_at
    mediator_name, mediator_staff = plan["mediator"] or (None, None)
    sessions = []
    if plan["mediator"]:
        at = created_at + v.hours(24, 72)
        status, version, updated_at = "in_mediation", 2, at
        attendees = (*(p.name for p in plan["parties"]), mediator_name)
        for notes in plan["sessions"]:
            at += v.hours(24 * 2, 24 * 6)
            sessions.append(SessionRow(at.date(), MEDIATION_ROOM, attendees, notes, at))
            version, updated_at = version + 1, at
    concluded = dict.fromkeys(("outcome", "agreement_text", "referred_to", "concluded_at"))
    if plan["end"]:
        status, outcome, agreement, referred_to = plan["end"]
        at = updated_at + v.hours(24, 48)
        concluded = {
            "outcome": outcome,
            "agreement_text": agreement,
            "referred_to": referred_to,
            "concluded_at": at,
        }
        version, updated_at = version + 1, at
    return CaseRow(
        0,
        0,
        plan["category"],
        plan["summary"],
        status,
        mediator_name,
        mediator_staff,
        concluded["outcome"],
        concluded["agreement_text"],
        concluded["referred_to"],
        None,
        concluded["concluded_at"],
        version,
        created_at,
        updated_at,
        plan["parties"],
        tuple(sessions),
    )


def _numbered(v: _Village, cases: list[CaseRow]) -> list[CaseRow]:
    """Numbered in order of registration within each year (调〔year〕第n号)."""
    numbered, last = [], {}
    for case in sorted(cases, key=lambda c: c.created_at):
        year = case.created_at.astimezone(v.start.tzinfo).year
        last[year] = last.get(year, 0) + 1
        numbered.append(replace(case, year=year, number=last[year]))
    return numbered


# --- one village ---------------------------------------------------------------------


def build_affairs(
    rows: VillageRows, village_name: str, seed: int, today: date, ages_as_of: date
) -> AffairsRows:
    """Every row of one village's affairs, from `seed`, `today` and its people alone."""
    v = _Village(rows, village_name, ages_as_of, today, seed)
    affairs = AffairsRows(today)
    lives = _build_requests(v)
    affairs.action_lists = _build_action_lists(v, lives)
    affairs.requests = [life.finished() for life in lives]
    affairs.teams = _build_teams(v)
    _Activities(v, affairs).build()
    _build_points(v, affairs)
    _Services(v, affairs).build()
    affairs.notices = _build_notices(v)
    affairs.cases = _build_cases(v)
    return affairs


# --- writing ---------------------------------------------------------------------------


def insert_returning_ids(conn: Connection, table: Table, values: list[dict]) -> list[int]:
    """Bulk insert (executemany) and the new ids in the order of `values`."""
    if not values:
        return []
    result = conn.execute(
        table.insert().returning(table.c.id, sort_by_parameter_order=True), values
    )
    return list(result.scalars())


def _columns(row: Any, table: Table) -> dict[str, Any]:
    """The fields of `row` that are columns of `table`, as they are."""
    return {c.name: getattr(row, c.name) for c in table.columns if hasattr(row, c.name)}


def optional_id(ids: Sequence[int], position: int | None) -> int | None:
    return None if position is None else ids[position]


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _outbox(
    record_type: str, record_id: int, version: int, payload: dict, operation=UPSERT
) -> dict:
    return {
        "record_type": record_type,
        "record_id": record_id,
        "operation": operation,
        "version": version,
        "payload": payload,
    }


def write_affairs(
    conn: Connection, affairs: AffairsRows, rows: VillageRows, ids: VillageIds
) -> None:
    """Insert one village's affairs into the village schema of `conn`, after its people
    (`ids` are theirs, from demo.write_village), with the outbox rows of what may be shared."""
    shared: list[dict] = []
    shared += _write_requests(conn, affairs, rows, ids)
    team_ids, team_rows = _write_teams(conn, affairs.teams, ids)
    shared += team_rows
    sign_up_ids, activity_rows = _write_activities(conn, affairs, ids)
    shared += activity_rows
    _write_points(conn, affairs.points, ids, sign_up_ids)
    shared += _write_services(conn, affairs, ids, team_ids)
    shared += _write_notices(conn, affairs.notices)
    _write_cases(conn, affairs.cases, ids)
    if shared:
        conn.execute(outbox.insert(), shared)


def _write_requests(conn: Connection, affairs: AffairsRows, rows: VillageRows, ids: VillageIds):
    categories = dict(
        conn.execute(select(request_categories.c.code, request_categories.c.id)).all()
    )
    request_ids = insert_returning_ids(
        conn,
        requests,
        [
            {
                **_columns(r, requests),
                "category_id": categories[r.category],
                "household_id": optional_id(ids.households, r.household),
                "building_id": optional_id(ids.buildings, r.building),
                "grid_id": optional_id(ids.grids, r.grid),
                "reporter_resident_id": optional_id(ids.residents, r.reporter),
                "assignee_staff_id": optional_id(ids.staff, r.assignee),
            }
            for r in affairs.requests
        ],
    )
    events = [
        {**_columns(e, request_events), "request_id": request_id, "actor_name": e.actor_sub}
        for request_id, r in zip(request_ids, affairs.requests, strict=True)
        for e in r.events
    ]
    if events:
        conn.execute(request_events.insert(), events)
    list_ids = insert_returning_ids(
        conn, action_lists, [_columns(a, action_lists) for a in affairs.action_lists]
    )
    links = [
        {"action_list_id": list_id, "request_id": request_ids[n]}
        for list_id, a in zip(list_ids, affairs.action_lists, strict=True)
        for n in a.requests
    ]
    if links:
        conn.execute(action_list_requests.insert(), links)
    return [
        _outbox("Request", request_id, r.version, _request_payload(request_id, r, rows))
        for request_id, r in zip(request_ids, affairs.requests, strict=True)
    ]


def _request_payload(request_id: int, r: RequestRow, rows: VillageRows) -> dict[str, Any]:
    """What `requests.actions` shares of a request: never the reporter."""
    return {
        "id": request_id,
        "channel": r.channel,
        "category": r.category,
        "grade": r.grade,
        "state": r.state,
        "description": r.description,
        "location_text": r.location_text,
        "grid": None if r.grid is None else rows.grids[r.grid].code,
        "escalation_level": r.escalation_level,
        "needs_coordination": r.needs_coordination,
        "due_at": _iso(r.due_at),
        "resolved_at": _iso(r.resolved_at),
        "rating": r.rating,
        "created_at": _iso(r.created_at),
    }


def _write_teams(conn: Connection, teams: list[TeamRow], ids: VillageIds):
    team_ids = insert_returning_ids(
        conn,
        volunteer_teams,
        [
            {**_columns(t, volunteer_teams), "leader_resident_id": ids.residents[t.leader]}
            for t in teams
        ],
    )
    members = [
        {
            "team_id": team_id,
            "resident_id": ids.residents[m.resident],
            "skills": list(m.skills),
            "joined_at": m.joined_at,
        }
        for team_id, t in zip(team_ids, teams, strict=True)
        for m in t.members
    ]
    if members:
        conn.execute(volunteer_team_members.insert(), members)
    shared = [
        _outbox(
            "VolunteerTeam",
            team_id,
            t.version,
            {
                "id": team_id,
                "name": t.name,
                "description": t.description,
                "member_count": len(t.members),
                "skills": sorted({skill for m in t.members for skill in m.skills}),
            },
        )
        for team_id, t in zip(team_ids, teams, strict=True)
    ]
    return team_ids, shared


def _write_activities(conn: Connection, affairs: AffairsRows, ids: VillageIds):
    activity_ids = insert_returning_ids(
        conn, activities, [_columns(a, activities) for a in affairs.activities]
    )
    occurrence_ids = insert_returning_ids(
        conn,
        activity_occurrences,
        [
            {**_columns(o, activity_occurrences), "activity_id": activity_ids[o.activity]}
            for o in affairs.occurrences
        ],
    )
    sign_up_ids = insert_returning_ids(
        conn,
        activity_sign_ups,
        [
            {
                **_columns(s, activity_sign_ups),
                "occurrence_id": occurrence_ids[s.occurrence],
                "resident_id": ids.residents[s.resident],
            }
            for s in affairs.sign_ups
        ],
    )
    occurrences: dict[int, list[dict]] = {}
    for occurrence_id, o in zip(occurrence_ids, affairs.occurrences, strict=True):
        occurrences.setdefault(o.activity, []).append(
            {
                "id": occurrence_id,
                "starts_at": _iso(o.starts_at),
                "ends_at": _iso(o.ends_at),
                "capacity": o.capacity,
            }
        )
    # Shared once published, for as long as it is open to neighbours (activities.actions).
    shared = [
        _outbox(
            "Activity",
            activity_id,
            a.version,
            {
                "id": activity_id,
                **{k: getattr(a, k) for k in ("kind", "title", "description", "place")},
                "capacity": a.capacity,
                "state": a.state,
                "occurrences": sorted(occurrences.get(n, []), key=lambda o: o["starts_at"]),
            },
        )
        for n, (activity_id, a) in enumerate(zip(activity_ids, affairs.activities, strict=True))
        if a.open_to_neighbours and a.state != "draft"
    ]
    return sign_up_ids, shared


def _write_points(
    conn: Connection, points: list[PointsRow], ids: VillageIds, sign_up_ids: list[int]
) -> None:
    if points:
        conn.execute(
            points_ledger.insert(),
            [
                {
                    **_columns(p, points_ledger),
                    "resident_id": ids.residents[p.resident],
                    "source_id": optional_id(sign_up_ids, p.sign_up),
                    "created_by": DEMO_SUB,
                }
                for p in points
            ],
        )


def _write_services(
    conn: Connection, affairs: AffairsRows, ids: VillageIds, team_ids: list[int]
) -> list[dict]:
    items = affairs.service_items
    item_ids = insert_returning_ids(
        conn, service_items, [_columns(i, service_items) for i in items]
    )
    slot_ids = insert_returning_ids(
        conn,
        service_slots,
        [
            {**_columns(s, service_slots), "service_item_id": item_ids[s.item]}
            for s in affairs.slots
        ],
    )
    order_ids = insert_returning_ids(
        conn,
        service_orders,
        [
            {
                **_columns(o, service_orders),
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
            **_columns(e, service_order_events),
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
        _outbox(
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


def _write_notices(conn: Connection, built: list[NoticeRow]) -> list[dict]:
    notice_ids = insert_returning_ids(conn, notices, [_columns(n, notices) for n in built])
    reads = [
        {**_columns(r, notice_reads), "notice_id": notice_id}
        for notice_id, n in zip(notice_ids, built, strict=True)
        for r in n.reads
    ]
    if reads:
        conn.execute(notice_reads.insert(), reads)
    # Published notices are shared; a withdrawn one is taken back (notices.actions).
    shared = []
    for notice_id, n in zip(notice_ids, built, strict=True):
        if n.state == PUBLISHED:
            payload = {
                "id": notice_id,
                "category": n.category,
                "title": n.title,
                "body": n.body,
                "publish_from": _iso(n.publish_from),
                "publish_until": _iso(n.publish_until),
                "published_at": _iso(n.published_at),
            }
            shared.append(_outbox("Notice", notice_id, n.version, payload))
        elif n.state == WITHDRAWN:
            shared.append(_outbox("Notice", notice_id, n.version, {}, operation=DELETE))
    return shared


def _write_cases(conn: Connection, cases: list[CaseRow], ids: VillageIds) -> None:
    """Cases, parties and sessions, and the last number given out each year. Never
    shared: mediation has no outbox."""
    case_ids = insert_returning_ids(
        conn,
        mediation_cases,
        [
            {
                **_columns(c, mediation_cases),
                "mediator_staff_id": optional_id(ids.staff, c.mediator_staff),
            }
            for c in cases
        ],
    )
    parties = [
        {
            **_columns(p, mediation_parties),
            "case_id": case_id,
            "resident_id": optional_id(ids.residents, p.resident),
        }
        for case_id, c in zip(case_ids, cases, strict=True)
        for p in c.parties
    ]
    sessions = [
        {**_columns(s, mediation_sessions), "case_id": case_id, "attendees": list(s.attendees)}
        for case_id, c in zip(case_ids, cases, strict=True)
        for s in c.sessions
    ]
    numbers: dict[int, int] = {}
    for c in cases:
        numbers[c.year] = max(numbers.get(c.year, 0), c.number)
    for table, values in (
        (mediation_parties, parties),
        (mediation_sessions, sessions),
        (mediation_case_numbers, [{"year": y, "last_number": n} for y, n in numbers.items()]),
    ):
        if values:
            conn.execute(table.insert(), values)

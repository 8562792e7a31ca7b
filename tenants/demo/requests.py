"""The demo's requests (诉求) and action lists (行动清单): each request walked through
requests/states.py one step at a time, as its actions would have taken it, with the
escalations the five-minute sweep would have made."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from villagelink.jobs.escalation import ESCALATION_ACTOR
from villagelink.jobs.scheduler import ESCALATION_INTERVAL
from villagelink.tenants.demo.bulk import (
    columns,
    insert_returning_ids,
    optional_id,
)
from villagelink.tenants.demo.village import (
    DEMO_SUB,
    HISTORY_DAYS,
    Village,
    allotted,
)
from villagelink.tenants.requests.actions import (
    LEVEL_LABELS,
    TIER_LABELS,
    UNSATISFIED_AT_MOST,
    share,
)
from villagelink.tenants.requests.states import (
    ACCEPT,
    ASSIGN,
    CLOSE,
    RATE_SATISFIED,
    RATE_UNSATISFIED,
    REJECT,
    RESOLVE,
    START,
    request_step,
    require_action_list_transition,
)
from villagelink.tenants.requests.tables import (
    DEFAULT_DEADLINE_HOURS,
    ESCALATION_LEVELS,
    GRID,
    OPEN_STATES,
    PLANNED,
    REGION,
    SIMPLE,
    SUBMITTED,
    VILLAGE,
    action_list_requests,
    action_lists,
    request_categories,
    request_events,
    requests,
)

if TYPE_CHECKING:
    from villagelink.tenants.demo.affairs import AffairsRows
    from villagelink.tenants.demo.residents import VillageIds

# The seeded escalations are the ones the escalation sweep would have made: by its
# actor, at its interval.
ESCALATION_SUB = ESCALATION_ACTOR.principal.sub
SWEEP_EVERY = timedelta(seconds=ESCALATION_INTERVAL)


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

    def step(self, action: str, at: datetime, note: str | None = None, **changes) -> None:
        """Take `action` as its action would: the state it leads to is the state
        machine's (a step it does not allow raises, so the story cannot break the rules)."""
        to_state = request_step(self.state, action)
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

    def __init__(self, village: Village, life: _RequestLife, grade: str, problem: tuple[str, str]):
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
            ACCEPT,
            self.after(0.2, 3),
            self.v.rng.choice(notes) if notes else None,
            grade=self.grade,
            due_at=self.life.row["created_at"] + _window(self.grade),
        )

    def assign(self, low: float = 0.1, high: float = 1.5) -> None:
        staff = self.v.auto_assignee(self.life.row["grid"])
        person = self.v.rows.staff[staff]
        note = f"自动派单：{person.name}（{TIER_LABELS[person.tier]}）"
        self.life.step(ASSIGN, self.after(low, high), note, assignee=staff)

    def start(self) -> None:
        self.life.step(START, self.after(0.3, 4))

    def resolve(self, share_of_deadline: float) -> None:
        """Resolved when `share_of_deadline` of the deadline since registration (or since
        reopening) has passed, or shortly after starting if that comes first."""
        began = self.life.row["due_at"] - _window(self.grade)
        self.at = max(began + _scaled(_window(self.grade), share_of_deadline), self.after(0.3, 2))
        self.life.step(
            RESOLVE,
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
                RATE_UNSATISFIED,
                at,
                note,
                **rated,
                due_at=at + _window(self.grade),
                resolved_at=None,
                closed_at=None,
            )
        else:
            self.life.step(RATE_SATISFIED, at, note, **rated, closed_at=at)

    def close(self) -> None:
        at = self.after(72, 120)
        self.life.step(CLOSE, at, CLOSE_NOTE, closed_at=at)

    def reject(self) -> None:
        reason = self.v.rng.choice(REJECTION_REASONS)
        self.life.step(REJECT, self.after(0.5, 8), reason, rejection_reason=reason)


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


def _request_start(v: Village, fate: str, grade: str, length: timedelta, serial: int) -> datetime:
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


def _request_place(v: Village) -> dict[str, Any]:
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


def build_requests(v: Village) -> list[_RequestLife]:
    rng = v.rng
    count = round(len(v.rows.residents) * HISTORY_DAYS * REQUESTS_PER_1000_RESIDENTS_A_DAY / 1000)
    if not v.rows.households:
        return []
    fates = allotted(FATE_WEIGHTS, count)
    categories = allotted(CATEGORY_WEIGHTS, count)
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


def build_action_lists(v: Village, lives: list[_RequestLife]) -> list[ActionListRow]:
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
        reached, version, updated_at = PLANNED, 1, created_at
        for next_status in LIST_PATHS[status]:
            at = created_at + timedelta(days=v.rng.uniform(*LIST_PROGRESS[next_status]))
            if at >= v.start:
                break
            require_action_list_transition(reached, next_status)
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


def write_requests(conn: Connection, affairs: AffairsRows, ids: VillageIds) -> None:
    categories = dict(
        conn.execute(select(request_categories.c.code, request_categories.c.id)).all()
    )
    request_ids = insert_returning_ids(
        conn,
        requests,
        [
            {
                **columns(r, requests),
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
        {**columns(e, request_events), "request_id": request_id, "actor_name": e.actor_sub}
        for request_id, r in zip(request_ids, affairs.requests, strict=True)
        for e in r.events
    ]
    if events:
        conn.execute(request_events.insert(), events)
    list_ids = insert_returning_ids(
        conn, action_lists, [columns(a, action_lists) for a in affairs.action_lists]
    )
    links = [
        {"action_list_id": list_id, "request_id": request_ids[n]}
        for list_id, a in zip(list_ids, affairs.action_lists, strict=True)
        for n in a.requests
    ]
    if links:
        conn.execute(action_list_requests.insert(), links)
    # The outbox rows are the action's own (`share`), newest event and all: the demo's
    # requests escalated to the region reach its coordinators as real ones do.
    share(conn, request_ids)

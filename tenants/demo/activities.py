"""The demo's volunteer teams, activities with their occurrences, sign-ups and check-ins,
and the points ledger: places taken and freed by the activities' sign-up queue, points
as check-in awards them and redemption allows them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from villagelink.tenants.activities.actions import SIGN_UP, shared_with_neighbours
from villagelink.tenants.activities.actions import TRANSITIONS as ACTIVITY_TRANSITIONS
from villagelink.tenants.activities.places import (
    CANCELLED,
    CHECKED_IN,
    HOLDING_A_PLACE,
    SIGNED_UP,
    WAITLISTED,
    has_free_place,
    sign_up_state,
)
from villagelink.tenants.activities.points import (
    DEFAULT_POINTS_PER_VOLUNTEER_HOUR,
    MANUAL,
    REDEMPTION,
    session_hours,
    volunteer_points,
    volunteer_reason,
)
from villagelink.tenants.activities.recurrence import Rule, dates, span
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
from villagelink.tenants.demo.bulk import (
    columns,
    insert_returning_ids,
    iso,
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

if TYPE_CHECKING:
    from villagelink.tenants.demo.affairs import AffairsRows
    from villagelink.tenants.demo.residents import VillageIds


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


def build_teams(v: Village) -> list[TeamRow]:
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


class Activities:
    """Activities with their occurrences of the history and of the scheduling horizon
    (as `createActivity` and `scheduleActivity` make them), sign-ups taken in the order
    residents came (a place while there is one, else the waitlist; a cancelled place
    goes to the first on the waitlist), check-ins at past sessions, and the hours and
    points of volunteer service."""

    def __init__(self, v: Village, rows: AffairsRows):
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
        """State, version and last change: created as a draft (1), then each step of the
        activities' transitions a version: published, then finished a day or two after
        its last session or cancelled."""
        v = self.v
        life = [("draft", created_at)]
        if plan.state != "draft":
            life.append(("publish", published_at))
        if plan.state == "cancelled":
            life.append(("cancel", v.between(published_at, v.start)))
        if plan.state == "finished" and days:
            finished_at = span(days[-1], plan.at, plan.minutes)[1] + v.hours(20, 60)
            if finished_at < v.start:
                life.append(("finish", finished_at))
        state = "draft"
        for step, _ in life[1:]:
            sources, state_after, _label = ACTIVITY_TRANSITIONS[step]
            if state not in sources:
                raise ValueError(f"an activity may not {step} when {state}")
            state = state_after
        return state, len(life), life[-1][1]

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
            if state == SIGNED_UP and occ.ends_at <= v.start and v.rng.random() < CHECK_IN_SHARE:
                checked_in_at = occ.starts_at - timedelta(minutes=v.rng.randint(0, 55))
                state, updated_at = CHECKED_IN, checked_in_at
                if plan.kind == VOLUNTEER_SERVICE:
                    hours = session_hours(occ.starts_at, occ.ends_at)
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
                states[n] = (sign_up_state(taken, capacity), None, at)
                taken += states[n][0] in HOLDING_A_PLACE
                continue
            was = states[n][0]
            states[n] = (CANCELLED, at, at)
            if was not in HOLDING_A_PLACE:
                continue
            taken -= 1
            waiting = [k for k, (state, *_) in enumerate(states) if state == WAITLISTED]
            if waiting and has_free_place(taken, capacity):
                states[waiting[0]] = (SIGNED_UP, None, at)  # 递补: the first in the queue
                taken += 1
        return states

    def _earn(self, sign_up: int, resident: int, title: str, hours: Decimal, at: datetime) -> None:
        """The points a volunteer's check-in earns (`checkInToActivity`)."""
        points = volunteer_points(hours, DEFAULT_POINTS_PER_VOLUNTEER_HOUR)
        reason = volunteer_reason(title, hours)
        self.rows.points.append(PointsRow(resident, points, reason, SIGN_UP, sign_up, at))


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


def build_points(v: Village, rows: AffairsRows) -> None:
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
                PointsRow(resident, -cost, f"积分超市兑换：{item}", REDEMPTION, None, at)
            )
    rows.points.sort(key=lambda e: e.created_at)


def write_teams(conn: Connection, teams: list[TeamRow], ids: VillageIds):
    team_ids = insert_returning_ids(
        conn,
        volunteer_teams,
        [
            {**columns(t, volunteer_teams), "leader_resident_id": ids.residents[t.leader]}
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
        outbox_row(
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


def write_activities(conn: Connection, affairs: AffairsRows, ids: VillageIds):
    activity_ids = insert_returning_ids(
        conn, activities, [columns(a, activities) for a in affairs.activities]
    )
    occurrence_ids = insert_returning_ids(
        conn,
        activity_occurrences,
        [
            {**columns(o, activity_occurrences), "activity_id": activity_ids[o.activity]}
            for o in affairs.occurrences
        ],
    )
    sign_up_ids = insert_returning_ids(
        conn,
        activity_sign_ups,
        [
            {
                **columns(s, activity_sign_ups),
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
                "starts_at": iso(o.starts_at),
                "ends_at": iso(o.ends_at),
                "capacity": o.capacity,
            }
        )
    # What neighbours see: the activities' own rule.
    shared = [
        outbox_row(
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
        if shared_with_neighbours({"open_to_neighbours": a.open_to_neighbours, "state": a.state})
    ]
    return sign_up_ids, shared


def write_points(
    conn: Connection, points: list[PointsRow], ids: VillageIds, sign_up_ids: list[int]
) -> None:
    if points:
        conn.execute(
            points_ledger.insert(),
            [
                {
                    **columns(p, points_ledger),
                    "resident_id": ids.residents[p.resident],
                    "source_id": optional_id(sign_up_ids, p.sign_up),
                    "created_by": DEMO_SUB,
                }
                for p in points
            ],
        )

"""The demo's public notices (村务公开) of every category, in the states the notices'
transitions lead to, with residents' reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from villagelink.tenants.demo.bulk import (
    columns,
    insert_returning_ids,
    iso,
    outbox_row,
)
from villagelink.tenants.demo.village import (
    Village,
)
from villagelink.tenants.notices.actions import TRANSITIONS as NOTICE_TRANSITIONS
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
from villagelink.tenants.outbox import DELETE

if TYPE_CHECKING:
    pass


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


def _notice_values(v: Village, day: date) -> dict[str, Any]:
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


def _walked(steps: tuple[str, ...]) -> str:
    """The state a draft reaches by `steps`, each checked against the notices' own
    transitions."""
    state = DRAFT
    for step in steps:
        start, state_after, _label = NOTICE_TRANSITIONS[step]
        if state != start:
            raise ValueError(f"a notice may not {step} when {state}")
        state = state_after
    return state


def build_notices(v: Village) -> list[NoticeRow]:
    """Notices of every category: published ones (one with a window already closed,
    one opening in a few days), a withdrawn one and a draft each; versions as created (1),
    published (2), withdrawn (3), each step one of the notices' transitions. Residents'
    reads while each was visible."""
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
        steps = ("publish", "withdraw") if withdrawn_at else ("publish",)
        seen_until = min(t for t in (publish_until, withdrawn_at, v.start) if t is not None)
        reads = _reads(v, publish_from or published_at, seen_until)
        built.append(
            NoticeRow(
                plan.category,
                title,
                body,
                _walked(steps),
                publish_from,
                publish_until,
                published_at,
                withdrawn_at,
                plan.withdrawal_reason,
                salt,
                1 + len(steps),
                written,
                withdrawn_at or published_at,
                reads,
            )
        )
    return built


def _reads(v: Village, first: datetime, last: datetime) -> tuple[NoticeReadRow, ...]:
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


def write_notices(conn: Connection, built: list[NoticeRow]) -> list[dict]:
    notice_ids = insert_returning_ids(conn, notices, [columns(n, notices) for n in built])
    reads = [
        {**columns(r, notice_reads), "notice_id": notice_id}
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
                "publish_from": iso(n.publish_from),
                "publish_until": iso(n.publish_until),
                "published_at": iso(n.published_at),
            }
            shared.append(outbox_row("Notice", notice_id, n.version, payload))
        elif n.state == WITHDRAWN:
            shared.append(outbox_row("Notice", notice_id, n.version, {}, operation=DELETE))
    return shared

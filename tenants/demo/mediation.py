"""The demo's mediation cases (调解): registered, mediated and concluded as the
mediation actions allow, numbered per year."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from villagelink.tenants.clock import local
from villagelink.tenants.demo.bulk import (
    columns,
    insert_returning_ids,
    optional_id,
)
from villagelink.tenants.demo.village import (
    Village,
)
from villagelink.tenants.mediation.actions import NEXT_STATUSES, STATUS_AFTER
from villagelink.tenants.mediation.tables import (
    mediation_case_numbers,
    mediation_cases,
    mediation_parties,
    mediation_sessions,
)

if TYPE_CHECKING:
    from villagelink.tenants.demo.residents import VillageIds


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


# --- mediation (调解) --------------------------------------------------------------------

MEDIATION_ROOM = "村人民调解室"


def _neighbours_above_and_below(v: Village) -> tuple[int, int] | None:
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


def build_cases(v: Village) -> list[CaseRow]:
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
                "end": ("referred", None, "区劳动保障监察大队"),
            }
        )
    return _numbered(v, [_case(v, plan) for plan in cases[:wanted]])


def _moved(status: str, to_status: str) -> str:
    """`to_status`, if the mediation actions' NEXT_STATUSES allow it from `status`."""
    if to_status not in NEXT_STATUSES.get(status, frozenset()):
        raise ValueError(f"a case may not move from {status} to {to_status}")
    return to_status


def _case(v: Village, plan: dict[str, Any]) -> CaseRow:
    """One case as the actions leave it: registered (1), mediation started (2), a
    version for each session, concluded last (the status its outcome leads to)."""
    created_at = v.daytime(
        v.start - timedelta(days=plan["days_ago"]), v.start - timedelta(days=plan["days_ago"] - 1)
    )
    status, version, updated_at = "registered", 1, created_at
    mediator_name, mediator_staff = plan["mediator"] or (None, None)
    sessions = []
    if plan["mediator"]:
        at = created_at + v.hours(24, 72)
        status, version, updated_at = _moved(status, "in_mediation"), 2, at
        attendees = (*(p.name for p in plan["parties"]), mediator_name)
        for notes in plan["sessions"]:
            at += v.hours(24 * 2, 24 * 6)
            sessions.append(SessionRow(at.date(), MEDIATION_ROOM, attendees, notes, at))
            version, updated_at = version + 1, at
    concluded = dict.fromkeys(("outcome", "agreement_text", "referred_to", "concluded_at"))
    if plan["end"]:
        outcome, agreement, referred_to = plan["end"]
        status = _moved(status, STATUS_AFTER[outcome])
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


def _numbered(v: Village, cases: list[CaseRow]) -> list[CaseRow]:
    """Numbered in order of registration within each year (调〔year〕第n号)."""
    numbered, last = [], {}
    for case in sorted(cases, key=lambda c: c.created_at):
        year = local(case.created_at).year
        last[year] = last.get(year, 0) + 1
        numbered.append(replace(case, year=year, number=last[year]))
    return numbered


def write_cases(conn: Connection, cases: list[CaseRow], ids: VillageIds) -> None:
    """Cases, parties and sessions, and the last number given out each year. Never
    shared: mediation has no outbox."""
    case_ids = insert_returning_ids(
        conn,
        mediation_cases,
        [
            {
                **columns(c, mediation_cases),
                "mediator_staff_id": optional_id(ids.staff, c.mediator_staff),
            }
            for c in cases
        ],
    )
    parties = [
        {
            **columns(p, mediation_parties),
            "case_id": case_id,
            "resident_id": optional_id(ids.residents, p.resident),
        }
        for case_id, c in zip(case_ids, cases, strict=True)
        for p in c.parties
    ]
    sessions = [
        {**columns(s, mediation_sessions), "case_id": case_id, "attendees": list(s.attendees)}
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

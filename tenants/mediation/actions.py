"""Writes to mediation cases: the only place they change.

A case moves registered (已登记) → in_mediation (调解中) → resolved (达成协议) |
referred (转交) | closed (未达成协议); until it ends it may be withdrawn (撤回).
Any other move is refused as a userError and changes nothing.

Every action validates its input, writes inside a savepoint and adds an audit
entry to the same transaction. No action here appends to the outbox: mediation
cases are never shared with neighbouring villages. Who quarrels with whom, and
what they said before the mediator, belongs to the village's mediation room
alone (privacy), whatever an agreement between villages says.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, func
from sqlalchemy.dialects.postgresql import insert

from villagelink.platform.audit import Actor, record
from villagelink.tenants.grids import active_staff_by_ids
from villagelink.tenants.mediation.queries import case_number, cases_by_ids
from villagelink.tenants.mediation.tables import (
    mediation_case_numbers,
    mediation_cases,
    mediation_parties,
    mediation_sessions,
)
from villagelink.tenants.mediation.validation import (
    CaseChangesSchema,
    ConclusionSchema,
    NewCaseSchema,
    SessionSchema,
    StartSchema,
    WithdrawalSchema,
)
from villagelink.tenants.residents.queries import residents_by_ids
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID_TRANSITION,
    NOT_FOUND,
    REQUIRED,
    ActionFailed,
    UserError,
    refused,
    validated,
)

MEDIATION_CASE = "MediationCase"

# The status machine: which statuses may follow which. Ended cases go nowhere.
NEXT_STATUSES: dict[str, frozenset[str]] = {
    "registered": frozenset({"in_mediation", "withdrawn"}),
    "in_mediation": frozenset({"resolved", "referred", "closed", "withdrawn"}),
}
STATUS_AFTER = {"agreement": "resolved", "no_agreement": "closed", "referred": "referred"}
STATUS_LABELS = {
    "registered": "已登记",
    "in_mediation": "调解中",
    "resolved": "已达成协议",
    "referred": "已转交",
    "closed": "未达成协议已终结",
    "withdrawn": "已撤回",
}
OPEN_STATUSES = frozenset(NEXT_STATUSES)


def _case(conn: Connection, case_id: int) -> dict:
    """The case, locked for the rest of the transaction: its status is about to be judged."""
    found = cases_by_ids(conn, [case_id], lock=True).get(case_id)
    if found is None:
        raise refused("id", "调解案件不存在", NOT_FOUND)
    return found


def _refuse(case: dict, doing: str) -> ActionFailed:
    label = STATUS_LABELS[case["status"]]
    return refused(None, f"案件{label}，不能{doing}", INVALID_TRANSITION)


def _require_open(case: dict, doing: str) -> None:
    if case["status"] not in OPEN_STATUSES:
        raise _refuse(case, doing)


def _move_allowed(case: dict, to_status: str, doing: str) -> None:
    if to_status not in NEXT_STATUSES.get(case["status"], frozenset()):
        raise _refuse(case, doing)


def _next_number(conn: Connection, year: int) -> int:
    """The year's next case number. The upsert locks the year's row until commit,
    so concurrent registrations queue here instead of taking the same number."""
    statement = insert(mediation_case_numbers).values(year=year, last_number=1)
    return conn.execute(
        statement.on_conflict_do_update(
            index_elements=["year"],
            set_={"last_number": mediation_case_numbers.c.last_number + 1},
        ).returning(mediation_case_numbers.c.last_number)
    ).scalar_one()


def _mediator(conn: Connection, mediator: dict) -> dict:
    """Columns for a mediator: a grid staff member's name is copied onto the case,
    so the case still says who mediated if their staff record goes."""
    staff_id = mediator.get("staff")
    if staff_id is None:
        return {"mediator_name": mediator["name"].strip(), "mediator_staff_id": None}
    staff = active_staff_by_ids(conn, [staff_id]).get(staff_id)
    if staff is None:
        raise refused("mediator.staff", "网格人员不存在", NOT_FOUND)
    return {"mediator_name": staff["name"], "mediator_staff_id": staff_id}


def _party_rows(conn: Connection, parties: list[dict]) -> list[dict]:
    """Rows for the parties; a resident party takes their name from the resident record."""
    wanted = [p["resident"] for p in parties if p.get("resident") is not None]
    residents = residents_by_ids(conn, wanted, allowed_grids=None)
    errors, seen, rows = [], set(), []
    for i, party in enumerate(parties):
        resident_id = party.get("resident")
        if resident_id is None:
            name = party["name"].strip()
            rows.append(
                {
                    "role": party["role"],
                    "resident_id": None,
                    "name": name,
                    "phone": party.get("phone"),
                }
            )
            continue
        field = f"parties.{i}.resident"
        if resident_id not in residents:
            errors.append(UserError(field, "居民不存在", NOT_FOUND))
        elif resident_id in seen:
            errors.append(UserError(field, "同一居民不能重复列为当事人", DUPLICATE))
        else:
            seen.add(resident_id)
            name = residents[resident_id]["name"]
            rows.append(
                {"role": party["role"], "resident_id": resident_id, "name": name, "phone": None}
            )
    if errors:
        raise ActionFailed(errors)
    return rows


def _audit(conn: Connection, actor: Actor, village: str, action: str, case: dict, **what) -> None:
    # Names of the fields only, never their content: the audit log is read by more
    # people than the mediation room.
    record(
        conn,
        actor,
        village=village,
        action=f"mediation_case.{action}",
        subject_type=MEDIATION_CASE,
        subject_id=case["id"],
        **what,
    )


def _reread(conn: Connection, case_id: int) -> dict:
    return cases_by_ids(conn, [case_id])[case_id]


def do_create_mediation_case(
    conn: Connection, actor: Actor, village: str, data: dict[str, Any], *, today: date
) -> dict:
    """Register a case (登记) under the next number of `today`'s year."""
    values = validated(NewCaseSchema(), data)
    mediator = _mediator(conn, values["mediator"]) if values["mediator"] else {}
    parties = _party_rows(conn, values["parties"])
    with conn.begin_nested():
        row = {
            "year": today.year,
            "number": _next_number(conn, today.year),
            "category": values["category"],
            "summary": values["summary"],
            **mediator,
        }
        case_id = conn.execute(
            mediation_cases.insert().values(**row).returning(mediation_cases.c.id)
        ).scalar_one()
        conn.execute(mediation_parties.insert(), [{**p, "case_id": case_id} for p in parties])
    case = _reread(conn, case_id)
    _audit(
        conn,
        actor,
        village,
        "create",
        case,
        fields=sorted([*row, "parties"]),
        details={"number": case_number(case), "parties": len(parties)},
    )
    return case


def do_update_mediation_case(
    conn: Connection, actor: Actor, village: str, case_id: int, changes: dict[str, Any]
) -> dict:
    """Correct the category, summary or mediator of a case that has not ended."""
    values = validated(CaseChangesSchema(), changes)
    case = _case(conn, case_id)
    _require_open(case, "修改")
    if "mediator" in values:
        values.update(_mediator(conn, values.pop("mediator")))
    changed = {k: v for k, v in values.items() if case[k] != v}
    if changed:
        conn.execute(
            mediation_cases.update()
            .where(mediation_cases.c.id == case_id)
            .values(**changed, version=mediation_cases.c.version + 1, updated_at=func.now())
        )
        _audit(conn, actor, village, "update", case, fields=sorted(changed))
    return _reread(conn, case_id)


def _set_status(
    conn: Connection,
    actor: Actor,
    village: str,
    case: dict,
    to_status: str,
    action: str,
    **columns: Any,
) -> dict:
    with conn.begin_nested():
        conn.execute(
            mediation_cases.update()
            .where(mediation_cases.c.id == case["id"])
            .values(
                status=to_status,
                **columns,
                version=mediation_cases.c.version + 1,
                updated_at=func.now(),
            )
        )
    _audit(
        conn,
        actor,
        village,
        action,
        case,
        fields=sorted(["status", *(k for k, v in columns.items() if v is not None)]),
        details={"from": case["status"], "to": to_status},
    )
    return _reread(conn, case["id"])


def do_start_mediation(
    conn: Connection, actor: Actor, village: str, case_id: int, data: dict[str, Any]
) -> dict:
    """Begin mediating (受理调解): the case needs a mediator from here on."""
    values = validated(StartSchema(), data)
    case = _case(conn, case_id)
    _move_allowed(case, "in_mediation", "开始调解")
    mediator = _mediator(conn, values["mediator"]) if values["mediator"] else {}
    if not mediator and not case["mediator_name"]:
        raise refused("mediator", "开始调解前须指定调解员", REQUIRED)
    return _set_status(conn, actor, village, case, "in_mediation", "start", **mediator)


def do_add_mediation_session(
    conn: Connection, actor: Actor, village: str, case_id: int, data: dict[str, Any]
) -> dict:
    """Record a session (调解记录) of a case under mediation."""
    values = validated(SessionSchema(), data)
    case = _case(conn, case_id)
    if case["status"] != "in_mediation":
        raise _refuse(case, "添加调解记录")
    with conn.begin_nested():
        session_id = conn.execute(
            mediation_sessions.insert()
            .values(
                case_id=case_id,
                held_on=values["held_on"],
                place=values["place"],
                attendees=values["attendees"],
                notes=values["notes"],
            )
            .returning(mediation_sessions.c.id)
        ).scalar_one()
        conn.execute(
            mediation_cases.update()
            .where(mediation_cases.c.id == case_id)
            .values(version=mediation_cases.c.version + 1, updated_at=func.now())
        )
    _audit(
        conn,
        actor,
        village,
        "add_session",
        case,
        fields=sorted(k for k, v in values.items() if v is not None),
        details={"session": session_id},
    )
    return _reread(conn, case_id)


def do_conclude_mediation(
    conn: Connection, actor: Actor, village: str, case_id: int, data: dict[str, Any]
) -> dict:
    """End mediation with its outcome: 达成协议 → resolved, 未达成协议 → closed, 转交 → referred."""
    values = validated(ConclusionSchema(), data)
    case = _case(conn, case_id)
    to_status = STATUS_AFTER[values["outcome"]]
    _move_allowed(case, to_status, "结案")
    return _set_status(
        conn,
        actor,
        village,
        case,
        to_status,
        "conclude",
        outcome=values["outcome"],
        agreement_text=values["agreement_text"],
        referred_to=values["referred_to"],
        closing_note=values["note"],
        concluded_at=func.now(),
    )


def do_withdraw_mediation_case(
    conn: Connection, actor: Actor, village: str, case_id: int, data: dict[str, Any]
) -> dict:
    """The applicant withdraws (撤回申请) before the case has ended."""
    values = validated(WithdrawalSchema(), data)
    case = _case(conn, case_id)
    _move_allowed(case, "withdrawn", "撤回")
    return _set_status(
        conn,
        actor,
        village,
        case,
        "withdrawn",
        "withdraw",
        closing_note=values["reason"],
        concluded_at=func.now(),
    )

"""Residents' accounts (居民账号): bind, request, approve, reject, unbind.

The village admin binds an account to a resident after checking who the person
is (实名认证), or approves the account's own request. A request names an ID
number and a phone; it is matched to an active resident record here and the
requester hears the same answer whether a record matched or not, so that the
form cannot be used to find out who lives in the village.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields
from sqlalchemy import Connection, func, select

from villagelink.platform.audit import Actor, record
from villagelink.tenants import models as m
from villagelink.tenants.fields import FreeText, messages, optional_text, phone_field
from villagelink.tenants.resident_accounts.queries import account_of, accounts_by_ids
from villagelink.tenants.resident_accounts.tables import (
    BOUND,
    BY_ADMIN,
    BY_REQUEST,
    PENDING,
    REJECTED,
    RESIDENT_ACCOUNT,
    UNBOUND,
    resident_accounts,
)
from villagelink.tenants.residents.validation import check_id_number
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID_TRANSITION,
    NOT_FOUND,
    REQUIRED,
    refused,
    validated,
)


class VerificationSchema(Schema):
    # How the person's identity was checked (实名认证), e.g. 身份证原件核验.
    verification = FreeText("核验方式", 200, required=True)


class BindingSchema(VerificationSchema):
    # The account's subject as the identity provider names it (Keycloak's user id).
    account = FreeText("账号标识", 200, required=True)
    username = optional_text("账号名", 100)


class AccountRequestSchema(Schema):
    id_number = fields.String(required=True, validate=check_id_number, error_messages=messages())
    phone = fields.String(
        required=True,
        validate=phone_field().validate,
        error_messages=messages(),
    )


class ReasonSchema(Schema):
    reason = FreeText("原因", 500, required=True)


def _audit(
    conn: Connection, actor: Actor, village: str, what: str, account: dict, **details: Any
) -> None:
    record(
        conn,
        actor,
        village=village,
        action=f"resident_account.{what}",
        subject_type=RESIDENT_ACCOUNT,
        subject_id=account["id"],
        details={"resident": account["resident_id"], "account": account["account_sub"], **details},
    )


def _active_resident(conn: Connection, resident_id: int) -> None:
    r = m.residents
    found = conn.execute(
        select(r.c.id).where(r.c.id == resident_id, r.c.status == m.ACTIVE_RESIDENT)
    ).first()
    if found is None:
        raise refused("resident", "居民不存在或已迁出", NOT_FOUND)


def _resident_free(conn: Connection, resident_id: int) -> None:
    a = resident_accounts
    taken = conn.execute(
        select(a.c.id).where(a.c.resident_id == resident_id, a.c.state == BOUND)
    ).first()
    if taken is not None:
        raise refused("resident", "该居民已绑定账号，请先解除原绑定", DUPLICATE)


def _locked(conn: Connection, account_id: int) -> dict:
    a = resident_accounts
    row = conn.execute(select(a).where(a.c.id == account_id).with_for_update()).mappings().first()
    if row is None:
        raise refused("id", "账号申请或绑定不存在", NOT_FOUND)
    return dict(row)


def _decide(conn: Connection, actor: Actor, account_id: int, state: str, **values: Any) -> dict:
    a = resident_accounts
    conn.execute(
        a.update()
        .where(a.c.id == account_id)
        .values(
            state=state,
            decided_by=actor.principal.display_name,
            decided_at=func.now(),
            updated_at=func.now(),
            **values,
        )
    )
    return accounts_by_ids(conn, [account_id])[account_id]


def do_bind_resident_account(
    conn: Connection, actor: Actor, village: str, resident_id: int, data: dict
) -> dict:
    """实名认证 at the counter: bind the account to the resident. A pending request of
    the same account becomes this binding."""
    values = validated(BindingSchema(), data)
    _active_resident(conn, resident_id)
    _resident_free(conn, resident_id)
    current = account_of(conn, values["account"])
    if current is not None and current["state"] == BOUND:
        raise refused("account", "该账号已绑定其他居民，请先解除原绑定", DUPLICATE)
    a = resident_accounts
    with conn.begin_nested():
        if current is not None:
            conn.execute(a.update().where(a.c.id == current["id"]).values(resident_id=resident_id))
            account_id = current["id"]
        else:
            account_id = conn.execute(
                a.insert()
                .values(
                    account_sub=values["account"],
                    username=values.get("username"),
                    resident_id=resident_id,
                    state=PENDING,
                    source=BY_ADMIN,
                )
                .returning(a.c.id)
            ).scalar_one()
        bound = _decide(conn, actor, account_id, BOUND, verification=values["verification"])
        _audit(conn, actor, village, "bind", bound, verification=values["verification"])
    return bound


def do_request_resident_account(conn: Connection, actor: Actor, village: str, data: dict) -> dict:
    """The resident asks for their account to be bound. Matched by ID number and phone
    to an active record; whether one matched is for the admin's eyes only."""
    values = validated(AccountRequestSchema(), data)
    principal = actor.principal
    current = account_of(conn, principal.sub)
    if current is not None and current["state"] == BOUND:
        raise refused(None, "您的账号已完成实名绑定", DUPLICATE)
    r = m.residents
    match = conn.execute(
        select(r.c.id).where(
            r.c.id_number == values["id_number"],
            r.c.phone == values["phone"],
            r.c.status == m.ACTIVE_RESIDENT,
        )
    ).scalar_one_or_none()
    a = resident_accounts
    with conn.begin_nested():
        if current is not None:
            # A second request replaces the first: the person may have mistyped.
            conn.execute(
                a.update()
                .where(a.c.id == current["id"])
                .values(resident_id=match, updated_at=func.now())
            )
            account_id = current["id"]
        else:
            account_id = conn.execute(
                a.insert()
                .values(
                    account_sub=principal.sub,
                    username=principal.username,
                    resident_id=match,
                    state=PENDING,
                    source=BY_REQUEST,
                )
                .returning(a.c.id)
            ).scalar_one()
        requested = accounts_by_ids(conn, [account_id])[account_id]
        _audit(conn, actor, village, "request", requested, matched=match is not None)
    return requested


def do_approve_resident_account(
    conn: Connection, actor: Actor, village: str, account_id: int, data: dict
) -> dict:
    """Approve a pending request whose ID number and phone matched a record."""
    values = validated(VerificationSchema(), data)
    current = _locked(conn, account_id)
    if current["state"] != PENDING:
        raise refused("id", "只能审核待审核的申请", INVALID_TRANSITION)
    if current["resident_id"] is None:
        raise refused(
            "id",
            "申请的身份证号码和手机号未匹配到居民记录，请驳回，或核实身份后直接绑定",
            REQUIRED,
        )
    _resident_free(conn, current["resident_id"])
    with conn.begin_nested():
        bound = _decide(conn, actor, account_id, BOUND, verification=values["verification"])
        _audit(conn, actor, village, "approve", bound, verification=values["verification"])
    return bound


def do_reject_resident_account(
    conn: Connection, actor: Actor, village: str, account_id: int, data: dict
) -> dict:
    return _end_with_reason(
        conn, actor, village, account_id, data, PENDING, REJECTED, "reject", "只能驳回待审核的申请"
    )


def do_unbind_resident_account(
    conn: Connection, actor: Actor, village: str, account_id: int, data: dict
) -> dict:
    """End a binding (a lost phone, a mistaken binding): the account acts for no one."""
    return _end_with_reason(
        conn, actor, village, account_id, data, BOUND, UNBOUND, "unbind", "只能解除已绑定的账号"
    )


def _end_with_reason(
    conn: Connection,
    actor: Actor,
    village: str,
    account_id: int,
    data: dict,
    from_state: str,
    to_state: str,
    what: str,
    wrong_state: str,
) -> dict:
    """A step that ends a request or a binding, with the reason the resident is told."""
    values = validated(ReasonSchema(), data)
    current = _locked(conn, account_id)
    if current["state"] != from_state:
        raise refused("id", wrong_state, INVALID_TRANSITION)
    with conn.begin_nested():
        ended = _decide(conn, actor, account_id, to_state, reason=values["reason"])
        _audit(conn, actor, village, what, ended, reason=values["reason"])
    return ended

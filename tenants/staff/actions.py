"""Writes to the village's grid staff (网格员): the only place they change.

The village admin adds staff in the three tiers, changes them, assigns them to grids of
their tier's level (网格长 the community, 专职网格员 large grids, 微网格员 micro-grids),
invites each to a login, and disables those who leave. Staff are never deleted: alerts,
requests and the duty roster name them. Disabling takes them off their grids and the roster
still ahead, and disables their login; enabling gives the login back, not the grids.

Logins live in the account directory (Keycloak, or the development issuer's accounts): an
invitation makes a `grid-worker` account in the village's group with a temporary password,
returned once and stored nowhere, and links it to the staff record (`account_sub`).
Every write adds an audit entry to the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from villagelink.platform.audit import Actor, record
from villagelink.platform.identity.accounts import AccountDirectory, Login
from villagelink.platform.identity.keycloak_admin import AccountExists
from villagelink.platform.identity.principal import GRID_WORKER
from villagelink.tenants import models as m
from villagelink.tenants.sensing.tables import duty_shifts
from villagelink.tenants.staff.validation import DisableSchema, InviteSchema, StaffSchema
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID,
    INVALID_TRANSITION,
    NOT_FOUND,
    ActionFailed,
    refused,
    validated,
)

GRID_STAFF = "GridStaff"
# The grid level each tier looks after.
TIER_LEVEL = {"grid_chief": "community", "grid_worker": "large", "micro_grid_worker": "micro"}
TIER_NAMES = {"grid_chief": "网格长", "grid_worker": "专职网格员", "micro_grid_worker": "微网格员"}
LEVEL_NAMES = {"community": "社区", "large": "网格", "micro": "微网格"}
# Staff of every tier log in as grid workers: the domain has no admin tier among them.
STAFF_ROLE = GRID_WORKER


def _locked(conn: Connection, staff_id: int) -> dict:
    s = m.grid_staff
    row = conn.execute(select(s).where(s.c.id == staff_id).with_for_update()).mappings().first()
    if row is None:
        raise refused("id", "网格员不存在", NOT_FOUND)
    return dict(row)


def _active(conn: Connection, staff_id: int) -> dict:
    staff = _locked(conn, staff_id)
    if staff["disabled_at"] is not None:
        raise refused("id", "该网格员已停用，请先启用", INVALID_TRANSITION)
    return staff


def _check_grids(conn: Connection, tier: str, grid_ids: list[int]) -> None:
    """Every grid exists and is of the level the tier looks after."""
    g = m.grids
    found = dict(conn.execute(select(g.c.id, g.c.level).where(g.c.id.in_(grid_ids))).all())
    if set(grid_ids) - set(found):
        raise refused("grids", "网格不存在", NOT_FOUND)
    level = TIER_LEVEL[tier]
    if any(found[i] != level for i in grid_ids):
        raise refused(
            "grids", f"{TIER_NAMES[tier]}只能分配到{LEVEL_NAMES[level]}一级的网格", INVALID
        )


def _assign(conn: Connection, staff_id: int, grid_ids: list[int]) -> None:
    a = m.grid_assignments
    conn.execute(delete(a).where(a.c.staff_id == staff_id))
    if grid_ids:
        conn.execute(insert(a), [{"staff_id": staff_id, "grid_id": g} for g in grid_ids])


def do_add_staff(
    conn: Connection, actor: Actor, village: str, data: dict[str, Any], grid_ids: list[int]
) -> dict:
    """A new staff member, assigned to `grid_ids` (of their tier's level)."""
    values = validated(StaffSchema(), data)
    grid_ids = sorted(set(grid_ids))
    _check_grids(conn, values["tier"], grid_ids)
    s = m.grid_staff
    staff = dict(conn.execute(insert(s).values(**values).returning(*s.c)).mappings().one())
    _assign(conn, staff["id"], grid_ids)
    record(
        conn,
        actor,
        village=village,
        action="grid_staff.add",
        subject_type=GRID_STAFF,
        subject_id=staff["id"],
        fields=sorted(values),
        details={"tier": staff["tier"], "grids": grid_ids},
    )
    return staff


def do_update_staff(
    conn: Connection, actor: Actor, village: str, staff_id: int, data: dict[str, Any]
) -> dict:
    """Change name, phone or tier. A new tier must suit the grids already assigned."""
    values = validated(StaffSchema(partial=True), data)
    staff = _locked(conn, staff_id)
    if "tier" in values and values["tier"] != staff["tier"]:
        a = m.grid_assignments
        assigned = list(conn.execute(select(a.c.grid_id).where(a.c.staff_id == staff_id)).scalars())
        try:
            _check_grids(conn, values["tier"], assigned)
        except ActionFailed as failed:
            raise refused("tier", failed.errors[0].message, INVALID) from failed
    changed = sorted(k for k, v in values.items() if staff[k] != v)
    if not changed:
        return staff
    s = m.grid_staff
    staff = dict(
        conn.execute(
            update(s)
            .where(s.c.id == staff_id)
            .values(**{k: values[k] for k in changed}, updated_at=func.now())
            .returning(*s.c)
        )
        .mappings()
        .one()
    )
    record(
        conn,
        actor,
        village=village,
        action="grid_staff.update",
        subject_type=GRID_STAFF,
        subject_id=staff_id,
        fields=changed,
    )
    return staff


def do_assign_staff(
    conn: Connection, actor: Actor, village: str, staff_id: int, grid_ids: list[int]
) -> dict:
    """The staff member looks after exactly `grid_ids` from now on."""
    staff = _active(conn, staff_id)
    grid_ids = sorted(set(grid_ids))
    _check_grids(conn, staff["tier"], grid_ids)
    _assign(conn, staff_id, grid_ids)
    record(
        conn,
        actor,
        village=village,
        action="grid_staff.assign",
        subject_type=GRID_STAFF,
        subject_id=staff_id,
        details={"grids": grid_ids},
    )
    return staff


def do_invite_staff(
    conn: Connection,
    actor: Actor,
    village: str,
    staff_id: int,
    data: dict[str, Any],
    directory: AccountDirectory,
) -> tuple[dict, Login]:
    """A login for the staff member: a new `grid-worker` account in the village named by
    their email address, or, when they have one, a new temporary password for it (the
    email, if given, must then be the account's). The temporary password is returned
    here once; neither the village nor the audit log keeps it."""
    staff = _active(conn, staff_id)
    if staff["account_sub"] is not None:
        email = (data.get("email") or "").strip().lower()
        if email and email != staff["account_username"]:
            raise refused(
                "email", "该网格员已有账号，只能为其重设临时密码，不能换成其他账号", INVALID
            )
        password = directory.reissue(staff["account_sub"])
        login = Login(staff["account_sub"], staff["account_username"], password)
        action = "grid_staff.reissue_login"
    else:
        email = validated(InviteSchema(), data)["email"].strip().lower()
        try:
            login = directory.invite(village, STAFF_ROLE, email, staff["name"])
        except AccountExists as exists:
            raise refused("email", "该邮箱已有账号，请换一个邮箱", DUPLICATE) from exists
        s = m.grid_staff
        staff = dict(
            conn.execute(
                update(s)
                .where(s.c.id == staff_id)
                .values(
                    account_sub=login.sub, account_username=login.username, updated_at=func.now()
                )
                .returning(*s.c)
            )
            .mappings()
            .one()
        )
        action = "grid_staff.invite"
    record(
        conn,
        actor,
        village=village,
        action=action,
        subject_type=GRID_STAFF,
        subject_id=staff_id,
        details={"username": login.username, "role": STAFF_ROLE},
    )
    return staff, login


def do_disable_staff(
    conn: Connection,
    actor: Actor,
    village: str,
    staff_id: int,
    data: dict[str, Any],
    directory: AccountDirectory,
) -> dict:
    """The staff member leaves: off their grids and the roster still ahead (a shift under
    way ends now), their login disabled. Their history stays theirs."""
    reason = validated(DisableSchema(), data)["reason"]
    staff = _active(conn, staff_id)
    a, d = m.grid_assignments, duty_shifts
    grids = list(
        conn.execute(delete(a).where(a.c.staff_id == staff_id).returning(a.c.grid_id)).scalars()
    )
    dropped = conn.execute(
        delete(d).where(d.c.staff_id == staff_id, d.c.starts_at > func.now())
    ).rowcount
    conn.execute(
        update(d)
        .where(d.c.staff_id == staff_id, d.c.starts_at <= func.now(), d.c.ends_at > func.now())
        .values(ends_at=func.now())
    )
    s = m.grid_staff
    staff = dict(
        conn.execute(
            update(s)
            .where(s.c.id == staff_id)
            .values(disabled_at=func.now(), updated_at=func.now())
            .returning(*s.c)
        )
        .mappings()
        .one()
    )
    if staff["account_sub"] is not None:
        directory.set_enabled(staff["account_sub"], False)
    record(
        conn,
        actor,
        village=village,
        action="grid_staff.disable",
        subject_type=GRID_STAFF,
        subject_id=staff_id,
        reason=reason,
        details={"grids": sorted(grids), "shifts_dropped": dropped},
    )
    return staff


def do_enable_staff(
    conn: Connection, actor: Actor, village: str, staff_id: int, directory: AccountDirectory
) -> dict:
    """A disabled staff member back, with their login; grids are assigned anew."""
    staff = _locked(conn, staff_id)
    if staff["disabled_at"] is None:
        raise refused("id", "该网格员未停用", INVALID_TRANSITION)
    s = m.grid_staff
    staff = dict(
        conn.execute(
            update(s)
            .where(s.c.id == staff_id)
            .values(disabled_at=None, updated_at=func.now())
            .returning(*s.c)
        )
        .mappings()
        .one()
    )
    if staff["account_sub"] is not None:
        directory.set_enabled(staff["account_sub"], True)
    record(
        conn,
        actor,
        village=village,
        action="grid_staff.enable",
        subject_type=GRID_STAFF,
        subject_id=staff_id,
    )
    return staff

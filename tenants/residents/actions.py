"""Writes to resident records: the only place they change (Zulip's `do_*` actions).

Each action validates its input, writes inside a savepoint of the caller's
village transaction, and appends an audit entry to the same transaction. A
refused input raises ActionFailed and leaves nothing behind. `allowed_grids`
keeps grid workers to their own grids (None: the whole village).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from villagelink.platform.audit import Actor, record
from villagelink.tenants import id_numbers
from villagelink.tenants import models as m
from villagelink.tenants.residents.queries import Grids, households_by_ids, residents_by_ids
from villagelink.tenants.residents.validation import (
    DUPLICATE_ID_NUMBER,
    NewResidentSchema,
    ResidentChangesSchema,
    TagSchema,
)
from villagelink.tenants.structure.queries import live_row
from villagelink.tenants.user_errors import (
    DUPLICATE,
    NOT_FOUND,
    REQUIRED,
    ActionFailed,
    UserError,
    refused,
    validated,
)

RESIDENT = "Resident"


# A step the record's state does not allow (a tombstone of a resident who moved away).
FORBIDDEN_STATE = "FORBIDDEN_STATE"


def _resident(conn: Connection, resident_id: int, allowed_grids: Grids) -> dict:
    found = residents_by_ids(conn, [resident_id], allowed_grids=allowed_grids).get(resident_id)
    if found is None:
        raise refused("residentId", "居民不存在或不在您的管辖范围内", NOT_FOUND)
    if found["status"] != m.ACTIVE_RESIDENT:
        # 注销留档: the village keeps the record of who left, and changes it no more.
        raise ActionFailed(
            [UserError("residentId", "该居民已迁出，仅保留注销留档", FORBIDDEN_STATE)]
        )
    return found


def _household(conn: Connection, household_id: int, allowed_grids: Grids, field: str) -> dict:
    """The household a resident is placed in: within reach, and live (an archived
    household takes no one in; `live_row` also keeps it from being archived meanwhile)."""
    found = households_by_ids(conn, [household_id], allowed_grids=allowed_grids).get(household_id)
    if found is None:
        raise refused(field, "户不存在或不在您的管辖范围内", NOT_FOUND)
    live_row(conn, m.households, household_id, field)
    return found


def _claim_headship(conn: Connection, household: dict, resident_id: int) -> None:
    head = household["head_resident_id"]
    if head is not None and head != resident_id:
        raise refused("relationToHead", "该户已有户主", DUPLICATE)
    conn.execute(
        m.households.update()
        .where(m.households.c.id == household["id"])
        .values(head_resident_id=resident_id, updated_at=func.now())
    )


def do_create_resident(
    conn: Connection,
    actor: Actor,
    village: str,
    data: dict[str, Any],
    *,
    household_id: int | None,
    allowed_grids: Grids,
) -> dict:
    values = validated(NewResidentSchema(), data)
    number = id_numbers.normalise(values["id_number"])
    household = None
    if household_id is not None:
        household = _household(conn, household_id, allowed_grids, "householdId")
    elif allowed_grids is not None:
        # A grid worker's residents live in a household of their grids.
        raise refused("householdId", "请选择所属户", REQUIRED)
    row = {
        "name": values["name"].strip(),
        "id_number": number,
        "gender": id_numbers.gender(number),
        "birth_date": id_numbers.birth_date(number),
        "phone": values.get("phone"),
        "household_id": household_id,
        "relation_to_head": values.get("relation_to_head"),
        "grid_id": household["grid_id"] if household else None,
    }
    try:
        with conn.begin_nested():
            resident_id = conn.execute(
                m.residents.insert().values(**row).returning(m.residents.c.id)
            ).scalar_one()
            if household is not None and row["relation_to_head"] == "head":
                _claim_headship(conn, household, resident_id)
    except IntegrityError as exc:
        raise refused("idNumber", DUPLICATE_ID_NUMBER, DUPLICATE) from exc
    record(
        conn,
        actor,
        village=village,
        action="resident.create",
        subject_type=RESIDENT,
        subject_id=resident_id,
        fields=sorted(k for k, v in row.items() if v is not None),
    )
    return residents_by_ids(conn, [resident_id], allowed_grids=None)[resident_id]


def do_update_resident(
    conn: Connection,
    actor: Actor,
    village: str,
    resident_id: int,
    changes: dict[str, Any],
    *,
    allowed_grids: Grids,
) -> dict:
    values = validated(ResidentChangesSchema(), changes)
    resident = _resident(conn, resident_id, allowed_grids)
    if "name" in values:
        values["name"] = values["name"].strip()
    changed = {k: v for k, v in values.items() if resident[k] != v}
    if changed:
        conn.execute(
            m.residents.update()
            .where(m.residents.c.id == resident_id)
            .values(**changed, version=m.residents.c.version + 1, updated_at=func.now())
        )
        record(
            conn,
            actor,
            village=village,
            action="resident.update",
            subject_type=RESIDENT,
            subject_id=resident_id,
            fields=sorted(changed),
        )
    return residents_by_ids(conn, [resident_id], allowed_grids=None)[resident_id]


def do_move_resident_to_household(
    conn: Connection,
    actor: Actor,
    village: str,
    resident_id: int,
    household_id: int,
    relation_to_head: str | None,
    *,
    allowed_grids: Grids,
) -> dict:
    if relation_to_head is not None:
        validated(ResidentChangesSchema(), {"relation_to_head": relation_to_head})
    resident = _resident(conn, resident_id, allowed_grids)
    household = _household(conn, household_id, allowed_grids, "householdId")
    with conn.begin_nested():
        old = resident["household_id"]
        if old is not None and old != household_id:
            # Leaving as head leaves the old household without one until it names another.
            conn.execute(
                m.households.update()
                .where(m.households.c.id == old, m.households.c.head_resident_id == resident_id)
                .values(head_resident_id=None, updated_at=func.now())
            )
        if relation_to_head == "head":
            _claim_headship(conn, household, resident_id)
        conn.execute(
            m.residents.update()
            .where(m.residents.c.id == resident_id)
            .values(
                household_id=household_id,
                grid_id=household["grid_id"],
                relation_to_head=relation_to_head,
                version=m.residents.c.version + 1,
                updated_at=func.now(),
            )
        )
    record(
        conn,
        actor,
        village=village,
        action="resident.move",
        subject_type=RESIDENT,
        subject_id=resident_id,
        fields=["household_id", "grid_id", "relation_to_head"],
        details={"from_household": old, "to_household": household_id},
    )
    return residents_by_ids(conn, [resident_id], allowed_grids=None)[resident_id]


def do_tag_resident(
    conn: Connection,
    actor: Actor,
    village: str,
    resident_id: int,
    data: dict[str, Any],
    *,
    allowed_grids: Grids,
) -> dict:
    values = validated(TagSchema(), data)
    _resident(conn, resident_id, allowed_grids)
    statement = insert(m.resident_tags).values(resident_id=resident_id, **values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["resident_id", "tag"],
            set_={"level": statement.excluded.level, "note": statement.excluded.note},
        )
    )
    record(
        conn,
        actor,
        village=village,
        action="resident.tag",
        subject_type=RESIDENT,
        subject_id=resident_id,
        details={"tag": values["tag"]},
    )
    return residents_by_ids(conn, [resident_id], allowed_grids=None)[resident_id]


def do_untag_resident(
    conn: Connection,
    actor: Actor,
    village: str,
    resident_id: int,
    tag: str,
    *,
    allowed_grids: Grids,
) -> dict:
    _resident(conn, resident_id, allowed_grids)
    t = m.resident_tags
    removed = conn.execute(
        t.delete().where(t.c.resident_id == resident_id, t.c.tag == tag).returning(t.c.tag)
    ).first()
    if removed is None:
        raise refused("tag", "该居民没有此标签", NOT_FOUND)
    record(
        conn,
        actor,
        village=village,
        action="resident.untag",
        subject_type=RESIDENT,
        subject_id=resident_id,
        details={"tag": tag},
    )
    return residents_by_ids(conn, [resident_id], allowed_grids=None)[resident_id]

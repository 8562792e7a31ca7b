"""Writes to health records (健康档案) and the village's thresholds: the only place they change.

Each action validates its input, writes inside a savepoint of the caller's village
transaction and adds an audit entry to the same transaction; the entry names the
fields that changed, never their values. Nothing here appends to the outbox:
health data never leaves the village, whatever an agreement between villages says
(a missing-person alert is shared as an alert, not as the person's record).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func
from sqlalchemy.dialects.postgresql import insert

from villagelink.platform.audit import Actor, record
from villagelink.tenants.health.queries import (
    named_contact,
    records_by_resident,
    thresholds,
)
from villagelink.tenants.health.tables import (
    SELF_CARE,
    health_records,
    health_thresholds,
    reading_consents,
)
from villagelink.tenants.health.validation import (
    HealthRecordSchema,
    ThresholdsSchema,
    check_safe_zone,
)
from villagelink.tenants.resident_accounts.queries import bound_residents_with_phone
from villagelink.tenants.residents.queries import Grids, residents_by_ids
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID,
    NOT_FOUND,
    refused,
    validated,
)

HEALTH_RECORD = "HealthRecord"
HEALTH_THRESHOLDS = "HealthThresholds"

# A new record's columns where the input leaves them out.
NEW_RECORD = {
    "conditions": [],
    "emergency_contacts": [],
    "care_level": SELF_CARE,
    "wandering_risk": False,
    "safe_zone_latitude": None,
    "safe_zone_longitude": None,
    "safe_zone_radius_m": None,
    "heart_rate_min": None,
    "heart_rate_max": None,
    "note": None,
}


def _columns(values: dict[str, Any]) -> dict[str, Any]:
    """Validated input as table columns: names trimmed, conditions without repeats,
    the safe zone and the heart-rate range spread over their columns (None clears them)."""
    row: dict[str, Any] = {}
    if "conditions" in values:
        row["conditions"] = list(dict.fromkeys(values["conditions"]))
    if "emergency_contacts" in values:
        row["emergency_contacts"] = [
            {"name": c["name"].strip(), "relation": c["relation"], "phone": c["phone"]}
            for c in values["emergency_contacts"]
        ]
    for name in ("care_level", "wandering_risk"):
        if name in values:
            row[name] = values[name]
    if "safe_zone" in values:
        zone = values["safe_zone"] or {}
        row["safe_zone_latitude"] = zone.get("latitude")
        row["safe_zone_longitude"] = zone.get("longitude")
        row["safe_zone_radius_m"] = zone.get("radius_m")
    if "heart_rate_range" in values:
        heart_rate = values["heart_rate_range"] or {}
        row["heart_rate_min"] = heart_rate.get("min")
        row["heart_rate_max"] = heart_rate.get("max")
    if "note" in values:
        row["note"] = values["note"] or None
    return row


def _require_resident(conn: Connection, resident_id: int, allowed_grids: Grids) -> None:
    if not residents_by_ids(conn, [resident_id], allowed_grids=allowed_grids):
        raise refused("resident", "居民不存在或不在您的管辖范围内", NOT_FOUND)


def _audit(conn: Connection, actor: Actor, village: str, action: str, resident_id: int, fields):
    record(
        conn,
        actor,
        village=village,
        action=action,
        subject_type=HEALTH_RECORD,
        subject_id=resident_id,
        fields=sorted(fields),
    )


def do_create_health_record(
    conn: Connection,
    actor: Actor,
    village: str,
    resident_id: int,
    data: dict[str, Any],
    *,
    allowed_grids: Grids,
) -> dict:
    """Open a resident's health record; one per resident."""
    given = _columns(validated(HealthRecordSchema(), data))
    _require_resident(conn, resident_id, allowed_grids)
    row = {**NEW_RECORD, **given}
    check_safe_zone(row)
    with conn.begin_nested():
        created = conn.execute(
            insert(health_records)
            .values(resident_id=resident_id, **row)
            .on_conflict_do_nothing(index_elements=["resident_id"])
            .returning(health_records.c.resident_id)
        ).first()
        if created is None:
            raise refused("resident", "该居民已有健康档案", DUPLICATE)
        _audit(conn, actor, village, "health_record.create", resident_id, given)
    return records_by_resident(conn, [resident_id])[resident_id]


def do_update_health_record(
    conn: Connection,
    actor: Actor,
    village: str,
    resident_id: int,
    changes: dict[str, Any],
    *,
    allowed_grids: Grids,
) -> dict:
    """Change what `changes` names; the version goes up only when something changed."""
    given = _columns(validated(HealthRecordSchema(), changes))
    _require_resident(conn, resident_id, allowed_grids)
    current = records_by_resident(conn, [resident_id], lock=True).get(resident_id)
    if current is None:
        raise refused("resident", "该居民尚未建立健康档案", NOT_FOUND)
    check_safe_zone({**current, **given})
    changed = {k: v for k, v in given.items() if current[k] != v}
    if not changed:
        return current
    with conn.begin_nested():
        conn.execute(
            health_records.update()
            .where(health_records.c.resident_id == resident_id)
            .values(**changed, version=health_records.c.version + 1, updated_at=func.now())
        )
        _audit(conn, actor, village, "health_record.update", resident_id, changed)
    return records_by_resident(conn, [resident_id])[resident_id]


def _record_of(conn: Connection, resident_id: int, allowed_grids: Grids) -> dict:
    _require_resident(conn, resident_id, allowed_grids)
    current = records_by_resident(conn, [resident_id], lock=True).get(resident_id)
    if current is None:
        raise refused("resident", "该居民尚未建立健康档案", NOT_FOUND)
    return current


def do_grant_reading_consent(
    conn: Connection,
    actor: Actor,
    village: str,
    resident_id: int,
    data: dict[str, Any],
    *,
    allowed_grids: Grids,
) -> dict:
    """家属查看授权: on the wearer's word, the emergency contact of `contact_phone` may see
    their latest readings and today's alerts in the residents' app. The contact must be
    named on the record and be a resident of the village whose app account is bound:
    consent is given to a person the village knows, not to a phone number."""
    phone = data["contact_phone"].strip()
    current = _record_of(conn, resident_id, allowed_grids)
    if named_contact(current, phone) is None:
        raise refused("contactPhone", "该号码不是此居民的紧急联系人", NOT_FOUND)
    contacts = bound_residents_with_phone(conn, phone)
    if not contacts:
        raise refused(
            "contactPhone", "该紧急联系人不是本村已开通居民端账号的居民，无法授权查看", NOT_FOUND
        )
    if len(contacts) > 1:
        raise refused("contactPhone", "多位已开通账号的居民登记了此号码，请先核实居民信息", INVALID)
    if contacts[0] == resident_id:
        raise refused("contactPhone", "本人的紧急联系人不能是本人", INVALID)
    with conn.begin_nested():
        created = conn.execute(
            insert(reading_consents)
            .values(
                resident_id=resident_id,
                contact_resident_id=contacts[0],
                contact_phone=phone,
                recorded_by=actor.principal.display_name,
            )
            .on_conflict_do_nothing(
                index_elements=["resident_id", "contact_resident_id"],
                index_where=reading_consents.c.revoked_at.is_(None),
            )
            .returning(reading_consents.c.id)
        ).first()
        if created is None:
            raise refused("contactPhone", "该紧急联系人已获授权查看", DUPLICATE)
        _consent_audit(conn, actor, village, "reading_consent.grant", resident_id, contacts[0])
    return records_by_resident(conn, [resident_id])[resident_id]


def do_revoke_reading_consent(
    conn: Connection,
    actor: Actor,
    village: str,
    resident_id: int,
    data: dict[str, Any],
    *,
    allowed_grids: Grids,
) -> dict:
    """Withdraw the consent given to the contact of `contact_phone`: from now on the app
    shows them nothing of the wearer. The row stays, with who revoked it and when."""
    _record_of(conn, resident_id, allowed_grids)
    c = reading_consents.c
    with conn.begin_nested():
        revoked = conn.execute(
            reading_consents.update()
            .where(
                c.resident_id == resident_id,
                c.contact_phone == data["contact_phone"].strip(),
                c.revoked_at.is_(None),
            )
            .values(revoked_at=func.now(), revoked_by=actor.principal.display_name)
            .returning(c.contact_resident_id)
        ).first()
        if revoked is None:
            raise refused("contactPhone", "该号码没有查看授权", NOT_FOUND)
        _consent_audit(conn, actor, village, "reading_consent.revoke", resident_id, revoked[0])
    return records_by_resident(conn, [resident_id])[resident_id]


def _consent_audit(
    conn: Connection, actor: Actor, village: str, action: str, resident_id: int, contact: int
) -> None:
    record(
        conn,
        actor,
        village=village,
        action=action,
        subject_type=HEALTH_RECORD,
        subject_id=resident_id,
        fields=["contact_resident_id"],
        details={"contact_resident_id": contact},
    )


def do_update_health_thresholds(
    conn: Connection, actor: Actor, village: str, changes: dict[str, Any]
) -> dict:
    """Change the village's thresholds; what `changes` leaves out stays. The audit entry
    keeps old and new values: thresholds are the village's rules, not anyone's data."""
    current = thresholds(conn, lock=True)
    names = ThresholdsSchema().fields
    values = validated(ThresholdsSchema(), {k: changes.get(k, current[k]) for k in names})
    changed = {k: v for k, v in values.items() if current[k] != v}
    if not changed:
        return current
    with conn.begin_nested():
        conn.execute(
            health_thresholds.update()
            .where(health_thresholds.c.id == 1)
            .values(**changed, updated_at=func.now())
        )
        record(
            conn,
            actor,
            village=village,
            action="health_thresholds.update",
            subject_type=HEALTH_THRESHOLDS,
            subject_id=1,
            fields=sorted(changed),
            details={k: [current[k], v] for k, v in changed.items()},
        )
    return thresholds(conn)

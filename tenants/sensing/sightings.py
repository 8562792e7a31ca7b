"""Neighbours' reports on a village's shared alerts (走失协查): 已知悉 and 发现线索.

A fire or missing-person alert goes to neighbouring villages under `alert_broadcast`
(alerting.share). Their grid workers and admins answer it here, in the origin
village's own transaction (`ctx.neighbour`): an acknowledgement (once per village)
or a sighting of the missing person (time, place, a note). The reports stay in the
origin village, which owns the alert: they are on its timeline and audited there,
naming the village that reported. They change nothing else of the alert (no version
bump, nothing to the outbox): the neighbours' copies are about the alert, not the
answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from marshmallow import Schema, fields
from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Table,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert

from villagelink.platform.audit import Actor, record
from villagelink.tenants import clock
from villagelink.tenants.fields import MESSAGES, FreeText, coordinate_field, optional_text
from villagelink.tenants.models import id_column, metadata, one_of
from villagelink.tenants.querying import grouped
from villagelink.tenants.sensing.alerting import ALERT, SHARED_KINDS
from villagelink.tenants.sensing.tables import CLOSED_STATES, MISSING_PERSON, alert_events, alerts
from villagelink.tenants.user_errors import (
    INVALID,
    NOT_FOUND,
    REQUIRED,
    Coded,
    refused,
    validated,
)

ACKNOWLEDGEMENT = "acknowledgement"
SIGHTING = "sighting"
REPORT_KINDS = (ACKNOWLEDGEMENT, SIGHTING)
# The alert's timeline names the step; AlertEvent.action is free text.
TIMELINE_ACTIONS = {ACKNOWLEDGEMENT: "neighbour_acknowledge", SIGHTING: "neighbour_sighting"}

alert_neighbour_reports = Table(
    "alert_neighbour_reports",
    metadata,
    id_column(),
    Column("alert_id", BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("kind", Text, nullable=False),
    # The neighbouring village that reported, and the agreements it reported under.
    Column("village", Text, nullable=False),
    Column("agreement_ids", ARRAY(BigInteger), nullable=False),
    Column("reporter_sub", Text, nullable=False),
    Column("reporter_name", Text, nullable=False),
    Column("seen_at", DateTime(timezone=True)),
    Column("place", Text),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("note", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(one_of("kind", REPORT_KINDS), name="alert_neighbour_reports_kind"),
    CheckConstraint(
        "kind <> 'sighting' OR (seen_at IS NOT NULL AND place IS NOT NULL)",
        name="alert_neighbour_reports_sighting",
    ),
    CheckConstraint(
        "(latitude IS NULL) = (longitude IS NULL)", name="alert_neighbour_reports_position"
    ),
    Index("alert_neighbour_reports_alert", "alert_id", "id"),
    # A village knows of an alert once; it may see the person many times.
    Index(
        "alert_neighbour_reports_acknowledged_once",
        "alert_id",
        "village",
        unique=True,
        postgresql_where=text("kind = 'acknowledgement'"),
    ),
)

NO_ALERT = "预警不存在或未与本村共享"
# The alert is no longer in a state for this (its own state machine is not involved).
FORBIDDEN_STATE = "FORBIDDEN_STATE"


class SightingSchema(Schema):
    seen_at = fields.AwareDateTime(required=True, error_messages=MESSAGES)
    place = FreeText(
        "地点",
        200,
        required=True,
        error_messages={"required": Coded("请填写发现地点", REQUIRED)},
    )
    latitude = coordinate_field("latitude", load_default=None, allow_none=True)
    longitude = coordinate_field("longitude", load_default=None, allow_none=True)
    note = optional_text("备注", 500)


def _shared_alert(conn: Connection, alert_id: int) -> dict:
    """The alert if it is of a kind neighbours are sent, locked against a concurrent
    close (FOR SHARE: reports do not wait for one another)."""
    found = (
        conn.execute(
            select(alerts.c.id, alerts.c.kind, alerts.c.state, alerts.c.level)
            .where(alerts.c.id == alert_id, alerts.c.kind.in_(SHARED_KINDS))
            .with_for_update(read=True)
        )
        .mappings()
        .first()
    )
    if found is None:
        raise refused("alert", NO_ALERT, NOT_FOUND)
    if found["state"] in CLOSED_STATES:
        raise refused("alert", "预警已结束，不再接收协查信息", FORBIDDEN_STATE)
    return dict(found)


def _report(
    conn: Connection,
    actor: Actor,
    village: str,
    alert: dict,
    kind: str,
    acting_village: str,
    agreement_ids: list[int],
    timeline_note: str,
    **values: Any,
) -> dict:
    """Store the report with its timeline row and audit entry; an acknowledgement the
    village already gave is returned as it was, with nothing written."""
    r = alert_neighbour_reports
    row = {
        "alert_id": alert["id"],
        "kind": kind,
        "village": acting_village,
        "agreement_ids": list(agreement_ids),
        "reporter_sub": actor.principal.sub,
        "reporter_name": actor.principal.display_name,
        **values,
    }
    statement = insert(r).values(**row)
    if kind == ACKNOWLEDGEMENT:
        statement = statement.on_conflict_do_nothing(
            index_elements=["alert_id", "village"], index_where=text("kind = 'acknowledgement'")
        )
    created = conn.execute(statement.returning(*r.columns)).mappings().first()
    if created is None:
        return _acknowledgement_of(conn, alert["id"], acting_village)
    conn.execute(
        alert_events.insert().values(
            alert_id=alert["id"],
            action=TIMELINE_ACTIONS[kind],
            from_state=alert["state"],
            to_state=alert["state"],
            level=alert["level"],
            note=timeline_note,
            actor_sub=actor.principal.sub,
            actor_name=actor.principal.display_name,
        )
    )
    record(
        conn,
        actor,
        village=village,
        action=f"alert.{TIMELINE_ACTIONS[kind]}",
        subject_type=ALERT,
        subject_id=alert["id"],
        details={
            "acting_village": acting_village,
            "agreement_ids": list(agreement_ids),
            "report_id": created["id"],
        },
    )
    return dict(created)


def _acknowledgement_of(conn: Connection, alert_id: int, acting_village: str) -> dict:
    r = alert_neighbour_reports
    return dict(
        conn.execute(
            select(r).where(
                r.c.alert_id == alert_id, r.c.village == acting_village, r.c.kind == ACKNOWLEDGEMENT
            )
        )
        .mappings()
        .one()
    )


def do_acknowledge_neighbour_alert(
    conn: Connection,
    actor: Actor,
    village: str,
    alert_id: int,
    acting_village: str,
    *,
    agreement_ids: list[int],
) -> dict:
    """已知悉: `acting_village` has seen `village`'s alert (once; asking again returns
    the first acknowledgement)."""
    alert = _shared_alert(conn, alert_id)
    return _report(
        conn,
        actor,
        village,
        alert,
        ACKNOWLEDGEMENT,
        acting_village,
        agreement_ids,
        f"邻村 {acting_village} 已知悉",
    )


def do_report_neighbour_sighting(
    conn: Connection,
    actor: Actor,
    village: str,
    alert_id: int,
    acting_village: str,
    data: dict[str, Any],
    *,
    agreement_ids: list[int],
) -> dict:
    """发现线索: someone of `acting_village` saw the missing person at a time and place.
    Only for missing-person alerts still open."""
    values = validated(SightingSchema(), data)
    if (values["latitude"] is None) != (values["longitude"] is None):
        raise refused("latitude", "经纬度须同时填写", INVALID)
    # A few minutes of slack for the reporting phone's clock.
    if values["seen_at"] > clock.now() + timedelta(minutes=5):
        raise refused("seenAt", "发现时间不能晚于当前时间", INVALID)
    alert = _shared_alert(conn, alert_id)
    if alert["kind"] != MISSING_PERSON:
        raise refused("alert", "只有走失预警可以报告发现线索", FORBIDDEN_STATE)
    note = f"邻村 {acting_village} 发现线索：{values['seen_at'].isoformat()} 于 {values['place']}"
    if values["note"]:
        note += f"（{values['note']}）"
    return _report(
        conn, actor, village, alert, SIGHTING, acting_village, agreement_ids, note, **values
    )


def reports_by_alert(conn: Connection, alert_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Each alert's neighbour reports, oldest first, in one statement."""
    r = alert_neighbour_reports
    query = select(r).where(r.c.alert_id.in_(list(alert_ids))).order_by(r.c.alert_id, r.c.id)
    return grouped(conn.execute(query).mappings(), "alert_id")

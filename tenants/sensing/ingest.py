"""What devices report, taken in batches: device events and health readings, and the rules
that turn them into alerts.

A device platform sends up to 1,000 items a call. Each item is judged on its own: a bad
one comes back with its position, field and reason (in Chinese) and the good ones are
stored. Storing is set-based, in a fixed number of statements per village whatever the
batch size: one lookup of the devices, one INSERT ... ON CONFLICT DO NOTHING of the whole
batch (idempotent by device and the platform's own event or reading id), one audit entry,
and last, just before the commit, the updates of rows concurrent batches share: latest
vitals (worked out by PostgreSQL from the readings stored) and the devices' last-seen
times. Only rows this call inserted are judged by the rules, so a batch sent twice raises
nothing twice.

Rules (docs/domain.md, flows 2 and 3):
- an event of an alert kind (fall, fire, smoke, gas, vehicle_lingering, fire_lane_blocked,
  sos) raises that alert; other kinds (heartbeat, tamper, person_detected, ...) are
  stored only;
- a reading is abnormal when the heart rate leaves the person's own range (their health
  record) or else the village's, SpO2 is below the village's minimum, or blood pressure
  is above its maxima; a resident at risk of wandering read outside their safe zone
  raises a missing-person alert. One trigger per resident and alert kind per call;
  `raise_alerts` makes one alert of an episode however many calls it spans.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema
from sqlalchemy import (
    JSON,
    Connection,
    Select,
    Table,
    Update,
    bindparam,
    case,
    column,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, Insert, aggregate_order_by, insert
from sqlalchemy.sql.dml import ReturningInsert

from villagelink.platform.audit import Actor, record
from villagelink.tenants import models as m
from villagelink.tenants.coordinates import distance_m
from villagelink.tenants.fields import MESSAGES, FreeText, compiled_load, coordinate_field
from villagelink.tenants.health.tables import (
    BLOOD_PRESSURE,
    HEART_RATE,
    OUTSIDE_SAFE_ZONE,
    SPO2,
    health_readings,
    health_records,
    health_thresholds,
    latest_vitals,
)
from villagelink.tenants.querying import any_ids
from villagelink.tenants.sensing.alerting import RaisedAlert, Trigger, raise_alerts
from villagelink.tenants.sensing.devices import (
    DEVICE_LABELS,
    NOT_YOURS,
    check_both_coordinates,
    lock_presence,
)
from villagelink.tenants.sensing.tables import (
    AI_CAMERA,
    DEVICE_ACTIVE,
    DEVICE_DISABLED,
    DEVICE_OFFLINE,
    FALL,
    FIRE,
    FIRE_LANE_BLOCKED,
    FIRE_LANE_SENSOR,
    GAS,
    GAS_SENSOR,
    HEALTH_KIOSK,
    HEART_RATE_ABNORMAL,
    HIGH_BLOOD_PRESSURE,
    LOW_SPO2,
    MISSING_PERSON,
    MMWAVE_RADAR,
    PERSONAL_KINDS,
    SMOKE,
    SMOKE_SENSOR,
    SOS,
    VEHICLE_LINGERING,
    WRISTBAND,
    device_events,
    devices,
)
from villagelink.tenants.user_errors import (
    INVALID,
    MISMATCH,
    NOT_FOUND,
    REQUIRED,
    ActionFailed,
    Coded,
    UserError,
    camel,
    from_validation_error,
)

MAX_BATCH = 1000
# Codes of ingest; the generic ones live in villagelink.tenants.user_errors.
TOO_MANY = "TOO_MANY"
DEVICE_DISABLED_CODE = "DEVICE_DISABLED"
# A device's clock may run a little ahead of ours; further ahead is a wrong clock.
CLOCK_SKEW = timedelta(minutes=5)
MAX_DETAILS_CHARS = 4000

EVENT_LABELS = {
    FALL: "跌倒报警",
    FIRE: "火情报警",
    SMOKE: "烟雾报警",
    GAS: "燃气泄漏报警",
    VEHICLE_LINGERING: "车辆长时间逗留",
    FIRE_LANE_BLOCKED: "消防通道被占用",
    SOS: "紧急呼叫（SOS）",
}
# Which devices can see what: an alert event from any other kind is a platform's
# mistake (a wrong device ID), refused rather than sent to a grid worker.
EVENT_SOURCES = {
    FALL: (AI_CAMERA, MMWAVE_RADAR, WRISTBAND),
    FIRE: (AI_CAMERA, SMOKE_SENSOR),
    SMOKE: (AI_CAMERA, SMOKE_SENSOR),
    GAS: (GAS_SENSOR,),
    VEHICLE_LINGERING: (AI_CAMERA,),
    FIRE_LANE_BLOCKED: (AI_CAMERA, FIRE_LANE_SENSOR),
    SOS: (WRISTBAND, HEALTH_KIOSK),
}
READING_DEVICES = (WRISTBAND, MMWAVE_RADAR, HEALTH_KIOSK)


@dataclass(frozen=True)
class Item:
    """One item of a batch, its device already resolved to this village's key."""

    index: int  # its position in the caller's list: errors name it
    device_id: int
    data: dict[str, Any]  # the other fields, as given (readings: resident_id resolved too)


@dataclass(frozen=True)
class ItemError:
    index: int
    field: str | None
    message: str
    code: str


@dataclass
class IngestOutcome:
    accepted: int = 0
    duplicates: int = 0
    alerts: list[RaisedAlert] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)


def check_batch_size(items: list, field_name: str) -> None:
    """A call carries at most MAX_BATCH items; a longer one is refused whole."""
    if len(items) > MAX_BATCH:
        raise ActionFailed(
            [
                UserError(
                    field_name,
                    f"每次最多提交{MAX_BATCH}条，本次为{len(items)}条，请分批提交",
                    TOO_MANY,
                )
            ]
        )


# -- input rules ------------------------------------------------------------------


def _moment() -> fields.AwareDateTime:
    return fields.AwareDateTime(required=True, error_messages=MESSAGES)


def _measure(low: int, high: int, message: str) -> fields.Integer:
    return fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=validate.Range(low, high, error=Coded(message, INVALID)),
        error_messages=MESSAGES,
    )


class EventSchema(Schema):
    event_id = FreeText("事件编号", 100, required=True)
    kind = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z][a-z0-9_]{0,39}$",
            error=Coded("事件类型须为小写英文字母、数字和下划线，如 fall", INVALID),
        ),
        error_messages=MESSAGES,
    )
    occurred_at = _moment()
    details = fields.Dict(load_default=dict, allow_none=True, error_messages=MESSAGES)

    @validates("details")
    def _small_details(self, value: dict | None, **_kwargs) -> None:
        check_details(value)


def check_details(value: dict | None) -> None:
    if value and len(json.dumps(value, ensure_ascii=False)) > MAX_DETAILS_CHARS:
        raise ValidationError(Coded(f"事件详情不能超过{MAX_DETAILS_CHARS}个字符", INVALID))


class ReadingSchema(Schema):
    reading_id = FreeText("读数编号", 100, required=True)
    measured_at = _moment()
    resident_id = fields.Integer(load_default=None, allow_none=True, strict=True)
    heart_rate = _measure(20, 250, "心率应在20到250次/分之间")
    spo2 = _measure(50, 100, "血氧应在50%到100%之间")
    systolic = _measure(50, 260, "收缩压应在50到260 mmHg之间")
    diastolic = _measure(30, 180, "舒张压应在30到180 mmHg之间")
    latitude = coordinate_field("latitude", load_default=None, allow_none=True)
    longitude = coordinate_field("longitude", load_default=None, allow_none=True)

    @validates_schema(skip_on_field_errors=True)
    def _complete(self, data: dict, **_kwargs) -> None:
        check_reading(data)


def check_reading(data: dict) -> None:
    """A reading's fields together: a whole position, a whole blood pressure, something
    measured."""
    check_both_coordinates(data)
    if (data["systolic"] is None) != (data["diastolic"] is None):
        raise ValidationError(Coded("收缩压和舒张压须同时填写", REQUIRED), "diastolic")
    if data["systolic"] is not None and data["systolic"] <= data["diastolic"]:
        raise ValidationError(Coded("收缩压应高于舒张压", INVALID), "systolic")
    if (
        data.get("heart_rate") is None
        and data.get("spo2") is None
        and data.get("systolic") is None
        and data.get("latitude") is None
    ):
        raise ValidationError(Coded("读数中至少须有心率、血氧、血压或位置之一", REQUIRED))


# The schemas' loads compiled for the ordinary item (tenants/fields.py); an item they
# decline goes through the schema, whose refusal says why.
EVENT_SCHEMA = EventSchema()
READING_SCHEMA = ReadingSchema()
load_event = compiled_load(EVENT_SCHEMA, lambda values: check_details(values["details"]))
load_reading = compiled_load(READING_SCHEMA, check_reading)


def _error(item: Item, field_name: str | None, message: str, code: str) -> ItemError:
    return ItemError(item.index, field_name, message, code)


def _validated(
    schema: Schema,
    fast: Callable[[dict], dict | None],
    items: list[Item],
    time_field: str,
    now: datetime,
) -> tuple[list[tuple[Item, dict]], list[ItemError]]:
    """Each item loaded on its own (`fast`, else `schema`): the good ones with their
    values, and every reason the others were refused for."""
    good: list[tuple[Item, dict]] = []
    errors: list[ItemError] = []
    for item in items:
        values = fast(item.data)
        if values is None:
            try:
                values = schema.load(item.data)
            except ValidationError as exc:
                errors += [
                    _error(item, e.field, e.message, e.code)
                    for e in from_validation_error(exc).errors
                ]
                continue
        if values[time_field] > now + CLOCK_SKEW:
            message = "时间晚于服务器当前时间，请检查设备时钟"
            errors.append(_error(item, camel(time_field), message, INVALID))
            continue
        good.append((item, values))
    return good, errors


# -- devices ------------------------------------------------------------------------


# A batch's statements are built once, each given its batch at execution: building them
# (a JSON table's columns, the upserts' clauses) was a twentieth of a batch's time.


@cache
def _owned_devices_query() -> Select:
    d = devices
    return select(
        d.c.id,
        d.c.kind,
        d.c.name,
        d.c.status,
        d.c.resident_id,
        d.c.location_text,
        d.c.latitude,
        d.c.longitude,
    ).where(d.c.id == any_ids(key="ids"), d.c.owner_client_id == bindparam("owner"))


def _owned_devices(conn: Connection, items: Iterable[Item], owner: str) -> dict[int, Mapping]:
    """The devices the items name that `owner` runs, in one statement."""
    ids = list({item.device_id for item in items})
    if not ids:
        return {}
    rows = conn.execute(_owned_devices_query(), {"ids": ids, "owner": owner}).all()
    # Each row read by name where it is used: no dict built for each of a batch's devices.
    return {row.id: row._mapping for row in rows}


def _device_refusal(item: Item, device: Mapping | None) -> ItemError | None:
    """Why an item's device cannot report: not this client's (or unknown: the two are
    not told apart), or taken out of service."""
    if device is None:
        return _error(item, "device", NOT_YOURS, NOT_FOUND)
    if device["status"] == DEVICE_DISABLED:
        return _error(item, "device", "设备已停用，不接收上报", DEVICE_DISABLED_CODE)
    return None


def _recordset(name: str, **columns) -> Any:
    """A table of rows given at execution as one JSON parameter named `name`: a whole
    batch in one statement, and the same SQL text for 10 rows as for 1,000. `json`, not
    `jsonb`: PostgreSQL reads each row once instead of building a jsonb value first."""
    return (
        func.json_to_recordset(bindparam(name, type_=JSON))
        .table_valued(*(column(key, type_) for key, type_ in columns.items()))
        .render_derived(name=name, with_types=True)
    )


@cache
def _seen_update() -> Update:
    d = devices
    batch = _recordset("seen", id=d.c.id.type, at=d.c.last_seen_at.type)
    return (
        d.update()
        .where(d.c.id == batch.c.id)
        .values(
            last_seen_at=func.greatest(d.c.last_seen_at, batch.c.at),
            status=case((d.c.status == DEVICE_OFFLINE, DEVICE_ACTIVE), else_=d.c.status),
        )
    )


def _mark_seen(conn: Connection, village: str, seen: dict[int, datetime]) -> None:
    """The devices' last-seen times move forward to their newest report, and an offline
    device that reports is active again; one statement, once the village's devices are
    this transaction's to update (`lock_presence`)."""
    if seen:
        lock_presence(conn, village)
        conn.execute(_seen_update(), {"seen": [{"id": k, "at": v} for k, v in seen.items()]})


def _newest(times: Iterable[tuple[int, datetime]], now: datetime) -> dict[int, datetime]:
    """Each device's newest report time, never later than now (a clock a little ahead)."""
    newest: dict[int, datetime] = {}
    for device_id, at in times:
        at = min(at, now)
        if device_id not in newest or at > newest[device_id]:
            newest[device_id] = at
    return newest


def _audit(conn: Connection, actor: Actor, village: str, what: str, outcome: IngestOutcome) -> None:
    """One entry per village per call, with the counts: not one per row."""
    record(
        conn,
        actor,
        village=village,
        action="sensing.ingest",
        details={
            "items": what,
            "accepted": outcome.accepted,
            "duplicates": outcome.duplicates,
            "refused": len({e.index for e in outcome.errors}),
            "alerts": sorted({a.id for a in outcome.alerts}),
        },
    )


def _raise(
    conn: Connection, actor: Actor, village: str, triggers: list[Trigger], now: datetime
) -> list[RaisedAlert]:
    return raise_alerts(conn, actor, village, triggers, now) if triggers else []


# -- device events ----------------------------------------------------------------------


def _episode(device: Mapping) -> tuple[str, int | None]:
    """Whom an event is about: the resident a personal device watches over, else the
    device itself."""
    if device["kind"] in PERSONAL_KINDS and device["resident_id"] is not None:
        return f"resident:{device['resident_id']}", device["resident_id"]
    return f"device:{device['id']}", None


def event_trigger(kind: str, occurred_at: datetime, device: Mapping) -> Trigger:
    """The trigger an alert event raises, in words a grid worker reads on a phone:
    跌倒报警（毫米波雷达 3号楼2单元101）."""
    episode_key, resident_id = _episode(device)
    where = device["location_text"] or device["name"]
    return Trigger(
        kind=kind,
        episode_key=episode_key,
        occurred_at=occurred_at,
        summary=f"{EVENT_LABELS[kind]}（{DEVICE_LABELS[device['kind']]} {where}）",
        device_id=device["id"],
        resident_id=resident_id,
        latitude=device["latitude"],
        longitude=device["longitude"],
    )


def _usable_events(
    good: list[tuple[Item, dict]], found: dict[int, Mapping]
) -> tuple[list[tuple[Item, dict]], list[ItemError]]:
    usable, errors = [], []
    for item, values in good:
        device = found.get(item.device_id)
        refusal = _device_refusal(item, device)
        sources = EVENT_SOURCES.get(values["kind"])
        if refusal is None and sources is not None and device["kind"] not in sources:
            label = DEVICE_LABELS[device["kind"]]
            message = f"{label}不上报“{EVENT_LABELS[values['kind']]}”，请检查设备ID"
            refusal = _error(item, "kind", message, MISMATCH)
        if refusal is None:
            usable.append((item, values))
        else:
            errors.append(refusal)
    return usable, errors


# An event's columns its item gives.
EVENT_COLUMNS = ("device_id", "event_id", "kind", "occurred_at", "details")


def _insert_new(
    table: Table, name: str, columns: tuple[str, ...], key: str, returned: tuple[str, ...]
) -> ReturningInsert:
    """The INSERT of a batch given as the JSON parameter `name`, skipping the rows whose
    device and `key` (the platform's own id) are stored already; it returns `returned`
    of the rows it inserted. Each column is read from the JSON as the table types it."""
    batch = _recordset(name, **{n: table.c[n].type for n in columns})
    return (
        insert(table)
        .from_select(list(columns), select(*(batch.c[n] for n in columns)))
        .on_conflict_do_nothing(index_elements=["device_id", key])
        .returning(*(table.c[n] for n in returned))
    )


@cache
def _insert_events() -> ReturningInsert:
    returned = ("id", "device_id", "kind", "occurred_at")
    return _insert_new(device_events, "events", EVENT_COLUMNS, "event_id", returned)


def _store_events(conn: Connection, usable: list[tuple[Item, dict]]) -> list[dict]:
    """INSERT the batch, skipping (device, event id) pairs already stored; returns the
    rows this call inserted."""
    rows = [
        {
            "device_id": item.device_id,
            "event_id": values["event_id"],
            "kind": values["kind"],
            "occurred_at": values["occurred_at"],
            "details": values["details"] or {},
        }
        for item, values in usable
    ]
    return [dict(row) for row in conn.execute(_insert_events(), {"events": rows}).mappings()]


def _link_events(conn: Connection, triggers: dict[int, Trigger], raised: list[RaisedAlert]) -> None:
    """Each stored alert event (by id) names the alert its trigger raised or joined; one
    statement. A kind the village switched off raised nothing and links nothing."""
    alert_of = {(a.kind, a.episode_key): a.id for a in raised}
    links = [
        {"id": event_id, "alert_id": alert_of[(t.kind, t.episode_key)]}
        for event_id, t in triggers.items()
        if (t.kind, t.episode_key) in alert_of
    ]
    if links:
        conn.execute(_link_update(), {"links": links})


@cache
def _link_update() -> Update:
    e = device_events
    batch = _recordset("links", id=e.c.id.type, alert_id=e.c.alert_id.type)
    return e.update().where(e.c.id == batch.c.id).values(alert_id=batch.c.alert_id)


def do_ingest_device_events(
    conn: Connection,
    actor: Actor,
    village: str,
    items: list[Item],
    *,
    owner: str,
    now: datetime,
) -> IngestOutcome:
    """Store the events of `owner`'s devices in `village` and raise what they call for."""
    good, errors = _validated(EVENT_SCHEMA, load_event, items, "occurred_at", now)
    found = _owned_devices(conn, (item for item, _ in good), owner)
    usable, refused = _usable_events(good, found)
    outcome = IngestOutcome(errors=errors + refused)
    if usable:
        stored = _store_events(conn, usable)
        outcome.accepted = len(stored)
        outcome.duplicates = len(usable) - len(stored)
        triggers = {
            row["id"]: event_trigger(row["kind"], row["occurred_at"], found[row["device_id"]])
            for row in stored
            if row["kind"] in EVENT_LABELS
        }
        outcome.alerts = _raise(conn, actor, village, list(triggers.values()), now)
        _link_events(conn, triggers, outcome.alerts)
    _audit(conn, actor, village, "events", outcome)
    # Last, as for readings: the devices' rows are locked just before the commit.
    if usable:
        seen = _newest(((i.device_id, v["occurred_at"]) for i, v in usable), now)
        _mark_seen(conn, village, seen)
    return outcome


# -- health readings --------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What counts as normal for one resident: their own heart-rate range where their
    health record has one, else the village's thresholds; a safe zone when they are at
    risk of wandering."""

    heart_rate_min: int
    heart_rate_max: int
    spo2_min: int
    systolic_max: int
    diastolic_max: int
    # (latitude, longitude, radius in metres), for residents at risk of wandering only.
    safe_zone: tuple[float, float, int] | None = None


@cache
def _limits_query() -> Select:
    r, hr, t = m.residents, health_records, health_thresholds
    return (
        select(
            r.c.id,
            func.coalesce(hr.c.heart_rate_min, t.c.heart_rate_min).label("heart_rate_min"),
            func.coalesce(hr.c.heart_rate_max, t.c.heart_rate_max).label("heart_rate_max"),
            t.c.spo2_min,
            t.c.systolic_max,
            t.c.diastolic_max,
            hr.c.wandering_risk,
            hr.c.safe_zone_latitude,
            hr.c.safe_zone_longitude,
            hr.c.safe_zone_radius_m,
        )
        .select_from(r)
        .outerjoin(hr, hr.c.resident_id == r.c.id)
        # The thresholds are one row, seeded with the village schema.
        .join(t, t.c.id == 1)
        .where(r.c.id == any_ids(key="ids"))
    )


def _limits(conn: Connection, resident_ids: set[int]) -> dict[int, Limits]:
    """The limits of every resident named, in one statement; residents not found (of no
    record in this village) are left out."""
    if not resident_ids:
        return {}
    rows = conn.execute(_limits_query(), {"ids": list(resident_ids)}).all()
    # Most residents are held to the village's thresholds: one Limits serves all who
    # share theirs (a batch of 700 wearers built 700 of them: 0.5 ms of its gateway CPU).
    shared: dict[tuple, Limits] = {}
    limits = {}
    for resident_id, *ranges, wandering, latitude, longitude, radius in rows:
        zone = (latitude, longitude, radius) if wandering and radius is not None else None
        key = (*ranges, zone)
        found = shared.get(key)
        if found is None:
            found = shared[key] = Limits(*ranges, zone)
        limits[resident_id] = found
    return limits


def _beyond_safe_zone(reading: dict, limits: Limits) -> float | None:
    """Metres outside the safe zone, or None when inside, unknown or not watched."""
    if limits.safe_zone is None or reading["latitude"] is None:
        return None
    lat, lon, radius = limits.safe_zone
    beyond = distance_m(lat, lon, reading["latitude"], reading["longitude"]) - radius
    return beyond if beyond > 0 else None


# What a reading is abnormal for, and the alert kind of the same meaning.
ALERT_KIND_OF = {
    HEART_RATE: HEART_RATE_ABNORMAL,
    SPO2: LOW_SPO2,
    BLOOD_PRESSURE: HIGH_BLOOD_PRESSURE,
    OUTSIDE_SAFE_ZONE: MISSING_PERSON,
}


def finding_summary(finding: str, reading: dict, limits: Limits) -> str:
    """What a grid worker reads on a phone: 心率 134 次/分（范围 50–120）."""
    if finding == HEART_RATE:
        return (
            f"心率 {reading['heart_rate']} 次/分"
            f"（范围 {limits.heart_rate_min}–{limits.heart_rate_max}）"
        )
    if finding == SPO2:
        return f"血氧 {reading['spo2']}%（低于 {limits.spo2_min}%）"
    if finding == BLOOD_PRESSURE:
        return (
            f"血压 {reading['systolic']}/{reading['diastolic']} mmHg"
            f"（上限 {limits.systolic_max}/{limits.diastolic_max}）"
        )
    beyond = _beyond_safe_zone(reading, limits) or 0
    return f"离开安全区域约 {round(beyond, -1):.0f} 米"


def abnormalities(reading: dict, limits: Limits) -> list[str]:
    """What is out of range in one reading (ABNORMALITIES, in a fixed order)."""
    found = []
    heart_rate = reading["heart_rate"]
    if heart_rate is not None and not limits.heart_rate_min <= heart_rate <= limits.heart_rate_max:
        found.append(HEART_RATE)
    if reading["spo2"] is not None and reading["spo2"] < limits.spo2_min:
        found.append(SPO2)
    if reading["systolic"] is not None and (
        reading["systolic"] > limits.systolic_max or reading["diastolic"] > limits.diastolic_max
    ):
        found.append(BLOOD_PRESSURE)
    if _beyond_safe_zone(reading, limits) is not None:
        found.append(OUTSIDE_SAFE_ZONE)
    return found


def reading_triggers(stored: list[dict], limits: dict[int, Limits]) -> list[Trigger]:
    """One trigger per resident and alert kind: the latest abnormal reading of the call
    says what it is now."""
    latest: dict[tuple[int, str], dict] = {}
    for reading in stored:
        for finding in reading["abnormal"]:
            key = (reading["resident_id"], finding)
            if key not in latest or reading["measured_at"] >= latest[key]["measured_at"]:
                latest[key] = reading
    triggers = []
    for (resident_id, finding), reading in latest.items():
        triggers.append(
            Trigger(
                kind=ALERT_KIND_OF[finding],
                episode_key=f"resident:{resident_id}",
                occurred_at=reading["measured_at"],
                summary=finding_summary(finding, reading, limits[resident_id]),
                device_id=reading["device_id"],
                resident_id=resident_id,
                latitude=reading["latitude"],
                longitude=reading["longitude"],
            )
        )
    return triggers


def _whose(item: Item, values: dict, device: Mapping) -> tuple[int | None, ItemError | None]:
    """The resident a reading is of: a wristband's or radar's own, or the one a kiosk
    reading names."""
    if device["kind"] not in READING_DEVICES:
        message = f"{DEVICE_LABELS[device['kind']]}不上报体征数据，请检查设备ID"
        return None, _error(item, "device", message, MISMATCH)
    if device["kind"] == HEALTH_KIOSK:
        if values["resident_id"] is None:
            return None, _error(item, "resident", "健康一体机的读数须注明居民", REQUIRED)
        return values["resident_id"], None
    if values["resident_id"] is not None:
        message = "手环和毫米波雷达的读数不填居民：设备已登记佩戴或看护的居民"
        return None, _error(item, "resident", message, INVALID)
    if device["resident_id"] is None:
        return None, _error(item, "device", "设备未登记佩戴或看护的居民", REQUIRED)
    return device["resident_id"], None


# A reading's columns: its item's, its resident and what is abnormal in it.
READING_COLUMNS = (
    "device_id",
    "reading_id",
    "resident_id",
    "measured_at",
    "heart_rate",
    "spo2",
    "systolic",
    "diastolic",
    "latitude",
    "longitude",
    "abnormal",
)


def _readings(
    conn: Connection, good: list[tuple[Item, dict]], found: dict[int, Mapping]
) -> tuple[list[dict], dict[int, Limits], list[ItemError]]:
    """The rows to store, each with its resident and what is abnormal in it; the limits
    they were judged by; and why the others were refused."""
    whose: list[tuple[Item, dict, int]] = []
    errors: list[ItemError] = []
    for item, values in good:
        device = found.get(item.device_id)
        resident_id, refusal = (None, _device_refusal(item, device))
        if refusal is None:
            resident_id, refusal = _whose(item, values, device)
        if refusal is None:
            whose.append((item, values, resident_id))
        else:
            errors.append(refusal)
    limits = _limits(conn, {resident_id for _, _, resident_id in whose})
    rows = []
    for item, values, resident_id in whose:
        if resident_id not in limits:
            errors.append(_error(item, "resident", "居民不存在", NOT_FOUND))
            continue
        # The loaded values are this call's own: they become the row as they are.
        values.update(device_id=item.device_id, resident_id=resident_id)
        values["abnormal"] = abnormalities(values, limits[resident_id])
        rows.append(values)
    return rows, limits, errors


# latest_vitals column groups: the vitals of one group are measured together.
VITALS = {
    "heart_rate_at": ("heart_rate",),
    "spo2_at": ("spo2",),
    "blood_pressure_at": ("systolic", "diastolic"),
    "location_at": ("latitude", "longitude"),
}


LATEST_COLUMNS = ("resident_id", "measured_at", *VITALS, *(n for g in VITALS.values() for n in g))


def _update_latest_vitals(conn: Connection, reading_ids: list[int]) -> None:
    """Upsert the latest vitals of the wearers of the readings just stored, in one
    statement: per vital, the newest stored value, which replaces the one kept only when
    it is newer (a late batch does not roll values back). PostgreSQL works them out from
    the rows it has just written: in Python it was a tenth of a batch's CPU, and a
    second JSON batch."""
    conn.execute(_latest_vitals_upsert(), {"reading_ids": reading_ids})


@cache
def _latest_vitals_upsert() -> Insert:
    lv = latest_vitals
    stored = (
        select(health_readings).where(health_readings.c.id == any_ids(key="reading_ids")).subquery()
    )
    newest: dict[str, Any] = {
        "resident_id": stored.c.resident_id,
        "measured_at": func.max(stored.c.measured_at),
    }
    for taken_at, names in VITALS.items():
        measured = stored.c[names[0]].is_not(None)
        newest[taken_at] = func.max(stored.c.measured_at).filter(measured)
        for n in names:
            # Ties in time go to the reading stored first, as the batch gave them.
            latest_first = aggregate_order_by(stored.c[n], stored.c.measured_at.desc(), stored.c.id)
            values = func.array_agg(latest_first).filter(measured)
            newest[n] = type_coerce(values, ARRAY(lv.c[n].type))[1]
    # In resident order: concurrent batches of the same wearers then take the rows' locks
    # in the same order and cannot deadlock.
    statement = insert(lv).from_select(
        LATEST_COLUMNS,
        select(*(newest[n] for n in LATEST_COLUMNS))
        .group_by(stored.c.resident_id)
        .order_by(stored.c.resident_id),
    )
    new = statement.excluded
    kept: dict[str, Any] = {"measured_at": func.greatest(lv.c.measured_at, new.measured_at)}
    for taken_at, names in VITALS.items():
        newer = or_(lv.c[taken_at].is_(None), new[taken_at] > lv.c[taken_at])
        for n in (taken_at, *names):
            kept[n] = case((newer & new[taken_at].is_not(None), new[n]), else_=lv.c[n])
    return statement.on_conflict_do_update(index_elements=["resident_id"], set_=kept)


def _store_readings(conn: Connection, rows: list[dict]) -> list[tuple[int, dict]]:
    """INSERT the batch, skipping (device, reading id) pairs already stored; returns the
    rows this call inserted, each with its id, as they were given."""
    given: dict[tuple[int, str], dict] = {}
    for row in rows:
        given.setdefault((row["device_id"], row["reading_id"]), row)
    # All at once: fetched one by one, a thousand rows took a twentieth of the batch.
    stored = conn.execute(_insert_readings(), {"readings": list(given.values())}).all()
    return [(id_, given[device_id, reading_id]) for id_, device_id, reading_id in stored]


@cache
def _insert_readings() -> ReturningInsert:
    returned = ("id", "device_id", "reading_id")
    return _insert_new(health_readings, "readings", READING_COLUMNS, "reading_id", returned)


def do_ingest_health_readings(
    conn: Connection,
    actor: Actor,
    village: str,
    items: list[Item],
    *,
    owner: str,
    now: datetime,
) -> IngestOutcome:
    """Store the readings of `owner`'s devices in `village`, flag what is abnormal, keep
    latest vitals, and raise what the abnormal ones call for."""
    good, errors = _validated(READING_SCHEMA, load_reading, items, "measured_at", now)
    found = _owned_devices(conn, (item for item, _ in good), owner)
    rows, limits, refused = _readings(conn, good, found)
    outcome = IngestOutcome(errors=errors + refused)
    stored = _store_readings(conn, rows) if rows else []
    outcome.accepted = len(stored)
    outcome.duplicates = len(rows) - len(stored)
    triggers = reading_triggers([row for _, row in stored], limits)
    outcome.alerts = _raise(conn, actor, village, triggers, now)
    _audit(conn, actor, village, "readings", outcome)
    # Last: concurrent batches of the same wearers queue for these rows until the first
    # commits, so they are locked just before the commit, not while the rest runs.
    if stored:
        _update_latest_vitals(conn, [reading_id for reading_id, _ in stored])
    if rows:
        _mark_seen(conn, village, _newest(((r["device_id"], r["measured_at"]) for r in rows), now))
    return outcome

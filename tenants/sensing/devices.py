"""Devices (设备) of one village: registering, placing, taking out of service, and who sees which.

A device is an AI camera, a smoke, gas or fire-lane sensor, a wristband, an mmWave radar
or a health kiosk. An integrator (a device platform) registers and manages its own
devices (`owner_client_id` is its API client); the village admin manages all of them
and may register the village's own. Wristbands and radars watch over one resident and
name them; every other device has a place (a household, a building or a grid), so
that what it reports reaches the grid worker of that place.

Status: active ⇄ offline (silent longer than its kind should be, `do_mark_silent_devices_offline`;
back to active with its next report), and active or offline → disabled → active by
hand. A disabled device's reports are refused. Every write adds an audit entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import Connection, Select, case, func, or_, select
from sqlalchemy.exc import IntegrityError

from villagelink.platform.audit import Actor, entry, record, record_many
from villagelink.platform.db import hold_lock, violated_constraint
from villagelink.tenants import models as m
from villagelink.tenants.fields import MESSAGES, FreeText, choice, coordinate_field, optional_text
from villagelink.tenants.places import place_of
from villagelink.tenants.querying import limit_of
from villagelink.tenants.residents.queries import Grids, residents_by_ids
from villagelink.tenants.sensing.tables import (
    AI_CAMERA,
    DEVICE_ACTIVE,
    DEVICE_DISABLED,
    DEVICE_KINDS,
    DEVICE_OFFLINE,
    FIRE_LANE_SENSOR,
    GAS_SENSOR,
    HEALTH_KIOSK,
    MMWAVE_RADAR,
    PERSONAL_KINDS,
    SMOKE_SENSOR,
    WRISTBAND,
    devices,
)
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID,
    INVALID_TRANSITION,
    NOT_FOUND,
    REQUIRED,
    Coded,
    refused,
    validated,
)

DEVICE = "Device"

DEVICE_LABELS = {
    AI_CAMERA: "AI摄像头",
    SMOKE_SENSOR: "烟感",
    GAS_SENSOR: "燃气报警器",
    FIRE_LANE_SENSOR: "消防通道占用传感器",
    WRISTBAND: "智能手环",
    MMWAVE_RADAR: "毫米波雷达",
    HEALTH_KIOSK: "健康一体机",
}
STATUS_LABELS = {DEVICE_ACTIVE: "在线", DEVICE_OFFLINE: "离线", DEVICE_DISABLED: "已停用"}

# How long each kind may stay silent before it counts as offline. Cameras and radars
# stream or send a heartbeat every minute; wristbands sync every few minutes and may
# be off the wrist for a wash; battery sensors report sparingly; a kiosk is used when
# people come by.
OFFLINE_AFTER = {
    AI_CAMERA: timedelta(minutes=10),
    MMWAVE_RADAR: timedelta(minutes=10),
    WRISTBAND: timedelta(minutes=30),
    FIRE_LANE_SENSOR: timedelta(minutes=30),
    SMOKE_SENSOR: timedelta(hours=2),
    GAS_SENSOR: timedelta(hours=2),
    HEALTH_KIOSK: timedelta(hours=24),
}

NOT_YOURS = "设备不存在或不在您的管理范围内"
SERIAL_TAKEN = Coded("该序列号的设备已登记", DUPLICATE)
SERIAL_CONSTRAINT = "devices_serial_number_key"

# step -> (states it may start from, the state it leads to, what the step is called)
TRANSITIONS = {
    "disable": ((DEVICE_ACTIVE, DEVICE_OFFLINE), DEVICE_DISABLED, "停用"),
    "enable": ((DEVICE_DISABLED,), DEVICE_ACTIVE, "启用"),
}


# -- who sees which -----------------------------------------------------------


@dataclass(frozen=True)
class DeviceScope:
    """The devices a caller reaches: an integrator's own (`owner`), a grid worker's
    grids (`grids`: devices placed there or watching over a resident there), or all."""

    owner: str | None = None
    grids: Grids = None


EVERY_DEVICE = DeviceScope()


@dataclass(frozen=True)
class DeviceFilter:
    kind: str | None = None
    status: str | None = None
    grid_id: int | None = None
    serial_number: str | None = None


def _devices() -> Select:
    """Devices with their building's name, which every reader of a place wants."""
    d, b = devices, m.buildings
    return select(d, b.c.name.label("building")).outerjoin(b, b.c.id == d.c.building_id)


def _scoped(query: Select, scope: DeviceScope, flt: DeviceFilter = DeviceFilter()) -> Select:
    d = devices
    if scope.owner is not None:
        query = query.where(d.c.owner_client_id == scope.owner)
    if scope.grids is not None:
        grids = list(scope.grids)
        watched = select(m.residents.c.id).where(m.residents.c.grid_id.in_(grids))
        query = query.where(or_(d.c.grid_id.in_(grids), d.c.resident_id.in_(watched)))
    if flt.kind:
        query = query.where(d.c.kind == flt.kind)
    if flt.status:
        query = query.where(d.c.status == flt.status)
    if flt.grid_id is not None:
        query = query.where(d.c.grid_id == flt.grid_id)
    if flt.serial_number:
        query = query.where(d.c.serial_number == flt.serial_number.strip())
    return query


def device_page(
    conn: Connection, flt: DeviceFilter, scope: DeviceScope, *, after_id: int | None, limit: int
) -> list[dict]:
    d = devices
    query = _scoped(_devices(), scope, flt).order_by(d.c.id).limit(limit_of(limit))
    if after_id is not None:
        query = query.where(d.c.id > after_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def device_count(conn: Connection, flt: DeviceFilter, scope: DeviceScope) -> int:
    query = _scoped(select(func.count()).select_from(devices), scope, flt)
    return conn.execute(query).scalar_one()


def devices_by_ids(conn: Connection, ids: Iterable[int], scope: DeviceScope) -> dict[int, dict]:
    query = _scoped(_devices(), scope).where(devices.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


# -- input rules ----------------------------------------------------------------


def _key() -> fields.Integer:
    """An id the API layer resolved from a global ID (never typed by a person)."""
    return fields.Integer(allow_none=True, strict=True, error_messages=MESSAGES)


def check_both_coordinates(data: dict) -> None:
    """A position is a latitude and a longitude, or neither."""
    if (data.get("latitude") is None) != (data.get("longitude") is None):
        raise ValidationError(Coded("经度和纬度须同时填写", REQUIRED), field_name="longitude")


class DevicePlaceSchema(Schema):
    """Where a device is and whom it watches over; every field may be left out."""

    name = FreeText("设备名称", 50)
    household_id = _key()
    building = fields.String(allow_none=True, error_messages=MESSAGES)
    grid_id = _key()
    location_text = FreeText("位置描述", 100, blank=True, allow_none=True)
    latitude = coordinate_field("latitude", allow_none=True)
    longitude = coordinate_field("longitude", allow_none=True)
    resident_id = _key()

    @validates_schema(skip_on_field_errors=True)
    def _both_coordinates(self, data: dict, **_kwargs) -> None:
        check_both_coordinates(data)


class NewDeviceSchema(DevicePlaceSchema):
    kind = choice(DEVICE_KINDS, "设备类型", required=True)
    serial_number = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$",
            error=Coded("序列号须为1到64位字母、数字或 . _ : / -", INVALID),
        ),
        error_messages=MESSAGES,
    )
    name = FreeText("设备名称", 50, required=True)


class StepSchema(Schema):
    reason = optional_text("原因", 200)


# -- writes ---------------------------------------------------------------------


def _audit(conn: Connection, actor: Actor, village: str, action: str, device_id: int, **what):
    record(
        conn,
        actor,
        village=village,
        action=f"device.{action}",
        subject_type=DEVICE,
        subject_id=device_id,
        **what,
    )


def _locked(conn: Connection, device_id: int, scope: DeviceScope) -> dict:
    row = (
        conn.execute(
            _scoped(select(devices), scope).where(devices.c.id == device_id).with_for_update()
        )
        .mappings()
        .first()
    )
    if row is None:
        raise refused("id", NOT_YOURS, NOT_FOUND)
    return dict(row)


def _fresh(conn: Connection, device_id: int) -> dict:
    return devices_by_ids(conn, [device_id], EVERY_DEVICE)[device_id]


def _watched_resident(conn: Connection, kind: str, resident_id: int | None) -> int | None:
    """The resident a device of `kind` watches over: wristbands and radars name one,
    other devices none."""
    if kind not in PERSONAL_KINDS:
        if resident_id is not None:
            raise refused("resident", "只有手环和毫米波雷达登记佩戴或看护的居民", INVALID)
        return None
    if resident_id is None:
        raise refused("resident", "手环和毫米波雷达须登记佩戴或看护的居民", REQUIRED)
    if not residents_by_ids(conn, [resident_id], allowed_grids=None):
        raise refused("resident", "居民不存在", NOT_FOUND)
    return resident_id


def _place(conn: Connection, kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """The place's ids. A device that watches no one needs a place: its alerts go to
    the grid worker there. A wristband goes where its wearer goes."""
    place = place_of(
        conn,
        household_id=values.get("household_id"),
        building=values.get("building") or None,
        grid_id=values.get("grid_id"),
        grids=None,
    )
    if kind not in PERSONAL_KINDS and place["grid_id"] is None:
        raise refused("grid", "请选择设备所在的户、楼栋或网格，预警才能送达网格员", REQUIRED)
    return place


def do_register_device(
    conn: Connection,
    actor: Actor,
    village: str,
    data: dict[str, Any],
    *,
    owner_client_id: str | None,
) -> dict:
    """A new device of the integrator `owner_client_id` (None: the village's own)."""
    values = validated(NewDeviceSchema(), data)
    kind = values["kind"]
    row = {
        "kind": kind,
        "serial_number": values["serial_number"],
        "name": values["name"],
        "owner_client_id": owner_client_id,
        "location_text": values.get("location_text") or None,
        "latitude": values.get("latitude"),
        "longitude": values.get("longitude"),
        "resident_id": _watched_resident(conn, kind, values.get("resident_id")),
        **_place(conn, kind, values),
    }
    try:
        with conn.begin_nested():
            device_id = conn.execute(
                devices.insert().values(**row).returning(devices.c.id)
            ).scalar_one()
    except IntegrityError as exc:
        if violated_constraint(exc) != SERIAL_CONSTRAINT:
            raise
        raise refused("serialNumber", SERIAL_TAKEN, DUPLICATE) from exc
    _audit(
        conn,
        actor,
        village,
        "register",
        device_id,
        fields=sorted(k for k, v in row.items() if v is not None),
        details={"kind": kind, "serial_number": row["serial_number"]},
    )
    return _fresh(conn, device_id)


PLACE_KEYS = ("household_id", "building", "grid_id")


def do_update_device(
    conn: Connection,
    actor: Actor,
    village: str,
    device_id: int,
    changes: dict[str, Any],
    *,
    scope: DeviceScope,
) -> dict:
    """Rename, move or hand a device to another resident. Any of household, building or
    grid given replaces the whole place; the kind and serial number are the maker's."""
    values = validated(DevicePlaceSchema(), changes)
    device = _locked(conn, device_id, scope)
    kind = device["kind"]
    wanted = {
        k: values[k] for k in ("name", "location_text", "latitude", "longitude") if k in values
    }
    if "location_text" in wanted:
        wanted["location_text"] = wanted["location_text"] or None
    if "resident_id" in values:
        wanted["resident_id"] = _watched_resident(conn, kind, values["resident_id"])
    if any(k in values for k in PLACE_KEYS):
        wanted.update(_place(conn, kind, values))
    changed = {k: v for k, v in wanted.items() if device[k] != v}
    if changed:
        conn.execute(
            devices.update()
            .where(devices.c.id == device_id)
            .values(**changed, version=devices.c.version + 1, updated_at=func.now())
        )
        _audit(conn, actor, village, "update", device_id, fields=sorted(changed))
    return _fresh(conn, device_id)


def _step(
    conn: Connection,
    actor: Actor,
    village: str,
    device_id: int,
    step: str,
    data: dict[str, Any],
    scope: DeviceScope,
) -> dict:
    values = validated(StepSchema(), data)
    device = _locked(conn, device_id, scope)
    starts, leads_to, name = TRANSITIONS[step]
    if device["status"] not in starts:
        raise refused(
            "id", f"设备{STATUS_LABELS[device['status']]}，不能{name}", INVALID_TRANSITION
        )
    conn.execute(
        devices.update()
        .where(devices.c.id == device_id)
        .values(status=leads_to, version=devices.c.version + 1, updated_at=func.now())
    )
    _audit(
        conn,
        actor,
        village,
        step,
        device_id,
        fields=["status"],
        reason=values["reason"],
        details={"from": device["status"], "to": leads_to},
    )
    return _fresh(conn, device_id)


def do_disable_device(
    conn: Connection,
    actor: Actor,
    village: str,
    device_id: int,
    data: dict[str, Any],
    *,
    scope: DeviceScope,
) -> dict:
    """停用: out of service (lost, broken, returned); its reports are refused from now on."""
    return _step(conn, actor, village, device_id, "disable", data, scope)


def do_enable_device(
    conn: Connection,
    actor: Actor,
    village: str,
    device_id: int,
    data: dict[str, Any],
    *,
    scope: DeviceScope,
) -> dict:
    """启用: back in service; the offline sweep judges it again by its next reports."""
    return _step(conn, actor, village, device_id, "enable", data, scope)


def lock_presence(conn: Connection, village: str) -> None:
    """Take the village's devices' presence (last seen, online or offline) for this
    transaction, before a statement that updates many devices' rows: a batch's reports,
    the offline sweep. Each such statement then updates its rows in whatever order it
    reads them, and two of them never wait for each other's rows (a deadlock). Locking
    a batch's devices in id order first did the same with a second pass over 700 rows,
    a third of its last-seen update's time. One device's own steps need no such lock."""
    hold_lock(conn, f"device-presence:{village}")


def do_mark_silent_devices_offline(
    conn: Connection, actor: Actor, village: str, now: datetime
) -> list[int]:
    """Active devices silent for longer than their kind allows (since their last report,
    or their registration if they never reported) go offline, in one statement;
    returns their ids. Rerun at the same moment, it changes nothing."""
    d = devices
    lock_presence(conn, village)
    silent_before = case(
        {kind: now - after for kind, after in OFFLINE_AFTER.items()}, value=d.c.kind
    )
    rows = conn.execute(
        d.update()
        .where(
            d.c.status == DEVICE_ACTIVE,
            func.coalesce(d.c.last_seen_at, d.c.created_at) < silent_before,
        )
        .values(status=DEVICE_OFFLINE, version=d.c.version + 1, updated_at=func.now())
        .returning(d.c.id, d.c.last_seen_at)
    ).all()
    record_many(
        conn,
        [
            entry(
                actor,
                village=village,
                action="device.offline",
                subject_type=DEVICE,
                subject_id=device_id,
                fields=["status"],
                details={"last_seen_at": last_seen.isoformat() if last_seen else None},
            )
            for device_id, last_seen in rows
        ],
    )
    return sorted(device_id for device_id, _ in rows)

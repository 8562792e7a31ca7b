"""The demo villages' sensing: devices in the proportions of docs/domain.md and
ninety days of closed alerts; the health records and readings of the elderly are
health.py's, made by the same builder.

Same split as residents.py and affairs.py: `build_sensing` makes every row from a
seed, a day and the village's people without a database; `write_sensing` bulk-inserts
them once the people have database ids.

Proportions (docs/domain.md): about 150 AI cameras a village (中北斜村 has 157), a wristband
for every resident over 65, millimetre-wave radar for over-85s in high-risk homes
(living alone, disabled or key-focus), smoke sensors in every building, gas sensors
in the kitchens of elderly people living alone, fire-lane sensors and two health
kiosks. In the villages the demo device platform serves (DEMO_CLIENT_VILLAGES) it owns
the devices, so `villagelink simulate devices` can stream for them; elsewhere they are
the village's own.

Places. The seed has no map, so each village gets a centre near 天津 and its buildings
are laid out on a grid of streets around it, 60 m apart: coordinates are fictional but
consistent (a household's wristband reads near its building; a safe zone is 600 m
around home).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from faker import Faker
from sqlalchemy import Connection

from villagelink.tenants.clock import day_start
from villagelink.tenants.coordinates import moved
from villagelink.tenants.demo.bulk import insert_returning_ids, optional_id
from villagelink.tenants.demo.health import (
    HealthRecordRow,
    ReadingRow,
    build_health_records,
    build_readings,
    write_health,
)
from villagelink.tenants.demo.village import HISTORY_DAYS, age_on
from villagelink.tenants.sensing import tables as st
from villagelink.tenants.sensing.actions import (
    ACKNOWLEDGE,
    MARK_FALSE_ALARM,
    RESOLVE,
    alert_step,
)

if TYPE_CHECKING:
    from villagelink.tenants.demo.residents import VillageIds, VillageRows

CAMERAS = 150
FIRE_LANE_SENSORS = 8
HEALTH_KIOSKS = 2
WRISTBAND_AGE = 65
RADAR_AGE = 85
HIGH_RISK_TAGS = {"elderly_living_alone", "disabled", "key_focus"}
# Where each demo village lies (fictional, around 天津's outskirts).
CENTRES = {
    "liulin": (39.0612, 117.3321),
    "xinghua": (39.0755, 117.3514),
    "qingshi": (39.0913, 117.3398),
    "hedong": (39.0857, 117.3102),
    "taoyuan": (39.0688, 117.3085),
}
DEFAULT_CENTRE = (39.08, 117.33)


@dataclass(frozen=True)
class DeviceRow:
    kind: str
    serial_number: str
    name: str
    owner_client_id: str | None
    grid: int | None
    building: int | None
    household: int | None
    resident: int | None
    location_text: str | None
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True)
class AlertRow:
    kind: str
    device: int
    resident: int | None
    raised_at: datetime
    acknowledged_at: datetime
    closed_at: datetime
    state: str
    outcome: str
    summary: str
    assignee: int | None
    level: str


@dataclass
class SensingRows:
    devices: list[DeviceRow] = field(default_factory=list)
    health_records: list[HealthRecordRow] = field(default_factory=list)
    readings: list[ReadingRow] = field(default_factory=list)
    alerts: list[AlertRow] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {f.name: len(getattr(self, f.name)) for f in fields(self)}


class _Map:
    """Fictional coordinates: buildings on a street grid around the village centre."""

    def __init__(self, slug: str, buildings: int):
        self.lat, self.lon = CENTRES.get(slug, DEFAULT_CENTRE)
        self.side = max(1, math.ceil(math.sqrt(buildings)))

    def building(self, index: int) -> tuple[float, float]:
        row, col = divmod(index, self.side)
        return self.offset((row - self.side / 2) * 60, (col - self.side / 2) * 60)

    def offset(self, north_m: float, east_m: float) -> tuple[float, float]:
        return moved(self.lat, self.lon, north_m, east_m)


class SensingBuilder:
    def __init__(
        self, rows: VillageRows, slug: str, owner: str | None, seed: int, today: date, as_of: date
    ):
        self.rows = rows
        self.slug = slug
        self.owner = owner
        self.rng = random.Random(f"sensing:{seed}")
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(seed)
        self.today = today
        self.start = day_start(today)
        self.map = _Map(slug, len(rows.buildings))
        self.ages = [age_on(r.birth_date, as_of) for r in rows.residents]
        self.tags: dict[int, set[str]] = {}
        for tag in rows.tags:
            self.tags.setdefault(tag.resident, set()).add(tag.tag)
        self.members: dict[int, list[int]] = {}
        for position, resident in enumerate(rows.residents):
            self.members.setdefault(resident.household, []).append(position)
        self.out = SensingRows()
        self.serials: dict[str, int] = {}

    def jitter(self, metres: float) -> tuple[float, float]:
        """A random (north, east) offset within `metres` either way."""
        return self.rng.uniform(-metres, metres), self.rng.uniform(-metres, metres)

    def serial(self, prefix: str) -> str:
        self.serials[prefix] = self.serials.get(prefix, 0) + 1
        return f"{self.slug.upper()}-{prefix}-{self.serials[prefix]:04d}"

    def device(self, kind: str, prefix: str, name: str, **place: Any) -> int:
        self.out.devices.append(
            DeviceRow(
                kind=kind,
                serial_number=self.serial(prefix),
                name=name,
                owner_client_id=self.owner,
                **{
                    "grid": None,
                    "building": None,
                    "household": None,
                    "resident": None,
                    "location_text": None,
                    "latitude": None,
                    "longitude": None,
                    **place,
                },
            )
        )
        return len(self.out.devices) - 1

    # -- devices --------------------------------------------------------------

    def fixed_devices(self) -> None:
        buildings = self.rows.buildings
        spots = ("楼道口", "单元门", "停车场", "消防通道", "广场", "路口", "健身区", "垃圾站")
        for n in range(CAMERAS + self.rng.randint(-5, 7)):
            b = n % len(buildings)
            lat, lon = moved(*self.map.building(b), *self.jitter(25))
            spot = self.rng.choice(spots)
            self.device(
                st.AI_CAMERA,
                "CAM",
                f"{buildings[b].name}{spot}摄像头",
                grid=buildings[b].grid,
                building=b,
                location_text=f"{buildings[b].name}{spot}",
                latitude=lat,
                longitude=lon,
            )
        for b, building in enumerate(buildings):
            lat, lon = self.map.building(b)
            self.device(
                st.SMOKE_SENSOR,
                "SMK",
                f"{building.name}烟感",
                grid=building.grid,
                building=b,
                location_text=f"{building.name}楼道",
                latitude=lat,
                longitude=lon,
            )
        for _ in range(FIRE_LANE_SENSORS):
            b = self.rng.randrange(len(buildings))
            lat, lon = self.map.building(b)
            self.device(
                st.FIRE_LANE_SENSOR,
                "LANE",
                f"{buildings[b].name}消防通道占用监测",
                grid=buildings[b].grid,
                building=b,
                location_text=f"{buildings[b].name}旁消防通道",
                latitude=lat,
                longitude=lon,
            )
        for n in range(HEALTH_KIOSKS):
            lat, lon = self.map.offset(n * 90, -40)
            self.device(
                st.HEALTH_KIOSK,
                "KIOSK",
                f"健康小屋自助体检机{n + 1}号",
                grid=self.rows.buildings[0].grid,
                location_text="党群服务中心健康小屋",
                latitude=lat,
                longitude=lon,
            )

    def personal_devices(self) -> dict[int, int]:
        """Wristbands, radars and kitchen gas sensors; returns resident → wristband."""
        wristbands: dict[int, int] = {}
        gas_homes: set[int] = set()
        for position, resident in enumerate(self.rows.residents):
            age = self.ages[position]
            if age < WRISTBAND_AGE:
                continue
            home = self.rows.households[resident.household]
            lat, lon = self.map.building(home.building)
            place = {
                "grid": home.grid,
                "building": home.building,
                "household": resident.household,
                "resident": position,
                "location_text": home.address,
            }
            # A wristband's registered place is its wearer's home.
            wristbands[position] = self.device(
                st.WRISTBAND, "BAND", f"{resident.name}的手环", **place, latitude=lat, longitude=lon
            )
            tags = self.tags.get(position, set())
            if age >= RADAR_AGE and tags & HIGH_RISK_TAGS:
                self.device(
                    st.MMWAVE_RADAR,
                    "RADAR",
                    f"{resident.name}家毫米波雷达",
                    **place,
                    latitude=lat,
                    longitude=lon,
                )
            if "elderly_living_alone" in tags and resident.household not in gas_homes:
                gas_homes.add(resident.household)
                self.device(
                    st.GAS_SENSOR,
                    "GAS",
                    f"{home.address}厨房燃气报警器",
                    grid=home.grid,
                    building=home.building,
                    household=resident.household,
                    location_text=f"{home.address}厨房",
                    latitude=lat,
                    longitude=lon,
                )
        return wristbands

    # -- alerts ---------------------------------------------------------------

    def alerts(self) -> None:
        """About three closed alerts a week over ninety days, mostly falls and
        false-alarm smoke, each acknowledged within minutes (as 久华里's story)."""
        by_kind: dict[str, list[int]] = {}
        for index, device in enumerate(self.out.devices):
            by_kind.setdefault(device.kind, []).append(index)
        plan = (
            (st.FALL, st.MMWAVE_RADAR, 6, "跌倒报警", "网格员到场，老人已扶起，无大碍，通知家属"),
            (st.FALL, st.AI_CAMERA, 5, "公共区域跌倒", "网格员到场，协助就医"),
            (st.SMOKE, st.SMOKE_SENSOR, 8, "烟感报警", None),
            (st.SOS, st.WRISTBAND, 4, "手环一键呼救", "老人身体不适，已陪同就医"),
            (st.VEHICLE_LINGERING, st.AI_CAMERA, 9, "车辆长时间逗留", "已联系车主驶离"),
            (st.FIRE_LANE_BLOCKED, st.FIRE_LANE_SENSOR, 7, "消防通道占用", "已清理通道"),
            (st.GAS, st.GAS_SENSOR, 1, "燃气浓度超标", "关阀开窗，燃气公司上门检修"),
        )
        staff_of_grid: dict[int, list[int]] = {}
        for s, member in enumerate(self.rows.staff):
            for grid in member.grids:
                staff_of_grid.setdefault(grid, []).append(s)
        history = self.start - timedelta(days=HISTORY_DAYS)
        for kind, device_kind, count, words, outcome in plan:
            candidates = by_kind.get(device_kind, [])
            for _ in range(count if candidates else 0):
                device_index = self.rng.choice(candidates)
                device = self.out.devices[device_index]
                raised = history + timedelta(minutes=self.rng.randrange(HISTORY_DAYS * 24 * 60))
                acknowledged = raised + timedelta(seconds=self.rng.randint(40, 240))
                closed = acknowledged + timedelta(minutes=self.rng.randint(8, 50))
                false_alarm = outcome is None or self.rng.random() < 0.15
                staff = staff_of_grid.get(device.grid, [])
                self.out.alerts.append(
                    AlertRow(
                        kind=kind,
                        device=device_index,
                        resident=device.resident,
                        raised_at=raised,
                        acknowledged_at=acknowledged,
                        closed_at=closed,
                        # Acknowledged, then closed: the state the alerts' own steps lead to.
                        state=alert_step(
                            alert_step(st.ASSIGNED, ACKNOWLEDGE),
                            MARK_FALSE_ALARM if false_alarm else RESOLVE,
                        ),
                        outcome="误报：做饭油烟" if false_alarm else outcome,
                        summary=f"{words}（{device.location_text or device.name}）",
                        assignee=self.rng.choice(staff) if staff else None,
                        level=st.GRID,
                    )
                )
        self.out.alerts.sort(key=lambda a: a.raised_at)


def build_sensing(
    rows: VillageRows, slug: str, owner: str | None, seed: int, today: date, as_of: date
) -> SensingRows:
    """Every sensing row of one village, from `seed`, `today` and its people alone;
    `owner` is the API client that runs the devices (None: the village's own)."""
    b = SensingBuilder(rows, slug, owner, seed, today, as_of)
    b.fixed_devices()
    wristbands = b.personal_devices()
    build_health_records(b)
    build_readings(b, wristbands)
    b.alerts()
    return b.out


def write_sensing(
    conn: Connection, sensing: SensingRows, rows: VillageRows, ids: VillageIds
) -> None:
    """Insert one village's sensing rows after its people (`ids`, from residents.write_village)."""
    last_seen: dict[int, datetime] = {}
    for r in sensing.readings:
        last_seen[r.device] = max(r.measured_at, last_seen.get(r.device, r.measured_at))
    device_ids = insert_returning_ids(
        conn,
        st.devices,
        [
            {
                "kind": d.kind,
                "serial_number": d.serial_number,
                "name": d.name,
                "owner_client_id": d.owner_client_id,
                "grid_id": optional_id(ids.grids, d.grid),
                "building_id": optional_id(ids.buildings, d.building),
                "household_id": optional_id(ids.households, d.household),
                "resident_id": optional_id(ids.residents, d.resident),
                "location_text": d.location_text,
                "latitude": d.latitude,
                "longitude": d.longitude,
                "last_seen_at": last_seen.get(position),
            }
            for position, d in enumerate(sensing.devices)
        ],
    )
    write_health(conn, sensing, ids, device_ids)
    _write_alerts(conn, sensing, rows, ids, device_ids)


def _write_alerts(
    conn: Connection,
    sensing: SensingRows,
    rows: VillageRows,
    ids: VillageIds,
    device_ids: list[int],
) -> None:
    if not sensing.alerts:
        return
    steps = [_alert_steps(a, rows, ids) for a in sensing.alerts]
    alert_ids = insert_returning_ids(
        conn,
        st.alerts,
        [
            {**_alert_values(a, sensing, rows, ids, device_ids), "version": len(timeline)}
            for a, timeline in zip(sensing.alerts, steps, strict=True)
        ],
    )
    events = [
        {"alert_id": alert_id, **step}
        for alert_id, timeline in zip(alert_ids, steps, strict=True)
        for step in timeline
    ]
    conn.execute(st.alert_events.insert(), events)


def _alert_steps(a: AlertRow, rows: VillageRows, ids: VillageIds) -> list[dict[str, Any]]:
    """The timeline of a closed alert: raised and assigned by the rules, the on-duty
    worker notified, then the worker's own steps (acknowledge, then resolve or mark a
    false alarm) as the alerts' state machine takes them. Each entry is a version."""
    staff_id = optional_id(ids.staff, a.assignee)
    staff_name = rows.staff[a.assignee].name if a.assignee is not None else None
    worker = rows.staff[a.assignee].account_sub if a.assignee is not None else None
    by, name = worker or "system:demo", staff_name or "值班人员"
    closing = RESOLVE if a.state == st.RESOLVED else MARK_FALSE_ALARM
    acknowledged = alert_step(st.ASSIGNED, ACKNOWLEDGE)
    steps = [
        ("raise", None, st.OPEN, a.raised_at, None, "system:rules", "预警规则"),
        ("assign", st.OPEN, st.ASSIGNED, a.raised_at, staff_id, "system:rules", "预警规则"),
        ("notify", st.ASSIGNED, st.ASSIGNED, a.raised_at, staff_id, "system:notify", "通知"),
        (ACKNOWLEDGE, st.ASSIGNED, acknowledged, a.acknowledged_at, staff_id, by, name),
        (closing, acknowledged, alert_step(acknowledged, closing), a.closed_at, staff_id, by, name),
    ]
    return [
        {
            "action": action,
            "from_state": before,
            "to_state": after,
            "level": st.GRID,
            "staff_id": staff,
            "note": a.outcome if action == closing else None,
            "actor_sub": sub,
            "actor_name": actor_name,
            "created_at": at,
        }
        for action, before, after, at, staff, sub, actor_name in steps
    ]


def _alert_values(
    a: AlertRow, sensing: SensingRows, rows: VillageRows, ids: VillageIds, device_ids: list[int]
) -> dict[str, Any]:
    device = sensing.devices[a.device]
    severity = st.DEFAULT_ALERT_RULES[a.kind][0]
    ack_minutes = st.DEFAULT_ALERT_RULES[a.kind][1]
    episode = f"resident:{ids.residents[a.resident]}" if a.resident is not None else None
    return {
        "kind": a.kind,
        "severity": severity,
        "state": a.state,
        "level": a.level,
        "episode_key": episode or f"device:{device_ids[a.device]}",
        "device_id": device_ids[a.device],
        "resident_id": optional_id(ids.residents, a.resident),
        "grid_id": optional_id(ids.grids, device.grid),
        "building_id": optional_id(ids.buildings, device.building),
        "household_id": optional_id(ids.households, device.household),
        "location_text": device.location_text,
        "latitude": device.latitude,
        "longitude": device.longitude,
        "summary": a.summary,
        "assignee_staff_id": optional_id(ids.staff, a.assignee),
        "raised_at": a.raised_at,
        "last_triggered_at": a.raised_at,
        "ack_due_at": a.raised_at + timedelta(minutes=ack_minutes),
        "notified_at": a.raised_at,
        "acknowledged_at": a.acknowledged_at,
        "acknowledged_by": rows.staff[a.assignee].name if a.assignee is not None else None,
        "closed_at": a.closed_at,
        "outcome": a.outcome,
        "created_at": a.raised_at,
        "updated_at": a.closed_at,
    }

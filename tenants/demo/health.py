"""The demo's health records of the elderly and a day of wristband readings, with
the latest vitals they leave (tenants/health); the wristbands themselves are sensing's
devices (sensing.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from villagelink.tenants.coordinates import moved
from villagelink.tenants.demo.residents import ELDERLY_AGE
from villagelink.tenants.health import tables as ht

if TYPE_CHECKING:
    from villagelink.tenants.demo.residents import VillageIds
    from villagelink.tenants.demo.sensing import SensingBuilder, SensingRows

CONDITIONS = (
    ("高血压", 0.45),
    ("糖尿病", 0.18),
    ("冠心病", 0.14),
    ("慢性阻塞性肺病", 0.08),
    ("骨质疏松", 0.12),
    ("脑卒中后遗症", 0.05),
)
DEMENTIA = "阿尔茨海默病"
SAFE_ZONE_RADIUS_M = 600


@dataclass(frozen=True)
class HealthRecordRow:
    resident: int
    conditions: list[str]
    emergency_contacts: list[dict[str, str]]
    care_level: str
    wandering_risk: bool
    safe_zone: tuple[float, float, int] | None
    heart_rate_range: tuple[int, int] | None


@dataclass(frozen=True)
class ReadingRow:
    device: int
    resident: int
    measured_at: datetime
    heart_rate: int
    spo2: int
    systolic: int | None
    diastolic: int | None
    latitude: float | None
    longitude: float | None


def build_health_records(b: SensingBuilder) -> None:
    """A health record for every resident aged 60+: conditions, contacts, care level,
    and a safe zone for those with dementia."""
    for position, resident in enumerate(b.rows.residents):
        age = b.ages[position]
        if age < ELDERLY_AGE:
            continue
        conditions = [name for name, share in CONDITIONS if b.rng.random() < share]
        dementia = age >= 75 and b.rng.random() < (0.04 if age < 85 else 0.12)
        if dementia:
            conditions.append(DEMENTIA)
        home = b.rows.households[resident.household]
        lat, lon = b.map.building(home.building)
        care = "self_care"
        if age >= 85 or dementia:
            care = b.rng.choice(("assisted", "assisted", "full_care"))
        elif age >= 75 and b.rng.random() < 0.2:
            care = "assisted"
        b.out.health_records.append(
            HealthRecordRow(
                resident=position,
                conditions=conditions,
                emergency_contacts=_contacts(b, position),
                care_level=care,
                wandering_risk=dementia,
                safe_zone=(lat, lon, SAFE_ZONE_RADIUS_M) if dementia else None,
                # Heart disease: the doctor's own range, tighter above.
                heart_rate_range=(50, 105) if "冠心病" in conditions else None,
            )
        )


def _contacts(b: SensingBuilder, position: int) -> list[dict[str, str]]:
    resident = b.rows.residents[position]
    family = [
        other
        for other in b.members.get(resident.household, [])
        if other != position and 18 <= b.ages[other] < 70
    ]
    contacts = [
        {
            "name": b.rows.residents[other].name,
            "relation": "家属",
            "phone": b.rows.residents[other].phone or b.fake.phone_number(),
        }
        for other in family[:1]
    ]
    # Children living elsewhere: the usual first call for people living alone.
    relation = b.rng.choice(("儿子", "女儿", "侄子", "外甥女"))
    contacts.append({"name": b.fake.name(), "relation": relation, "phone": b.fake.phone_number()})
    return contacts


def build_readings(b: SensingBuilder, wristbands: dict[int, int]) -> None:
    """Hourly wristband readings for the day before the seeding: enough for charts
    and latest vitals; the simulator streams the minute-by-minute ones."""
    day = b.start - timedelta(days=1)
    records = {r.resident: r for r in b.out.health_records}
    for resident, device in wristbands.items():
        record = records.get(resident)
        hypertensive = record is not None and "高血压" in record.conditions
        home = b.rows.households[b.rows.residents[resident].household]
        lat, lon = b.map.building(home.building)
        base = b.rng.randint(62, 82)
        for hour in range(24):
            asleep = hour < 6 or hour >= 22
            heart = base + (-8 if asleep else b.rng.randint(0, 14))
            systolic = b.rng.randint(135, 158) if hypertensive else b.rng.randint(110, 134)
            near = moved(lat, lon, *b.jitter(80))
            b.out.readings.append(
                ReadingRow(
                    device=device,
                    resident=resident,
                    measured_at=day + timedelta(hours=hour, minutes=b.rng.randint(0, 59)),
                    heart_rate=heart,
                    spo2=b.rng.randint(94, 99),
                    systolic=systolic if hour in (8, 20) else None,
                    # Below the default thresholds (160/100): the seeded day raises nothing.
                    diastolic=b.rng.randint(70, 92) if hour in (8, 20) else None,
                    latitude=near[0],
                    longitude=near[1],
                )
            )


def write_health(
    conn: Connection, sensing: SensingRows, ids: VillageIds, device_ids: list[int]
) -> None:
    """Insert the health records and readings after the people and the devices."""
    if sensing.health_records:
        conn.execute(
            ht.health_records.insert(),
            [
                {
                    "resident_id": ids.residents[r.resident],
                    "conditions": r.conditions,
                    "emergency_contacts": r.emergency_contacts,
                    "care_level": r.care_level,
                    "wandering_risk": r.wandering_risk,
                    "safe_zone_latitude": r.safe_zone[0] if r.safe_zone else None,
                    "safe_zone_longitude": r.safe_zone[1] if r.safe_zone else None,
                    "safe_zone_radius_m": r.safe_zone[2] if r.safe_zone else None,
                    "heart_rate_min": r.heart_rate_range[0] if r.heart_rate_range else None,
                    "heart_rate_max": r.heart_rate_range[1] if r.heart_rate_range else None,
                }
                for r in sensing.health_records
            ],
        )
    _write_readings(conn, sensing.readings, ids, device_ids)


def _write_readings(
    conn: Connection, readings: list[ReadingRow], ids: VillageIds, device_ids: list[int]
) -> None:
    if not readings:
        return
    conn.execute(
        ht.health_readings.insert(),
        [
            {
                "device_id": device_ids[r.device],
                "reading_id": f"seed-{r.measured_at:%Y%m%d%H}",
                "resident_id": ids.residents[r.resident],
                "measured_at": r.measured_at,
                "received_at": r.measured_at,
                "heart_rate": r.heart_rate,
                "spo2": r.spo2,
                "systolic": r.systolic,
                "diastolic": r.diastolic,
                "latitude": r.latitude,
                "longitude": r.longitude,
            }
            for r in readings
        ],
    )
    latest: dict[int, dict[str, Any]] = {}
    for r in sorted(readings, key=lambda r: r.measured_at):
        row = latest.setdefault(ids.residents[r.resident], {})
        row.update(
            resident_id=ids.residents[r.resident],
            measured_at=r.measured_at,
            heart_rate=r.heart_rate,
            heart_rate_at=r.measured_at,
            spo2=r.spo2,
            spo2_at=r.measured_at,
            latitude=r.latitude,
            longitude=r.longitude,
            location_at=r.measured_at,
        )
        if r.systolic is not None:
            row.update(systolic=r.systolic, diastolic=r.diastolic, blood_pressure_at=r.measured_at)
    for row in latest.values():
        row.setdefault("systolic", None)
        row.setdefault("diastolic", None)
        row.setdefault("blood_pressure_at", None)
    conn.execute(ht.latest_vitals.insert(), list(latest.values()))

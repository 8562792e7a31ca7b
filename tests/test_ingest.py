"""Ingest of device events and health readings against the real servers: idempotent
re-ingest, per-item refusals next to stored items, the batch limit, who may send for
which device, the rules (alert events, thresholds with the person's own range,
debouncing across calls, the safe zone), kiosk readings, latest vitals, the
notification after commit, and statement counts that do not grow with the batch."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from marshmallow import ValidationError
from rq import Queue
from sqlalchemy import func, insert, select, text, update

from villagelink.graphql.core.ids import decode_id, encode_id
from villagelink.jobs.queues import NOTIFY
from villagelink.platform import models as pm
from villagelink.platform.db import Database
from villagelink.tenants import models as tm
from villagelink.tenants.coordinates import distance_m
from villagelink.tenants.demo.plans import DEMO_VILLAGES
from villagelink.tenants.demo.residents import build_village, write_village
from villagelink.tenants.health.tables import health_readings, health_records, latest_vitals
from villagelink.tenants.sensing.ingest import (
    EVENT_SCHEMA,
    MAX_BATCH,
    READING_SCHEMA,
    load_event,
    load_reading,
)
from villagelink.tenants.sensing.tables import alerts, device_events, devices

from .conftest import new_village
from .test_query_count import count_statements

EVENTS = """mutation($input: IngestDeviceEventsInput!) { ingestDeviceEvents(input: $input) {
  accepted duplicates alerts itemErrors { index field message code }
  userErrors { field message code } } }"""
READINGS = """mutation($input: IngestHealthReadingsInput!) { ingestHealthReadings(input: $input) {
  accepted duplicates alerts itemErrors { index field message code }
  userErrors { field message code } } }"""
REGISTER = """mutation($input: RegisterDeviceInput!) { registerDevice(input: $input) {
  device { id } userErrors { field message code } } }"""
DISABLE = """mutation($input: DeviceStepInput!) { disableDevice(input: $input) {
  device { status } userErrors { code } } }"""
NOW = datetime.now(UTC).replace(microsecond=0)
MINUTE = timedelta(minutes=1)
# A safe zone around home, and a point about 1.3 km north-east of it.
HOME = (39.0612, 117.3321)
AWAY = (39.0700, 117.3430)


def first_code(body) -> str:
    return body["errors"][0]["extensions"]["code"]


def send(gql, caller: str, document: str, items: list[dict]) -> dict:
    key = "events" if document is EVENTS else "readings"
    status, body = gql(document, caller, {"input": {key: items}})
    assert status == 200 and "errors" not in body, body
    return next(iter(body["data"].values()))


def errors_of(payload: dict) -> list[tuple]:
    return [(e["index"], e["field"], e["code"]) for e in payload["itemErrors"]]


def key(global_id: str) -> int:
    return int(decode_id(global_id).key)


def an_id() -> str:
    return uuid.uuid4().hex[:12]


def event(device: str, kind: str, at: datetime = NOW, **fields) -> dict:
    return {
        "device": device,
        "eventId": an_id(),
        "kind": kind,
        "occurredAt": at.isoformat(),
    } | fields


def reading(device: str, at: datetime = NOW, **fields) -> dict:
    return {"device": device, "readingId": an_id(), "measuredAt": at.isoformat()} | fields


@dataclass(frozen=True)
class Seen:
    """How far a village's events, alerts, readings and ingest audit went when a case
    began: the case reads only what came after (the module's cases share one village)."""

    slug: str
    event: int
    alert: int
    reading: int
    audits: frozenset

    @classmethod
    def now(cls, db: Database, slug: str) -> Seen:
        last = [
            select(func.coalesce(func.max(table.c.id), 0)).scalar_subquery()
            for table in (device_events, alerts, health_readings)
        ]
        with db.tenant(slug) as conn:
            event, alert, reading = conn.execute(select(*last)).one()
        audits = frozenset(a["id"] for a in _ingest_audit_rows(db, slug, frozenset()))
        return cls(slug, event, alert, reading, audits)


@dataclass
class Fleet:
    """A populated village, a device platform running devices there, and residents no
    other fleet's devices watch over."""

    slug: str
    platform: str  # the integrator's token
    client: str
    residents: list[int]
    grid: str  # where the fixed devices are
    camera: str
    radar: str  # watches over residents[0]
    bands: list[str]  # bands[i] is worn by residents[i]
    kiosk: str
    smoke: str
    gas: str
    # Where the village stood once the devices were registered: the case's rows come after.
    seen: Seen = field(init=False)

    def resident_id(self, n: int) -> str:
        return encode_id("Resident", self.slug, self.residents[n])


def grant(db: Database, token, villages: list[str], *scopes: str) -> tuple[str, str]:
    client = f"in-{uuid.uuid4().hex[:10]}"
    with db.platform() as conn:
        conn.execute(
            insert(pm.api_clients).values(
                client_id=client, name="设备平台", villages=villages, scopes=list(scopes)
            )
        )
    return token("integrator", client=client), client


def register(gql, caller: str, slug: str, kind: str, **fields) -> str:
    input = {
        "village": slug,
        "kind": kind,
        "serialNumber": f"SN-{an_id()}",
        "name": f"测试{kind}",
    } | fields
    _, body = gql(REGISTER, caller, {"input": input})
    payload = body["data"]["registerDevice"]
    assert payload["userErrors"] == [], payload
    return payload["device"]["id"]


def make_fleet(db: Database, gql, token, slug: str, bands: int = 4) -> Fleet:
    platform, client = grant(db, token, [slug], "devices:write")
    watched = select(devices.c.resident_id).where(devices.c.resident_id.is_not(None))
    with db.tenant(slug) as conn:
        # Residents no device watches yet: their alerts, vitals and health records are the
        # fleet's alone, however many fleets the village has.
        residents = list(
            conn.execute(
                select(tm.residents.c.id)
                .where(tm.residents.c.id.not_in(watched))
                .order_by(tm.residents.c.id)
                .limit(max(bands, 2))
            ).scalars()
        )
        grid = conn.execute(select(func.min(tm.grids.c.id))).scalar_one()
    assert len(residents) == max(bands, 2), "the village has too few residents left to watch"
    resident = [encode_id("Resident", slug, r) for r in residents]
    placed = {"grid": encode_id("Grid", slug, grid)}
    fleet = Fleet(
        slug=slug,
        platform=platform,
        client=client,
        residents=residents,
        grid=placed["grid"],
        camera=register(gql, platform, slug, "AI_CAMERA", locationText="3号楼东侧", **placed),
        radar=register(gql, platform, slug, "MMWAVE_RADAR", resident=resident[0], name="卧室雷达"),
        bands=[register(gql, platform, slug, "WRISTBAND", resident=r) for r in resident[:bands]],
        kiosk=register(gql, platform, slug, "HEALTH_KIOSK", **placed),
        smoke=register(gql, platform, slug, "SMOKE_SENSOR", **placed),
        gas=register(gql, platform, slug, "GAS_SENSOR", **placed),
    )
    fleet.seen = Seen.now(db, slug)
    return fleet


@pytest.fixture
def fleet(db, gql, token, shared_village) -> Fleet:
    return make_fleet(db, gql, token, shared_village.slug)


def stored_events(db: Database, seen: Seen) -> list[dict]:
    query = select(device_events).where(device_events.c.id > seen.event)
    with db.tenant(seen.slug) as conn:
        return [dict(row) for row in conn.execute(query.order_by(device_events.c.id)).mappings()]


def alerts_of(db: Database, seen: Seen) -> list[dict]:
    query = select(alerts).where(alerts.c.id > seen.alert).order_by(alerts.c.id)
    with db.tenant(seen.slug) as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def ingest_audits(db: Database, seen: Seen) -> list[dict]:
    return _ingest_audit_rows(db, seen.slug, seen.audits)


def _ingest_audit_rows(db: Database, slug: str, seen: frozenset) -> list[dict]:
    a = pm.audit_log
    with db.platform() as conn:
        return list(
            conn.execute(
                select(a.c.id, a.c.details, a.c.client_id)
                .where(a.c.village == slug, a.c.action == "sensing.ingest", a.c.id.not_in(seen))
                .order_by(a.c.occurred_at)
            ).mappings()
        )


def health_record(db: Database, slug: str, resident_id: int, **values) -> None:
    with db.tenant(slug) as conn:
        conn.execute(insert(health_records).values(resident_id=resident_id, **values))


# -- events ---------------------------------------------------------------------------


@pytest.mark.usefixtures("job_env")
def test_events_are_stored_once_and_a_fall_raises_one_alert(db, gql, fleet, redis_client):
    batch = [
        event(fleet.camera, "heartbeat", NOW - 2 * MINUTE),
        event(fleet.camera, "person_detected", NOW - MINUTE, details={"count": 2}),
        event(fleet.radar, "fall", NOW, details={"confidence": 0.93}),
    ]
    first = send(gql, fleet.platform, EVENTS, batch)
    assert (first["accepted"], first["duplicates"], first["itemErrors"]) == (3, 0, [])
    [alert_id] = first["alerts"]
    assert decode_id(alert_id).type_name == "Alert"

    [alert] = alerts_of(db, fleet.seen)
    assert (alert["kind"], alert["episode_key"], alert["occurrences"]) == (
        "fall",
        f"resident:{fleet.residents[0]}",
        1,
    )
    assert alert["summary"] == "跌倒报警（毫米波雷达 卧室雷达）"
    assert alert["resident_id"] == fleet.residents[0]
    rows = stored_events(db, fleet.seen)
    assert [(r["kind"], r["alert_id"]) for r in rows] == [
        ("heartbeat", None),
        ("person_detected", None),
        ("fall", alert["id"]),
    ]
    assert rows[1]["details"] == {"count": 2}
    # The grid worker is told once the ingest has committed.
    notify = Queue(NOTIFY, connection=redis_client).get_jobs()
    assert [job.args for job in notify] == [(fleet.slug, alert["id"], "alert.raised")]

    # The same batch again (a retry after a timeout): nothing new, no alert, no job.
    again = send(gql, fleet.platform, EVENTS, batch)
    assert (again["accepted"], again["duplicates"], again["alerts"]) == (0, 3, [])
    assert len(stored_events(db, fleet.seen)) == 3
    assert [a["occurrences"] for a in alerts_of(db, fleet.seen)] == [1]
    assert len(Queue(NOTIFY, connection=redis_client).get_jobs()) == 1
    # One audit entry per call, with its counts.
    assert [
        (a["details"]["accepted"], a["details"]["duplicates"])
        for a in ingest_audits(db, fleet.seen)
    ] == [(3, 0), (0, 3)]
    assert {a["client_id"] for a in ingest_audits(db, fleet.seen)} == {fleet.client}


def test_a_device_seen_moves_forward_and_comes_back_online(db, gql, fleet):
    device_id = key(fleet.camera)
    with db.tenant(fleet.slug) as conn:
        conn.execute(update(devices).where(devices.c.id == device_id).values(status="offline"))
    twice = event(fleet.camera, "heartbeat", NOW)
    payload = send(gql, fleet.platform, EVENTS, [twice, twice])
    assert (payload["accepted"], payload["duplicates"]) == (1, 1)
    send(gql, fleet.platform, EVENTS, [event(fleet.camera, "heartbeat", NOW - 10 * MINUTE)])
    with db.tenant(fleet.slug) as conn:
        status, seen = conn.execute(
            select(devices.c.status, devices.c.last_seen_at).where(devices.c.id == device_id)
        ).one()
    assert (status, seen) == ("active", NOW)


def test_each_item_is_judged_on_its_own(db, gql, token, fleet, other_village):
    other_platform, _ = grant(db, token, [fleet.slug], "devices:write")
    foreign = register(gql, other_platform, fleet.slug, "SMOKE_SENSOR", grid=fleet.grid)
    elsewhere = encode_id("Device", other_village.slug, key(fleet.camera))
    disabled = register(gql, fleet.platform, fleet.slug, "AI_CAMERA", grid=fleet.grid)
    _, body = gql(DISABLE, fleet.platform, {"input": {"id": disabled}})
    assert body["data"]["disableDevice"]["device"]["status"] == "DISABLED"
    batch = [
        event(fleet.camera, "heartbeat"),  # 0: good
        event(fleet.camera, "heartbeat") | {"eventId": "  "},  # 1
        event(fleet.camera, "Fall!"),  # 2
        event(fleet.camera, "heartbeat") | {"occurredAt": "2026-11-23T08:00:00"},  # 3
        event(fleet.camera, "heartbeat", NOW + timedelta(hours=1)),  # 4
        event(fleet.camera, "heartbeat", details=[1, 2]),  # 5
        event("not-an-id", "heartbeat"),  # 6
        event(encode_id("Resident", fleet.slug, 1), "heartbeat"),  # 7
        event(elsewhere, "heartbeat"),  # 8
        event(foreign, "smoke"),  # 9
        event(disabled, "heartbeat"),  # 10
        event(fleet.camera, "gas"),  # 11: a camera smells no gas
        event(encode_id("Device", fleet.slug, 10**9), "heartbeat"),  # 12
        event(fleet.smoke, "smoke"),  # 13: good, raises
        event(fleet.camera, "heartbeat", details={"x": "长" * 5000}),  # 14
    ]
    payload = send(gql, fleet.platform, EVENTS, batch)
    assert errors_of(payload) == [
        (1, "eventId", "REQUIRED"),
        (2, "kind", "INVALID"),
        (3, "occurredAt", "INVALID"),
        (4, "occurredAt", "INVALID"),
        (5, "details", "INVALID"),
        (6, "device", "NOT_FOUND"),
        (7, "device", "NOT_FOUND"),
        (8, "device", "NOT_FOUND"),
        (9, "device", "NOT_FOUND"),
        (10, "device", "DEVICE_DISABLED"),
        (11, "kind", "MISMATCH"),
        (12, "device", "NOT_FOUND"),
        (14, "details", "INVALID"),
    ]
    # Reasons are for people: in Chinese.
    assert all(
        any("\u4e00" <= ch <= "\u9fff" for ch in e["message"]) for e in payload["itemErrors"]
    )
    assert (payload["accepted"], payload["duplicates"], len(payload["alerts"])) == (2, 0, 1)
    assert [r["kind"] for r in stored_events(db, fleet.seen)] == ["heartbeat", "smoke"]
    [audit] = ingest_audits(db, fleet.seen)
    # The village's entry counts the items that reached it: not the three whose ID named
    # no device of this village at all.
    assert audit["details"]["refused"] == 10


@pytest.mark.parametrize("document", [EVENTS, READINGS])
def test_more_than_1000_items_are_refused_whole(db, gql, fleet, document):
    make = (
        (lambda n: event(fleet.camera, "heartbeat"))
        if document is EVENTS
        else (lambda n: reading(fleet.bands[0], heartRate=70))
    )
    payload = send(gql, fleet.platform, document, [make(n) for n in range(MAX_BATCH + 1)])
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        ("events" if document is EVENTS else "readings", "TOO_MANY")
    ]
    assert "1001" in payload["userErrors"][0]["message"]
    assert payload["accepted"] == 0
    assert stored_events(db, fleet.seen) == []
    assert ingest_audits(db, fleet.seen) == []


def test_only_the_devices_platform_sends_for_its_devices(db, gql, token, fleet, other_village):
    slug = fleet.slug
    for caller in (
        token("village-admin", village=slug),
        token("platform-admin"),
        token("regional-coordinator", region="testregion"),
        grant(db, token, [slug], "residents:read")[0],
    ):
        _, body = gql(EVENTS, caller, {"input": {"events": [event(fleet.camera, "fall")]}})
        assert first_code(body) == "FORBIDDEN"
        _, body = gql(READINGS, caller, {"input": {"readings": [reading(fleet.bands[0])]}})
        assert first_code(body) == "FORBIDDEN"
    # Another platform of the same village, and one of another village: its items are
    # simply not found, like an unknown device.
    for caller in (
        grant(db, token, [slug], "devices:write")[0],
        grant(db, token, [other_village.slug], "devices:write")[0],
    ):
        payload = send(gql, caller, EVENTS, [event(fleet.radar, "fall")])
        assert errors_of(payload) == [(0, "device", "NOT_FOUND")]
        payload = send(gql, caller, READINGS, [reading(fleet.bands[0], heartRate=150)])
        assert errors_of(payload) == [(0, "device", "NOT_FOUND")]
    assert stored_events(db, fleet.seen) == [] and alerts_of(db, fleet.seen) == []


def test_one_call_may_span_the_villages_a_platform_serves(db, gql, token, shared_village):
    first = make_fleet(db, gql, token, shared_village.slug, bands=1)
    second_village = new_village(db, "邻村")
    second = Seen.now(db, second_village.slug)
    plan = replace(DEMO_VILLAGES[1], slug=second_village.slug, name="邻村", residents=20)
    with db.tenant(second_village.slug) as conn:
        write_village(conn, build_village(plan, seed=3))
    with db.platform() as conn:
        conn.execute(
            update(pm.api_clients)
            .where(pm.api_clients.c.client_id == first.client)
            .values(villages=[first.slug, second_village.slug])
        )
    with db.tenant(second_village.slug) as conn:
        grid = conn.execute(select(func.min(tm.grids.c.id))).scalar_one()
    there = register(
        gql,
        first.platform,
        second_village.slug,
        "AI_CAMERA",
        grid=encode_id("Grid", second_village.slug, grid),
    )
    payload = send(
        gql,
        first.platform,
        EVENTS,
        [event(first.camera, "heartbeat"), event(there, "vehicle_lingering")],
    )
    assert (payload["accepted"], payload["itemErrors"]) == (2, [])
    [alert] = payload["alerts"]
    assert decode_id(alert).village == second_village.slug
    assert len(stored_events(db, first.seen)) == len(stored_events(db, second)) == 1
    assert len(ingest_audits(db, first.seen)) == len(ingest_audits(db, second)) == 1


# -- readings ---------------------------------------------------------------------------


def readings_of(db: Database, seen: Seen) -> list[dict]:
    query = select(health_readings).where(health_readings.c.id > seen.reading)
    with db.tenant(seen.slug) as conn:
        return [dict(row) for row in conn.execute(query.order_by(health_readings.c.id)).mappings()]


def test_a_racing_heart_over_two_calls_is_one_alert(db, gql, fleet):
    band = fleet.bands[1]
    first = send(
        gql,
        fleet.platform,
        READINGS,
        [
            reading(band, NOW - 3 * MINUTE, heartRate=88, spo2=97),
            reading(band, NOW - 2 * MINUTE, heartRate=131),
            reading(band, NOW - MINUTE, heartRate=134),
        ],
    )
    assert (first["accepted"], first["itemErrors"]) == (3, [])
    [alert_id] = first["alerts"]
    assert [r["abnormal"] for r in readings_of(db, fleet.seen)] == [
        [],
        ["heart_rate"],
        ["heart_rate"],
    ]
    [alert] = alerts_of(db, fleet.seen)
    # One trigger a call: the latest abnormal reading says what it is now.
    assert (alert["kind"], alert["occurrences"], alert["summary"]) == (
        "heart_rate_abnormal",
        1,
        "心率 134 次/分（范围 50–120）",
    )
    assert alert["episode_key"] == f"resident:{fleet.residents[1]}"

    second = send(gql, fleet.platform, READINGS, [reading(band, NOW, heartRate=140)])
    assert second["alerts"] == [alert_id]
    [alert] = alerts_of(db, fleet.seen)
    assert (alert["occurrences"], alert["last_triggered_at"]) == (2, NOW)
    # The same readings again: stored once, judged once.
    third = send(
        gql, fleet.platform, READINGS, [reading(band, NOW, heartRate=140) | {"readingId": "x"}] * 2
    )
    assert (third["accepted"], third["duplicates"]) == (1, 1)


def test_the_persons_own_range_beats_the_villages(db, gql, fleet):
    # residents[2] has a doctor's range of 40–140; residents[3] the village's 50–120.
    health_record(db, fleet.slug, fleet.residents[2], heart_rate_min=40, heart_rate_max=140)
    health_record(db, fleet.slug, fleet.residents[3])
    payload = send(
        gql,
        fleet.platform,
        READINGS,
        [
            reading(fleet.bands[2], NOW - MINUTE, heartRate=130),
            reading(fleet.bands[2], NOW, heartRate=45),
            reading(fleet.bands[3], NOW - MINUTE, heartRate=130),
            reading(fleet.bands[3], NOW, heartRate=45),
        ],
    )
    assert payload["accepted"] == 4
    assert [r["abnormal"] for r in readings_of(db, fleet.seen)] == [
        [],
        [],
        ["heart_rate"],
        ["heart_rate"],
    ]
    [alert] = alerts_of(db, fleet.seen)
    assert alert["resident_id"] == fleet.residents[3]
    assert alert["summary"] == "心率 45 次/分（范围 50–120）"


def test_low_spo2_and_high_blood_pressure(db, gql, fleet):
    payload = send(
        gql,
        fleet.platform,
        READINGS,
        [reading(fleet.bands[0], spo2=86, systolic=172, diastolic=95, heartRate=80)],
    )
    assert len(payload["alerts"]) == 2
    [r] = readings_of(db, fleet.seen)
    assert r["abnormal"] == ["spo2", "blood_pressure"]
    assert {(a["kind"], a["summary"]) for a in alerts_of(db, fleet.seen)} == {
        ("low_spo2", "血氧 86%（低于 90%）"),
        ("high_blood_pressure", "血压 172/95 mmHg（上限 160/100）"),
    }


def test_a_wandering_resident_outside_the_safe_zone_is_missing(db, gql, fleet):
    zone = {
        "safe_zone_latitude": HOME[0],
        "safe_zone_longitude": HOME[1],
        "safe_zone_radius_m": 500,
    }
    health_record(db, fleet.slug, fleet.residents[0], wandering_risk=True, **zone)
    # Same zone, not at risk of wandering: a walk is a walk.
    health_record(db, fleet.slug, fleet.residents[1], wandering_risk=False, **zone)
    at_home = reading(fleet.bands[0], NOW - MINUTE, latitude=HOME[0], longitude=HOME[1])
    away = reading(fleet.bands[0], NOW, latitude=AWAY[0], longitude=AWAY[1], heartRate=90)
    walk = reading(fleet.bands[1], NOW, latitude=AWAY[0], longitude=AWAY[1])
    payload = send(gql, fleet.platform, READINGS, [at_home, away, walk])
    assert payload["accepted"] == 3 and len(payload["alerts"]) == 1
    assert [r["abnormal"] for r in readings_of(db, fleet.seen)] == [[], ["outside_safe_zone"], []]
    [alert] = alerts_of(db, fleet.seen)
    beyond = round(distance_m(*HOME, *AWAY) - 500, -1)
    assert 700 < beyond < 1000
    assert (alert["kind"], alert["summary"]) == (
        "missing_person",
        f"离开安全区域约 {beyond:.0f} 米",
    )
    # Where the person was last read, for those who go looking.
    assert (alert["latitude"], alert["longitude"]) == AWAY


def test_kiosk_readings_name_the_resident(db, gql, fleet, other_village):
    resident = fleet.resident_id(1)
    payload = send(
        gql,
        fleet.platform,
        READINGS,
        [
            reading(fleet.kiosk, systolic=128, diastolic=82, resident=resident),  # 0: good
            reading(fleet.kiosk, systolic=128, diastolic=82),  # 1: whose?
            reading(fleet.bands[0], heartRate=70, resident=resident),  # 2: the band's own
            reading(fleet.camera, heartRate=70),  # 3: a camera reads no pulse
            reading(
                fleet.kiosk, heartRate=70, resident=encode_id("Resident", other_village.slug, 1)
            ),
            reading(fleet.kiosk, heartRate=70, resident=encode_id("Resident", fleet.slug, 10**9)),
            reading(fleet.bands[0]),  # 6: nothing measured
            reading(fleet.bands[0], systolic=120),  # 7: half a blood pressure
            reading(fleet.bands[0], systolic=80, diastolic=90),  # 8
            reading(fleet.bands[0], heartRate=400, spo2=101),  # 9
            reading(fleet.bands[0], latitude=39.0),  # 10
        ],
    )
    assert errors_of(payload) == [
        (1, "resident", "REQUIRED"),
        (2, "resident", "INVALID"),
        (3, "device", "MISMATCH"),
        (4, "resident", "NOT_FOUND"),
        (5, "resident", "NOT_FOUND"),
        (6, None, "REQUIRED"),
        (7, "diastolic", "REQUIRED"),
        (8, "systolic", "INVALID"),
        (9, "heartRate", "INVALID"),
        (9, "spo2", "INVALID"),
        (10, "longitude", "REQUIRED"),
    ]
    assert payload["accepted"] == 1
    [stored] = readings_of(db, fleet.seen)
    assert (stored["device_id"], stored["resident_id"]) == (key(fleet.kiosk), fleet.residents[1])


def test_latest_vitals_keep_the_newest_of_each(db, gql, fleet):
    band = fleet.bands[0]
    send(
        gql,
        fleet.platform,
        READINGS,
        [
            reading(band, NOW - 10 * MINUTE, heartRate=70, spo2=96),
            reading(band, NOW - 5 * MINUTE, heartRate=72, latitude=HOME[0], longitude=HOME[1]),
        ],
    )
    # A late batch: older heart rate and SpO2, a newer blood pressure.
    send(
        gql,
        fleet.platform,
        READINGS,
        [
            reading(band, NOW - 20 * MINUTE, heartRate=99, spo2=91),
            (pressure := reading(band, NOW - MINUTE, systolic=130, diastolic=85)),
        ],
    )
    # The blood pressure sent again with other values is a duplicate, stored before: it
    # changes nothing. A location as old as the one kept does not replace it; of two
    # newer ones at the same moment, the first given is kept.
    send(
        gql,
        fleet.platform,
        READINGS,
        [
            pressure | {"systolic": 150, "diastolic": 95},
            reading(band, NOW - 5 * MINUTE, latitude=HOME[0] + 0.01, longitude=HOME[1]),
            reading(band, NOW, latitude=HOME[0] + 0.02, longitude=HOME[1]),
            reading(band, NOW, latitude=HOME[0] + 0.03, longitude=HOME[1]),
        ],
    )
    with db.tenant(fleet.slug) as conn:
        vitals = dict(
            conn.execute(
                select(latest_vitals).where(latest_vitals.c.resident_id == fleet.residents[0])
            )
            .mappings()
            .one()
        )
    assert vitals == {
        "resident_id": fleet.residents[0],
        "measured_at": NOW,
        "heart_rate": 72,
        "heart_rate_at": NOW - 5 * MINUTE,
        "spo2": 96,
        "spo2_at": NOW - 10 * MINUTE,
        "systolic": 130,
        "diastolic": 85,
        "blood_pressure_at": NOW - MINUTE,
        "latitude": HOME[0] + 0.02,
        "longitude": HOME[1],
        "location_at": NOW,
    }


# -- statement counts -------------------------------------------------------------------


def counted(app, gql, caller: str, document: str, items: list[dict]) -> tuple[list[str], dict]:
    with count_statements(app.extensions["villagelink"].db.engine) as statements:
        payload = send(gql, caller, document, items)
    assert payload["itemErrors"] == [] and payload["accepted"] == len(items), payload
    return statements, payload


def test_a_batch_of_1000_costs_what_a_batch_of_10_does(app, db, gql, token, populated_village):
    fleet = make_fleet(db, gql, token, populated_village.slug, bands=20)
    fixed = [fleet.camera, fleet.smoke, fleet.gas, fleet.radar]
    counted(app, gql, fleet.platform, EVENTS, [event(fleet.camera, "heartbeat")])  # warm up

    def events(n: int) -> list[dict]:
        return [event(fixed[i % 4], "heartbeat", NOW - i * MINUTE) for i in range(n)]

    ten, _ = counted(app, gql, fleet.platform, EVENTS, events(10))
    thousand, _ = counted(app, gql, fleet.platform, EVENTS, events(MAX_BATCH))
    # SET LOCAL ROLE (and the access epoch: the client's reach is kept with its token
    # since the warm-up), devices, INSERT ... ON CONFLICT, audit, the devices' presence,
    # last seen
    assert len(ten) == len(thousand) == 6, "\n".join(s[:80] for s in thousand)
    # The same statements, not longer ones: ids go as one array, not a parameter each.
    assert ten == thousand
    assert [s.split(None, 2)[:2] for s in thousand[-2:]] == [
        ["SELECT", "pg_advisory_xact_lock(hashtext(%(key)s))"],
        ["UPDATE", "devices"],
    ], "the devices' rows are locked last"

    def readings(n: int, bands: list[str], **fields) -> list[dict]:
        return [
            reading(bands[i % len(bands)], NOW - i * MINUTE, heartRate=70, spo2=97, **fields)
            for i in range(n)
        ]

    ten, _ = counted(app, gql, fleet.platform, READINGS, readings(10, fleet.bands))
    thousand, _ = counted(app, gql, fleet.platform, READINGS, readings(MAX_BATCH, fleet.bands))
    # ... devices, residents' limits, INSERT ... ON CONFLICT, audit, latest vitals, the
    # devices' presence, last seen
    assert len(ten) == len(thousand) == 8, "\n".join(s[:80] for s in thousand)
    assert ten == thousand
    # The rows concurrent batches share are locked last, just before the commit.
    assert [s.split(None, 3)[:2] for s in thousand[-3:]] == [
        ["INSERT", "INTO"],
        ["SELECT", "pg_advisory_xact_lock(hashtext(%(key)s))"],
        ["UPDATE", "devices"],
    ]
    assert thousand[-3].startswith("INSERT INTO latest_vitals")

    # Abnormal ones: ten wearers' racing hearts in 10 readings, ten others' in 1,000;
    # the alerts cost the same however many readings carry them.
    ten, first = counted(
        app,
        gql,
        fleet.platform,
        READINGS,
        [reading(fleet.bands[i], NOW, heartRate=150) for i in range(10)],
    )
    thousand, second = counted(
        app,
        gql,
        fleet.platform,
        READINGS,
        [
            reading(fleet.bands[10 + i % 10], NOW - i * MINUTE, heartRate=150)
            for i in range(MAX_BATCH)
        ],
    )
    assert len(first["alerts"]) == len(second["alerts"]) == 10
    # ... the eight above, and raising: rules, savepoint, join live alerts, last closed
    # alerts, places, assignees, INSERT alerts, timeline, release, the alerts' audit
    assert len(ten) == len(thousand) == 18, "\n".join(s[:80] for s in thousand)


def test_a_kept_reach_gives_way_to_a_grant_withdrawn_or_given(
    db, gql, token, populated_village, demo_region
):
    """Ingest runs on the reach kept with the platform's token, as reads do. The grant of
    the fleet's village withdrawn (another village's kept), the first batch sent after
    that commits is refused, though the reach kept still names the village; given back,
    the first batch after is taken, though the reach kept by then does not name it (no
    village's transaction was opened: the end of the request looks at the epoch)."""
    fleet = make_fleet(db, gql, token, populated_village.slug, bands=1)

    def granted(villages: list[str]) -> None:
        with db.platform() as conn:
            conn.execute(
                update(pm.api_clients)
                .where(pm.api_clients.c.client_id == fleet.client)
                .values(villages=villages)
            )

    def one() -> dict:
        return send(gql, fleet.platform, READINGS, [reading(fleet.bands[0], heartRate=70)])

    other = demo_region.slugs[0]
    assert [one()["accepted"] for _ in range(2)] == [1, 1]  # the second on the kept reach
    granted([other])
    for _ in range(2):  # the first runs again on a fresh reach, the second on it kept
        refused = one()
        assert refused["accepted"] == 0, refused
        assert [e["code"] for e in refused["itemErrors"]] == ["NOT_FOUND"], refused
    granted([fleet.slug, other])
    assert one()["accepted"] == 1
    assert len(readings_of(db, fleet.seen)) == 3


def test_details_are_json_inline_or_in_variables(db, gql, fleet):
    document = f"""mutation {{ ingestDeviceEvents(input: {{events: [{{
      device: "{fleet.camera}", eventId: "inline-1", kind: "person_detected",
      occurredAt: "{NOW.isoformat()}", details: {{zone: "东门", count: 2, night: false}}
    }}]}}) {{ accepted itemErrors {{ index }} }} }}"""
    _, body = gql(document, fleet.platform)
    assert body["data"]["ingestDeviceEvents"] == {"accepted": 1, "itemErrors": []}
    [stored] = stored_events(db, fleet.seen)
    assert stored["details"] == {"zone": "东门", "count": 2, "night": False}


def test_details_keep_what_json_holds_beyond_64_bits(db, gql, fleet):
    # A device's own numbers may pass what orjson writes (platform/db.py): the standard
    # library's encoder takes them, and they are stored as sent, beside a time and a
    # key of numbers.
    details = {"serial": 2**70, "reads": {"1": -(2**65)}, "ok": 1.5}
    payload = send(gql, fleet.platform, EVENTS, [event(fleet.camera, "tamper", details=details)])
    assert payload["accepted"] == 1, payload
    [stored] = stored_events(db, fleet.seen)
    assert stored["details"] == details


def test_the_rows_every_report_updates_keep_room_on_their_page(db, shared_village):
    # Heap-only updates: a device's last seen and a wearer's latest vitals change with
    # every batch, and a new version on the same page writes no index entry.
    with db.tenant(shared_village.slug) as conn:
        options = conn.execute(
            text(
                "SELECT relname, reloptions FROM pg_class WHERE relnamespace ="
                " current_schema()::regnamespace AND relname IN ('devices', 'latest_vitals')"
            )
        ).all()
    assert dict(options) == {"devices": ["fillfactor=30"], "latest_vitals": ["fillfactor=30"]}


def test_concurrent_batches_of_the_same_wearers_do_not_deadlock(db, gql, token, populated_village):
    """Device platforms send in parallel, and their batches cover the same wearers in any
    order, while the offline sweep takes many of the same devices: latest vitals are
    locked in key order, the devices' presence once per transaction, so none deadlocks."""
    from concurrent.futures import ThreadPoolExecutor
    from random import Random

    from villagelink.platform.audit import system_actor
    from villagelink.tenants.sensing.devices import do_mark_silent_devices_offline
    from villagelink.tenants.sensing.ingest import (
        Item,
        do_ingest_device_events,
        do_ingest_health_readings,
    )

    fleet = make_fleet(db, gql, token, populated_village.slug, bands=12)
    bands = [key(band) for band in fleet.bands]
    actor = system_actor("ingest-test")

    def store(ingest, items: list[Item]) -> None:
        with db.begin_tenant(fleet.slug) as conn:
            outcome = ingest(conn, actor, fleet.slug, items, owner=fleet.client, now=NOW)
            conn.commit()
        assert outcome.errors == [] and outcome.accepted == len(items)

    def batch(number: int) -> None:
        order = Random(number).sample(bands, len(bands))
        items = [
            Item(
                i,
                device,
                {
                    "reading_id": f"{number}-{i}",
                    "measured_at": NOW - i * MINUTE,
                    "heart_rate": 70 + number,
                    "spo2": 97,
                },
            )
            for i, device in enumerate(order * 20)
        ]
        store(do_ingest_health_readings, items)

    def heartbeats(number: int) -> None:
        # Events lock no wearer's vitals first: their devices in an order of their own.
        order = Random(number).sample(bands, len(bands))
        items = [
            Item(i, device, {"event_id": f"{number}-{i}", "kind": "heartbeat", "occurred_at": NOW})
            for i, device in enumerate(order)
        ]
        store(do_ingest_device_events, items)

    def sweep(number: int) -> None:
        # A day on, every device of the village has been silent too long.
        with db.begin_tenant(fleet.slug) as conn:
            do_mark_silent_devices_offline(conn, actor, fleet.slug, NOW + timedelta(days=1))
            conn.commit()

    with ThreadPoolExecutor(max_workers=6) as pool:
        steps = [batch, heartbeats, heartbeats, sweep]
        list(pool.map(lambda n: steps[n % 4](n), range(96)))
    assert len(readings_of(db, fleet.seen)) == 24 * 12 * 20


# -- the compiled load beside the schema -------------------------------------------------

AWARE = "2026-11-23T08:15:00+08:00"
GOOD_READINGS = [
    {"reading_id": "r1", "measured_at": AWARE, "heart_rate": 72},
    {"reading_id": "  r2 ", "measured_at": NOW, "spo2": 97, "resident_id": 5},
    {"reading_id": "r3", "measured_at": AWARE, "systolic": 130, "diastolic": 85},
    {"reading_id": "r4", "measured_at": AWARE, "latitude": 39, "longitude": 117.5},
    {"reading_id": "r5", "measured_at": AWARE, "heart_rate": 20, "spo2": 100, "latitude": None},
    {"reading_id": "r6", "measured_at": "2026-11-23T00:15:00Z", "spo2": 97},
    {"reading_id": "r7", "measured_at": NOW.astimezone(timezone(timedelta(hours=8))), "spo2": 97},
    # Every range's ends are in it.
    {
        "reading_id": "r8",
        "measured_at": AWARE,
        "heart_rate": 250,
        "latitude": -90,
        "longitude": 180,
    },
    {"reading_id": "r9", "measured_at": AWARE, "spo2": 50, "latitude": 90.0, "longitude": -180.0},
]
BAD_READINGS = [
    {"measured_at": AWARE, "heart_rate": 72},
    {"reading_id": "  ", "measured_at": AWARE, "heart_rate": 72},
    {"reading_id": "长" * 101, "measured_at": AWARE, "heart_rate": 72},
    {"reading_id": 7, "measured_at": AWARE, "heart_rate": 72},
    {"reading_id": None, "measured_at": AWARE, "heart_rate": 72},
    {"reading_id": "r", "measured_at": "2026-11-23T08:15:00", "heart_rate": 72},
    {"reading_id": "r", "measured_at": NOW.replace(tzinfo=None), "heart_rate": 72},
    {"reading_id": "r", "measured_at": "yesterday", "heart_rate": 72},
    {"reading_id": "r", "measured_at": "2026-11-23", "heart_rate": 72},
    {"reading_id": "r", "measured_at": AWARE + " ", "heart_rate": 72},
    {"reading_id": "r", "measured_at": 1795392900, "heart_rate": 72},
    {"reading_id": "r", "heart_rate": 72},
    {"reading_id": "r", "measured_at": AWARE, "heart_rate": 251},
    {"reading_id": "r", "measured_at": AWARE, "heart_rate": 19},
    {"reading_id": "r", "measured_at": AWARE, "latitude": 1.0, "longitude": -180.5},
    {"reading_id": "r", "measured_at": AWARE, "heart_rate": True},
    {"reading_id": "r", "measured_at": AWARE, "heart_rate": 72.0},
    {"reading_id": "r", "measured_at": AWARE, "heart_rate": "72"},
    {"reading_id": "r", "measured_at": AWARE, "spo2": 49},
    {"reading_id": "r", "measured_at": AWARE, "systolic": 130},
    {"reading_id": "r", "measured_at": AWARE, "systolic": 80, "diastolic": 85},
    {"reading_id": "r", "measured_at": AWARE},
    {"reading_id": "r", "measured_at": AWARE, "latitude": 39.0},
    {"reading_id": "r", "measured_at": AWARE, "latitude": 91.0, "longitude": 117.0},
    {"reading_id": "r", "measured_at": AWARE, "latitude": float("nan"), "longitude": 1.0},
    {"reading_id": "r", "measured_at": AWARE, "latitude": 1.0, "longitude": float("inf")},
    {"reading_id": "r", "measured_at": AWARE, "resident_id": "5", "heart_rate": 72},
    {"reading_id": "r", "measured_at": AWARE, "heart_rate": 72, "mood": "good"},
]
GOOD_EVENTS = [
    {"event_id": "e1", "kind": "fall", "occurred_at": AWARE},
    {"event_id": " e2 ", "kind": "heartbeat", "occurred_at": NOW, "details": None},
    {"event_id": "e3", "kind": "smoke", "occurred_at": AWARE, "details": {"zone": "东门"}},
]
BAD_EVENTS = [
    {"event_id": "", "kind": "fall", "occurred_at": AWARE},
    {"event_id": "e", "kind": "Fall!", "occurred_at": AWARE},
    {"event_id": "e", "kind": "fall", "occurred_at": "2026-11-23T08:15:00"},
    {"event_id": "e", "kind": "fall", "occurred_at": AWARE, "details": [1, 2]},
    {"event_id": "e", "kind": "fall", "occurred_at": AWARE, "details": {"x": "长" * 5000}},
    {"event_id": "e", "occurred_at": AWARE},
    {"event_id": "e", "kind": "fall", "occurred_at": AWARE, "extra": 1},
]


@pytest.mark.parametrize(
    ("schema", "load", "good", "bad"),
    [
        (READING_SCHEMA, load_reading, GOOD_READINGS, BAD_READINGS),
        (EVENT_SCHEMA, load_event, GOOD_EVENTS, BAD_EVENTS),
    ],
)
def test_the_compiled_load_takes_what_the_schema_takes_and_declines_the_rest(
    schema, load, good, bad
):
    """The compiled load gives an ordinary item exactly the schema's values; an item the
    schema refuses it declines, so that the schema's messages say why."""
    for data in good:
        assert load(data) == schema.load(data), data
    for data in bad:
        with pytest.raises(ValidationError):
            schema.load(data)
        assert load(data) is None, data

"""Health records (健康档案) and readings (体征数据): writes and their rules, thresholds,
raw readings and downsampled series, abnormal today on the village's clock, masking
by role, audited reads, no sharing, and pinned statement counts.

Readings are written straight into the table here: storing them is the ingest's
business (tests/test_ingest.py); what is read back is this module's.
"""

from __future__ import annotations

import itertools
import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, text, union

from villagelink.graphql.core.ids import encode_id
from villagelink.platform import models as pm
from villagelink.platform.audit import Actor
from villagelink.platform.identity.principal import Principal
from villagelink.tenants import models as m
from villagelink.tenants.clock import VILLAGE_TIME_ZONE
from villagelink.tenants.demo.plans import demo_grid_worker_subject
from villagelink.tenants.grids import grids_of_account
from villagelink.tenants.health import actions
from villagelink.tenants.health.queries import BUCKET_ORIGIN
from villagelink.tenants.health.tables import health_readings, health_records, latest_vitals
from villagelink.tenants.sensing.tables import devices

from .conftest import TEST_REGION
from .test_query_count import count_statements

SHANGHAI = VILLAGE_TIME_ZONE
RECORD = """resident { id name } conditions emergencyContacts { name relation phone }
  careLevel wanderingRisk safeZone { latitude longitude radiusM } heartRateRange { min max }
  note version"""
CREATE = f"""mutation($input: CreateHealthRecordInput!) {{ createHealthRecord(input: $input) {{
  healthRecord {{ {RECORD} }} userErrors {{ field message code }} }} }}"""
UPDATE = f"""mutation($input: UpdateHealthRecordInput!) {{ updateHealthRecord(input: $input) {{
  healthRecord {{ {RECORD} }} userErrors {{ field message code }} }} }}"""
THRESHOLDS = "heartRateMin heartRateMax spo2Min systolicMax diastolicMax"
UPDATE_THRESHOLDS = f"""mutation($input: UpdateHealthThresholdsInput!) {{
  updateHealthThresholds(input: $input) {{ healthThresholds {{ {THRESHOLDS} }}
  userErrors {{ field message code }} }} }}"""
READ_THRESHOLDS = f"""query($slug: String!) {{ village(slug: $slug) {{
  healthThresholds {{ {THRESHOLDS} }} }} }}"""
NODE_RECORD = f"""query($id: ID!) {{ node(id: $id) {{ ... on Resident {{
  healthRecord {{ {RECORD} }} }} }} }}"""
CONDITIONS = """query($id: ID!, $unmasked: Boolean, $reason: String) { node(id: $id) {
  ... on Resident { healthRecord { conditions(unmasked: $unmasked, reason: $reason)
  emergencyContacts { name phone } careLevel } } } }"""
READINGS = """query($id: ID!, $from: DateTime!, $to: DateTime!, $first: Int, $after: String) {
  node(id: $id) { ... on Resident { healthReadings(from: $from, to: $to, first: $first,
  after: $after) { totalCount pageInfo { hasNextPage endCursor }
  edges { node { device readingId measuredAt heartRate spo2 systolic diastolic abnormal } } }
  } } }"""
SERIES = """query($id: ID!, $from: DateTime!, $to: DateTime!, $bucket: ReadingBucket!) {
  node(id: $id) { ... on Resident { healthReadingSeries(from: $from, to: $to, bucket: $bucket) {
  startsAt readings heartRateAvg heartRateMin heartRateMax spo2Min systolicMax diastolicMax }
  } } }"""
VITALS = """query($id: ID!) { node(id: $id) { ... on Resident { latestVitals {
  measuredAt heartRate spo2 systolic diastolic latitude longitude } } } }"""
ABNORMAL = """query($slug: String!, $first: Int, $after: String) { village(slug: $slug) {
  abnormalToday(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor }
  edges { node { resident { id name } abnormalities abnormalReadings
  latestAbnormalReading { readingId measuredAt heartRate spo2 abnormal } } } } } }"""
RESIDENTS_WITH_HEALTH = """query($slug: String!, $first: Int!) { village(slug: $slug) {
  residents(first: $first) { edges { node { id name
    healthRecord { careLevel wanderingRisk emergencyContacts { name phone } conditions }
    latestVitals { heartRate spo2 measuredAt } } } } } }"""
ABNORMAL_WITH_RESIDENTS = """query($slug: String!, $first: Int!) { village(slug: $slug) {
  abnormalToday(first: $first) { edges { node { abnormalities abnormalReadings
    latestAbnormalReading { measuredAt heartRate abnormal }
    resident { name healthRecord { careLevel } latestVitals { heartRate } } } } } } }"""

FULL_RECORD = {
    "conditions": ["高血压", "阿尔茨海默病"],
    "emergencyContacts": [
        {"name": "王建国", "relation": "儿子", "phone": "13812345678"},
        {"name": "李阿姨", "relation": "邻居", "phone": "022-23456789"},
    ],
    "careLevel": "ASSISTED",
    "wanderingRisk": True,
    "safeZone": {"latitude": 39.1, "longitude": 117.2, "radiusM": 500},
    "heartRateRange": {"min": 45, "max": 100},
    "note": "独居，听力较差，钥匙在邻居家",
}
_serials = itertools.count(1)


# -- fixtures and helpers --------------------------------------------------------


@pytest.fixture
def slug(case_village) -> str:
    """The module's shared village: each case reads only what it wrote of residents no
    other case has touched (`people_of`). A test that asks for `populated_village` gets one
    of its own (it changes the village's thresholds, or lists or counts the whole village)."""
    return case_village.slug


@pytest.fixture
def admin(token, slug) -> str:
    return token("village-admin", village=slug)


@pytest.fixture
def worker(token, slug) -> str:
    return token("grid-worker", village=slug, sub=demo_grid_worker_subject(slug))


@pytest.fixture
def people(db, slug) -> dict:
    return people_of(db, slug)


def people_of(db, slug: str) -> dict:
    """Resident ids in the grid worker's grids and outside them: the fixture village's
    residents all live in the worker's grids, so the last households move out of them.
    Only residents with no health data yet: in the shared village, those no case wrote for."""
    h, r = m.households, m.residents
    untouched = r.c.id.not_in(
        union(
            select(health_records.c.resident_id),
            select(latest_vitals.c.resident_id),
            select(devices.c.resident_id).where(devices.c.resident_id.is_not(None)),
            select(health_readings.c.resident_id).where(health_readings.c.resident_id.is_not(None)),
        )
    )
    with db.tenant(slug) as conn:
        grids = grids_of_account(conn, demo_grid_worker_subject(slug))
        elsewhere = conn.execute(
            select(m.grids.c.id).where(m.grids.c.id.not_in(grids)).order_by(m.grids.c.id.desc())
        ).scalar()
        moving = select(h.c.id).order_by(h.c.id.desc()).limit(8).scalar_subquery()
        conn.execute(h.update().where(h.c.id.in_(moving)).values(grid_id=elsewhere))
        conn.execute(
            r.update()
            .where(r.c.household_id == h.c.id, r.c.grid_id != h.c.grid_id)
            .values(grid_id=h.c.grid_id)
        )
        rows = conn.execute(select(r.c.id, r.c.grid_id).where(untouched).order_by(r.c.id)).all()
    mine = [r.id for r in rows if r.grid_id in grids]
    others = [r.id for r in rows if r.grid_id not in grids]
    assert mine and others, "the fixture village should put residents on both sides"
    return {"mine": mine, "others": others, "all": [r.id for r in rows]}


@pytest.fixture
def integrator(db, token, slug) -> str:
    """A client that may read the village's residents (and so sees their masked fields)."""
    client = f"hl-{uuid.uuid4().hex[:10]}"
    with db.platform() as conn:
        conn.execute(
            insert(pm.api_clients).values(
                client_id=client,
                name="健康手环平台",
                villages=[slug],
                scopes=["residents:read", "devices:write", "alerts:read"],
            )
        )
    return token("integrator", client=client)


def rid(slug: str, resident_id: int) -> str:
    return encode_id("Resident", slug, resident_id)


def call(gql, who: str, document: str, **variables) -> dict:
    _, body = gql(document, who, variables)
    return body


def mutate(gql, who: str, document: str, input: dict) -> dict:
    body = call(gql, who, document, input=input)
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def code(body: dict) -> str:
    return body["errors"][0]["extensions"]["code"]


def create(gql, who: str, slug: str, resident_id: int, **fields) -> dict:
    payload = mutate(gql, who, CREATE, {"resident": rid(slug, resident_id), **fields})
    assert payload["userErrors"] == [], payload
    return payload["healthRecord"]


def audit(db, slug: str, prefix: str = "health") -> list[tuple]:
    log = pm.audit_log.c
    with db.platform() as conn:
        return conn.execute(
            select(log.action, log.subject_id, log.fields, log.reason, log.details)
            .where(log.village == slug, log.action.like(f"{prefix}%"))
            .order_by(log.occurred_at, log.id)
        ).all()


def records_state(db, slug: str) -> tuple:
    with db.tenant(slug) as conn:
        return conn.execute(
            text(
                "SELECT count(*), coalesce(sum(version), 0),"
                " (SELECT count(*) FROM outbox) FROM health_records"
            )
        ).one()


def wristband(db, slug: str, resident_id: int) -> int:
    with db.tenant(slug) as conn:
        return conn.execute(
            insert(devices)
            .values(
                kind="wristband",
                serial_number=f"WB-{uuid.uuid4().hex[:8]}-{next(_serials)}",
                name="智能手环",
                resident_id=resident_id,
            )
            .returning(devices.c.id)
        ).scalar_one()


def add_readings(db, slug: str, resident_id: int, readings: list[dict]) -> list[dict]:
    """Store readings as the ingest would have (with `abnormal` already worked out)."""
    device = wristband(db, slug, resident_id)
    rows = [
        {
            "device_id": device,
            "reading_id": f"r-{uuid.uuid4().hex[:12]}",
            "resident_id": resident_id,
            "abnormal": [],
            **dict.fromkeys(
                ("heart_rate", "spo2", "systolic", "diastolic", "latitude", "longitude")
            ),
            **reading,
        }
        for reading in readings
    ]
    with db.tenant(slug) as conn:
        conn.execute(insert(health_readings), rows)
    return rows


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


# -- writing records ---------------------------------------------------------------


def test_admin_creates_and_updates_a_record(gql, admin, slug, people, db):
    resident = people["all"][0]
    audited = len(audit(db, slug))
    made = create(gql, admin, slug, resident, **FULL_RECORD)
    assert made["resident"]["id"] == rid(slug, resident)
    assert made["conditions"] == FULL_RECORD["conditions"]
    assert made["emergencyContacts"] == FULL_RECORD["emergencyContacts"]
    assert made["safeZone"] == FULL_RECORD["safeZone"]
    assert made["heartRateRange"] == {"min": 45, "max": 100}
    assert (made["careLevel"], made["wanderingRisk"], made["version"]) == ("ASSISTED", True, 1)

    changed = mutate(
        gql,
        admin,
        UPDATE,
        {"resident": rid(slug, resident), "careLevel": "FULL_CARE", "note": "  已卧床  "},
    )["healthRecord"]
    assert (changed["careLevel"], changed["note"], changed["version"]) == ("FULL_CARE", "已卧床", 2)
    # Nothing changes: no new version, no audit entry.
    same = mutate(gql, admin, UPDATE, {"resident": rid(slug, resident), "careLevel": "FULL_CARE"})
    assert same["healthRecord"]["version"] == 2
    # No longer at risk of wandering: the safe zone may go, and the personal range too.
    cleared = mutate(
        gql,
        admin,
        UPDATE,
        {
            "resident": rid(slug, resident),
            "wanderingRisk": False,
            "safeZone": None,
            "heartRateRange": None,
            "note": None,
        },
    )["healthRecord"]
    assert (cleared["safeZone"], cleared["heartRateRange"], cleared["note"]) == (None, None, None)

    writes = [a[:3] for a in audit(db, slug)[audited:] if not a[0].endswith(".read")]
    assert writes == [
        (
            "health_record.create",
            str(resident),
            sorted(
                [
                    "conditions",
                    "emergency_contacts",
                    "care_level",
                    "wandering_risk",
                    "safe_zone_latitude",
                    "safe_zone_longitude",
                    "safe_zone_radius_m",
                    "heart_rate_min",
                    "heart_rate_max",
                    "note",
                ]
            ),
        ),
        ("health_record.update", str(resident), ["care_level", "note"]),
        (
            "health_record.update",
            str(resident),
            sorted(
                [
                    "heart_rate_max",
                    "heart_rate_min",
                    "note",
                    "safe_zone_latitude",
                    "safe_zone_longitude",
                    "safe_zone_radius_m",
                    "wandering_risk",
                ]
            ),
        ),
    ]
    # Audit entries name fields, never the health data itself.
    assert all("高血压" not in str(entry) for entry in audit(db, slug))
    # Health data never leaves the village.
    assert records_state(db, slug)[2] == 0


def test_a_record_with_nothing_but_the_resident_takes_the_defaults(gql, admin, slug, people):
    made = create(gql, admin, slug, people["all"][1])
    assert made["conditions"] == [] and made["emergencyContacts"] == []
    assert (made["careLevel"], made["wanderingRisk"], made["safeZone"]) == (
        "SELF_CARE",
        False,
        None,
    )


CONTACT = {"name": "王建国", "relation": "儿子", "phone": "13812345678"}


@pytest.mark.parametrize(
    ("fields", "field", "error_code"),
    [
        (
            {"emergencyContacts": [CONTACT, {**CONTACT, "phone": "123"}]},
            "emergencyContacts.1.phone",
            "INVALID",
        ),
        ({"emergencyContacts": [{**CONTACT, "name": ""}]}, "emergencyContacts.0.name", "INVALID"),
        (
            {"emergencyContacts": [{**CONTACT, "relation": "  "}]},
            "emergencyContacts.0.relation",
            "REQUIRED",
        ),
        ({"emergencyContacts": [CONTACT] * 6}, "emergencyContacts", "INVALID"),
        ({"conditions": ["高血压", "  "]}, "conditions.1", "REQUIRED"),
        ({"conditions": ["高" * 51]}, "conditions.0", "INVALID"),
        ({"conditions": [f"病{i}" for i in range(21)]}, "conditions", "INVALID"),
        ({"careLevel": None}, "careLevel", "REQUIRED"),
        ({"wanderingRisk": True}, "safeZone", "REQUIRED"),
        (
            {"safeZone": {"latitude": 91, "longitude": 117.2, "radiusM": 500}},
            "safeZone.latitude",
            "INVALID",
        ),
        (
            {"safeZone": {"latitude": 39.1, "longitude": 117.2, "radiusM": 10}},
            "safeZone.radiusM",
            "INVALID",
        ),
        ({"heartRateRange": {"min": 100, "max": 60}}, "heartRateRange.max", "INVALID"),
        ({"heartRateRange": {"min": 10, "max": 60}}, "heartRateRange.min", "INVALID"),
        ({"note": "长" * 501}, "note", "INVALID"),
    ],
)
def test_bad_input_is_refused_in_chinese_and_writes_nothing(
    gql, token, shared_village, db, fields, field, error_code
):
    slug = shared_village.slug
    admin = token("village-admin", village=slug)
    people = people_of(db, slug)
    before = records_state(db, slug), len(audit(db, slug))
    payload = mutate(gql, admin, CREATE, {"resident": rid(slug, people["all"][0]), **fields})
    assert payload["healthRecord"] is None
    [error] = payload["userErrors"]
    assert (error["field"], error["code"]) == (field, error_code)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error["message"]), error
    assert (records_state(db, slug), len(audit(db, slug))) == before


def test_one_record_per_resident_and_updates_need_one(gql, admin, slug, people, db):
    first, second = people["all"][:2]
    records, versions, _ = records_state(db, slug)
    create(gql, admin, slug, first, careLevel="ASSISTED")
    again = mutate(gql, admin, CREATE, {"resident": rid(slug, first)})
    assert again["userErrors"] == [
        {"field": "resident", "message": "该居民已有健康档案", "code": "DUPLICATE"}
    ]
    missing = mutate(gql, admin, UPDATE, {"resident": rid(slug, second), "note": "x"})
    assert missing["userErrors"][0]["code"] == "NOT_FOUND"
    # A wandering flag needs its safe zone on update too, given or already there.
    flag = mutate(gql, admin, UPDATE, {"resident": rid(slug, first), "wanderingRisk": True})
    assert flag["userErrors"][0]["field"] == "safeZone"
    zone = {"latitude": 39.1, "longitude": 117.2, "radiusM": 300}
    ok = mutate(
        gql, admin, UPDATE, {"resident": rid(slug, first), "wanderingRisk": True, "safeZone": zone}
    )
    assert ok["healthRecord"]["wanderingRisk"] is True
    drop = mutate(gql, admin, UPDATE, {"resident": rid(slug, first), "safeZone": None})
    assert drop["userErrors"][0]["code"] == "REQUIRED"
    assert records_state(db, slug)[:2] == (records + 1, versions + 2)


def test_grid_worker_writes_care_details_of_own_grids_only(gql, worker, slug, people, db):
    mine, other = people["mine"][0], people["others"][0]
    made = create(
        gql,
        worker,
        slug,
        mine,
        emergencyContacts=[CONTACT],
        careLevel="ASSISTED",
        note="每周三上门",
    )
    assert made["emergencyContacts"] == [CONTACT]
    payload = mutate(gql, worker, CREATE, {"resident": rid(slug, other)})
    assert payload["userErrors"][0]["code"] == "NOT_FOUND"
    before = records_state(db, slug)
    for document, fields in [
        (UPDATE, {"conditions": ["糖尿病"]}),
        (UPDATE, {"heartRateRange": {"min": 50, "max": 90}}),
        (CREATE, {"conditions": []}),
    ]:
        target = mine if document is UPDATE else people["mine"][1]
        body = call(gql, worker, document, input={"resident": rid(slug, target), **fields})
        assert code(body) == "FORBIDDEN", (document, fields)
    assert records_state(db, slug) == before


# -- thresholds ----------------------------------------------------------------------


@pytest.mark.usefixtures("populated_village")  # the village's own thresholds change
def test_thresholds_are_read_by_carers_and_set_by_the_admin(gql, admin, worker, slug, db):
    defaults = {
        "heartRateMin": 50,
        "heartRateMax": 120,
        "spo2Min": 90,
        "systolicMax": 160,
        "diastolicMax": 100,
    }
    for who in (admin, worker):
        assert call(gql, who, READ_THRESHOLDS, slug=slug)["data"]["village"][
            "healthThresholds"
        ] == (defaults)
    payload = mutate(
        gql, admin, UPDATE_THRESHOLDS, {"village": slug, "heartRateMax": 110, "spo2Min": 92}
    )
    assert payload["healthThresholds"] == {**defaults, "heartRateMax": 110, "spo2Min": 92}
    [entry] = audit(db, slug, "health_thresholds")
    assert entry[2] == ["heart_rate_max", "spo2_min"]
    assert entry[4] == {"heart_rate_max": [120, 110], "spo2_min": [90, 92]}

    for changes, field in [
        ({"heartRateMin": 110}, "heartRateMax"),
        ({"spo2Min": 101}, "spo2Min"),
        ({"diastolicMax": 140, "systolicMax": 130}, "diastolicMax"),
        ({"systolicMax": None}, "systolicMax"),
    ]:
        refused = mutate(gql, admin, UPDATE_THRESHOLDS, {"village": slug, **changes})
        assert [e["field"] for e in refused["userErrors"]] == [field], changes
        assert refused["healthThresholds"] is None
    body = call(gql, worker, UPDATE_THRESHOLDS, input={"village": slug, "spo2Min": 85})
    assert code(body) == "FORBIDDEN"
    assert len(audit(db, slug, "health_thresholds")) == 1


# -- masking and audited reads --------------------------------------------------------


def test_conditions_are_masked_for_grid_workers_unless_asked_with_a_reason(
    gql, admin, worker, slug, people, db
):
    resident = people["mine"][0]
    create(gql, admin, slug, resident, **FULL_RECORD)
    before = len(audit(db, slug, "health_record.read"))

    seen = call(gql, admin, CONDITIONS, id=rid(slug, resident))["data"]["node"]["healthRecord"]
    assert seen["conditions"] == FULL_RECORD["conditions"]

    masked = call(gql, worker, CONDITIONS, id=rid(slug, resident))["data"]["node"]["healthRecord"]
    assert masked["conditions"] == ["***", "***"]
    # What a responder needs is there whole: whom to call, and how much help the person needs.
    assert masked["emergencyContacts"][0] == {"name": "王建国", "phone": "13812345678"}
    assert masked["careLevel"] == "ASSISTED"

    body = call(gql, worker, CONDITIONS, id=rid(slug, resident), unmasked=True)
    assert code(body) == "BAD_USER_INPUT" and "原因" in body["errors"][0]["message"]

    body = call(
        gql, worker, CONDITIONS, id=rid(slug, resident), unmasked=True, reason="上门前了解病情"
    )
    assert body["data"]["node"]["healthRecord"]["conditions"] == FULL_RECORD["conditions"]

    reads = audit(db, slug, "health_record.read")[before:]
    # admin (sees conditions), worker masked, worker refused, worker unmasked with a reason
    assert [(subject, fields, reason) for _a, subject, fields, reason, _d in reads] == [
        (str(resident), ["care_level", "conditions", "emergency_contacts"], None),
        (str(resident), ["care_level", "emergency_contacts"], None),
        # refused at `conditions`, the first field asked for: nothing after it was shown
        (str(resident), [], None),
        (str(resident), ["care_level", "conditions", "emergency_contacts"], "上门前了解病情"),
    ]


def test_only_the_village_admin_and_its_grid_workers_see_health_data(
    gql, token, slug, people, db, integrator, admin, populated_village, shared_village
):
    """On a village of its own: the first residents listed are the ones it gave a record."""
    resident = people["all"][0]
    create(gql, admin, slug, resident, **FULL_RECORD)
    add_readings(db, slug, resident, [{"measured_at": datetime.now(UTC), "heart_rate": 70}])
    outsiders = {
        "platform-admin": token("platform-admin"),
        "regional-coordinator": token("regional-coordinator", region=TEST_REGION),
        "integrator": integrator,
    }
    reads = len(audit(db, slug, "health_re"))
    state = records_state(db, slug)
    window = {"from": "2020-01-01T00:00:00+08:00", "to": "2030-01-01T00:00:00+08:00"}
    for who, outsider in outsiders.items():
        # The resident is readable; the health fields are not, with or without a record.
        body = call(gql, outsider, RESIDENTS_WITH_HEALTH, slug=slug, first=3)
        assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}, who
        nodes = [e["node"] for e in body["data"]["village"]["residents"]["edges"]]
        assert len(nodes) == 3 and all(n["healthRecord"] is None for n in nodes), who
        assert all(n["latestVitals"] is None for n in nodes), who
        for document, variables in [
            (NODE_RECORD, {"id": rid(slug, resident)}),
            (READINGS, {"id": rid(slug, resident), **window}),
            (SERIES, {"id": rid(slug, resident), **window, "bucket": "DAY"}),
            (ABNORMAL, {"slug": slug}),
            (READ_THRESHOLDS, {"slug": slug}),
        ]:
            assert code(call(gql, outsider, document, **variables)) == "FORBIDDEN", (who, document)
        for document, input in [
            (CREATE, {"resident": rid(slug, people["all"][1])}),
            (UPDATE, {"resident": rid(slug, resident), "note": "x"}),
            (UPDATE_THRESHOLDS, {"village": slug, "spo2Min": 85}),
        ]:
            assert code(call(gql, outsider, document, input=input)) == "FORBIDDEN", (who, document)
    # Another village's admin (the module's shared one) does not even reach the village.
    stranger = token("village-admin", village=shared_village.slug)
    assert code(call(gql, stranger, NODE_RECORD, id=rid(slug, resident))) == "NOT_FOUND"
    assert code(call(gql, stranger, CREATE, input={"resident": rid(slug, resident)})) == "NOT_FOUND"
    # Refused callers saw nothing and wrote nothing.
    assert len(audit(db, slug, "health_re")) == reads
    assert records_state(db, slug) == state


# -- readings ------------------------------------------------------------------------


def test_raw_readings_keep_to_the_range_in_time_order(gql, admin, slug, people, db):
    resident = people["all"][2]
    day = [local(2026, 3, 10, h, mi) for h, mi in [(8, 0), (9, 30), (8, 40), (10, 0), (7, 59)]]
    stored = add_readings(
        db,
        slug,
        resident,
        [{"measured_at": t, "heart_rate": 60 + i, "spo2": 97} for i, t in enumerate(day)],
    )
    window = {"from": local(2026, 3, 10, 8).isoformat(), "to": local(2026, 3, 10, 10).isoformat()}
    seen, after = [], None
    while True:
        body = call(gql, admin, READINGS, id=rid(slug, resident), first=2, after=after, **window)
        connection = body["data"]["node"]["healthReadings"]
        assert connection["totalCount"] == 3
        seen += [e["node"] for e in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    # From included, to excluded, oldest first although they arrived out of order.
    assert [datetime.fromisoformat(n["measuredAt"]) for n in seen] == [
        local(2026, 3, 10, 8, 0),
        local(2026, 3, 10, 8, 40),
        local(2026, 3, 10, 9, 30),
    ]
    assert [n["heartRate"] for n in seen] == [60, 62, 61]
    by_id = {r["reading_id"] for r in stored}
    assert {n["readingId"] for n in seen} <= by_id
    assert seen[0]["device"] == encode_id("Device", slug, stored[0]["device_id"])

    for bad in (
        {"from": window["to"], "to": window["from"]},
        {"from": window["from"], "to": window["from"]},
        {"from": "2026-03-10T08:00:00", "to": window["to"]},
        {"from": "yesterday", "to": window["to"]},
    ):
        body = call(gql, admin, READINGS, id=rid(slug, resident), **bad)
        assert code(body) == "BAD_USER_INPUT", bad
    body = call(
        gql, admin, READINGS, id=rid(slug, resident), to=window["from"], **{"from": window["to"]}
    )
    assert body["errors"][0]["message"] == "开始时间须早于结束时间"


def _bucket_start(moment: datetime, step: timedelta) -> datetime:
    return BUCKET_ORIGIN + math.floor((moment - BUCKET_ORIGIN) / step) * step


def _expected_series(rows: list[dict], step: timedelta, start: datetime, end: datetime) -> list:
    buckets: dict[datetime, list[dict]] = {}
    for row in rows:
        if start <= row["measured_at"] < end:
            buckets.setdefault(_bucket_start(row["measured_at"], step), []).append(row)

    def values(items, key):
        return [r[key] for r in items if r.get(key) is not None]

    series = []
    for starts_at in sorted(buckets):
        items = buckets[starts_at]
        heart = values(items, "heart_rate")
        series.append(
            {
                "startsAt": starts_at,
                "readings": len(items),
                "heartRateAvg": sum(heart) / len(heart) if heart else None,
                "heartRateMin": min(heart, default=None),
                "heartRateMax": max(heart, default=None),
                "spo2Min": min(values(items, "spo2"), default=None),
                "systolicMax": max(values(items, "systolic"), default=None),
                "diastolicMax": max(values(items, "diastolic"), default=None),
            }
        )
    return series


def _series(gql, who, slug, resident, start, end, bucket) -> list[dict]:
    body = call(
        gql,
        who,
        SERIES,
        id=rid(slug, resident),
        bucket=bucket,
        **{"from": start.isoformat(), "to": end.isoformat()},
    )
    assert "errors" not in body, body
    points = body["data"]["node"]["healthReadingSeries"]
    return [{**p, "startsAt": datetime.fromisoformat(p["startsAt"])} for p in points]


def test_series_downsample_per_bucket(gql, admin, slug, people, db):
    resident = people["all"][3]
    base = local(2026, 3, 10, 6, 0)
    rows = []
    # Five hours of readings every seven minutes, some kiosks measuring blood pressure,
    # a wristband that now and then sends no heart rate.
    for i in range(43):
        reading = {"measured_at": base + timedelta(minutes=7 * i), "spo2": 88 + i % 11}
        if i % 5:
            reading["heart_rate"] = 55 + (i * 13) % 70
        if i % 4 == 0:
            reading |= {"systolic": 110 + (i * 7) % 60, "diastolic": 70 + (i * 3) % 30}
        rows.append(reading)
    add_readings(db, slug, resident, rows)
    start, end = base + timedelta(minutes=20), base + timedelta(hours=4, minutes=10)
    for bucket, step in [("HOUR", timedelta(hours=1)), ("FIFTEEN_MINUTES", timedelta(minutes=15))]:
        got = _series(gql, admin, slug, resident, start, end, bucket)
        expected = _expected_series(rows, step, start, end)
        assert len(got) == len(expected) > 1
        for point, want in zip(got, expected, strict=True):
            avg = point.pop("heartRateAvg")
            assert avg == pytest.approx(want.pop("heartRateAvg"))
            assert point == want
        # Every reading of the range is in exactly one bucket.
        assert sum(p["readings"] for p in got) == sum(start <= r["measured_at"] < end for r in rows)


def test_day_buckets_are_local_days(gql, admin, slug, people, db):
    resident = people["all"][4]
    rows = [
        {"measured_at": local(2026, 3, 10, 23, 30), "heart_rate": 80},
        {"measured_at": local(2026, 3, 11, 0, 30), "heart_rate": 60},  # 16:30 UTC the 10th
        {"measured_at": local(2026, 3, 11, 7, 59), "heart_rate": 70},  # 23:59 UTC the 10th
    ]
    add_readings(db, slug, resident, rows)
    got = _series(gql, admin, slug, resident, local(2026, 3, 10), local(2026, 3, 12), "DAY")
    assert [(p["startsAt"], p["readings"], p["heartRateAvg"]) for p in got] == [
        (local(2026, 3, 10), 1, 80.0),
        (local(2026, 3, 11), 2, 65.0),
    ]
    # Told on the village's clock, as the buckets are cut.
    assert got[1]["startsAt"].isoformat() == "2026-03-11T00:00:00+08:00"


def test_series_longer_than_the_cap_is_refused(gql, admin, slug, people):
    resident = people["all"][0]
    start = local(2026, 3, 10, 8)
    assert (
        _series(gql, admin, slug, resident, start, start + timedelta(minutes=1000), "MINUTE") == []
    )
    body = call(
        gql,
        admin,
        SERIES,
        id=rid(slug, resident),
        bucket="MINUTE",
        **{"from": start.isoformat(), "to": (start + timedelta(minutes=1001)).isoformat()},
    )
    assert code(body) == "BAD_USER_INPUT"
    assert "1001" in body["errors"][0]["message"] and "上限1000" in body["errors"][0]["message"]
    # An unaligned range touches one bucket more than its length suggests.
    unaligned = start + timedelta(seconds=30)
    body = call(
        gql,
        admin,
        SERIES,
        id=rid(slug, resident),
        bucket="MINUTE",
        **{"from": unaligned.isoformat(), "to": (unaligned + timedelta(minutes=1000)).isoformat()},
    )
    assert code(body) == "BAD_USER_INPUT"


def test_latest_vitals_and_reading_reads_are_audited(gql, admin, worker, slug, people, db):
    resident = people["mine"][0]
    now = datetime.now(UTC).replace(microsecond=0)
    with db.tenant(slug) as conn:
        conn.execute(
            insert(latest_vitals).values(
                resident_id=resident,
                measured_at=now,
                heart_rate=72,
                heart_rate_at=now,
                spo2=96,
                spo2_at=now,
                latitude=39.1,
                longitude=117.2,
                location_at=now,
            )
        )
    before = len(audit(db, slug, "health_readings.read"))
    for who in (admin, worker):
        vitals = call(gql, who, VITALS, id=rid(slug, resident))["data"]["node"]["latestVitals"]
        assert (vitals["heartRate"], vitals["spo2"], vitals["systolic"]) == (72, 96, None)
        assert datetime.fromisoformat(vitals["measuredAt"]) == now
    # Someone without vitals: nothing shown, nothing to audit.
    assert call(gql, admin, VITALS, id=rid(slug, people["mine"][1]))["data"]["node"] == {
        "latestVitals": None
    }
    window = {"from": "2026-03-10T00:00:00+08:00", "to": "2026-03-11T00:00:00+08:00"}
    call(gql, worker, READINGS, id=rid(slug, resident), **window)
    call(gql, worker, SERIES, id=rid(slug, resident), bucket="HOUR", **window)
    reads = audit(db, slug, "health_readings.read")[before:]
    assert [(subject, fields) for _a, subject, fields, *_ in reads] == [
        (str(resident), ["latest"]),
        (str(resident), ["latest"]),
        (str(resident), ["readings"]),
        (str(resident), ["series"]),
    ]


# -- abnormal today ------------------------------------------------------------------


def _abnormal(gql, who, slug, **variables) -> dict:
    body = call(gql, who, ABNORMAL, slug=slug, **variables)
    assert "errors" not in body, body
    return body["data"]["village"]["abnormalToday"]


@pytest.mark.usefixtures("populated_village")  # lists every abnormal resident of the village
def test_abnormal_today_follows_the_village_clock(gql, admin, worker, slug, people, db):
    midnight = datetime.combine(datetime.now(SHANGHAI).date(), datetime.min.time(), SHANGHAI)
    a, b, c, d = people["mine"][:2] + people["others"][:2]
    add_readings(
        db,
        slug,
        a,
        [  # Abnormal only yesterday (a second before the village's midnight), fine today.
            {
                "measured_at": midnight - timedelta(seconds=1),
                "heart_rate": 150,
                "abnormal": ["heart_rate"],
            },
            {"measured_at": midnight + timedelta(seconds=1), "heart_rate": 80},
        ],
    )
    first_b = midnight + timedelta(seconds=1)
    add_readings(
        db,
        slug,
        b,
        [  # Abnormal a second after midnight (16:00:01 UTC of the day before), then again.
            {"measured_at": first_b, "heart_rate": 40, "abnormal": ["heart_rate"]},
            {
                "measured_at": first_b + timedelta(seconds=30),
                "spo2": 85,
                "heart_rate": 42,
                "abnormal": ["heart_rate", "spo2"],
            },
            {"measured_at": first_b + timedelta(seconds=60), "heart_rate": 70},
        ],
    )
    add_readings(db, slug, c, [{"measured_at": first_b, "spo2": 97}])
    add_readings(
        db,
        slug,
        d,
        [
            {
                "measured_at": first_b,
                "latitude": 39.2,
                "longitude": 117.4,
                "abnormal": ["outside_safe_zone"],
            }
        ],
    )

    listed = _abnormal(gql, admin, slug)
    assert listed["totalCount"] == 2
    nodes = [e["node"] for e in listed["edges"]]
    assert [n["resident"]["id"] for n in nodes] == [rid(slug, b), rid(slug, d)]
    assert nodes[0]["abnormalities"] == ["HEART_RATE", "SPO2"]
    assert nodes[0]["abnormalReadings"] == 2
    latest = nodes[0]["latestAbnormalReading"]
    assert datetime.fromisoformat(latest["measuredAt"]) == first_b + timedelta(seconds=30)
    assert (latest["spo2"], latest["abnormal"]) == (85, ["HEART_RATE", "SPO2"])
    assert nodes[1]["abnormalities"] == ["OUTSIDE_SAFE_ZONE"]

    page = _abnormal(gql, admin, slug, first=1)
    assert page["pageInfo"]["hasNextPage"]
    rest = _abnormal(gql, admin, slug, first=1, after=page["pageInfo"]["endCursor"])
    assert [e["node"]["resident"]["id"] for e in rest["edges"]] == [rid(slug, d)]
    assert not rest["pageInfo"]["hasNextPage"]

    # The grid worker sees their grids' residents only.
    theirs = _abnormal(gql, worker, slug)
    assert theirs["totalCount"] == 1
    assert [e["node"]["resident"]["id"] for e in theirs["edges"]] == [rid(slug, b)]
    # Each resident shown is an audited read.
    reads = [a for a in audit(db, slug, "health_readings.read") if a[2] == ["abnormal_today"]]
    assert sorted(subject for _a, subject, *_ in reads) == sorted(
        [str(b), str(d), str(b), str(d), str(b)]
    )


# -- statement counts ----------------------------------------------------------------


ACTOR = Actor(
    Principal("hl-test", "测试管理员", frozenset({"village-admin"}), frozenset(), frozenset(), None)
)


def _run(app, gql, who, document, slug, first) -> list[str]:
    with count_statements(app.extensions["villagelink"].db.engine) as statements:
        status, body = gql(document, who, {"slug": slug, "first": first})
    assert status == 200 and "errors" not in body, body
    return statements


@pytest.mark.usefixtures("populated_village")  # gives every resident a record
def test_resident_list_with_health_statement_count_is_pinned_and_flat(
    app, gql, admin, worker, slug, people, db
):
    now = datetime.now(UTC)
    with db.tenant(slug) as conn:
        for resident in people["all"]:
            actions.do_create_health_record(
                conn,
                ACTOR,
                slug,
                resident,
                {
                    "conditions": ["高血压"],
                    "emergency_contacts": [CONTACT],
                    "care_level": "assisted",
                },
                allowed_grids=None,
            )
        conn.execute(
            insert(latest_vitals),
            [{"resident_id": r, "measured_at": now, "heart_rate": 70} for r in people["all"]],
        )
    _run(app, gql, admin, RESIDENTS_WITH_HEALTH, slug, 1)  # warm the pool
    five = _run(app, gql, admin, RESIDENTS_WITH_HEALTH, slug, 5)
    fifty = _run(app, gql, admin, RESIDENTS_WITH_HEALTH, slug, 50)
    # role, path and access epoch (the caller's reach is kept with the token), the page,
    # health records, latest vitals, read audit
    assert len(five) == len(fifty) == 5, "\n".join(fifty)
    # A grid worker's list also asks which grids are theirs (counted once their reach is kept).
    few = len(people["mine"])
    _run(app, gql, worker, RESIDENTS_WITH_HEALTH, slug, 1)
    assert len(_run(app, gql, worker, RESIDENTS_WITH_HEALTH, slug, 1)) == 6
    assert len(_run(app, gql, worker, RESIDENTS_WITH_HEALTH, slug, few)) == 6


@pytest.mark.usefixtures("populated_village")  # lists the village's abnormal residents
def test_abnormal_today_statement_count_is_pinned_and_flat(app, gql, admin, slug, people, db):
    now = datetime.now(UTC)
    for i, resident in enumerate(people["all"][:55]):
        add_readings(
            db,
            slug,
            resident,
            [
                {
                    "measured_at": now - timedelta(seconds=i),
                    "heart_rate": 140,
                    "abnormal": ["heart_rate"],
                }
            ],
        )
    _run(app, gql, admin, ABNORMAL_WITH_RESIDENTS, slug, 1)  # warm the pool
    five = _run(app, gql, admin, ABNORMAL_WITH_RESIDENTS, slug, 5)
    fifty = _run(app, gql, admin, ABNORMAL_WITH_RESIDENTS, slug, 50)
    # role, path and access epoch (the caller's reach is kept with the token), the page
    # (with each one's latest abnormal reading), residents, their health records, their
    # latest vitals, read audit
    assert len(five) == len(fifty) == 6, "\n".join(fifty)

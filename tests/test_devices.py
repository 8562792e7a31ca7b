"""Devices (设备): registering and placing them, who may see and manage which, the
status machine, audit, the list's statement count, and the offline sweep on a
controlled clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update

from villagelink.graphql.core.ids import decode_id, encode_id
from villagelink.jobs import devices as device_jobs
from villagelink.jobs.queues import MAINTENANCE, queue
from villagelink.jobs.scheduler import DEVICE_OFFLINE_INTERVAL, build_cron_scheduler
from villagelink.platform import models as pm
from villagelink.platform.db import Database
from villagelink.tenants import models as tm
from villagelink.tenants.demo.plans import demo_grid_worker_subject
from villagelink.tenants.grids import grids_of_account
from villagelink.tenants.sensing.devices import OFFLINE_AFTER, TRANSITIONS
from villagelink.tenants.sensing.tables import (
    DEVICE_ACTIVE,
    DEVICE_DISABLED,
    DEVICE_KINDS,
    DEVICE_OFFLINE,
    DEVICE_STATUSES,
    devices,
)

from .conftest import TEST_REGION
from .test_jobs import work_off
from .test_query_count import count_statements

DEVICE_FIELDS = """id kind serialNumber name status lastSeenAt ownerClientId building
  locationText latitude longitude version grid { id } household { id } resident { id }"""
REGISTER = f"""mutation($input: RegisterDeviceInput!) {{ registerDevice(input: $input) {{
  device {{ {DEVICE_FIELDS} }} userErrors {{ field message code }} }} }}"""
UPDATE = f"""mutation($input: UpdateDeviceInput!) {{ updateDevice(input: $input) {{
  device {{ {DEVICE_FIELDS} }} userErrors {{ field message code }} }} }}"""
LIST = f"""query($village: String!, $first: Int, $after: String, $filter: DeviceFilter) {{
  devices(village: $village, first: $first, after: $after, filter: $filter) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {DEVICE_FIELDS} }} }} }} }}"""
NODE = "query($id: ID!) { node(id: $id) { id ... on Device { serialNumber } } }"
PLACES = """query($slug: String!) { village(slug: $slug) {
  grids(first: 100) { edges { node { id level } } }
  households(first: 100) { edges { node { id building grid { id } } } }
  residents(first: 100) { edges { node { id grid { id } household { id } } } } } }"""


def step_document(name: str) -> str:
    return f"""mutation($input: DeviceStepInput!) {{ {name}(input: $input) {{
      device {{ {DEVICE_FIELDS} }} userErrors {{ field message code }} }} }}"""


STEP_MUTATIONS = {"disable": "disableDevice", "enable": "enableDevice"}


def first_code(body) -> str:
    return body["errors"][0]["extensions"]["code"]


def mutate(gql, caller: str, document: str, input: dict) -> dict:
    _, body = gql(document, caller, {"input": input})
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def codes(payload: dict) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


def listed(gql, caller: str, village: str, **variables) -> dict:
    _, body = gql(LIST, caller, {"village": village, "first": 100, **variables})
    assert "errors" not in body, body
    return body["data"]["devices"]


def serials(connection: dict) -> set[str]:
    return {edge["node"]["serialNumber"] for edge in connection["edges"]}


def serial() -> str:
    return f"SN-{uuid.uuid4().hex[:12].upper()}"


def key(global_id: str) -> int:
    return int(decode_id(global_id).key)


def audit_of(db: Database, slug: str, action_prefix: str = "device.") -> list[tuple]:
    a = pm.audit_log
    with db.platform() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(a.c.action, a.c.subject_id, a.c.fields, a.c.client_id)
                .where(a.c.village == slug, a.c.action.like(f"{action_prefix}%"))
                .order_by(a.c.occurred_at)
            )
        ]


@pytest.fixture
def platform_of(db, token):
    """An integrator whose client is granted `slug` with `scopes`: (token, client id)."""

    def grant(slug: str, *scopes: str) -> tuple[str, str]:
        client = f"dv-{uuid.uuid4().hex[:10]}"
        with db.platform() as conn:
            conn.execute(
                insert(pm.api_clients).values(
                    client_id=client, name="设备平台", villages=[slug], scopes=list(scopes)
                )
            )
        return token("integrator", client=client), client

    return grant


def places_of(gql, token, slug: str) -> dict:
    """Grids, households (with a building) and residents of a populated village."""
    _, body = gql(PLACES, token("village-admin", village=slug), {"slug": slug})
    village = body["data"]["village"]
    return {
        "grids": [e["node"] for e in village["grids"]["edges"]],
        "households": [e["node"] for e in village["households"]["edges"]],
        "residents": [e["node"] for e in village["residents"]["edges"]],
    }


@pytest.fixture
def place(gql, token, shared_village) -> dict:
    slug = shared_village.slug
    return {"slug": slug, "admin": token("village-admin", village=slug)} | places_of(
        gql, token, slug
    )


def camera(place: dict, **fields) -> dict:
    household = place["households"][0]
    return {
        "village": place["slug"],
        "kind": "AI_CAMERA",
        "serialNumber": serial(),
        "name": "3号楼东侧摄像头",
        "household": household["id"],
        **fields,
    }


def wristband(place: dict, resident: dict | None = None, **fields) -> dict:
    return {
        "village": place["slug"],
        "kind": "WRISTBAND",
        "serialNumber": serial(),
        "name": "智能手环",
        "resident": (resident or place["residents"][0])["id"],
        **fields,
    }


def register(gql, caller: str, input: dict) -> dict:
    payload = mutate(gql, caller, REGISTER, input)
    assert payload["userErrors"] == [], payload
    return payload["device"]


# -- tables ---------------------------------------------------------------------------


def test_the_status_table_allows_exactly_the_documented_steps():
    assert TRANSITIONS == {
        "disable": ((DEVICE_ACTIVE, DEVICE_OFFLINE), DEVICE_DISABLED, "停用"),
        "enable": ((DEVICE_DISABLED,), DEVICE_ACTIVE, "启用"),
    }
    assert set(OFFLINE_AFTER) == set(DEVICE_KINDS)


# -- registering ------------------------------------------------------------------------


def test_an_integrator_registers_its_own_devices(db, gql, place, platform_of):
    slug = place["slug"]
    integrator, client = platform_of(slug, "devices:write")
    household = place["households"][0]
    device = register(
        gql,
        integrator,
        camera(place, locationText="东门", latitude=39.06, longitude=117.33),
    )
    assert device["kind"] == "AI_CAMERA"
    assert device["status"] == "ACTIVE" and device["lastSeenAt"] is None
    assert device["ownerClientId"] == client
    assert device["grid"]["id"] == household["grid"]["id"]
    assert device["building"] == household["building"]
    assert (device["latitude"], device["longitude"], device["locationText"]) == (
        39.06,
        117.33,
        "东门",
    )
    # A device platform runs devices; it does not read the village's households.
    assert device["household"] is None
    assert decode_id(device["id"]).village == slug

    band = register(gql, integrator, wristband(place))
    assert band["resident"] is None and band["grid"] is None
    with db.tenant(slug) as conn:
        watched = conn.execute(
            select(devices.c.resident_id).where(devices.c.id == key(band["id"]))
        ).scalar_one()
    assert watched == key(place["residents"][0]["id"])

    entries = audit_of(db, slug)
    assert [(a, s, c) for a, s, _f, c in entries[-2:]] == [
        ("device.register", str(key(device["id"])), client),
        ("device.register", str(key(band["id"])), client),
    ]


def test_the_village_admin_registers_the_villages_own(gql, place):
    household = place["households"][1]
    device = register(gql, place["admin"], camera(place, household=household["id"]))
    assert device["ownerClientId"] is None
    assert device["household"]["id"] == household["id"]
    band = register(gql, place["admin"], wristband(place))
    assert band["resident"]["id"] == place["residents"][0]["id"]


def test_a_building_or_a_grid_places_a_device(gql, place):
    household = place["households"][0]
    by_building = register(
        gql, place["admin"], camera(place, household=None, building=household["building"])
    )
    assert by_building["grid"]["id"] == household["grid"]["id"]
    assert by_building["building"] == household["building"]
    grid = place["grids"][0]
    by_grid = register(gql, place["admin"], camera(place, household=None, grid=grid["id"]))
    assert by_grid["grid"]["id"] == grid["id"] and by_grid["building"] is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"household": None}, [("grid", "REQUIRED")]),
        ({"household": None, "locationText": "村口"}, [("grid", "REQUIRED")]),
        ({"household": None, "building": "不存在的楼"}, [("building", "NOT_FOUND")]),
        ({"resident": "RESIDENT"}, [("resident", "INVALID")]),
        ({"kind": "WRISTBAND", "household": None}, [("resident", "REQUIRED")]),
        ({"latitude": 39.0}, [("longitude", "REQUIRED")]),
        ({"latitude": 91.0, "longitude": 117.0}, [("latitude", "INVALID")]),
        ({"serialNumber": "序列号"}, [("serialNumber", "INVALID")]),
        ({"name": "   "}, [("name", "REQUIRED")]),
        ({"household": "SG91c2Vob2xkOm5vd2hlcmU6MQ"}, [("household", "NOT_FOUND")]),
        ({"grid": "OTHER_GRID"}, [("grid", "MISMATCH")]),
    ],
)
def test_registration_refusals_write_nothing(db, gql, place, change, expected):
    slug = place["slug"]
    resident = place["residents"][0]["id"]
    household = place["households"][0]
    other_grid = next(g["id"] for g in place["grids"] if g["id"] != household["grid"]["id"])
    values = {"RESIDENT": resident, "OTHER_GRID": other_grid}
    input = camera(place) | {k: values.get(v, v) for k, v in change.items()}
    with db.tenant(slug) as conn:
        before = conn.execute(select(func.count()).select_from(devices)).scalar_one()
    payload = mutate(gql, place["admin"], REGISTER, input)
    assert payload["device"] is None
    assert codes(payload) == expected
    assert all(e["message"] for e in payload["userErrors"])
    with db.tenant(slug) as conn:
        assert conn.execute(select(func.count()).select_from(devices)).scalar_one() == before


def test_a_wristband_names_a_resident_of_this_village(gql, token, place, other_village):
    elsewhere = encode_id("Resident", other_village.slug, 1)
    payload = mutate(gql, place["admin"], REGISTER, wristband(place) | {"resident": elsewhere})
    assert codes(payload) == [("resident", "NOT_FOUND")]
    missing = encode_id("Resident", place["slug"], 10**9)
    payload = mutate(gql, place["admin"], REGISTER, wristband(place) | {"resident": missing})
    assert codes(payload) == [("resident", "NOT_FOUND")]


def a_grid_in(db: Database, slug: str) -> str:
    """A grid in an empty village, made through the table (villages start without)."""
    with db.tenant(slug) as conn:
        grid_id = conn.execute(
            tm.grids.insert()
            .values(level="micro", code=f"G-{uuid.uuid4().hex[:6]}", name="一组")
            .returning(tm.grids.c.id)
        ).scalar_one()
    return encode_id("Grid", slug, grid_id)


def test_serial_numbers_are_unique_per_village(db, gql, token, place, other_village):
    first = register(gql, place["admin"], camera(place))
    again = mutate(gql, place["admin"], REGISTER, camera(place, serialNumber=first["serialNumber"]))
    assert codes(again) == [("serialNumber", "DUPLICATE")]
    # Another village keeps a registration of its own.
    admin = token("village-admin", village=other_village.slug)
    smoke = {"village": other_village.slug, "kind": "SMOKE_SENSOR", "name": "烟感"}
    other = register(
        gql,
        admin,
        smoke | {"serialNumber": first["serialNumber"], "grid": a_grid_in(db, other_village.slug)},
    )
    assert other["serialNumber"] == first["serialNumber"]


# -- who sees and manages which ----------------------------------------------------------


def test_integrators_see_and_manage_only_their_own(gql, place, platform_of):
    slug = place["slug"]
    first, first_client = platform_of(slug, "devices:write")
    second, _ = platform_of(slug, "devices:write")
    mine = register(gql, first, camera(place))
    theirs = register(gql, second, camera(place))
    village_own = register(gql, place["admin"], camera(place))

    assert serials(listed(gql, first, slug)) == {mine["serialNumber"]}
    assert listed(gql, first, slug)["totalCount"] == 1
    admin_sees = serials(listed(gql, place["admin"], slug, first=100))
    assert {mine["serialNumber"], theirs["serialNumber"], village_own["serialNumber"]} <= admin_sees

    for document, input in (
        (UPDATE, {"id": theirs["id"], "name": "改名"}),
        (step_document("disableDevice"), {"id": theirs["id"]}),
        (UPDATE, {"id": village_own["id"], "name": "改名"}),
    ):
        payload = mutate(gql, first, document, input)
        assert codes(payload) == [("id", "NOT_FOUND")]
    renamed = mutate(gql, first, UPDATE, {"id": mine["id"], "name": "西门摄像头"})
    assert renamed["device"]["name"] == "西门摄像头"
    assert renamed["device"]["ownerClientId"] == first_client
    # The village's admin manages every device of the village, an integrator's too.
    payload = mutate(gql, place["admin"], step_document("disableDevice"), {"id": theirs["id"]})
    assert payload["device"]["status"] == "DISABLED"


def test_an_integrator_needs_devices_write_in_a_granted_village(
    gql, place, platform_of, other_village
):
    slug = place["slug"]
    device = register(gql, place["admin"], camera(place))
    reader, _ = platform_of(slug, "residents:read")
    _, body = gql(LIST, reader, {"village": slug})
    assert first_code(body) == "FORBIDDEN"
    _, body = gql(REGISTER, reader, {"input": camera(place)})
    assert first_code(body) == "FORBIDDEN"

    elsewhere, _ = platform_of(other_village.slug, "devices:write")
    _, body = gql(LIST, elsewhere, {"village": slug})
    assert first_code(body) == "NOT_FOUND"
    _, body = gql(REGISTER, elsewhere, {"input": camera(place)})
    assert first_code(body) == "NOT_FOUND"
    _, body = gql(UPDATE, elsewhere, {"input": {"id": device["id"], "name": "x"}})
    assert first_code(body) == "NOT_FOUND"

    # With both scopes: its own devices through node(id), never another's.
    both, _ = platform_of(slug, "residents:read", "devices:write")
    own = register(gql, both, camera(place))
    _, body = gql(NODE, both, {"id": own["id"]})
    assert body["data"]["node"]["serialNumber"] == own["serialNumber"]
    _, body = gql(NODE, both, {"id": device["id"]})
    assert first_code(body) == "NOT_FOUND"
    # It reads residents, so it sees whom its wristband watches over.
    band = register(gql, both, wristband(place))
    assert band["resident"]["id"] == place["residents"][0]["id"]


def test_grid_workers_read_the_devices_of_their_grids(db, gql, token, place):
    slug = place["slug"]
    worker = token("grid-worker", village=slug, sub=demo_grid_worker_subject(slug))
    with db.tenant(slug) as conn:
        mine = grids_of_account(conn, demo_grid_worker_subject(slug))
    inside = next(h for h in place["households"] if key(h["grid"]["id"]) in mine)
    outside = next(g for g in place["grids"] if key(g["id"]) not in mine)
    neighbour = next(r for r in place["residents"] if r["grid"] and key(r["grid"]["id"]) in mine)
    seen = register(gql, place["admin"], camera(place, household=inside["id"]))
    unseen = register(gql, place["admin"], camera(place, household=None, grid=outside["id"]))
    # A wristband is placed nowhere: it is seen where its wearer lives.
    band = register(gql, place["admin"], wristband(place, neighbour))

    found = serials(listed(gql, worker, slug))
    assert {seen["serialNumber"], band["serialNumber"]} <= found
    assert unseen["serialNumber"] not in found
    _, body = gql(NODE, worker, {"id": unseen["id"]})
    assert first_code(body) == "NOT_FOUND"
    _, body = gql(REGISTER, worker, {"input": camera(place, household=inside["id"])})
    assert first_code(body) == "FORBIDDEN"
    _, body = gql(step_document("disableDevice"), worker, {"input": {"id": seen["id"]}})
    assert first_code(body) == "FORBIDDEN"


def test_coordinators_read_every_device_of_their_region(gql, token, place, other_village):
    slug = place["slug"]
    device = register(gql, place["admin"], camera(place))
    coordinator = token("regional-coordinator", region=TEST_REGION)
    assert device["serialNumber"] in serials(listed(gql, coordinator, slug))
    _, body = gql(NODE, coordinator, {"id": device["id"]})
    assert body["data"]["node"]["id"] == device["id"]
    _, body = gql(REGISTER, coordinator, {"input": camera(place)})
    assert first_code(body) == "FORBIDDEN"
    _, body = gql(UPDATE, coordinator, {"input": {"id": device["id"], "name": "x"}})
    assert first_code(body) == "FORBIDDEN"

    other_admin = token("village-admin", village=other_village.slug)
    _, body = gql(LIST, other_admin, {"village": slug})
    assert first_code(body) == "NOT_FOUND"
    _, body = gql(UPDATE, other_admin, {"input": {"id": device["id"], "name": "x"}})
    assert first_code(body) == "NOT_FOUND"


# -- changing --------------------------------------------------------------------------


def test_update_moves_renames_and_hands_over(db, gql, place):
    slug = place["slug"]
    device = register(gql, place["admin"], camera(place, locationText="东门"))
    grid = next(g for g in place["grids"] if g["id"] != device["grid"]["id"])
    moved = mutate(
        gql,
        place["admin"],
        UPDATE,
        {
            "id": device["id"],
            "grid": grid["id"],
            "locationText": "",
            "latitude": 39.1,
            "longitude": 117.2,
        },
    )
    assert moved["userErrors"] == []
    assert moved["device"]["grid"]["id"] == grid["id"]
    assert (moved["device"]["household"], moved["device"]["building"]) == (None, None)
    assert moved["device"]["locationText"] is None
    assert moved["device"]["version"] == 2
    [(action, subject, fields, _)] = audit_of(db, slug)[-1:]
    assert (action, subject) == ("device.update", str(key(device["id"])))
    assert fields == [
        "building_id",
        "grid_id",
        "household_id",
        "latitude",
        "location_text",
        "longitude",
    ]

    # Nothing changed: no new version, no audit entry.
    entries = len(audit_of(db, slug))
    same = mutate(gql, place["admin"], UPDATE, {"id": device["id"], "name": device["name"]})
    assert same["device"]["version"] == 2 and len(audit_of(db, slug)) == entries

    band = register(gql, place["admin"], wristband(place))
    other = place["residents"][1]
    handed = mutate(gql, place["admin"], UPDATE, {"id": band["id"], "resident": other["id"]})
    assert handed["device"]["resident"]["id"] == other["id"]


@pytest.mark.parametrize(
    ("which", "change", "expected"),
    [
        ("wristband", {"resident": None}, [("resident", "REQUIRED")]),
        ("camera", {"grid": None}, [("grid", "REQUIRED")]),
        ("camera", {"resident": "RESIDENT"}, [("resident", "INVALID")]),
        ("camera", {"name": None}, [("name", "REQUIRED")]),
        ("camera", {"longitude": 117.0}, [("longitude", "REQUIRED")]),
    ],
)
def test_update_refusals_change_nothing(db, gql, place, which, change, expected):
    maker = camera if which == "camera" else wristband
    device = register(gql, place["admin"], maker(place))
    resident = place["residents"][0]["id"]
    input = {"id": device["id"]} | {
        k: resident if v == "RESIDENT" else v for k, v in change.items()
    }
    payload = mutate(gql, place["admin"], UPDATE, input)
    assert codes(payload) == expected
    with db.tenant(place["slug"]) as conn:
        version = conn.execute(
            select(devices.c.version).where(devices.c.id == key(device["id"]))
        ).scalar_one()
    assert version == 1


@pytest.mark.parametrize("state", DEVICE_STATUSES)
@pytest.mark.parametrize("step", sorted(TRANSITIONS))
def test_every_step_from_every_status(db, gql, place, state, step):
    device = register(gql, place["admin"], camera(place))
    device_id = key(device["id"])
    with db.tenant(place["slug"]) as conn:
        conn.execute(update(devices).where(devices.c.id == device_id).values(status=state))
        before = dict(
            conn.execute(select(devices).where(devices.c.id == device_id)).mappings().one()
        )
    starts, leads_to, _ = TRANSITIONS[step]
    payload = mutate(
        gql,
        place["admin"],
        step_document(STEP_MUTATIONS[step]),
        {"id": device["id"], "reason": "手环丢失"},
    )
    with db.tenant(place["slug"]) as conn:
        after = dict(
            conn.execute(select(devices).where(devices.c.id == device_id)).mappings().one()
        )
    if state in starts:
        assert payload["userErrors"] == []
        assert payload["device"]["status"] == leads_to.upper()
        assert after["status"] == leads_to
        assert after["version"] == before["version"] + 1
        [(action, subject, fields, _)] = audit_of(db, place["slug"])[-1:]
        assert (action, subject, fields) == (f"device.{step}", str(device_id), ["status"])
    else:
        assert codes(payload) == [("id", "INVALID_TRANSITION")]
        assert after == before


# -- the list ----------------------------------------------------------------------------


def test_list_filters_and_pages(gql, token, populated_village):
    slug = populated_village.slug
    admin = token("village-admin", village=slug)
    place = {"slug": slug, "admin": admin} | places_of(gql, token, slug)
    cameras = [register(gql, admin, camera(place)) for _ in range(3)]
    band = register(gql, admin, wristband(place))
    mutate(gql, admin, step_document("disableDevice"), {"id": cameras[0]["id"]})

    assert listed(gql, admin, slug)["totalCount"] == 4
    assert serials(listed(gql, admin, slug, filter={"kind": "WRISTBAND"})) == {band["serialNumber"]}
    assert serials(listed(gql, admin, slug, filter={"status": "DISABLED"})) == {
        cameras[0]["serialNumber"]
    }
    assert serials(
        listed(gql, admin, slug, filter={"serialNumber": cameras[1]["serialNumber"]})
    ) == {cameras[1]["serialNumber"]}
    in_grid = listed(gql, admin, slug, filter={"grid": cameras[2]["grid"]["id"]})
    assert cameras[2]["serialNumber"] in serials(in_grid) and band["serialNumber"] not in serials(
        in_grid
    )
    first = listed(gql, admin, slug, first=3)
    assert first["pageInfo"]["hasNextPage"] and len(first["edges"]) == 3
    rest = listed(gql, admin, slug, first=3, after=first["pageInfo"]["endCursor"])
    assert [e["node"]["id"] for e in rest["edges"]] == [band["id"]]
    assert not rest["pageInfo"]["hasNextPage"]


LIST_WITH_PLACES = """query($village: String!, $first: Int!) {
  devices(village: $village, first: $first) { edges { node { id kind status lastSeenAt
    building grid { id name } household { id address } resident { id name } } } } }"""


def test_device_list_statement_count_is_pinned_and_flat(
    app, gql, token, populated_village, platform_of
):
    slug = populated_village.slug
    admin = token("village-admin", village=slug)
    place = {"slug": slug, "admin": admin} | places_of(gql, token, slug)
    integrator, _ = platform_of(slug, "devices:write")
    for n in range(25):
        register(gql, integrator, camera(place, household=place["households"][n]["id"]))
        register(gql, integrator, wristband(place, place["residents"][n]))

    def run(caller: str, first: int) -> list[str]:
        with count_statements(app.extensions["villagelink"].db.engine) as statements:
            _, body = gql(LIST_WITH_PLACES, caller, {"village": slug, "first": first})
        assert "errors" not in body, body
        assert len(body["data"]["devices"]["edges"]) == first
        return statements

    run(admin, 1)  # warm the pool and the caller's kept reach
    # role, path and access epoch (the caller's reach is kept with the token),
    # the page, grids, households, residents
    assert len(run(admin, 5)) == len(run(admin, 50)) == 5
    # A device platform sees no households or residents: role, path and epoch (its client's
    # grant is part of its kept reach), the page, grids
    run(integrator, 1)
    five, fifty = run(integrator, 5), run(integrator, 50)
    assert len(five) == len(fifty) == 3, "\n".join(fifty)


# -- offline sweep -----------------------------------------------------------------------


def run_sweep(settings, slug: str, now: datetime) -> list[int]:
    job = queue(MAINTENANCE, settings).enqueue(device_jobs.mark_village_devices_offline, slug, now)
    work_off(settings)
    assert job.get_status(refresh=True) == "finished", job.latest_result().exc_string
    return job.return_value()


def add_device(db: Database, slug: str, kind: str, *, silent_for, now, status=DEVICE_ACTIVE):
    """A device that last reported `silent_for` before `now` (None: never, registered then)."""
    with db.tenant(slug) as conn:
        return conn.execute(
            devices.insert()
            .values(
                kind=kind,
                serial_number=serial(),
                name=kind,
                status=status,
                last_seen_at=None if silent_for is None else now - silent_for,
                created_at=now - timedelta(days=2),
            )
            .returning(devices.c.id)
        ).scalar_one()


@pytest.mark.usefixtures("job_env")
def test_silent_devices_go_offline_on_a_controlled_clock(settings, db, village):
    slug = village.slug
    now = datetime.now(UTC) + timedelta(hours=3)
    minute = timedelta(minutes=1)
    fresh = {
        kind: add_device(db, slug, kind, silent_for=after - minute, now=now)
        for kind, after in OFFLINE_AFTER.items()
    }
    silent = {
        kind: add_device(db, slug, kind, silent_for=after + minute, now=now)
        for kind, after in OFFLINE_AFTER.items()
    }
    never = add_device(db, slug, "ai_camera", silent_for=None, now=now)
    disabled = add_device(db, slug, "ai_camera", silent_for=None, now=now, status=DEVICE_DISABLED)

    assert run_sweep(settings, slug, now) == sorted([*silent.values(), never])
    with db.tenant(slug) as conn:
        status = dict(conn.execute(select(devices.c.id, devices.c.status)).all())
    assert {status[i] for i in fresh.values()} == {DEVICE_ACTIVE}
    assert {status[i] for i in silent.values()} == {DEVICE_OFFLINE}
    assert (status[never], status[disabled]) == (DEVICE_OFFLINE, DEVICE_DISABLED)
    # The same moment again finds nothing more; the audit names the sweep.
    assert run_sweep(settings, slug, now) == []
    a = pm.audit_log
    with db.platform() as conn:
        entries = conn.execute(
            select(a.c.actor_sub, func.count())
            .where(a.c.village == slug, a.c.action == "device.offline")
            .group_by(a.c.actor_sub)
        ).all()
    assert entries == [("system:device-watch", len(silent) + 1)]
    # Two minutes on, every kind's fresh one has been silent too long as well.
    assert run_sweep(settings, slug, now + 2 * minute) == sorted(fresh.values())


@pytest.mark.every_village
@pytest.mark.usefixtures("job_env")
def test_offline_sweep_fans_out_one_retried_job_per_village(settings, db, village, redis_client):
    now = datetime.now(UTC) + timedelta(hours=1)
    device_id = add_device(db, village.slug, "ai_camera", silent_for=timedelta(hours=1), now=now)
    job_ids = device_jobs.mark_silent_devices_offline(now)
    jobs = [queue(MAINTENANCE, settings).fetch_job(job_id) for job_id in job_ids]
    [ours] = [job for job in jobs if job.args == (village.slug, now)]
    assert ours.retries_left == device_jobs.OFFLINE_RETRY.max
    work_off(settings)
    assert ours.return_value() == [device_id]

    [cron] = [
        j
        for j in build_cron_scheduler(redis_client).get_jobs()
        if j.func is device_jobs.mark_silent_devices_offline
    ]
    assert (cron.queue_name, cron.interval) == (MAINTENANCE, DEVICE_OFFLINE_INTERVAL)
    assert DEVICE_OFFLINE_INTERVAL == 300

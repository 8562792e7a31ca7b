"""The neighbour feed and 走失协查, against the real servers: what neighbours share with
a village reaches its feed and nothing else does; a neighbour's grid workers and
admins acknowledge and report sightings of a missing person in the origin village,
which sees them; refusals without an agreement and for closed alerts; statement counts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from villagelink.graphql.core.ids import decode_id, encode_id
from villagelink.platform.audit import system_actor
from villagelink.platform.db import Database
from villagelink.platform.linkage.sync import sync_village
from villagelink.platform.models import audit_log
from villagelink.tenants import provisioning
from villagelink.tenants.activities.actions import do_create_activity, do_publish_activity
from villagelink.tenants.demo.plans import DEMO_VILLAGES
from villagelink.tenants.demo.residents import build_village, write_village
from villagelink.tenants.models import metadata
from villagelink.tenants.resources.actions import do_create_resource
from villagelink.tenants.sensing import sightings
from villagelink.tenants.sensing.alerting import Trigger
from villagelink.tenants.sensing.tables import alert_events

from .conftest import agree, new_village, new_village_slug
from .test_alerts import NOW, Place
from .test_query_count import count_statements

ACTOR = system_actor("test")

FEED = """query($slug: String!, $first: Int, $after: String, $types: [NeighbourRecordType!]) {
  village(slug: $slug) { neighbourFeed(first: $first, after: $after, types: $types) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { __typename id origin { slug name } recordType version
      committedAt publishedAt
      ... on NeighbourAlert { kind state summary residentName residentBirthYear latitude raisedAt }
      ... on NeighbourResource { resourceKind: kind name status bookable }
      ... on NeighbourActivity { activityKind: kind activityState: state title place
        occurrences { id startsAt endsAt capacity } }
    } } } } }"""
REPORT_FIELDS = """kind village { slug name } reporterName seenAt place latitude longitude note
  createdAt"""
ACK = f"""mutation($input: AcknowledgeNeighbourAlertInput!) {{
  acknowledgeNeighbourAlert(input: $input) {{ report {{ {REPORT_FIELDS} }}
    userErrors {{ field message code }} }} }}"""
SIGHTING = f"""mutation($input: ReportNeighbourAlertSightingInput!) {{
  reportNeighbourAlertSighting(input: $input) {{ report {{ {REPORT_FIELDS} }}
    userErrors {{ field message code }} }} }}"""
ALERTS = f"""query($slug: String!, $first: Int) {{ village(slug: $slug) {{
  alerts(first: $first) {{ edges {{ node {{ id kind
    neighbourReports {{ {REPORT_FIELDS} }} timeline {{ action note }} }} }} }} }} }}"""


@dataclass
class Linked:
    """Village A (populated: a resident, a radar, a camera) shares alerts, resources
    and open activities with B; C is in the region with no agreement."""

    db: Database
    region: str
    a: Place
    b: str
    c: str
    missing: int
    fire: int
    resource: int
    activity: int


def _populated(db: Database, region: str, name: str) -> str:
    slug = new_village_slug()
    new_village(db, name, region, slug=slug)
    plan = replace(DEMO_VILLAGES[0], slug=slug, name=name, residents=60)
    with db.tenant(slug) as conn:
        write_village(conn, build_village(plan, seed=7))
    return slug


def missing_person(a: Place, at: datetime = NOW, **where) -> Trigger:
    return Trigger(
        "missing_person",
        f"resident:{a.resident}",
        at,
        "离开安全区域约 850 米",
        a.radar,
        a.resident,
        **where,
    )


@pytest.fixture(scope="module")
def linked(db: Database) -> Linked:
    region = f"nb{uuid.uuid4().hex[:8]}"
    provisioning.ensure_region(db, region, "邻村测试片区")
    a = Place(db, _populated(db, region, "甲村"))
    b = new_village(db, "乙村", region).slug
    c = new_village(db, "丙村", region).slug
    agree(db, a.slug, b, ["alert_broadcast", "shared_resource", "open_activity"], region=region)
    [missing] = a.raise_([missing_person(a, latitude=39.2, longitude=117.3)])
    [fire] = a.raise_([a.fire(NOW)])
    with db.tenant(a.slug) as conn:
        # Shared by their own modules' actions: the feed shows what they publish.
        aed = do_create_resource(
            conn,
            ACTOR,
            a.slug,
            {
                "kind": "aed",
                "name": "村委会AED",
                "location_text": "村委会门厅",
                "bookable": False,
                "shared": True,
            },
        )
        clinic = do_create_activity(
            conn,
            ACTOR,
            a.slug,
            {
                "kind": "clinic",
                "title": "义诊",
                "place": "村卫生室",
                "capacity": 30,
                "open_to_neighbours": True,
                "starts_on": (date.today() + timedelta(days=7)).isoformat(),
                "start_time": "09:00",
                "duration_minutes": 120,
            },
        )
        do_publish_activity(conn, ACTOR, a.slug, clinic["id"])
    sync_village(db, a.slug)
    return Linked(db, region, a, b, c, missing.id, fire.id, aed["id"], clinic["id"])


def ok(result: tuple[int, dict]) -> dict:
    status, body = result
    assert status == 200 and "errors" not in body, body
    return body["data"]


def error_code(result: tuple[int, dict]) -> str:
    return result[1]["errors"][0]["extensions"]["code"]


def feed(gql, caller: str, slug: str, **variables) -> dict:
    return ok(gql(FEED, caller, {"slug": slug, **variables}))["village"]["neighbourFeed"]


def alert_id(linked: Linked, key: int) -> str:
    return encode_id("Alert", linked.a.slug, key)


# -- the feed -------------------------------------------------------------------------------


def test_the_feed_shows_what_neighbours_share_with_the_village(linked, gql, token):
    found = feed(gql, token("village-admin", village=linked.b), linked.b)
    nodes = {n["__typename"]: n for n in (e["node"] for e in found["edges"])}
    assert found["totalCount"] == 4 and len(found["edges"]) == 4
    alerts = [e["node"] for e in found["edges"] if e["node"]["__typename"] == "NeighbourAlert"]
    assert {decode_id(n["id"]).key for n in alerts} == {str(linked.missing), str(linked.fire)}
    missing = next(n for n in alerts if n["kind"] == "MISSING_PERSON")
    assert missing["origin"] == {"slug": linked.a.slug, "name": "甲村"}
    assert missing["residentName"] and missing["latitude"] == 39.2
    assert datetime.fromisoformat(missing["raisedAt"]) == datetime(2026, 11, 23, 8, tzinfo=UTC)
    # The owning domains' own IDs: a SharedResource ID is what bookSharedResource takes.
    resource = nodes["NeighbourResource"]
    assert decode_id(resource["id"]) == ("SharedResource", linked.a.slug, str(linked.resource))
    assert resource["name"] == "村委会AED" and resource["bookable"] is False
    activity = nodes["NeighbourActivity"]
    assert decode_id(activity["id"]) == ("Activity", linked.a.slug, str(linked.activity))
    [occurrence] = activity["occurrences"]
    assert decode_id(occurrence["id"])[:2] == ("ActivityOccurrence", linked.a.slug)
    assert occurrence["startsAt"] < occurrence["endsAt"] and occurrence["capacity"] == 30
    assert activity["activityState"] == "PUBLISHED" and activity["version"] == 2
    # Newest change first.
    moments = [e["node"]["committedAt"] for e in found["edges"]]
    assert moments == sorted(moments, reverse=True)


def test_types_filter_and_pages(linked, gql, token):
    admin = token("grid-worker", village=linked.b)
    only = feed(gql, admin, linked.b, types=["SHARED_RESOURCE"])
    assert [e["node"]["__typename"] for e in only["edges"]] == ["NeighbourResource"]
    seen, after = [], None
    while True:
        page = feed(gql, admin, linked.b, first=1, after=after)
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 4
    assert error_code(gql(FEED, admin, {"slug": linked.b, "after": "bm9wZQ"})) == "BAD_USER_INPUT"


def test_a_village_without_an_agreement_and_the_origin_itself_see_nothing(linked, gql, token):
    assert feed(gql, token("village-admin", village=linked.c), linked.c)["edges"] == []
    # A village's own records are not its neighbours'.
    assert feed(gql, token("village-admin", village=linked.a.slug), linked.a.slug)["edges"] == []


def test_coordinators_read_their_regions_feeds_only(linked, gql, token, db):
    mine = token("regional-coordinator", region=linked.region)
    assert feed(gql, mine, linked.b)["totalCount"] == 4
    other = f"nb{uuid.uuid4().hex[:8]}"
    provisioning.ensure_region(db, other, "别的片区")
    theirs = token("regional-coordinator", region=other)
    assert error_code(gql(FEED, theirs, {"slug": linked.b})) == "NOT_FOUND"


def test_the_feed_costs_the_same_for_one_item_or_all(linked, gql, token, app):
    admin = token("village-admin", village=linked.b)
    engine = app.extensions["villagelink"].db.engine
    feed(gql, admin, linked.b, first=1)  # warm the pool
    counts = []
    for first in (1, 10):
        with count_statements(engine) as statements:
            feed(gql, admin, linked.b, first=first)
        counts.append(len(statements))
    # role, path and access epoch (the caller's reach is kept with the token),
    # the page, origins' names, the count
    assert counts == [4, 4], counts


# -- 走失协查 -----------------------------------------------------------------------------------


def test_a_grid_worker_acknowledges_once_and_the_origin_sees_it(linked, gql, token, db):
    worker = token("grid-worker", village=linked.b, username="wangwu")
    variables = {"input": {"alert": alert_id(linked, linked.missing), "village": linked.b}}
    first = ok(gql(ACK, worker, variables))["acknowledgeNeighbourAlert"]
    assert first["userErrors"] == []
    report = first["report"]
    assert report["kind"] == "ACKNOWLEDGEMENT"
    assert report["village"] == {"slug": linked.b, "name": "乙村"}
    # Asked again: the same acknowledgement, nothing more written.
    again = ok(gql(ACK, worker, variables))["acknowledgeNeighbourAlert"]["report"]
    assert again["createdAt"] == report["createdAt"]
    with db.tenant(linked.a.slug) as conn:
        reports = sightings.reports_by_alert(conn, [linked.missing])[linked.missing]
        events = conn.execute(
            select(alert_events.c.action, alert_events.c.note).where(
                alert_events.c.alert_id == linked.missing,
                alert_events.c.action == "neighbour_acknowledge",
            )
        ).all()
    with db.platform() as conn:
        audits = conn.execute(
            select(audit_log.c.action, audit_log.c.details).where(
                audit_log.c.village == linked.a.slug,
                audit_log.c.action == "alert.neighbour_acknowledge",
            )
        ).all()
    assert [(r["kind"], r["village"]) for r in reports] == [("acknowledgement", linked.b)]
    assert len(events) == 1 and linked.b in events[0].note
    assert len(audits) == 1 and audits[0].details["acting_village"] == linked.b
    # The origin's admin sees it on the alert and its timeline.
    admin = token("village-admin", village=linked.a.slug)
    nodes = [
        e["node"]
        for e in ok(gql(ALERTS, admin, {"slug": linked.a.slug, "first": 10}))["village"]["alerts"][
            "edges"
        ]
    ]
    missing = next(n for n in nodes if n["kind"] == "MISSING_PERSON")
    assert [r["village"]["name"] for r in missing["neighbourReports"]] == ["乙村"]
    assert "neighbour_acknowledge" in [e["action"] for e in missing["timeline"]]


def test_a_sighting_is_stored_in_the_origin(linked, gql, token):
    admin = token("village-admin", village=linked.b)
    seen = (datetime.now(UTC) - timedelta(minutes=20)).isoformat()
    result = ok(
        gql(
            SIGHTING,
            admin,
            {
                "input": {
                    "alert": alert_id(linked, linked.missing),
                    "village": linked.b,
                    "seenAt": seen,
                    "place": " 村东桥头公交站 ",
                    "latitude": 39.21,
                    "longitude": 117.31,
                    "note": "穿灰色外套，往镇上方向走",
                }
            },
        )
    )["reportNeighbourAlertSighting"]
    assert result["userErrors"] == []
    report = result["report"]
    assert report["kind"] == "SIGHTING" and report["place"] == "村东桥头公交站"
    assert report["latitude"] == 39.21
    origin = token("village-admin", village=linked.a.slug)
    nodes = ok(gql(ALERTS, origin, {"slug": linked.a.slug, "first": 10}))["village"]["alerts"]
    missing = next(e["node"] for e in nodes["edges"] if e["node"]["kind"] == "MISSING_PERSON")
    assert "SIGHTING" in [r["kind"] for r in missing["neighbourReports"]]
    sighting = next(e for e in missing["timeline"] if e["action"] == "neighbour_sighting")
    assert "村东桥头公交站" in sighting["note"]


def sighting_input(linked: Linked, key: int, village: str, **more) -> dict:
    return {
        "input": {
            "alert": alert_id(linked, key),
            "village": village,
            "seenAt": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
            "place": "镇卫生院门口",
            **more,
        }
    }


def test_refusals(linked, gql, token, db):
    b_admin = token("village-admin", village=linked.b)
    # Fires are acknowledged, not sighted.
    fire = ok(gql(SIGHTING, b_admin, sighting_input(linked, linked.fire, linked.b)))
    assert [e["code"] for e in fire["reportNeighbourAlertSighting"]["userErrors"]] == [
        "FORBIDDEN_STATE"
    ]
    # Input is checked: half a position, a time to come, a blank place.
    bad = ok(
        gql(
            SIGHTING,
            b_admin,
            sighting_input(linked, linked.missing, linked.b, latitude=39.0, place=" "),
        )
    )["reportNeighbourAlertSighting"]["userErrors"]
    assert {e["field"] for e in bad} == {"place"}
    half = ok(
        gql(SIGHTING, b_admin, sighting_input(linked, linked.missing, linked.b, latitude=1.0))
    )
    assert [e["code"] for e in half["reportNeighbourAlertSighting"]["userErrors"]] == ["INVALID"]
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    future = ok(
        gql(SIGHTING, b_admin, sighting_input(linked, linked.missing, linked.b, seenAt=later))
    )["reportNeighbourAlertSighting"]["userErrors"]
    assert [(e["field"], e["code"]) for e in future] == [("seenAt", "INVALID")]
    # No agreement between C and A: the alert does not exist for C.
    c_admin = token("village-admin", village=linked.c)
    assert error_code(gql(SIGHTING, c_admin, sighting_input(linked, linked.missing, linked.c))) == (
        "NOT_FOUND"
    )
    ack = {"input": {"alert": alert_id(linked, linked.missing), "village": linked.c}}
    assert error_code(gql(ACK, c_admin, ack)) == "NOT_FOUND"
    # B's admin acting for a village that is not theirs.
    assert error_code(gql(ACK, b_admin, ack)) == "NOT_FOUND"
    # Coordinators read; they do not report.
    coordinator = token("regional-coordinator", region=linked.region)
    b_ack = {"input": {"alert": alert_id(linked, linked.missing), "village": linked.b}}
    assert error_code(gql(ACK, coordinator, b_ack)) == "FORBIDDEN"
    with db.tenant(linked.a.slug) as conn:
        stored = sightings.reports_by_alert(conn, [linked.fire, linked.missing])
    assert all(r["village"] == linked.b for rs in stored.values() for r in rs)


def test_a_closed_alert_takes_no_more_reports(db, gql, token):
    region = f"nb{uuid.uuid4().hex[:8]}"
    provisioning.ensure_region(db, region, "关闭测试片区")
    a = Place(db, _populated(db, region, "甲村"))
    b = new_village(db, "乙村", region).slug
    agree(db, a.slug, b, ["alert_broadcast"], region=region)
    [raised] = a.raise_([missing_person(a)])
    a.close(raised.id, NOW + timedelta(hours=1))
    admin = token("village-admin", village=b)
    gid = encode_id("Alert", a.slug, raised.id)
    for mutation, name, extra in (
        (ACK, "acknowledgeNeighbourAlert", {}),
        (
            SIGHTING,
            "reportNeighbourAlertSighting",
            {"seenAt": NOW.isoformat(), "place": "村口"},
        ),
    ):
        found = ok(gql(mutation, admin, {"input": {"alert": gid, "village": b, **extra}}))[name]
        assert [e["code"] for e in found["userErrors"]] == ["FORBIDDEN_STATE"]
    with db.tenant(a.slug) as conn:
        assert sightings.reports_by_alert(conn, [raised.id]) == {}


def test_neighbour_reports_on_an_alert_page_cost_one_statement(linked, gql, token, app, db):
    # More alerts of A, each acknowledged by B: a page of 2 and a page of all cost the same.
    with db.tenant(linked.a.slug) as conn:
        cameras = [Place.device(conn, "ai_camera", location_text=f"{n}号路口") for n in range(5)]
    raised = linked.a.raise_(
        [Trigger("fire", f"device:{c}", NOW, "明火报警（AI摄像头）", c) for c in cameras]
    )
    with db.tenant(linked.a.slug) as conn:
        for alert in raised:
            sightings.do_acknowledge_neighbour_alert(
                conn, ACTOR, linked.a.slug, alert.id, linked.b, agreement_ids=[]
            )
    admin = token("village-admin", village=linked.a.slug)
    engine = app.extensions["villagelink"].db.engine
    ok(gql(ALERTS, admin, {"slug": linked.a.slug, "first": 1}))
    counts = []
    for first in (2, 20):
        with count_statements(engine) as statements:
            ok(gql(ALERTS, admin, {"slug": linked.a.slug, "first": first}))
        counts.append(len(statements))
    # The reports and their villages' names: one statement each, whatever the page.
    assert counts[0] == counts[1], (counts, "\n".join(statements))


# -- schema ---------------------------------------------------------------------------------------

OUR_TABLES = ("alert_neighbour_reports", "village_stats_publications")


def test_migration_creates_what_the_tables_describe(db, village):
    import villagelink.tenants.stats  # noqa: F401 (its table joins the metadata)

    with db.tenant(village.slug) as conn:
        context = MigrationContext.configure(conn, opts={"compare_server_default": False})
        differences = [
            d
            for d in compare_metadata(context, metadata)
            if any(f"'{name}'" in repr(d) for name in OUR_TABLES)
        ]
    assert differences == []

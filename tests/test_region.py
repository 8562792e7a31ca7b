"""Village statistics published through the sync, and the region queries for
coordinators, against the real servers: the stats job publishes a new version each
run, the region's stats sum its villages (those that never published are missing,
not zero), shared alerts and joint cases come from the exchange, escalated requests
from each village; another region's coordinator gets nothing; statement counts."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest
from rq import Queue
from rq.job import Job
from sqlalchemy import event, func, select, update

from villagelink.graphql.core.ids import decode_id, encode_id
from villagelink.jobs import maintenance
from villagelink.jobs import onetable as onetable_jobs
from villagelink.jobs.queues import redis_connection
from villagelink.platform import models as pm
from villagelink.platform.audit import system_actor
from villagelink.platform.db import Database
from villagelink.platform.linkage.catalogue import ESCALATED_REQUEST, RECORD_TYPES, VILLAGE_STATS
from villagelink.platform.linkage.sync import LEFT_REGION, sync_village
from villagelink.platform.linkage.tables import REGION_AUDIENCE, log, records
from villagelink.storage.exports import region_space
from villagelink.storage.factory import object_store
from villagelink.tenants import models as tm
from villagelink.tenants import provisioning
from villagelink.tenants.clock import VILLAGE_TIME_ZONE
from villagelink.tenants.demo.plans import DEMO_VILLAGES
from villagelink.tenants.demo.residents import build_village, write_village
from villagelink.tenants.joint_cases.actions import do_open_joint_case
from villagelink.tenants.outbox import outbox
from villagelink.tenants.requests.actions import do_escalate_overdue, do_reject_request
from villagelink.tenants.requests.queries import WHOLE_VILLAGE
from villagelink.tenants.requests.tables import requests
from villagelink.tenants.stats import compute_village_stats, publish_village_stats

from .conftest import agree, new_village, new_village_slug
from .test_alerts import Place
from .test_neighbours import missing_person
from .test_onetable import fetch, jobs  # noqa: F401  (jobs: a fixture used by name)
from .test_query_count import count_statements
from .test_requests import new_request

RECENT = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
STATS = """query($id: String!) { region(id: $id) { id name
  stats {
    total { residents households residentsByAgeBand { band count } elderlyLivingAlone
      requestsOpenByCategory { category name count } requestsOverdueByCategory { category count }
      alertsByKindPerWeek { week kind count } volunteerHours pointsBalance }
    villages { village { slug name } computedAt stats { residents households } }
    missing } } }"""
EVERYTHING = """query($id: String!) { region(id: $id) {
  stats { total { residents residentsByAgeBand { band count } }
    villages { village { slug } computedAt stats { residents } } missing }
  sharedAlerts(first: 20) { totalCount edges { node { id origin { slug name } kind state version
    residentName } } }
  jointCases(first: 20) { totalCount edges { node { id origin { slug } title state priority
    villages timeline { village kind state occurredAt } openedAt } } } } }"""
VILLAGES = (
    """query($id: String!) { region(id: $id) { villages { slug name neighbours { slug } } } }"""
)
ESCALATED = """query($id: String!, $closed: Boolean, $first: Int, $after: String) {
  region(id: $id) { escalatedRequests(includeClosed: $closed, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id origin { slug name } version state grade escalationLevel escalatedAt
      dueAt overdue categoryName description locationText gridName
      lastEvent { action toState escalationLevel actor at } } } } } }"""
THROUGH_VILLAGE = """query($slug: String!) { village(slug: $slug) { region { id stats {
  missing } } } }"""


@dataclass
class Region:
    db: Database
    id: str
    a: Place  # populated; shares alerts with b
    b: str  # populated
    c: str  # empty, never publishes
    escalated: int  # a request of A at the region level
    joint_case: int  # A's, with B


def escalate_to_region(db: Database, slug: str) -> list[int]:
    """The SLA sweep's own action on a clock past every open request's deadline by more
    than its grade's window: each rises to the region and goes to the outbox, and the
    sync publishes it to the region's coordinators. Returns the ids that rose."""
    later = datetime.now(UTC) + timedelta(days=40)
    with db.tenant(slug) as conn:
        rose = do_escalate_overdue(conn, system_actor("test"), slug, later)
    sync_village(db, slug)
    return [row["id"] for row in rose if row["to"] == "region"]


def _populated(db: Database, region: str, name: str, seed: int) -> str:
    slug = new_village_slug()
    new_village(db, name, region, slug=slug)
    plan = replace(DEMO_VILLAGES[0], slug=slug, name=name, residents=40)
    with db.tenant(slug) as conn:
        write_village(conn, build_village(plan, seed=seed))
    return slug


@pytest.fixture(scope="module")
def region(db: Database) -> Region:
    region_id = f"rg{uuid.uuid4().hex[:8]}"
    provisioning.ensure_region(db, region_id, "统计测试片区")
    a = Place(db, _populated(db, region_id, "甲村", 7))
    b = _populated(db, region_id, "乙村", 11)
    c = new_village(db, "丙村", region_id).slug
    agreement = agree(db, a.slug, b, ["alert_broadcast", "joint_case"], region=region_id)
    # Raised now: the statistics count the last eight weeks of the real clock.
    [missing] = a.raise_([missing_person(a, RECENT)], RECENT)
    a.raise_([a.fire(RECENT)], RECENT)
    escalated = new_request(db, a.slug)
    assert escalate_to_region(db, a.slug) == [escalated]
    open_request = new_request(db, a.slug)
    with db.tenant(a.slug) as conn:
        # Past its deadline: overdue.
        conn.execute(
            update(requests)
            .where(requests.c.id == open_request)
            .values(due_at=datetime.now(UTC) - timedelta(hours=1))
        )
    # A joint case of A's with B, opened by the joint cases module: copied to the region.
    joint = new_request(db, a.slug, description="两村交界处道路积水")
    with db.tenant(a.slug) as conn:
        case = do_open_joint_case(
            conn,
            system_actor("test"),
            a.slug,
            joint,
            {"villages": [b], "priority": "high"},
            covered={b: [agreement]},
        )
    for slug in (a.slug, b):
        with db.tenant(slug) as conn:
            publish_village_stats(conn)
        sync_village(db, slug)
    assert missing.id
    return Region(db, region_id, a, b, c, escalated, case["id"])


def ok(result: tuple[int, dict]) -> dict:
    status, body = result
    assert status == 200 and "errors" not in body, body
    return body["data"]


def error_code(result: tuple[int, dict]) -> str:
    return result[1]["errors"][0]["extensions"]["code"]


# -- the statistics a village publishes -------------------------------------------------------


def test_compute_village_stats_counts_aggregates_only(region, db):
    with db.tenant(region.a.slug) as conn:
        stats = compute_village_stats(conn)
        residents = conn.execute(select(func.count()).select_from(tm.residents)).scalar_one()
    assert set(stats) == set(RECORD_TYPES[VILLAGE_STATS].fields)
    assert stats["residents"] == residents == 40
    assert sum(stats["residents_by_age_band"].values()) == residents
    assert list(stats["residents_by_age_band"]) == ["0-17", "18-59", "60-69", "70-79", "80+"]
    assert sum(c["count"] for c in stats["requests_open_by_category"]) == 3
    assert [c["count"] for c in stats["requests_overdue_by_category"]] == [1]
    kinds = {(w["kind"], w["count"]) for w in stats["alerts_by_kind_per_week"]}
    assert kinds == {("missing_person", 1), ("fire", 1)}
    year, week, _day = RECENT.astimezone(VILLAGE_TIME_ZONE).isocalendar()
    assert stats["alerts_by_kind_per_week"][0]["week"] == f"{year}-W{week:02d}"


def test_the_stats_job_publishes_a_new_version_each_run(region, db, job_env):
    def versions() -> list[int]:
        with db.tenant(region.b) as conn:
            return list(
                conn.execute(
                    select(outbox.c.version)
                    .where(outbox.c.record_type == "VillageStats")
                    .order_by(outbox.c.id)
                ).scalars()
            )

    before = versions()
    counts = maintenance.refresh_village_stats_for(region.b)
    assert counts["residents"] == 40  # platform.village_stats as before
    after = versions()
    assert after[: len(before)] == before and after[-1] == before[-1] + 1
    sync_village(db, region.b)
    with db.region(region.id) as conn:
        copy = conn.execute(
            select(records.c.version, records.c.payload).where(
                records.c.origin == region.b,
                records.c.record_type == VILLAGE_STATS,
                records.c.audience == REGION_AUDIENCE,
            )
        ).one()
    assert copy.version == after[-1] and copy.payload["residents"] == 40


# -- region queries ------------------------------------------------------------------------------


def test_region_stats_sum_the_villages(region, gql, token, db):
    coordinator = token("regional-coordinator", region=region.id)
    found = ok(gql(STATS, coordinator, {"id": region.id}))["region"]
    assert found["name"] == "统计测试片区"
    stats = found["stats"]
    by_slug = {v["village"]["slug"]: v for v in stats["villages"]}
    assert set(by_slug) == {region.a.slug, region.b, region.c}
    assert by_slug[region.c]["stats"] is None and by_slug[region.c]["computedAt"] is None
    assert stats["missing"] == [region.c]
    assert by_slug[region.a.slug]["stats"]["residents"] == 40
    total = stats["total"]
    assert total["residents"] == 80
    assert sum(b["count"] for b in total["residentsByAgeBand"]) == 80
    assert total["households"] == sum(
        by_slug[s]["stats"]["households"] for s in (region.a.slug, region.b)
    )
    assert sum(c["count"] for c in total["requestsOpenByCategory"]) == 3
    assert {(w["kind"], w["count"]) for w in total["alertsByKindPerWeek"]} == {
        ("MISSING_PERSON", 1),
        ("FIRE", 1),
    }
    # Platform admins read it too.
    assert ok(gql(STATS, token("platform-admin"), {"id": region.id}))["region"]["stats"]


def test_shared_alerts_and_joint_cases(region, gql, token):
    coordinator = token("regional-coordinator", region=region.id)
    found = ok(gql(EVERYTHING, coordinator, {"id": region.id}))["region"]
    alerts = [e["node"] for e in found["sharedAlerts"]["edges"]]
    # One per alert, whichever audiences hold copies.
    assert sorted(a["kind"] for a in alerts) == ["FIRE", "MISSING_PERSON"]
    assert found["sharedAlerts"]["totalCount"] == 2
    assert {decode_id(a["id"]).type_name for a in alerts} == {"Alert"}
    assert all(a["origin"] == {"slug": region.a.slug, "name": "甲村"} for a in alerts)
    [case] = [e["node"] for e in found["jointCases"]["edges"]]
    assert decode_id(case["id"]) == ("JointCase", region.a.slug, str(region.joint_case))
    assert case["title"].endswith("两村交界处道路积水") and case["priority"] == "HIGH"
    assert region.b in case["villages"] and case["state"] == "OPEN"
    assert case["timeline"][0]["kind"] == "OPENED" and case["openedAt"]
    only_fire = ok(
        gql(
            """query($id: String!) { region(id: $id) { sharedAlerts(kind: FIRE) {
              edges { node { kind } } } } }""",
            coordinator,
            {"id": region.id},
        )
    )["region"]["sharedAlerts"]["edges"]
    assert [e["node"]["kind"] for e in only_fire] == ["FIRE"]


def test_villages_and_escalated_requests(region, gql, token):
    coordinator = token("regional-coordinator", region=region.id)
    villages = ok(gql(VILLAGES, coordinator, {"id": region.id}))["region"]["villages"]
    assert {v["slug"] for v in villages} == {region.a.slug, region.b, region.c}
    found = ok(gql(ESCALATED, coordinator, {"id": region.id}))["region"]["escalatedRequests"]
    assert found["totalCount"] == 1
    [request] = [e["node"] for e in found["edges"]]
    # The origin's own Request ID: dispatchRequest and the other steps take it as it is.
    assert decode_id(request["id"]).village == region.a.slug
    assert int(decode_id(request["id"]).key) == region.escalated
    assert request["origin"] == {"slug": region.a.slug, "name": "甲村"}
    assert request["escalationLevel"] == "REGION" and request["state"] == "SUBMITTED"
    assert (request["categoryName"], request["locationText"]) == ("环境卫生", "北门垃圾站")
    assert request["gridName"] and request["description"] == "垃圾桶满溢无人清理"
    assert request["lastEvent"]["action"] == "escalate"
    assert request["lastEvent"]["escalationLevel"] == "REGION"
    assert request["lastEvent"]["actor"] and request["lastEvent"]["at"]
    assert request["overdue"] is False  # its deadline is the real one, still ahead


def test_a_request_dispatched_back_leaves_the_region(region, gql, token, db):
    """The copy follows the request: closed ones only with includeClosed, and one
    dispatched back to its village is withdrawn from the region (the exchange log says
    why). What the coordinator reads is as fresh as the sync."""
    coordinator = token("regional-coordinator", region=region.id)
    first = new_request(db, region.b, description="跨村水渠堵塞")
    second = new_request(db, region.b, description="山塘护栏损坏")
    assert escalate_to_region(db, region.b) == [first, second]

    def shown(closed: bool = False) -> list[int]:
        found = ok(gql(ESCALATED, coordinator, {"id": region.id, "closed": closed}))
        edges = found["region"]["escalatedRequests"]["edges"]
        return sorted(
            int(decode_id(e["node"]["id"]).key)
            for e in edges
            if decode_id(e["node"]["id"]).village == region.b
        )

    assert shown() == [first, second]
    # A page of one, then the next one after its cursor: newest change first.
    page = ok(gql(ESCALATED, coordinator, {"id": region.id, "first": 1}))
    page = page["region"]["escalatedRequests"]
    assert page["totalCount"] == 3 and page["pageInfo"]["hasNextPage"]
    after = {"id": region.id, "first": 1, "after": page["pageInfo"]["endCursor"]}
    following = ok(gql(ESCALATED, coordinator, after))["region"]["escalatedRequests"]
    assert following["edges"][0]["node"]["id"] != page["edges"][0]["node"]["id"]

    dispatch = """mutation($id: ID!) { dispatchRequest(input: {id: $id, note: "请村里办理"}) {
      userErrors { code } } }"""
    request_id = encode_id("Request", region.b, first)
    assert ok(gql(dispatch, coordinator, {"id": request_id}))["dispatchRequest"]["userErrors"] == []
    # The village turns the other down (不予受理): no longer open, still the region's.
    with db.tenant(region.b) as conn:
        do_reject_request(
            conn,
            system_actor("test"),
            region.b,
            second,
            {"reason": "不属于受理范围"},
            scope=WHOLE_VILLAGE,
        )
    # Until the sync has run, the copies are the versions before.
    assert shown() == [first, second]
    sync_village(db, region.b)
    assert shown() == []
    assert shown(closed=True) == [second]
    with db.region(region.id) as conn:
        reason = conn.execute(
            select(log.c.reason).where(
                log.c.origin == region.b,
                log.c.origin_id == first,
                log.c.record_type == ESCALATED_REQUEST,
                log.c.action == "withdraw",
            )
        ).scalar_one()
    assert reason == LEFT_REGION


def test_others_get_nothing(region, gql, token, db):
    other = f"rg{uuid.uuid4().hex[:8]}"
    provisioning.ensure_region(db, other, "别的片区")
    theirs = token("regional-coordinator", region=other)
    assert error_code(gql(STATS, theirs, {"id": region.id})) == "NOT_FOUND"
    # Their own region: no village of it published anything.
    assert ok(gql(STATS, theirs, {"id": other}))["region"]["stats"]["villages"] == []
    admin = token("village-admin", village=region.a.slug)
    assert error_code(gql(STATS, admin, {"id": region.id})) == "NOT_FOUND"
    assert error_code(gql(THROUGH_VILLAGE, admin, {"slug": region.a.slug})) == "FORBIDDEN"
    assert error_code(gql(STATS, token("platform-admin"), {"id": "nosuchregion"})) == "NOT_FOUND"
    # Row-level security: the other region's role reads none of these copies.
    with db.region(other) as conn:
        assert conn.execute(select(func.count()).select_from(records)).scalar_one() == 0


def test_region_queries_cost_the_same_whatever_the_villages(region, gql, token, app, db):
    engine = app.extensions["villagelink"].db.engine
    coordinator = token("regional-coordinator", region=region.id)

    def count(query: str = EVERYTHING) -> int:
        ok(gql(query, coordinator, {"id": region.id}))  # warm the pool
        with count_statements(engine) as statements:
            ok(gql(query, coordinator, {"id": region.id}))
        return len(statements)

    before, escalated_before = count(), count(ESCALATED)
    # Three more villages publish their statistics and escalate a request to the region:
    # the same statements read them.
    for n in range(3):
        slug = new_village(db, f"新村{n}", region.id).slug
        with db.tenant(slug) as conn:
            publish_village_stats(conn)
        new_request(db, slug, grid_level=None)
        assert len(escalate_to_region(db, slug)) == 1
    found = ok(gql(EVERYTHING, coordinator, {"id": region.id}))["region"]["stats"]
    assert len(found["villages"]) == 6 and found["missing"] == [region.c]
    # the region, role, path and access epoch (the caller's reach is kept with the token),
    # stats, alerts page + origins' names + count, joint cases page + origins' names + count
    assert before == count() == 9
    # the region, role, path and access epoch, the page, the origins' names, the count
    assert escalated_before == count(ESCALATED) == 5
    assert (
        ok(gql(ESCALATED, coordinator, {"id": region.id}))["region"]["escalatedRequests"][
            "totalCount"
        ]
        == 4
    )


# -- a region of any size ----------------------------------------------------------------------

LARGE_REGION = 60
EVERY_FIELD = """query($id: String!) { region(id: $id) { id name
  villages { slug name neighbours { slug } }
  stats { total { residents } villages { village { slug } stats { residents } } missing }
  sharedAlerts(first: 5) { totalCount edges { node { id kind } } }
  jointCases(first: 5) { totalCount edges { node { id title } } }
  escalatedRequests(includeClosed: true) { edges { node { id state escalationLevel } } } } }"""


@pytest.fixture(scope="module")
def large_region(db: Database) -> tuple[str, list[tuple[str, int]]]:
    """Sixty villages; every twentieth has a request escalated to the region and
    publishes its statistics."""
    region_id = f"rg{uuid.uuid4().hex[:8]}"
    provisioning.ensure_region(db, region_id, "六十村片区")
    escalated = []
    for n in range(LARGE_REGION):
        slug = new_village(db, f"大片区{n}村", region_id).slug
        if n % 20 == 0:
            request_id = new_request(db, slug)
            with db.tenant(slug) as conn:
                publish_village_stats(conn)
            assert escalate_to_region(db, slug) == [request_id]
            escalated.append((slug, request_id))
    return region_id, escalated


@pytest.mark.slow
def test_every_region_field_over_sixty_villages_holds_two_connections(
    large_region, settings, token
):
    """Reading each village in turn, a query keeps two transactions open whatever the
    number of villages (a connection per village exhausted the pool: INTERNAL after
    the pool's 30 s): never more than three out of the pool at once, two kept and one
    for the platform's short reads."""
    from villagelink.platform.app import create_app

    region_id, escalated = large_region
    app = create_app(settings)
    runtime = app.extensions["villagelink"]
    runtime.db.dispose()
    runtime.db = Database(settings.database_url, pool_size=2)
    out, peak = 0, 0

    def checkout(*_args) -> None:
        nonlocal out, peak
        out += 1
        peak = max(peak, out)

    def checkin(*_args) -> None:
        nonlocal out
        out -= 1

    event.listen(runtime.db.engine, "checkout", checkout)
    event.listen(runtime.db.engine, "checkin", checkin)
    try:
        response = app.test_client().post(
            "/graphql",
            json={"query": EVERY_FIELD, "variables": {"id": region_id}},
            headers={"Authorization": f"Bearer {token('regional-coordinator', region=region_id)}"},
        )
        found = ok((response.status_code, response.get_json()))["region"]
    finally:
        runtime.db.dispose()
    assert len(found["villages"]) == LARGE_REGION
    assert len(found["stats"]["villages"]) == LARGE_REGION
    assert len(found["stats"]["missing"]) == LARGE_REGION - len(escalated)
    ids = [decode_id(e["node"]["id"]) for e in found["escalatedRequests"]["edges"]]
    shown = sorted((gid.village, int(gid.key)) for gid in ids)
    assert shown == sorted(escalated)
    assert peak <= 3, peak


# -- the region's figures as an .xlsx ----------------------------------------------------------

OVERVIEW = """query($id: String!) {
  enumLabels(enums: ["AlertKind"]) { value label }
  region(id: $id) { name villages { slug name } stats {
    total { residents households elderlyLivingAlone volunteerHours pointsBalance
      alertsByKindPerWeek { week kind count } }
    villages { village { slug name } stats { elderlyLivingAlone residentsByAgeBand { band count }
      requestsOpenByCategory { count } requestsOverdueByCategory { count } } }
    missing } } }"""
EXPORT_FIGURES = """mutation($input: ExportRegionFiguresInput!) {
  exportRegionFigures(input: $input) { download { url filename } userErrors { field code } } }"""


@pytest.mark.usefixtures("jobs")
def test_the_regions_figures_export_as_the_overview_shows_them(
    region, gql, token, client, settings
):
    coordinator = token("regional-coordinator", region=region.id)
    answer = ok(gql(OVERVIEW, coordinator, {"id": region.id}))
    stats, labels = (
        answer["region"]["stats"],
        {e["value"]: e["label"] for e in answer["enumLabels"]},
    )
    payload = ok(gql(EXPORT_FIGURES, coordinator, {"input": {"region": region.id}}))[
        "exportRegionFigures"
    ]
    assert payload["userErrors"] == []
    assert payload["download"]["filename"].startswith(f"片区统计-{region.id}-")
    book = openpyxl.load_workbook(io.BytesIO(fetch(client, payload["download"]["url"])))
    sheets = {sheet.title: [list(row) for row in sheet.values] for sheet in book.worksheets}

    total = stats["total"]
    assert sheets["片区合计"] == [
        ["片区", "统计测试片区"],
        ["居民（人）", total["residents"]],
        ["户数", total["households"]],
        ["独居老人（人）", total["elderlyLivingAlone"]],
        ["志愿服务时长（小时）", total["volunteerHours"]],
        ["积分余额", total["pointsBalance"]],
    ]
    weekly = total["alertsByKindPerWeek"]
    [header, *weeks] = sheets["预警（按周）"]
    assert header[0] == "周" and sorted(header[1:]) == sorted(
        labels[kind] for kind in {c["kind"] for c in weekly}
    )
    cells = {
        (week[0], kind): count
        for week in weeks
        for kind, count in zip(header[1:], week[1:], strict=True)
    }
    assert {k: v for k, v in cells.items() if v} == {
        (c["week"], labels[c["kind"]]): c["count"] for c in weekly
    }
    published = [v for v in stats["villages"] if v["stats"] is not None]
    count = lambda counts: sum(c["count"] for c in counts)  # noqa: E731
    assert sheets["诉求（按村）"][1:] == [
        [
            v["village"]["name"],
            count(v["stats"]["requestsOpenByCategory"])
            - count(v["stats"]["requestsOverdueByCategory"]),
            count(v["stats"]["requestsOverdueByCategory"]),
            count(v["stats"]["requestsOpenByCategory"]),
        ]
        for v in published
    ]
    bands = lambda v: {b["band"]: b["count"] for b in v["stats"]["residentsByAgeBand"]}  # noqa: E731
    assert sheets["老年人（按村）"] == [["村", "60-69", "70-79", "80+", "独居老人"]] + [
        [
            v["village"]["name"],
            *(bands(v)[b] for b in ("60-69", "70-79", "80+")),
            v["stats"]["elderlyLivingAlone"],
        ]
        for v in published
    ]
    names = {v["slug"]: v["name"] for v in answer["region"]["villages"]}
    assert sheets["未报送统计的村"] == [["村"], *([names[slug]] for slug in stats["missing"])]
    # What the test region holds (other tests of the module add villages), so that the
    # comparisons above compare something.
    requests_by_village = {row[0]: row[1:] for row in sheets["诉求（按村）"][1:]}
    assert requests_by_village["甲村"][1] == 1  # its overdue request
    assert "乙村" in requests_by_village
    assert ["丙村"] in sheets["未报送统计的村"]

    # Nobody else exports the region; the file goes once its link has expired.
    admin = token("village-admin", village=region.a.slug)
    assert error_code(gql(EXPORT_FIGURES, admin, {"input": {"region": region.id}})) == "NOT_FOUND"
    scheduled = Queue("reports", connection=redis_connection(settings)).scheduled_job_registry
    assert [
        Job.fetch(job_id, connection=redis_connection(settings)).args
        for job_id in scheduled.get_job_ids()
    ] == [(region.id,)]
    e = pm.region_exports
    with region.db.platform() as conn:
        [key] = conn.execute(select(e.c.object_key).where(e.c.region_id == region.id)).scalars()
        assert onetable_jobs.remove_expired_region_exports(region.id) == 0
        conn.execute(
            update(e)
            .where(e.c.region_id == region.id)
            .values(expires_at=func.now() - timedelta(seconds=1))
        )
    store = object_store(settings)
    assert store.stat(region_space(region.id), key) is not None
    assert onetable_jobs.remove_expired_region_exports(region.id) == 1
    assert store.stat(region_space(region.id), key) is None

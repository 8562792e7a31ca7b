"""Residents as users (居民端): accounts bound by the village admin or requested by the
resident and approved, and what a bound resident may do for their own household:
notices, reporting and rating requests (心声), activity sign-ups. Every other path
answers FORBIDDEN, other villages NOT_FOUND, and other households' records stay out
of reach. Tokens come from the development issuer, as the other API tests mint them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, update

from villagelink.graphql.core.ids import encode_id
from villagelink.platform import models as pm
from villagelink.platform.identity.dev_issuer import RESIDENTS_CLIENT
from villagelink.storage.factory import object_store
from villagelink.tenants import models as tm
from villagelink.tenants.activities.tables import activity_occurrences
from villagelink.tenants.models import metadata
from villagelink.tenants.requests.tables import requests as request_rows
from villagelink.tenants.resident_accounts.tables import resident_accounts
from villagelink.tenants.service_orders.tables import service_orders

from .test_activities import _table_of
from .test_query_count import count_statements
from .test_requests import ATTACH, UPLOAD, attach_photo

REALM_FILE = Path(__file__).parent.parent / "platform" / "identity" / "realm-villagelink.json"
REQUEST_ACCOUNT = """mutation($input: RequestResidentAccountInput!) {
  requestResidentAccount(input: $input) { state message userErrors { field message code } } }"""
ACCOUNT_FIELDS = """id account username state source verification decidedBy reason
  resident { id name }"""
BIND = f"""mutation($input: BindResidentAccountInput!) {{ bindResidentAccount(input: $input) {{
  residentAccount {{ {ACCOUNT_FIELDS} }} userErrors {{ field message code }} }} }}"""
APPROVE = f"""mutation($input: ApproveResidentAccountInput!) {{
  approveResidentAccount(input: $input) {{
  residentAccount {{ {ACCOUNT_FIELDS} }} userErrors {{ field message code }} }} }}"""
DECIDE = f"""mutation($input: ResidentAccountReasonInput!) {{ %s(input: $input) {{
  residentAccount {{ {ACCOUNT_FIELDS} }} userErrors {{ field message code }} }} }}"""
ACCOUNTS = f"""query($slug: String!, $first: Int!, $state: ResidentAccountState) {{
  village(slug: $slug) {{ residentAccounts(first: $first, state: $state) {{
    totalCount edges {{ node {{ {ACCOUNT_FIELDS} }} }} }} }} }}"""
ME = """{ me { roles residentAccountState resident { id village villageName name phone idNumber
  address household members { id name relationToHead idNumber phone } } } }"""
MY_REQUESTS = """{ me { resident { requests(first: 10) { totalCount edges { node {
  id state channel rating reporter { name } timeline { action actor } } } } } } }"""
MY_NOTICES = """{ me { resident { notices(first: 10) { totalCount edges { node {
  id title readCount } } } } } }"""
CREATE_REQUEST = """mutation($input: CreateRequestInput!) { createRequest(input: $input) {
  request { id channel state reporter { name } }
  userErrors { field message code } } }"""
RATE = """mutation($input: RateRequestInput!) { rateRequest(input: $input) {
  request { id state rating } userErrors { field message code } } }"""
ACCEPT = """mutation($input: AcceptRequestInput!) { acceptRequest(input: $input) {
  request { id } userErrors { field code } } }"""
CATEGORIES = """query($slug: String!) { village(slug: $slug) { requestCategories { id code } } }"""
CREATE_NOTICE = """mutation($input: CreateNoticeInput!) { createNotice(input: $input) {
  notice { id } userErrors { field code } } }"""
PUBLISH_NOTICE = """mutation($id: ID!) { publishNotice(input: {id: $id}) {
  notice { id state } userErrors { field code } } }"""
MARK_READ = """mutation($id: ID!) { markNoticeRead(input: {notice: $id, reader: "x"}) {
  notice { id } userErrors { field code } } }"""
CREATE_ACTIVITY = """mutation($input: CreateActivityInput!) { createActivity(input: $input) {
  activity { id occurrences { id } } userErrors { field code } } }"""
PUBLISH_ACTIVITY = """mutation($id: ID!) { publishActivity(input: {activity: $id}) {
  activity { id state } userErrors { field code } } }"""
SIGN_UP = """mutation($occurrence: ID!, $resident: ID!) {
  signUpForActivity(input: {occurrence: $occurrence, resident: $resident}) {
    signUp { id state } userErrors { field code } } }"""
OCCURRENCE_SIGN_UPS = """query($id: ID!) { node(id: $id) { ... on Activity {
  occurrences { signUps { id } } } } }"""
CANCEL = """mutation($id: ID!) { cancelActivitySignUp(input: {signUp: $id}) {
  signUp { id state } userErrors { field code } } }"""
CHECK_IN = """mutation($id: ID!, $hours: Float, $code: String) {
  checkInToActivity(input: {signUp: $id, volunteerHours: $hours, code: $code}) {
    signUp { id state } userErrors { field code } } }"""
ROTATE_CODE = """mutation($id: ID!) { rotateActivityCheckInCode(input: {occurrence: $id}) {
  checkInCode { code } } }"""
VILLAGE_RESIDENTS = """query($slug: String!) { village(slug: $slug) {
  residents(first: 5) { edges { node { id } } } } }"""
NODE = """query($id: ID!) { node(id: $id) { id } }"""


@dataclass(frozen=True)
class Person:
    id: int
    gid: str
    name: str
    id_number: str
    phone: str
    household_id: int


@pytest.fixture
def place(db, populated_village) -> dict:
    return place_in(db, populated_village.slug)


def place_in(db, slug: str) -> dict:
    """Two households of a populated village: one of two members with phones (the
    caller's), and a member of another."""
    r = tm.residents
    with db.tenant(slug) as conn:
        rows = conn.execute(
            select(r.c.id, r.c.name, r.c.id_number, r.c.phone, r.c.household_id)
            .where(r.c.household_id.is_not(None), r.c.phone.is_not(None))
            .order_by(r.c.household_id, r.c.id)
        ).all()
    by_household: dict[int, list] = {}
    for row in rows:
        by_household.setdefault(row.household_id, []).append(row)
    pairs = [members for members in by_household.values() if len(members) >= 2]
    ours, theirs = pairs[0], pairs[1]

    def person(row) -> Person:
        return Person(
            row.id,
            encode_id("Resident", slug, row.id),
            row.name,
            row.id_number,
            row.phone,
            row.household_id,
        )

    return {
        "slug": slug,
        "me": person(ours[0]),
        "kin": person(ours[1]),
        "other": person(theirs[0]),
    }


@pytest.fixture
def admin(token, place) -> str:
    return token("village-admin", village=place["slug"])


def resident_token(token, slug: str, sub: str) -> str:
    return token("resident", village=slug, sub=sub, username=f"居民{sub}")


def data(result: tuple[int, dict]) -> dict:
    status, body = result
    assert status == 200 and "errors" not in body, body
    return body["data"]


def code(result: tuple[int, dict]) -> str:
    return result[1]["errors"][0]["extensions"]["code"]


def errors(payload: dict) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


def bind(gql, admin: str, person: Person, sub: str) -> dict:
    payload = data(
        gql(
            BIND,
            admin,
            {"input": {"resident": person.gid, "account": sub, "verification": "身份证原件核验"}},
        )
    )["bindResidentAccount"]
    assert payload["userErrors"] == [], payload
    return payload["residentAccount"]


def audit_actions(db, slug: str) -> list[str]:
    with db.platform() as conn:
        return list(
            conn.execute(
                select(pm.audit_log.c.action).where(
                    pm.audit_log.c.village == slug,
                    pm.audit_log.c.action.like("resident_account.%"),
                )
            ).scalars()
        )


# -- accounts -------------------------------------------------------------------------


def test_request_is_matched_out_of_sight_and_approved_by_the_admin(db, gql, token, place, admin):
    slug, me = place["slug"], place["me"]
    caller = resident_token(token, slug, "asker-1")
    stranger = resident_token(token, slug, "asker-2")

    bad = data(
        gql(REQUEST_ACCOUNT, caller, {"input": {"village": slug, "idNumber": "123", "phone": "1"}})
    )["requestResidentAccount"]
    assert {field for field, _ in errors(bad)} == {"idNumber", "phone"}

    right = {"village": slug, "idNumber": me.id_number, "phone": me.phone}
    wrong = {**right, "phone": "13000000000" if me.phone != "13000000000" else "13000000001"}
    matched = data(gql(REQUEST_ACCOUNT, caller, {"input": right}))["requestResidentAccount"]
    unmatched = data(gql(REQUEST_ACCOUNT, stranger, {"input": wrong}))["requestResidentAccount"]
    # The requester hears the same, matched or not.
    assert matched == unmatched
    assert matched["state"] == "PENDING" and matched["userErrors"] == []
    assert data(gql(ME, caller))["me"]["residentAccountState"] == "PENDING"
    assert data(gql(ME, caller))["me"]["resident"] is None

    grid_worker = token("grid-worker", village=slug)
    assert code(gql(ACCOUNTS, grid_worker, {"slug": slug, "first": 10})) == "FORBIDDEN"
    assert code(gql(ACCOUNTS, caller, {"slug": slug, "first": 10})) == "FORBIDDEN"
    listed = data(gql(ACCOUNTS, admin, {"slug": slug, "first": 10, "state": "PENDING"}))
    pending = listed["village"]["residentAccounts"]
    assert pending["totalCount"] == 2
    by_name = {e["node"]["username"]: e["node"] for e in pending["edges"]}
    assert by_name["居民asker-1"]["resident"]["id"] == me.gid
    assert by_name["居民asker-2"]["resident"] is None

    # The unmatched one cannot be approved, only rejected.
    refused = data(
        gql(APPROVE, admin, {"input": {"id": by_name["居民asker-2"]["id"], "verification": "x"}})
    )["approveResidentAccount"]
    assert errors(refused) == [("id", "REQUIRED")]
    rejected = data(
        gql(
            DECIDE % "rejectResidentAccount",
            admin,
            {"input": {"id": by_name["居民asker-2"]["id"], "reason": "身份信息不符"}},
        )
    )["rejectResidentAccount"]["residentAccount"]
    assert rejected["state"] == "REJECTED" and rejected["reason"] == "身份信息不符"
    assert data(gql(ME, stranger))["me"]["residentAccountState"] == "REJECTED"

    approve = {"input": {"id": by_name["居民asker-1"]["id"], "verification": "视频核验"}}
    assert code(gql(APPROVE, grid_worker, approve)) == "FORBIDDEN"
    approved = data(gql(APPROVE, admin, approve))["approveResidentAccount"]["residentAccount"]
    assert (approved["state"], approved["source"]) == ("BOUND", "REQUEST")
    assert approved["decidedBy"] == f"village-admin-{slug}"
    again = data(gql(APPROVE, admin, approve))["approveResidentAccount"]
    assert errors(again) == [("id", "INVALID_TRANSITION")]

    mine = data(gql(ME, caller))["me"]
    assert mine["residentAccountState"] == "BOUND"
    own = mine["resident"]
    assert (own["id"], own["name"], own["village"]) == (me.gid, me.name, slug)
    assert own["phone"] == me.phone  # their own, whole
    assert own["idNumber"] != me.id_number and "*" in own["idNumber"]
    members = {m["id"]: m for m in own["members"]}
    assert set(members) >= {me.gid, place["kin"].gid}
    kin = members[place["kin"].gid]
    assert "*" in kin["idNumber"] and "*" in kin["phone"]
    assert place["other"].gid not in members

    assert sorted(audit_actions(db, slug)) == [
        "resident_account.approve",
        "resident_account.reject",
        "resident_account.request",
        "resident_account.request",
    ]


def test_admin_binds_at_the_counter_and_unbinds(db, gql, token, place, admin):
    slug, me = place["slug"], place["me"]
    caller = resident_token(token, slug, "counter-1")
    bound = bind(gql, admin, me, "counter-1")
    assert (bound["state"], bound["source"], bound["verification"]) == (
        "BOUND",
        "ADMIN",
        "身份证原件核验",
    )
    assert data(gql(ME, caller))["me"]["resident"]["id"] == me.gid

    twice = data(
        gql(
            BIND,
            admin,
            {"input": {"resident": me.gid, "account": "counter-2", "verification": "核验"}},
        )
    )["bindResidentAccount"]
    assert errors(twice) == [("resident", "DUPLICATE")]
    blank = data(
        gql(BIND, admin, {"input": {"resident": me.gid, "account": "", "verification": ""}})
    )["bindResidentAccount"]
    assert {field for field, _ in errors(blank)} == {"account", "verification"}
    # A bound resident may not bind anyone, themselves included.
    bind_input = {"resident": place["kin"].gid, "account": "counter-1", "verification": "核验"}
    assert code(gql(BIND, caller, {"input": bind_input})) == "FORBIDDEN"

    unbound = data(
        gql(
            DECIDE % "unbindResidentAccount",
            admin,
            {"input": {"id": bound["id"], "reason": "手机丢失"}},
        )
    )["unbindResidentAccount"]["residentAccount"]
    assert unbound["state"] == "UNBOUND"
    assert data(gql(ME, caller))["me"]["resident"] is None
    assert code(gql(MARK_READ, caller, {"id": encode_id("Notice", slug, 1)})) == "FORBIDDEN"
    assert sorted(audit_actions(db, slug)) == ["resident_account.bind", "resident_account.unbind"]


# -- what a bound resident does ---------------------------------------------------------


def test_resident_reads_published_notices_and_marks_them_read(gql, token, place, admin):
    slug = place["slug"]
    caller = resident_token(token, slug, "reader-1")
    bind(gql, admin, place["me"], "reader-1")
    made = []
    for title in ("停水通知", "草稿"):
        created = data(
            gql(
                CREATE_NOTICE,
                admin,
                {
                    "input": {
                        "village": slug,
                        "category": "VILLAGE_AFFAIRS",
                        "title": title,
                        "body": "明日9时至12时停水",
                    }
                },
            )
        )["createNotice"]
        made.append(created["notice"]["id"])
    published = data(gql(PUBLISH_NOTICE, admin, {"id": made[0]}))["publishNotice"]
    assert published["notice"]["state"] == "PUBLISHED"

    seen = data(gql(MY_NOTICES, caller))["me"]["resident"]["notices"]
    assert [e["node"]["id"] for e in seen["edges"]] == [made[0]]
    read = data(gql(MARK_READ, caller, {"id": made[0]}))["markNoticeRead"]
    assert read["userErrors"] == []
    again = data(gql(MARK_READ, caller, {"id": made[0]}))["markNoticeRead"]
    assert again["userErrors"] == []
    seen = data(gql(MY_NOTICES, caller))["me"]["resident"]["notices"]
    assert seen["edges"][0]["node"]["readCount"] == 1
    draft = data(gql(MARK_READ, caller, {"id": made[1]}))["markNoticeRead"]
    assert errors(draft) == [("notice", "NOT_FOUND")]
    # Managing notices stays the admin's.
    assert code(gql(PUBLISH_NOTICE, caller, {"id": made[1]})) == "FORBIDDEN"


def test_resident_reports_a_problem_and_rates_it(db, gql, token, place, admin):
    slug, me = place["slug"], place["me"]
    caller = resident_token(token, slug, "reporter-1")
    neighbour = resident_token(token, slug, "reporter-2")
    bind(gql, admin, me, "reporter-1")
    bind(gql, admin, place["other"], "reporter-2")
    category = data(gql(CATEGORIES, admin, {"slug": slug}))["village"]["requestCategories"][0]["id"]
    report = {
        "village": slug,
        "channel": "MINI_PROGRAM",
        "category": category,
        "description": "楼道灯坏了，晚上看不见",
    }

    named = data(
        gql(
            CREATE_REQUEST,
            caller,
            {
                "input": {
                    **report,
                    "channel": "PHONE",
                    "reporterName": "别人",
                    "household": encode_id("Household", slug, place["other"].household_id),
                }
            },
        )
    )["createRequest"]
    assert sorted(errors(named)) == [
        ("channel", "INVALID"),
        ("household", "INVALID"),
        ("reporterName", "INVALID"),
    ]

    created = data(gql(CREATE_REQUEST, caller, {"input": report}))["createRequest"]
    assert created["userErrors"] == []
    request = created["request"]
    assert request["reporter"]["name"] == me.name
    assert request["channel"] == "MINI_PROGRAM"
    with db.tenant(slug) as conn:
        stored = conn.execute(
            select(request_rows.c.household_id, request_rows.c.reporter_resident_id).where(
                request_rows.c.reporter_resident_id == me.id
            )
        ).one()
    assert tuple(stored) == (me.household_id, me.id)
    # Households are read through `me` only, not through a request.
    reached = gql(
        """{ me { resident { requests(first: 1) { edges { node {
          location { household { id } } } } } } } }""",
        caller,
    )
    assert code(reached) == "FORBIDDEN"

    mine = data(gql(MY_REQUESTS, caller))["me"]["resident"]["requests"]
    assert [e["node"]["id"] for e in mine["edges"]] == [request["id"]]
    assert mine["edges"][0]["node"]["timeline"][0]["actor"] == "居民reporter-1"
    theirs = data(gql(MY_REQUESTS, neighbour))["me"]["resident"]["requests"]
    assert theirs["totalCount"] == 0

    # Working the request is staff's.
    assert code(gql(ACCEPT, caller, {"input": {"id": request["id"]}})) == "FORBIDDEN"
    with db.tenant(slug) as conn:
        conn.execute(
            update(request_rows)
            .where(request_rows.c.reporter_resident_id == me.id)
            .values(state="resolved", resolution="已更换灯泡")
        )

    rate = {"input": {"id": request["id"], "rating": 5, "comment": "很快"}}
    assert errors(data(gql(RATE, neighbour, rate))["rateRequest"]) == [("id", "NOT_FOUND")]
    rated = data(gql(RATE, caller, rate))["rateRequest"]
    assert rated["userErrors"] == []
    assert (rated["request"]["state"], rated["request"]["rating"]) == ("CLOSED", 5)


FOR_WHOM = """query($from: Date!) { me { resident {
  activities(first: 50, filter: {from: $from}) { edges { node { occurrences(from: $from) {
    id signUps { id householdMember { id name } } } } } } } } }"""
OCCURRENCE_MEMBERS = """query($id: ID!) { node(id: $id) { ... on ActivityOccurrence {
  signUps { householdMember { id } } } } }"""


def test_resident_signs_up_their_household_only(db, gql, token, place, admin):
    slug = place["slug"]
    caller = resident_token(token, slug, "joiner-1")
    other = resident_token(token, slug, "joiner-2")
    bind(gql, admin, place["me"], "joiner-1")
    bind(gql, admin, place["other"], "joiner-2")
    activity = data(
        gql(
            CREATE_ACTIVITY,
            admin,
            {
                "input": {
                    "village": slug,
                    "kind": "TALK",
                    "title": "防诈骗讲座",
                    "place": "会议室",
                    "capacity": 30,
                    "startsOn": (date.today() + timedelta(days=7)).isoformat(),
                    "startTime": "09:30",
                    "durationMinutes": 90,
                }
            },
        )
    )["createActivity"]["activity"]
    data(gql(PUBLISH_ACTIVITY, admin, {"id": activity["id"]}))
    occurrence = activity["occurrences"][0]["id"]

    own = data(gql(SIGN_UP, caller, {"occurrence": occurrence, "resident": place["me"].gid}))
    kin = data(gql(SIGN_UP, caller, {"occurrence": occurrence, "resident": place["kin"].gid}))
    stranger = data(
        gql(SIGN_UP, caller, {"occurrence": occurrence, "resident": place["other"].gid})
    )["signUpForActivity"]
    assert own["signUpForActivity"]["signUp"]["state"] == "SIGNED_UP"
    assert kin["signUpForActivity"]["signUp"]["state"] == "SIGNED_UP"
    assert errors(stranger) == [("resident", "NOT_FOUND")]

    own_id = own["signUpForActivity"]["signUp"]["id"]
    kin_id = kin["signUpForActivity"]["signUp"]["id"]
    # Whom each is for, as the app shows it: the household's member (Resident is staff's).
    shown = data(gql(FOR_WHOM, caller, {"from": date.today().isoformat()}))["me"]["resident"]
    [for_whom] = [
        o["signUps"]
        for e in shown["activities"]["edges"]
        for o in e["node"]["occurrences"]
        if o["id"] == occurrence
    ]
    assert for_whom == [
        {"id": own_id, "householdMember": {"id": place["me"].gid, "name": place["me"].name}},
        {"id": kin_id, "householdMember": {"id": place["kin"].gid, "name": place["kin"].name}},
    ]
    staff = data(gql(OCCURRENCE_MEMBERS, admin, {"id": occurrence}))["node"]["signUps"]
    assert [s["householdMember"] for s in staff] == [None, None]
    assert errors(data(gql(CANCEL, other, {"id": own_id}))["cancelActivitySignUp"]) == [
        ("signUp", "NOT_FOUND")
    ]
    hours = data(gql(CHECK_IN, caller, {"id": own_id, "hours": 8}))["checkInToActivity"]
    assert errors(hours) == [("volunteerHours", "INVALID")]
    assert errors(data(gql(CHECK_IN, other, {"id": own_id}))["checkInToActivity"]) == [
        ("signUp", "NOT_FOUND")
    ]
    with db.tenant(slug) as conn:
        # The session begins within the hour: check-in is open.
        conn.execute(
            update(activity_occurrences).values(
                starts_at=datetime.now(UTC) + timedelta(minutes=30),
                ends_at=datetime.now(UTC) + timedelta(minutes=120),
            )
        )
    # On the day the organiser shows a code, which the resident types (签到码).
    assert errors(data(gql(CHECK_IN, caller, {"id": own_id}))["checkInToActivity"]) == [
        ("code", "REQUIRED")
    ]
    shown = data(gql(ROTATE_CODE, admin, {"id": occurrence}))["rotateActivityCheckInCode"]
    typed = {"id": own_id, "code": shown["checkInCode"]["code"]}
    checked = data(gql(CHECK_IN, caller, typed))["checkInToActivity"]
    assert checked["userErrors"] == [] and checked["signUp"]["state"] == "CHECKED_IN"
    cancelled = data(gql(CANCEL, caller, {"id": kin_id}))["cancelActivitySignUp"]
    assert cancelled["signUp"]["state"] == "CANCELLED"
    # Running activities stays the village's.
    assert code(gql(PUBLISH_ACTIVITY, caller, {"id": activity["id"]})) == "FORBIDDEN"


RESIDENT_VILLAGES = "{ me { villages { slug } residentVillages { slug name } } }"
MY_ACTIVITIES = """query($from: Date!) { me { resident {
  requestCategories { name }
  activities(first: 50, filter: {from: $from}) { edges { node { id state
    occurrences(from: $from) { id signUps { id } } } } } } } }"""


def test_resident_reads_published_activities_and_only_their_households_sign_ups(
    gql, token, place, admin
):
    """The residents' app lists what to sign up for and what their household signed up
    for; drafts, and who else comes, are not theirs to read."""
    slug = place["slug"]
    caller = resident_token(token, slug, "reader-1")
    other = resident_token(token, slug, "reader-2")
    # Before any binding, the app learns where to ask for 实名认证, and nothing else.
    unbound = data(gql(RESIDENT_VILLAGES, caller))["me"]
    assert unbound["villages"] == [] and [v["slug"] for v in unbound["residentVillages"]] == [slug]
    bind(gql, admin, place["me"], "reader-1")
    bind(gql, admin, place["other"], "reader-2")
    starts = (date.today() + timedelta(days=5)).isoformat()
    made = []
    for title in ("书法课", "草稿课"):
        made.append(
            data(
                gql(
                    CREATE_ACTIVITY,
                    admin,
                    {
                        "input": {
                            "village": slug,
                            "kind": "WEEKEND_CLASS",
                            "title": title,
                            "place": "活动室",
                            "capacity": 10,
                            "startsOn": starts,
                            "startTime": "14:00",
                            "durationMinutes": 60,
                        }
                    },
                )
            )["createActivity"]["activity"]
        )
    published, draft = made
    data(gql(PUBLISH_ACTIVITY, admin, {"id": published["id"]}))
    occurrence = published["occurrences"][0]["id"]
    own = data(gql(SIGN_UP, caller, {"occurrence": occurrence, "resident": place["me"].gid}))
    data(gql(SIGN_UP, other, {"occurrence": occurrence, "resident": place["other"].gid}))

    mine = data(gql(MY_ACTIVITIES, caller, {"from": date.today().isoformat()}))["me"]["resident"]
    assert "环境卫生" in {c["name"] for c in mine["requestCategories"]}
    listed = {e["node"]["id"]: e["node"] for e in mine["activities"]["edges"]}
    assert published["id"] in listed and draft["id"] not in listed
    assert {e["node"]["state"] for e in mine["activities"]["edges"]} == {"PUBLISHED"}
    [seen] = [o for o in listed[published["id"]]["occurrences"] if o["id"] == occurrence]
    assert [s["id"] for s in seen["signUps"]] == [own["signUpForActivity"]["signUp"]["id"]]
    # The village's staff still see everyone's.
    assert (
        len(
            data(gql(OCCURRENCE_SIGN_UPS, admin, {"id": published["id"]}))["node"]["occurrences"][
                0
            ]["signUps"]
        )
        == 2
    )


def street_light(slug: str) -> dict:
    """A request a resident would register in `slug` by the mini program."""
    return {
        "village": slug,
        "channel": "MINI_PROGRAM",
        "category": encode_id("RequestCategory", slug, 1),
        "description": "路灯坏了",
    }


class TestOutOfReach:
    """Cases that share the module's populated village: one writes nothing, the other
    binds the only account bound there, and each reads only what its own caller reaches."""

    @pytest.fixture
    def place(self, db, shared_village) -> dict:
        return place_in(db, shared_village.slug)

    def test_unbound_resident_reaches_nothing(self, gql, token, place, admin):
        slug = place["slug"]
        caller = resident_token(token, slug, "unbound-1")
        me = data(gql(ME, caller))["me"]
        assert me["roles"] == ["resident"]
        assert me["resident"] is None and me["residentAccountState"] is None
        assert code(gql(CREATE_REQUEST, caller, {"input": street_light(slug)})) == "FORBIDDEN"
        assert code(gql(VILLAGE_RESIDENTS, caller, {"slug": slug})) == "FORBIDDEN"
        assert code(gql(NODE, caller, {"id": place["me"].gid})) == "FORBIDDEN"
        # Another village does not exist for them.
        assert code(gql(VILLAGE_RESIDENTS, caller, {"slug": "liulin"})) == "NOT_FOUND"

    def test_resident_of_one_village_reaches_nothing_in_another(self, gql, token, place, admin):
        slug = place["slug"]
        bind(gql, admin, place["me"], "visitor-1")
        caller = resident_token(token, "liulin", "visitor-1")
        assert data(gql(ME, caller))["me"]["resident"] is None
        assert code(gql(CREATE_REQUEST, caller, {"input": street_light(slug)})) == "NOT_FOUND"


def test_resident_account_list_statement_count_is_pinned_and_flat(app, gql, token, place, admin):
    slug = place["slug"]
    for number in range(6):
        caller = resident_token(token, slug, f"counted-{number}")
        request = {"village": slug, "idNumber": place["me"].id_number, "phone": place["me"].phone}
        data(gql(REQUEST_ACCOUNT, caller, {"input": request}))

    def run(first: int) -> list[str]:
        with count_statements(app.extensions["villagelink"].db.engine) as statements:
            data(gql(ACCOUNTS, admin, {"slug": slug, "first": first}))
        return statements

    run(1)  # warm the pool
    # role, path and access epoch (the caller's reach is kept with the token),
    # the page, the count, the residents
    assert len(run(2)) == len(run(6)) == 4


UPDATE_RESIDENT = """mutation($input: UpdateResidentInput!) { updateResident(input: $input) {
  resident { id phone(unmasked: false) } userErrors { field code } } }"""
MY_RECORD = """{ me { resident { phone pointsBalance volunteerHours
  pointsLedger(first: 5) { totalCount }
  latestVitals { heartRate }
  healthReadings(from: "2020-01-01T00:00:00+08:00", to: "2030-01-01T00:00:00+08:00", first: 5) {
    totalCount } } } }"""


def test_resident_corrects_their_phone_and_reads_their_own_record(db, gql, token, place, admin):
    slug, me = place["slug"], place["me"]
    caller = resident_token(token, slug, "self-1")
    bind(gql, admin, me, "self-1")

    own = data(gql(MY_RECORD, caller))["me"]["resident"]
    assert own["pointsBalance"] == 0 and own["pointsLedger"]["totalCount"] == 0
    assert own["healthReadings"]["totalCount"] == 0

    fixed = data(gql(UPDATE_RESIDENT, caller, {"input": {"id": me.gid, "phone": "13912345678"}}))
    assert fixed["updateResident"]["userErrors"] == []
    assert data(gql(ME, caller))["me"]["resident"]["phone"] == "13912345678"
    renamed = data(
        gql(UPDATE_RESIDENT, caller, {"input": {"id": me.gid, "name": "改名", "phone": None}})
    )["updateResident"]
    assert errors(renamed) == [("name", "INVALID")]
    kin = data(
        gql(UPDATE_RESIDENT, caller, {"input": {"id": place["kin"].gid, "phone": "13912345679"}})
    )["updateResident"]
    assert errors(kin) == [("id", "NOT_FOUND")]
    with db.tenant(slug) as conn:
        phones = dict(
            conn.execute(
                select(tm.residents.c.id, tm.residents.c.phone).where(
                    tm.residents.c.id.in_([me.id, place["kin"].id])
                )
            ).all()
        )
    assert phones == {me.id: "13912345678", place["kin"].id: place["kin"].phone}
    with db.platform() as conn:
        actors = conn.execute(
            select(pm.audit_log.c.action, pm.audit_log.c.actor_sub).where(
                pm.audit_log.c.village == slug,
                pm.audit_log.c.action.in_(["resident.update", "health_readings.read"]),
            )
        ).all()
    assert {("resident.update", "self-1"), ("health_readings.read", "self-1")} <= set(actors)
    # Another resident's readings stay the village's health staff's.
    other = gql(
        """query($id: ID!) { node(id: $id) { ... on Resident { latestVitals { heartRate } } } }""",
        caller,
        {"id": place["kin"].gid},
    )
    assert code(other) == "FORBIDDEN"


CREATE_ITEM = """mutation($input: CreateServiceItemInput!) { createServiceItem(input: $input) {
  serviceItem { id } userErrors { field code } } }"""
CREATE_SLOT = """mutation($input: CreateServiceSlotInput!) { createServiceSlot(input: $input) {
  serviceSlot { id } userErrors { field code } } }"""
ORDER = """mutation($slot: ID!, $resident: ID!) {
  orderService(input: {slot: $slot, resident: $resident, note: "上门理发"}) {
  serviceOrder { id state } userErrors { field code } } }"""
RATE_ORDER = """mutation($id: ID!) { rateServiceOrder(input: {order: $id, rating: 5}) {
  serviceOrder { id state rating } userErrors { field code } } }"""
DISPATCH_ORDER = """mutation($id: ID!, $team: ID!) {
  dispatchServiceOrder(input: {order: $id, team: $team}) { serviceOrder { id } } }"""
MY_ORDERS = """{ me { resident { serviceSlots(first: 5) { edges { node { id available } } }
  serviceOrders(first: 5) { totalCount edges { node { id state } } } } } }"""


def test_resident_orders_a_service_and_rates_it(db, gql, token, place, admin):
    slug = place["slug"]
    caller = resident_token(token, slug, "orderer-1")
    other = resident_token(token, slug, "orderer-2")
    bind(gql, admin, place["me"], "orderer-1")
    bind(gql, admin, place["other"], "orderer-2")
    item = data(
        gql(CREATE_ITEM, admin, {"input": {"village": slug, "name": "理发", "category": "HAIRCUT"}})
    )["createServiceItem"]["serviceItem"]
    starts = datetime.now(UTC) + timedelta(days=2)
    slot = data(
        gql(
            CREATE_SLOT,
            admin,
            {
                "input": {
                    "item": item["id"],
                    "startsAt": starts.isoformat(),
                    "endsAt": (starts + timedelta(hours=2)).isoformat(),
                    "capacity": 5,
                }
            },
        )
    )["createServiceSlot"]["serviceSlot"]

    listed = data(gql(MY_ORDERS, caller))["me"]["resident"]
    assert [e["node"]["id"] for e in listed["serviceSlots"]["edges"]] == [slot["id"]]
    stranger = data(gql(ORDER, caller, {"slot": slot["id"], "resident": place["other"].gid}))
    assert errors(stranger["orderService"]) == [("resident", "NOT_FOUND")]
    ordered = data(gql(ORDER, caller, {"slot": slot["id"], "resident": place["me"].gid}))
    order = ordered["orderService"]["serviceOrder"]
    assert order["state"] == "ORDERED"
    mine = data(gql(MY_ORDERS, caller))["me"]["resident"]["serviceOrders"]
    assert [e["node"]["id"] for e in mine["edges"]] == [order["id"]]
    assert data(gql(MY_ORDERS, other))["me"]["resident"]["serviceOrders"]["totalCount"] == 0
    # Dispatching is the centre's.
    team = encode_id("VolunteerTeam", slug, 1)
    assert code(gql(DISPATCH_ORDER, caller, {"id": order["id"], "team": team})) == "FORBIDDEN"

    with db.tenant(slug) as conn:
        conn.execute(update(service_orders).values(state="completed"))
    assert errors(data(gql(RATE_ORDER, other, {"id": order["id"]}))["rateServiceOrder"]) == [
        ("order", "NOT_FOUND")
    ]
    rated = data(gql(RATE_ORDER, caller, {"id": order["id"]}))["rateServiceOrder"]
    assert rated["userErrors"] == []
    assert (rated["serviceOrder"]["state"], rated["serviceOrder"]["rating"]) == ("RATED", 5)


def test_resident_attaches_photos_to_their_own_report(gql, client, settings, token, place, admin):
    slug = place["slug"]
    object_store(settings).ensure_bucket(slug)
    caller = resident_token(token, slug, "photographer-1")
    other = resident_token(token, slug, "photographer-2")
    bind(gql, admin, place["me"], "photographer-1")
    bind(gql, admin, place["other"], "photographer-2")
    category = data(gql(CATEGORIES, admin, {"slug": slug}))["village"]["requestCategories"][0]["id"]
    report = {
        "village": slug,
        "channel": "MINI_PROGRAM",
        "category": category,
        "description": "井盖丢失",
    }
    rid = data(gql(CREATE_REQUEST, caller, {"input": report}))["createRequest"]["request"]["id"]

    attached = attach_photo(gql, client, caller, slug, rid)["data"]["attachFile"]
    assert attached["userErrors"] == [] and attached["attachment"]["id"]
    photos = data(
        gql(
            "{ me { resident { requests(first: 5) { edges { node { photos { id } } } } } } }",
            caller,
        )
    )["me"]["resident"]["requests"]["edges"][0]["node"]["photos"]
    assert [p["id"] for p in photos] == [attached["attachment"]["id"]]
    theirs = attach_photo(gql, client, other, slug, rid)["data"]["attachFile"]
    assert theirs["attachment"] is None and errors(theirs) == [("recordId", "NOT_FOUND")]

    # Other purposes and other records are the village's.
    upload = {
        "village": slug,
        "purpose": "NOTICE_ATTACHMENT",
        "filename": "a.pdf",
        "contentType": "application/pdf",
        "size": 10,
    }
    assert code(gql(UPLOAD, caller, {"input": upload})) == "FORBIDDEN"
    notice = {"village": slug, "key": "x", "recordType": "Notice", "recordId": rid}
    assert code(gql(ATTACH, caller, {"input": notice})) == "FORBIDDEN"


# -- volunteer team leaders ---------------------------------------------------------------

CREATE_TEAM = """mutation($input: CreateVolunteerTeamInput!) { createVolunteerTeam(input: $input) {
  team { id } userErrors { field code } } }"""
TEAM_STEP = """mutation($id: ID!) { %s(input: {order: $id, note: "队长回复"}) {
  serviceOrder { id state timeline { toState actorName } } userErrors { field code } } }"""
TEAM_ORDERS = """{ me { resident { teamServiceOrders(first: 10) {
  totalCount edges { node { id state } } } } } }"""


def test_team_leader_answers_the_orders_dispatched_to_their_team(db, gql, token, place, admin):
    slug = place["slug"]
    leader = resident_token(token, slug, "leader-1")
    other_leader = resident_token(token, slug, "leader-2")
    member = resident_token(token, slug, "member-1")
    bind(gql, admin, place["me"], "leader-1")
    bind(gql, admin, place["other"], "leader-2")
    bind(gql, admin, place["kin"], "member-1")

    def team(name: str, person: Person) -> str:
        made = data(
            gql(
                CREATE_TEAM, admin, {"input": {"village": slug, "name": name, "leader": person.gid}}
            )
        )["createVolunteerTeam"]
        assert made["userErrors"] == [], made
        return made["team"]["id"]

    ours, theirs = team("理发志愿队", place["me"]), team("维修志愿队", place["other"])
    item = data(
        gql(CREATE_ITEM, admin, {"input": {"village": slug, "name": "理发", "category": "HAIRCUT"}})
    )["createServiceItem"]["serviceItem"]
    starts = datetime.now(UTC) + timedelta(days=2)
    slot_input = {
        "item": item["id"],
        "startsAt": starts.isoformat(),
        "endsAt": (starts + timedelta(hours=2)).isoformat(),
        "capacity": 5,
    }
    slot = data(gql(CREATE_SLOT, admin, {"input": slot_input}))["createServiceSlot"]["serviceSlot"]
    orders = []
    for person in (place["other"], place["kin"]):
        ordered = data(gql(ORDER, admin, {"slot": slot["id"], "resident": person.gid}))
        order = ordered["orderService"]["serviceOrder"]
        data(gql(DISPATCH_ORDER, admin, {"id": order["id"], "team": ours}))
        orders.append(order["id"])

    mine = data(gql(TEAM_ORDERS, leader))["me"]["resident"]["teamServiceOrders"]
    assert sorted(e["node"]["id"] for e in mine["edges"]) == sorted(orders)
    assert data(gql(TEAM_ORDERS, other_leader))["me"]["resident"]["teamServiceOrders"] == {
        "totalCount": 0,
        "edges": [],
    }

    # A leader of another team: not their order. A resident who leads none: refused.
    elsewhere = data(gql(TEAM_STEP % "acceptServiceOrder", other_leader, {"id": orders[0]}))
    assert errors(elsewhere["acceptServiceOrder"]) == [("order", "NOT_FOUND")]
    assert code(gql(TEAM_STEP % "acceptServiceOrder", member, {"id": orders[0]})) == "FORBIDDEN"
    # Dispatching stays the centre's.
    assert code(gql(DISPATCH_ORDER, leader, {"id": orders[0], "team": theirs})) == "FORBIDDEN"

    accepted = data(gql(TEAM_STEP % "acceptServiceOrder", leader, {"id": orders[0]}))
    order = accepted["acceptServiceOrder"]["serviceOrder"]
    assert order["state"] == "ACCEPTED"
    assert order["timeline"][-1] == {"toState": "ACCEPTED", "actorName": "居民leader-1"}
    done = data(gql(TEAM_STEP % "completeServiceOrder", leader, {"id": orders[0]}))
    assert done["completeServiceOrder"]["serviceOrder"]["state"] == "COMPLETED"
    declined = data(gql(TEAM_STEP % "declineServiceOrder", leader, {"id": orders[1]}))
    assert declined["declineServiceOrder"]["serviceOrder"]["state"] == "DECLINED"
    # Declined, the order is no longer the team's.
    again = data(gql(TEAM_STEP % "acceptServiceOrder", leader, {"id": orders[1]}))
    assert errors(again["acceptServiceOrder"]) == [("order", "NOT_FOUND")]

    with db.platform() as conn:
        actors = set(
            conn.execute(
                select(pm.audit_log.c.action, pm.audit_log.c.actor_sub).where(
                    pm.audit_log.c.village == slug,
                    pm.audit_log.c.action.like("service_order.%"),
                    pm.audit_log.c.actor_sub == "leader-1",
                )
            ).all()
        )
    assert {a for a, _ in actors} == {
        "service_order.accept",
        "service_order.complete",
        "service_order.decline",
    }


TEAM_ORDER_PAGE = """query($first: Int!) { me { resident { teamServiceOrders(first: $first) {
  edges { node { id state item { name } slot { startsAt } team { name }
    timeline { toState actorName } } } } } } }"""


def test_team_order_list_statement_count_is_pinned_and_flat(app, gql, token, place, admin):
    slug = place["slug"]
    leader = resident_token(token, slug, "counted-leader")
    bind(gql, admin, place["me"], "counted-leader")
    team = data(
        gql(
            CREATE_TEAM,
            admin,
            {"input": {"village": slug, "name": "计数志愿队", "leader": place["me"].gid}},
        )
    )["createVolunteerTeam"]["team"]["id"]
    item = data(
        gql(CREATE_ITEM, admin, {"input": {"village": slug, "name": "磨刀", "category": "OTHER"}})
    )["createServiceItem"]["serviceItem"]
    starts = datetime.now(UTC) + timedelta(days=3)
    slot = data(
        gql(
            CREATE_SLOT,
            admin,
            {
                "input": {
                    "item": item["id"],
                    "startsAt": starts.isoformat(),
                    "endsAt": (starts + timedelta(hours=2)).isoformat(),
                    "capacity": 50,
                }
            },
        )
    )["createServiceSlot"]["serviceSlot"]
    r = tm.residents
    with app.extensions["villagelink"].db.tenant(slug) as conn:
        ids = conn.execute(select(r.c.id).order_by(r.c.id).limit(6)).scalars().all()
    for resident_id in ids:
        ordered = data(
            gql(
                ORDER,
                admin,
                {"slot": slot["id"], "resident": encode_id("Resident", slug, resident_id)},
            )
        )["orderService"]["serviceOrder"]
        data(gql(DISPATCH_ORDER, admin, {"id": ordered["id"], "team": team}))

    def run(first: int) -> list[str]:
        with count_statements(app.extensions["villagelink"].db.engine) as statements:
            found = data(gql(TEAM_ORDER_PAGE, leader, {"first": first}))
        assert len(found["me"]["resident"]["teamServiceOrders"]["edges"]) == first
        return statements

    run(1)  # warm the pool
    two, six = run(2), run(6)
    assert len(two) == len(six), "\n".join(six)
    # role, path and access epoch (the caller's reach is kept with the token),
    # the binding, the teams led, the page, items, slots, whether the teams table exists,
    # teams, timelines
    assert len(six) == 9, "\n".join(six)


def test_residents_app_is_a_public_pkce_client_of_the_realm():
    """The residents' app signs residents in as themselves: a public client with the
    code flow and PKCE S256 only, redirecting to the gateway's /h5/ pages."""
    realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    assert "resident" in {role["name"] for role in realm["roles"]["realm"]}
    [app] = [c for c in realm["clients"] if c["clientId"] == RESIDENTS_CLIENT]
    assert app["publicClient"] is True and app["standardFlowEnabled"] is True
    assert not app["directAccessGrantsEnabled"] and not app["serviceAccountsEnabled"]
    assert not app["implicitFlowEnabled"]
    assert app["attributes"]["pkce.code.challenge.method"] == "S256"
    assert app["redirectUris"] and all(urlsplit(uri).path == "/h5/*" for uri in app["redirectUris"])
    mappers = {m["protocolMapper"]: m["config"] for m in app["protocolMappers"]}
    assert mappers["oidc-audience-mapper"]["included.client.audience"] == "villagelink-api"
    assert mappers["oidc-group-membership-mapper"]["claim.name"] == "groups"


def test_migration_creates_what_the_table_describes(db, shared_village):
    # It reads the schema only: the module's shared village will do.
    with db.tenant(shared_village.slug) as conn:
        context = MigrationContext.configure(conn, opts={"compare_server_default": False})
        differences = [
            d for d in compare_metadata(context, metadata) if _table_of(d) == resident_accounts.name
        ]
    assert differences == []

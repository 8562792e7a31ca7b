"""Activities, sign-ups, volunteer teams and the points ledger: schedules, state
machines, capacity and waitlist under concurrency, volunteer hours and points,
roles, outbox, audit and statement counts."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import ProgrammingError

from villagelink.graphql.core.ids import decode_id, encode_id
from villagelink.platform import models as pm
from villagelink.platform.audit import Actor
from villagelink.platform.identity.principal import Principal
from villagelink.tenants import models as m
from villagelink.tenants.activities import actions, points, tables, teams
from villagelink.tenants.activities.recurrence import Rule, dates
from villagelink.tenants.clock import VILLAGE_TIME_ZONE
from villagelink.tenants.demo.plans import demo_grid_worker_subject
from villagelink.tenants.id_numbers import compose
from villagelink.tenants.models import metadata
from villagelink.tenants.outbox import outbox
from villagelink.tenants.user_errors import ActionFailed

from .conftest import agree, new_village, written_since_now

CREATE = """mutation($input: CreateActivityInput!) { createActivity(input: $input) {
  activity { id kind title state version openToNeighbours capacity
    schedule { repeat weekday monthDay startsOn until startTime durationMinutes }
    occurrences { id startsAt endsAt capacity placesLeft } }
  userErrors { field message code } } }"""
UPDATE = """mutation($input: UpdateActivityInput!) { updateActivity(input: $input) {
  activity { id title place openToNeighbours version state }
  userErrors { field message code } } }"""
SCHEDULE = """mutation($input: ScheduleActivityInput!) { scheduleActivity(input: $input) {
  activity { id version occurrences { startsAt } } userErrors { field message code } } }"""
STEP = """mutation($input: ActivityTransitionInput!) {
  %s(input: $input) { activity { id state version } userErrors { field message code } } }"""
SIGN_UP = """mutation($occurrence: ID!, $resident: ID!) {
  signUpForActivity(input: {occurrence: $occurrence, resident: $resident}) {
    signUp { id state waitlistPosition resident { id } occurrence { id placesLeft } }
    userErrors { field message code } } }"""
CANCEL = """mutation($id: ID!) { cancelActivitySignUp(input: {signUp: $id}) {
  signUp { id state cancelledAt } promoted { id state resident { id } }
  userErrors { field message code } } }"""
CHECK_IN = """mutation($id: ID!, $hours: Float) {
  checkInToActivity(input: {signUp: $id, volunteerHours: $hours}) {
    signUp { id state checkedInAt volunteerHours
      resident { id pointsBalance volunteerHours } }
    userErrors { field message code } } }"""
OCCURRENCE = """query($id: ID!) { node(id: $id) { ... on ActivityOccurrence {
  id capacity placesLeft signUpCounts { signedUp waitlisted checkedIn }
  signUps { id state waitlistPosition resident { id } } } } }"""
POINTS = """mutation($input: PointsInput!) { %s(input: $input) {
  entry { id points reason sourceType source resident { id pointsBalance } }
  userErrors { field message code } } }"""
LEDGER = """query($id: ID!, $first: Int, $after: String) { node(id: $id) { ... on Resident {
  pointsBalance pointsLedger(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id points reason } } } } } }"""
TEAM = """mutation($input: CreateVolunteerTeamInput!) { createVolunteerTeam(input: $input) {
  team { id name leader { id } memberCount members { resident { id } skills } version }
  userErrors { field message code } } }"""
TEAM_MEMBER = """mutation($input: %s) { %s(input: $input) {
  team { id leader { id } memberCount members { resident { id } skills } version }
  userErrors { field message code } } }"""
ROTATE = """mutation($id: ID!) { rotateActivityCheckInCode(input: {occurrence: $id}) {
  checkInCode { code } userErrors { field code } } }"""
RESIDENT_IDS = """query($slug: String!) { village(slug: $slug) {
  residents(first: 100) { edges { node { id grid { id } } } } } }"""


# -- helpers --------------------------------------------------------------------


def ok(result: tuple[int, dict]) -> dict:
    status, body = result
    assert status == 200 and "errors" not in body, body
    return body["data"]


def payload(result: tuple[int, dict], field: str) -> dict:
    return ok(result)[field]


def first_code(result: tuple[int, dict]) -> str:
    return result[1]["errors"][0]["extensions"]["code"]


def codes(found: dict) -> list[tuple[str | None, str]]:
    return [(e["field"], e["code"]) for e in found["userErrors"]]


def key(global_id: str) -> int:
    return int(decode_id(global_id).key)


def soon(minutes: int) -> datetime:
    return datetime.now(VILLAGE_TIME_ZONE).replace(second=0, microsecond=0) + timedelta(
        minutes=minutes
    )


def activity_input(slug: str, **overrides) -> dict:
    """A single talk a week from now, unless overridden."""
    return {
        "village": slug,
        "kind": "TALK",
        "title": "防诈骗讲座",
        "place": "村委会议室",
        "capacity": 30,
        "startsOn": (date.today() + timedelta(days=7)).isoformat(),
        "startTime": "09:30",
        "durationMinutes": 90,
        **overrides,
    }


def at(moment: datetime) -> dict:
    """Input fields for a single activity starting at `moment` (village time)."""
    return {"startsOn": moment.date().isoformat(), "startTime": moment.strftime("%H:%M")}


@pytest.fixture
def slug(case_village) -> str:
    """The module's shared village, one test after another: a test there reads only what it
    made. A test that counts or changes what is village-wide (lists, balances, points rules,
    grids, agreements) names `populated_village` and gets a fresh one of its own."""
    return case_village.slug


@pytest.fixture
def admin(token, slug) -> str:
    return token("village-admin", village=slug)


@pytest.fixture
def residents(gql, admin, slug) -> list[str]:
    edges = ok(gql(RESIDENT_IDS, admin, {"slug": slug}))["village"]["residents"]["edges"]
    return [e["node"]["id"] for e in edges]


@pytest.fixture
def create(gql, admin, slug):
    """create(publish=True, **input overrides) -> the activity, through the API."""

    def make(publish: bool = False, **overrides) -> dict:
        created = payload(
            gql(CREATE, admin, {"input": activity_input(slug, **overrides)}), "createActivity"
        )
        assert created["userErrors"] == [], created
        activity = created["activity"]
        if publish:
            stepped = payload(
                gql(STEP % "publishActivity", admin, {"input": {"activity": activity["id"]}}),
                "publishActivity",
            )
            assert stepped["userErrors"] == []
            activity["state"] = "PUBLISHED"
        return activity

    return make


def audit_actions(db, slug: str) -> list[str]:
    """The village's audit entries in time order (one request's by name: they share a time)."""
    with db.platform() as conn:
        return list(
            conn.execute(
                select(pm.audit_log.c.action)
                .where(pm.audit_log.c.village == slug)
                .order_by(pm.audit_log.c.occurred_at, pm.audit_log.c.action)
            ).scalars()
        )


@pytest.fixture
def audited(db, slug):
    """audited() -> the audit entries this test wrote."""
    return written_since_now(lambda: audit_actions(db, slug))


def outbox_rows(db, slug: str, record_type: str) -> list[dict]:
    with db.tenant(slug) as conn:
        return [
            dict(row)
            for row in conn.execute(
                select(outbox).where(outbox.c.record_type == record_type).order_by(outbox.c.id)
            ).mappings()
        ]


def actor(sub: str = "tester") -> Actor:
    principal = Principal(
        sub=sub,
        username=sub,
        roles=frozenset({"village-admin"}),
        villages=frozenset(),
        regions=frozenset(),
        client_id=None,
    )
    return Actor(principal)


# -- the schema -----------------------------------------------------------------


OUR_TABLES = {
    "activities",
    "activity_occurrences",
    "activity_sign_ups",
    "volunteer_teams",
    "volunteer_team_members",
    "points_ledger",
    "points_rules",
    "activity_check_in_codes",
    "activity_check_in_failures",
    "points_rewards",
    "points_redemptions",
}


def _table_of(difference) -> str | None:
    """The table a difference reported by Alembic's comparison is about."""
    while isinstance(difference, list):  # column changes come wrapped in a list
        difference = difference[0]
    for item in difference[1:]:
        table = getattr(item, "table", None)
        if table is not None:
            return table.name
        if hasattr(item, "columns") and hasattr(item, "name") and item.name in OUR_TABLES:
            return item.name
        if isinstance(item, str):
            return item
    return None


def test_migration_creates_what_the_tables_describe(db, shared_village):
    with db.tenant(shared_village.slug) as conn:
        context = MigrationContext.configure(conn, opts={"compare_server_default": False})
        differences = [d for d in compare_metadata(context, metadata) if _table_of(d) in OUR_TABLES]
    assert differences == []


def test_the_ledger_is_append_only(db, populated_village, residents):
    """A fresh village: it reads a resident's balance."""
    resident = key(residents[0])
    with db.tenant(populated_village.slug) as conn:
        points.do_award_points(
            conn,
            actor(),
            populated_village.slug,
            resident,
            {"points": 5, "reason": "垃圾分类"},
            allowed_grids=None,
        )
    for statement in (
        "UPDATE points_ledger SET points = 500",
        "DELETE FROM points_ledger",
        "TRUNCATE points_ledger",
    ):
        with (
            pytest.raises(ProgrammingError, match="append-only"),
            db.tenant(populated_village.slug) as conn,
        ):
            conn.execute(text(statement))
    with db.tenant(populated_village.slug) as conn:
        assert points.balances(conn, [resident]) == {resident: 5}


# -- schedules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "window", "expected"),
    [
        (Rule("once", date(2026, 3, 5)), (date(2026, 3, 1), date(2026, 3, 31)), [date(2026, 3, 5)]),
        (Rule("once", date(2026, 2, 5)), (date(2026, 3, 1), date(2026, 3, 31)), []),
        # 每月20日便民服务日
        (
            Rule("monthly", date(2026, 1, 1), month_day=20),
            (date(2026, 1, 21), date(2026, 4, 30)),
            [date(2026, 2, 20), date(2026, 3, 20), date(2026, 4, 20)],
        ),
        # The 31st falls on the last day of shorter months; `until` ends the series.
        (
            Rule("monthly", date(2026, 1, 1), until=date(2026, 4, 29), month_day=31),
            (date(2026, 1, 1), date(2026, 12, 31)),
            [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)],
        ),
        # 周末课堂 every Saturday from a Wednesday, across a year's end.
        (
            Rule("weekly", date(2025, 12, 17), weekday=6),
            (date(2025, 12, 1), date(2026, 1, 10)),
            [date(2025, 12, 20), date(2025, 12, 27), date(2026, 1, 3), date(2026, 1, 10)],
        ),
    ],
)
def test_rules_give_the_days_of_a_series(rule, window, expected):
    assert dates(rule, *window) == expected


def test_monthly_service_day_is_scheduled_for_three_months(gql, admin, create, audited):
    activity = create(
        kind="SERVICE_DAY",
        title="便民服务日",
        repeat="MONTHLY",
        monthDay=20,
        startsOn=date.today().isoformat(),
        startTime="09:00",
        durationMinutes=180,
    )
    assert activity["schedule"]["monthDay"] == 20 and activity["schedule"]["startTime"] == "09:00"
    starts = [datetime.fromisoformat(o["startsAt"]) for o in activity["occurrences"]]
    assert len(starts) in (3, 4)
    for moment in starts:
        local = moment.astimezone(VILLAGE_TIME_ZONE)
        assert (local.day, local.hour, local.minute) == (20, 9, 0)
        assert local.date() <= date.today() + timedelta(days=92)
    assert activity["occurrences"][0]["placesLeft"] == 30

    further = payload(
        gql(SCHEDULE, admin, {"input": {"activity": activity["id"], "horizonDays": 200}}),
        "scheduleActivity",
    )
    assert further["userErrors"] == []
    assert len(further["activity"]["occurrences"]) in (6, 7)
    assert further["activity"]["version"] == activity["version"] + 1
    again = payload(
        gql(SCHEDULE, admin, {"input": {"activity": activity["id"], "horizonDays": 200}}),
        "scheduleActivity",
    )
    assert again["activity"] == further["activity"]  # nothing added, nothing changed
    assert audited() == ["activity.create", "activity.schedule"]


MOVE = """mutation($input: MoveActivityOccurrenceInput!) { moveActivityOccurrence(input: $input) {
  occurrence { id startsAt endsAt movedFrom moveReason checkInCode { code }
    signUps { id state waitlistPosition } }
  userErrors { field message code } } }"""


def test_the_village_moves_one_occurrence_and_its_sign_ups_keep_their_places(
    gql, admin, create, residents, db, slug, audited
):
    """本月便民服务日改期: the next service day moves to today (rain), its sign-ups keep
    their places, a code issued for the old day is void, and scheduling the series again
    does not put the old day back. Refusals by field write nothing."""
    activity = create(
        publish=True,
        kind="SERVICE_DAY",
        title="便民服务日",
        repeat="MONTHLY",
        monthDay=20,
        startsOn=(date.today() + timedelta(days=1)).isoformat(),
        startTime="09:00",
        durationMinutes=180,
        capacity=1,
    )
    first, second = activity["occurrences"][:2]
    signed = [
        payload(
            gql(SIGN_UP, admin, {"occurrence": first["id"], "resident": r}), "signUpForActivity"
        )
        for r in residents[:2]
    ]
    assert [s["signUp"]["state"] for s in signed] == ["SIGNED_UP", "WAITLISTED"]
    gql(ROTATE, admin, {"id": first["id"]})

    def move(**fields) -> dict:
        given = {"occurrence": first["id"], "reason": "因雨改期", **fields}
        return payload(gql(MOVE, admin, {"input": given}), "moveActivityOccurrence")

    later = datetime.fromisoformat(second["startsAt"]) + timedelta(hours=1)
    today = soon(30)
    for refused, expected in (
        (move(startsAt=soon(-60).isoformat()), [("startsAt", "INVALID")]),
        (move(startsAt=later.isoformat()), [("startsAt", "CONFLICT")]),
        (move(startsAt=first["startsAt"]), [("startsAt", "INVALID")]),
        (move(startsAt=today.isoformat(), reason=" "), [("reason", "REQUIRED")]),
        (
            move(startsAt=today.isoformat(), endsAt=soon(10).isoformat()),
            [("endsAt", "INVALID")],
        ),
    ):
        assert refused["occurrence"] is None and codes(refused) == expected, refused
    assert "activity.occurrence_move" not in audited()

    moved = move(startsAt=today.isoformat())
    assert moved["userErrors"] == []
    occurrence = moved["occurrence"]
    assert datetime.fromisoformat(occurrence["startsAt"]) == today
    assert datetime.fromisoformat(occurrence["endsAt"]) == today + timedelta(hours=3)
    assert occurrence["movedFrom"] == first["startsAt"]
    assert occurrence["moveReason"] == "因雨改期"
    assert occurrence["checkInCode"] is None
    assert [(s["id"], s["state"], s["waitlistPosition"]) for s in occurrence["signUps"]] == [
        (signed[0]["signUp"]["id"], "SIGNED_UP", None),
        (signed[1]["signUp"]["id"], "WAITLISTED", 1),
    ]
    scheduled = payload(
        gql(SCHEDULE, admin, {"input": {"activity": activity["id"], "horizonDays": 200}}),
        "scheduleActivity",
    )["activity"]["occurrences"]
    assert first["startsAt"] not in [o["startsAt"] for o in scheduled]

    # Once it has started it stays where it was held; a cancelled activity moves nothing.
    o = tables.activity_occurrences
    with db.tenant(slug) as conn:
        conn.execute(o.update().where(o.c.id == key(first["id"])).values(starts_at=soon(-5)))
    assert codes(move(startsAt=soon(90).isoformat())) == [("occurrence", "INVALID_TRANSITION")]
    gql(STEP % "cancelActivity", admin, {"input": {"activity": activity["id"]}})
    cancelled = payload(
        gql(
            MOVE,
            admin,
            {
                "input": {
                    "occurrence": second["id"],
                    "startsAt": soon(90).isoformat(),
                    "reason": "因雨改期",
                }
            },
        ),
        "moveActivityOccurrence",
    )
    assert codes(cancelled) == [("occurrence", "INVALID_TRANSITION")]
    assert audited().count("activity.occurrence_move") == 1


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"repeat": "WEEKLY"}, "weekday", "REQUIRED"),
        ({"repeat": "MONTHLY"}, "monthDay", "REQUIRED"),
        ({"weekday": 3}, "weekday", "INVALID"),
        ({"repeat": "WEEKLY", "weekday": 8}, "weekday", "INVALID"),
        ({"repeat": "MONTHLY", "monthDay": 20, "weekday": 3}, "weekday", "INVALID"),
        ({"until": "2030-01-01"}, "until", "INVALID"),
        ({"repeat": "WEEKLY", "weekday": 6, "until": "2000-01-01"}, "until", "INVALID"),
        ({"capacity": 0}, "capacity", "INVALID"),
        ({"title": "   "}, "title", "REQUIRED"),
        ({"title": "讲" * 101}, "title", "INVALID"),
        ({"startTime": "9点半"}, "startTime", "INVALID"),
        ({"durationMinutes": 0}, "durationMinutes", "INVALID"),
    ],
)
def test_create_refuses_bad_input_and_writes_nothing(
    gql, admin, db, slug, audited, overrides, field, code
):
    activities = select(func.count()).select_from(tables.activities)
    with db.tenant(slug) as conn:
        before = conn.execute(activities).scalar()
    created = payload(
        gql(CREATE, admin, {"input": activity_input(slug, **overrides)}), "createActivity"
    )
    assert created["activity"] is None
    assert (field, code) in codes(created)
    assert all(e["message"] for e in created["userErrors"])
    with db.tenant(slug) as conn:
        assert conn.execute(activities).scalar() == before
    assert audited() == []


# -- the activity state machine -------------------------------------------------

PATHS = {
    "DRAFT": [],
    "PUBLISHED": ["publishActivity"],
    "CANCELLED": ["cancelActivity"],
    "FINISHED": ["publishActivity", "finishActivity"],
}
ALLOWED = {
    ("DRAFT", "publishActivity"): "PUBLISHED",
    ("DRAFT", "cancelActivity"): "CANCELLED",
    ("PUBLISHED", "cancelActivity"): "CANCELLED",
    ("PUBLISHED", "finishActivity"): "FINISHED",
}


@pytest.mark.parametrize("state", list(PATHS))
@pytest.mark.parametrize("step", ["publishActivity", "cancelActivity", "finishActivity"])
def test_every_step_from_every_state(gql, admin, create, db, slug, state, step):
    activity = create()
    for earlier in PATHS[state]:
        assert not payload(
            gql(STEP % earlier, admin, {"input": {"activity": activity["id"]}}), earlier
        )["userErrors"]
    audited = audit_actions(db, slug)
    done = payload(gql(STEP % step, admin, {"input": {"activity": activity["id"]}}), step)
    current = ok(
        gql(
            "query($id: ID!) { node(id: $id) { ... on Activity { state version } } }",
            admin,
            {"id": activity["id"]},
        )
    )["node"]
    if (state, step) in ALLOWED:
        assert done["userErrors"] == []
        assert done["activity"]["state"] == current["state"] == ALLOWED[state, step]
        assert audit_actions(db, slug)[len(audited) :] == [f"activity.{step[:-8]}"]
    else:
        assert done["activity"] is None
        assert codes(done) == [("activity", "INVALID_TRANSITION")]
        assert current == {"state": state, "version": 1 + len(PATHS[state])}
        assert audit_actions(db, slug) == audited


def test_update_changes_details_until_the_activity_closes(gql, admin, create, slug):
    activity = create()
    changed = payload(
        gql(
            UPDATE,
            admin,
            {"input": {"id": activity["id"], "place": "文化广场", "description": None}},
        ),
        "updateActivity",
    )
    assert changed["userErrors"] == [] and changed["activity"]["place"] == "文化广场"
    assert changed["activity"]["version"] == 2
    blank = payload(
        gql(UPDATE, admin, {"input": {"id": activity["id"], "title": None}}), "updateActivity"
    )
    assert codes(blank) == [("title", "REQUIRED")]
    gql(STEP % "cancelActivity", admin, {"input": {"activity": activity["id"]}})
    for mutation, variables in (
        (UPDATE, {"input": {"id": activity["id"], "title": "改名"}}),
        (SCHEDULE, {"input": {"activity": activity["id"]}}),
    ):
        _, body = gql(mutation, admin, variables)
        refused = next(iter(body["data"].values()))
        assert codes(refused) == [("activity", "INVALID_TRANSITION")]


def test_activity_filters(gql, admin, create, slug, populated_village):
    """A fresh village: it lists every activity of the village."""
    talk = create(publish=True)
    create(kind="CLINIC", title="义诊", startsOn=(date.today() + timedelta(days=40)).isoformat())
    query = """query($slug: String!, $filter: ActivityFilter) { village(slug: $slug) {
      activities(first: 10, filter: $filter) { totalCount edges { node { id title } } } } }"""

    def titles(**flt) -> list[str]:
        found = ok(gql(query, admin, {"slug": slug, "filter": flt}))["village"]["activities"]
        assert found["totalCount"] == len(found["edges"])
        return [e["node"]["title"] for e in found["edges"]]

    week = (date.today() + timedelta(days=7)).isoformat()
    assert titles() == ["防诈骗讲座", "义诊"]
    assert titles(kind="CLINIC") == ["义诊"]
    assert titles(state="PUBLISHED") == ["防诈骗讲座"]
    assert titles(**{"from": week, "to": week}) == ["防诈骗讲座"]
    assert titles(**{"from": (date.today() + timedelta(days=8)).isoformat()}) == ["义诊"]
    assert titles(to=(date.today() + timedelta(days=6)).isoformat()) == []
    one_day = """query($id: ID!, $day: Date) { node(id: $id) { ... on Activity {
      occurrences(from: $day, to: $day) { id } } } }"""
    assert len(ok(gql(one_day, admin, {"id": talk["id"], "day": week}))["node"]["occurrences"]) == 1
    assert (
        ok(gql(one_day, admin, {"id": talk["id"], "day": date.today().isoformat()}))["node"][
            "occurrences"
        ]
        == []
    )


# -- sign-ups -------------------------------------------------------------------


def test_waitlist_and_promotion(gql, admin, create, residents, audited):
    occurrence = create(publish=True, capacity=2)["occurrences"][0]["id"]
    signed = [
        payload(
            gql(SIGN_UP, admin, {"occurrence": occurrence, "resident": r}), "signUpForActivity"
        )["signUp"]
        for r in residents[:4]
    ]
    assert [(s["state"], s["waitlistPosition"]) for s in signed] == [
        ("SIGNED_UP", None),
        ("SIGNED_UP", None),
        ("WAITLISTED", 1),
        ("WAITLISTED", 2),
    ]
    assert signed[-1]["occurrence"]["placesLeft"] == 0
    again = payload(
        gql(SIGN_UP, admin, {"occurrence": occurrence, "resident": residents[0]}),
        "signUpForActivity",
    )
    assert codes(again) == [("resident", "DUPLICATE")]

    cancelled = payload(gql(CANCEL, admin, {"id": signed[0]["id"]}), "cancelActivitySignUp")
    assert cancelled["signUp"]["state"] == "CANCELLED" and cancelled["signUp"]["cancelledAt"]
    assert cancelled["promoted"] == {
        "id": signed[2]["id"],
        "state": "SIGNED_UP",
        "resident": {"id": residents[2]},
    }
    shown = ok(gql(OCCURRENCE, admin, {"id": occurrence}))["node"]
    assert shown["signUpCounts"] == {"signedUp": 2, "waitlisted": 1, "checkedIn": 0}
    assert [(s["state"], s["waitlistPosition"]) for s in shown["signUps"]] == [
        ("CANCELLED", None),
        ("SIGNED_UP", None),
        ("SIGNED_UP", None),
        ("WAITLISTED", 1),
    ]

    # Leaving the waitlist frees no place: nobody moves up.
    left = payload(gql(CANCEL, admin, {"id": signed[3]["id"]}), "cancelActivitySignUp")
    assert left["signUp"]["state"] == "CANCELLED" and left["promoted"] is None
    for done in (signed[0], signed[3]):
        twice = payload(gql(CANCEL, admin, {"id": done["id"]}), "cancelActivitySignUp")
        assert codes(twice) == [("signUp", "INVALID_TRANSITION")]
    # Signing up again revives the sign-up at the back of the queue.
    back = payload(
        gql(SIGN_UP, admin, {"occurrence": occurrence, "resident": residents[0]}),
        "signUpForActivity",
    )["signUp"]
    assert (back["id"], back["state"], back["waitlistPosition"]) == (
        signed[0]["id"],
        "WAITLISTED",
        1,
    )
    assert audited() == [
        "activity.create",
        "activity.publish",
        *["activity.sign_up"] * 4,
        "activity.sign_up_cancel",
        "activity.sign_up_promote",
        "activity.sign_up_cancel",
        "activity.sign_up",
    ]


@pytest.mark.parametrize("state", ["DRAFT", "CANCELLED", "FINISHED"])
def test_sign_ups_only_while_published(gql, admin, create, residents, state, slug):
    activity = create()
    for step in PATHS[state]:
        gql(STEP % step, admin, {"input": {"activity": activity["id"]}})
    refused = payload(
        gql(
            SIGN_UP,
            admin,
            {"occurrence": activity["occurrences"][0]["id"], "resident": residents[0]},
        ),
        "signUpForActivity",
    )
    assert codes(refused) == [("occurrence", "NOT_OPEN")]


def test_cancel_and_check_in_refused_once_the_activity_closes(gql, admin, create, residents):
    activity = create(publish=True)
    signed = payload(
        gql(
            SIGN_UP,
            admin,
            {"occurrence": activity["occurrences"][0]["id"], "resident": residents[0]},
        ),
        "signUpForActivity",
    )["signUp"]
    gql(STEP % "cancelActivity", admin, {"input": {"activity": activity["id"]}})
    assert codes(payload(gql(CANCEL, admin, {"id": signed["id"]}), "cancelActivitySignUp")) == [
        ("signUp", "NOT_OPEN")
    ]
    assert codes(payload(gql(CHECK_IN, admin, {"id": signed["id"]}), "checkInToActivity")) == [
        ("signUp", "NOT_OPEN")
    ]


def test_an_occurrence_that_has_started_takes_no_sign_ups(db, slug, residents):
    with db.tenant(slug) as conn:
        # Half an hour ago, or midnight when that was yesterday (an activity's sessions
        # begin on the day it is created: from 00:00 to 00:30 none would start yesterday).
        started = max(soon(-30), soon(0).replace(hour=0, minute=0))
        activity = actions.do_create_activity(
            conn,
            actor(),
            slug,
            {
                "kind": "talk",
                "title": "讲座",
                "place": "礼堂",
                "capacity": 5,
                "starts_on": started.date().isoformat(),
                "start_time": started.strftime("%H:%M"),
                "duration_minutes": 120,
            },
        )
        actions.do_publish_activity(conn, actor(), slug, activity["id"])
        occurrence = conn.execute(
            select(tables.activity_occurrences.c.id).where(
                tables.activity_occurrences.c.activity_id == activity["id"]
            )
        ).scalar_one()
        with pytest.raises(ActionFailed) as refused:
            actions.do_sign_up(
                conn, actor(), slug, occurrence, key(residents[0]), allowed_grids=None
            )
    assert refused.value.errors[0].code == "NOT_OPEN"


def test_capacity_holds_when_residents_sign_up_at_once(db, slug, residents):
    with db.tenant(slug) as conn:
        activity = actions.do_create_activity(
            conn,
            actor(),
            slug,
            {
                "kind": "weekend_class",
                "title": "周末课堂",
                "place": "活动室",
                "capacity": 3,
                "starts_on": (date.today() + timedelta(days=3)).isoformat(),
                "start_time": "14:00",
                "duration_minutes": 60,
            },
        )
        actions.do_publish_activity(conn, actor(), slug, activity["id"])
        occurrence = conn.execute(
            select(tables.activity_occurrences.c.id).where(
                tables.activity_occurrences.c.activity_id == activity["id"]
            )
        ).scalar_one()
    people = [key(r) for r in residents[:12]]
    start = threading.Barrier(len(people))
    failures: list[BaseException] = []

    def sign_up(resident: int) -> None:
        try:
            with db.tenant(slug) as conn:
                start.wait()
                actions.do_sign_up(conn, actor(), slug, occurrence, resident, allowed_grids=None)
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=sign_up, args=(r,)) for r in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    s = tables.activity_sign_ups
    with db.tenant(slug) as conn:
        states = conn.execute(
            select(s.c.state, func.count())
            .where(s.c.occurrence_id == occurrence)
            .group_by(s.c.state)
        ).all()
        queue = (
            conn.execute(
                select(s.c.signed_up_at)
                .where(s.c.occurrence_id == occurrence)
                .order_by(s.c.signed_up_at)
            )
            .scalars()
            .all()
        )
    assert dict(states) == {"signed_up": 3, "waitlisted": 9}
    assert len(set(queue)) == len(queue)  # one distinct moment each: a strict queue

    # Cancelling places at once promotes as many from the waitlist, never more.
    with db.tenant(slug) as conn:
        placed = (
            conn.execute(
                select(s.c.id).where(s.c.occurrence_id == occurrence, s.c.state == "signed_up")
            )
            .scalars()
            .all()
        )
    start = threading.Barrier(len(placed))

    def cancel(sign_up_id: int) -> None:
        try:
            with db.tenant(slug) as conn:
                start.wait()
                actions.do_cancel_sign_up(conn, actor(), slug, sign_up_id, allowed_grids=None)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=cancel, args=(i,)) for i in placed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with db.tenant(slug) as conn:
        states = conn.execute(
            select(s.c.state, func.count())
            .where(s.c.occurrence_id == occurrence)
            .group_by(s.c.state)
        ).all()
    assert dict(states) == {"signed_up": 3, "waitlisted": 6, "cancelled": 3}


def test_a_cancel_that_loses_to_a_check_in_is_refused(db, slug, residents, audited):
    """A check-in takes no occurrence lock: one committed while a cancel waits on the
    sign-up's row leaves the cancel nothing to move, and it is refused like a cancel of
    a checked-in sign-up (it once failed with a TypeError, an INTERNAL error)."""
    starts = soon(30)
    with db.tenant(slug) as conn:
        activity = actions.do_create_activity(
            conn,
            actor(),
            slug,
            {
                "kind": "weekend_class",
                "title": "周末课堂",
                "place": "活动室",
                "capacity": 3,
                "starts_on": starts.date().isoformat(),
                "start_time": starts.strftime("%H:%M"),
                "duration_minutes": 60,
            },
        )
        actions.do_publish_activity(conn, actor(), slug, activity["id"])
        occurrence = conn.execute(
            select(tables.activity_occurrences.c.id).where(
                tables.activity_occurrences.c.activity_id == activity["id"]
            )
        ).scalar_one()
        sign_up_id = actions.do_sign_up(
            conn, actor(), slug, occurrence, key(residents[0]), allowed_grids=None
        )["id"]

    checking_in = db.begin_tenant(slug)
    outcome: list[BaseException] = []

    def cancel() -> None:
        try:
            with db.tenant(slug) as conn:
                actions.do_cancel_sign_up(conn, actor(), slug, sign_up_id, allowed_grids=None)
        except BaseException as exc:  # asserted below, not lost in the thread
            outcome.append(exc)

    canceller = threading.Thread(target=cancel)
    try:
        actions.do_check_in(checking_in, actor(), slug, sign_up_id, {}, allowed_grids=None)
        canceller.start()
        # The cancel has read "signed_up" and now waits on the row the check-in holds.
        deadline = datetime.now() + timedelta(seconds=30)
        with db.engine.connect() as watcher:
            while not watcher.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE 'UPDATE%activity_sign_ups%'"
                )
            ).scalar_one():
                assert datetime.now() < deadline, "the cancel never waited on the check-in"
                watcher.rollback()  # pg_stat_activity holds still within a transaction
        checking_in.commit()
    finally:
        checking_in.close()
        canceller.join(timeout=30)
    assert not canceller.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ActionFailed), outcome
    assert [(e.field, e.code) for e in outcome[0].errors] == [("signUp", "INVALID_TRANSITION")]
    s = tables.activity_sign_ups
    with db.tenant(slug) as conn:
        state = conn.execute(select(s.c.state).where(s.c.id == sign_up_id)).scalar_one()
    assert state == "checked_in"
    assert "activity.sign_up_cancel" not in audited()


# -- check-in, hours and points -------------------------------------------------


def test_volunteer_check_in_records_hours_and_points_once(
    gql, admin, create, residents, db, slug, populated_village
):
    """A fresh village: it changes the points rules, and reads residents' balances."""
    service = create(
        publish=True,
        kind="VOLUNTEER_SERVICE",
        title="敬老院志愿服务",
        durationMinutes=120,
        **at(soon(30)),
    )
    occurrence = service["occurrences"][0]["id"]
    signed = [
        payload(
            gql(SIGN_UP, admin, {"occurrence": occurrence, "resident": r}), "signUpForActivity"
        )["signUp"]
        for r in residents[:2]
    ]
    first = payload(gql(CHECK_IN, admin, {"id": signed[0]["id"]}), "checkInToActivity")
    assert first["userErrors"] == []
    checked = first["signUp"]
    assert checked["state"] == "CHECKED_IN" and checked["volunteerHours"] == 2.0
    assert checked["resident"] == {"id": residents[0], "pointsBalance": 20, "volunteerHours": 2.0}
    twice = payload(gql(CHECK_IN, admin, {"id": signed[0]["id"], "hours": 5}), "checkInToActivity")
    assert twice["userErrors"] == [] and twice["signUp"] == checked

    rules = """mutation($v: String!, $rate: Int!) { updatePointsRules(input:
      {village: $v, pointsPerVolunteerHour: $rate}) { pointsRules { pointsPerVolunteerHour }
      userErrors { field code } } }"""
    assert payload(gql(rules, admin, {"v": slug, "rate": 15}), "updatePointsRules") == {
        "pointsRules": {"pointsPerVolunteerHour": 15},
        "userErrors": [],
    }
    assert codes(payload(gql(rules, admin, {"v": slug, "rate": -1}), "updatePointsRules")) == [
        ("pointsPerVolunteerHour", "INVALID")
    ]
    given = payload(
        gql(CHECK_IN, admin, {"id": signed[1]["id"], "hours": 1.5}), "checkInToActivity"
    )["signUp"]
    assert given["volunteerHours"] == 1.5 and given["resident"]["pointsBalance"] == 23  # 22.5 ↑

    ledger = ok(gql(LEDGER, admin, {"id": residents[0]}))["node"]["pointsLedger"]
    assert ledger["totalCount"] == 1
    entry = ledger["edges"][0]["node"]
    assert entry["points"] == 20 and "敬老院志愿服务" in entry["reason"]
    source = ok(
        gql(
            """query($id: ID!) { node(id: $id) { ... on PointsEntry {
        sourceType source } } }""",
            admin,
            {"id": entry["id"]},
        )
    )["node"]
    assert source == {"sourceType": "ActivitySignUp", "source": signed[0]["id"]}
    actions_done = audit_actions(db, slug)
    assert actions_done.count("activity.check_in") == 2
    assert actions_done.count("points.award") == 2 and "points.rules" in actions_done


def test_check_in_refusals(gql, admin, create, residents, populated_village):
    """A fresh village: it reads a resident's points balance."""
    talk = create(publish=True, capacity=1, **at(soon(20)))
    occurrence = talk["occurrences"][0]["id"]
    placed, waiting = (
        payload(
            gql(SIGN_UP, admin, {"occurrence": occurrence, "resident": r}), "signUpForActivity"
        )["signUp"]
        for r in residents[:2]
    )
    assert codes(payload(gql(CHECK_IN, admin, {"id": waiting["id"]}), "checkInToActivity")) == [
        ("signUp", "INVALID_TRANSITION")
    ]
    # Hours belong to volunteer service only.
    assert codes(
        payload(gql(CHECK_IN, admin, {"id": placed["id"], "hours": 2}), "checkInToActivity")
    ) == [("volunteerHours", "INVALID")]
    checked = payload(gql(CHECK_IN, admin, {"id": placed["id"]}), "checkInToActivity")["signUp"]
    assert checked["state"] == "CHECKED_IN" and checked["volunteerHours"] is None
    assert checked["resident"]["pointsBalance"] == 0
    assert codes(payload(gql(CANCEL, admin, {"id": placed["id"]}), "cancelActivitySignUp")) == [
        ("signUp", "INVALID_TRANSITION")
    ]
    gql(CANCEL, admin, {"id": waiting["id"]})
    assert codes(payload(gql(CHECK_IN, admin, {"id": waiting["id"]}), "checkInToActivity")) == [
        ("signUp", "INVALID_TRANSITION")
    ]

    later = create(publish=True)  # a week away: check-in is not open yet
    signed = payload(
        gql(
            SIGN_UP, admin, {"occurrence": later["occurrences"][0]["id"], "resident": residents[0]}
        ),
        "signUpForActivity",
    )["signUp"]
    assert codes(payload(gql(CHECK_IN, admin, {"id": signed["id"]}), "checkInToActivity")) == [
        ("signUp", "NOT_OPEN")
    ]
    service = create(publish=True, kind="VOLUNTEER_SERVICE", **at(soon(10)))
    signed = payload(
        gql(
            SIGN_UP,
            admin,
            {"occurrence": service["occurrences"][0]["id"], "resident": residents[0]},
        ),
        "signUpForActivity",
    )["signUp"]
    assert codes(
        payload(gql(CHECK_IN, admin, {"id": signed["id"], "hours": 25}), "checkInToActivity")
    ) == [("volunteerHours", "INVALID")]


def test_award_redeem_and_ledger(gql, admin, residents, db, slug, populated_village):
    """A fresh village: it reads a resident's whole ledger and balance."""
    resident = residents[0]
    award = payload(
        gql(
            POINTS % "awardPoints",
            admin,
            {"input": {"resident": resident, "points": 30, "reason": "垃圾分类示范户"}},
        ),
        "awardPoints",
    )
    assert award["userErrors"] == []
    assert award["entry"]["sourceType"] == "manual" and award["entry"]["source"] is None
    before = audit_actions(db, slug)
    refused = payload(
        gql(
            POINTS % "redeemPoints",
            admin,
            {"input": {"resident": resident, "points": 31, "reason": "兑换大米"}},
        ),
        "redeemPoints",
    )
    assert refused["entry"] is None
    assert refused["userErrors"] == [
        {"field": "points", "message": "积分不足，当前余额为30分", "code": "INSUFFICIENT_POINTS"}
    ]
    assert audit_actions(db, slug) == before
    for bad in (0, -5):
        wrong = payload(
            gql(
                POINTS % "redeemPoints",
                admin,
                {"input": {"resident": resident, "points": bad, "reason": "x"}},
            ),
            "redeemPoints",
        )
        assert codes(wrong) == [("points", "INVALID")]
    spent = payload(
        gql(
            POINTS % "redeemPoints",
            admin,
            {"input": {"resident": resident, "points": 12, "reason": "兑换洗衣液"}},
        ),
        "redeemPoints",
    )["entry"]
    assert spent["points"] == -12 and spent["resident"]["pointsBalance"] == 18
    for n in range(3):
        gql(
            POINTS % "awardPoints",
            admin,
            {"input": {"resident": resident, "points": 1, "reason": f"第{n}次"}},
        )

    seen, after = [], None
    while True:
        page = ok(gql(LEDGER, admin, {"id": resident, "first": 2, "after": after}))["node"]
        ledger = page["pointsLedger"]
        seen += [e["node"]["points"] for e in ledger["edges"]]
        if not ledger["pageInfo"]["hasNextPage"]:
            break
        after = ledger["pageInfo"]["endCursor"]
    assert seen == [1, 1, 1, -12, 30]  # newest first
    assert ledger["totalCount"] == 5 and page["pointsBalance"] == 21


def test_redemptions_at_once_never_overdraw(db, populated_village, residents):
    """A fresh village: it reads a resident's balance."""
    slug = populated_village.slug
    resident = key(residents[0])
    with db.tenant(slug) as conn:
        points.do_award_points(
            conn, actor(), slug, resident, {"points": 50, "reason": "志愿服务"}, allowed_grids=None
        )
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def redeem() -> None:
        try:
            with db.tenant(slug) as conn:
                start.wait()
                points.do_redeem_points(
                    conn,
                    actor(),
                    slug,
                    resident,
                    {"points": 20, "reason": "兑换"},
                    allowed_grids=None,
                )
            outcomes.append("spent")
        except ActionFailed as failed:
            outcomes.append(failed.errors[0].code)

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["INSUFFICIENT_POINTS"] * 6 + ["spent"] * 2
    with db.tenant(slug) as conn:
        assert points.balances(conn, [resident]) == {resident: 10}


# -- volunteer teams ------------------------------------------------------------


def test_volunteer_teams(gql, admin, residents, db, slug, audited):
    leader, member = residents[0], residents[1]
    created = payload(
        gql(
            TEAM, admin, {"input": {"village": slug, "name": "红马甲志愿服务队", "leader": leader}}
        ),
        "createVolunteerTeam",
    )
    assert created["userErrors"] == []
    team = created["team"]
    assert team["leader"] == {"id": leader} and team["memberCount"] == 1
    assert codes(
        payload(
            gql(TEAM, admin, {"input": {"village": slug, "name": "红马甲志愿服务队"}}),
            "createVolunteerTeam",
        )
    ) == [("name", "DUPLICATE")]

    add = TEAM_MEMBER % ("AddVolunteerTeamMemberInput!", "addVolunteerTeamMember")
    added = payload(
        gql(
            add,
            admin,
            {"input": {"team": team["id"], "resident": member, "skills": ["理发", "磨刀", "理发"]}},
        ),
        "addVolunteerTeamMember",
    )["team"]
    assert added["memberCount"] == 2
    assert {"resident": {"id": member}, "skills": ["理发", "磨刀"]} in added["members"]
    assert codes(
        payload(
            gql(
                add,
                admin,
                {"input": {"team": team["id"], "resident": member, "skills": ["x" * 21]}},
            ),
            "addVolunteerTeamMember",
        )
    ) == [("skills", "INVALID")]
    remove = TEAM_MEMBER % ("RemoveVolunteerTeamMemberInput!", "removeVolunteerTeamMember")
    left = payload(
        gql(remove, admin, {"input": {"team": team["id"], "resident": leader}}),
        "removeVolunteerTeamMember",
    )["team"]
    assert left["leader"] is None and left["memberCount"] == 1
    assert codes(
        payload(
            gql(remove, admin, {"input": {"team": team["id"], "resident": leader}}),
            "removeVolunteerTeamMember",
        )
    ) == [("resident", "NOT_FOUND")]
    update = TEAM_MEMBER % ("UpdateVolunteerTeamInput!", "updateVolunteerTeam")
    led = payload(
        gql(update, admin, {"input": {"id": team["id"], "leader": member}}), "updateVolunteerTeam"
    )["team"]
    assert led["leader"] == {"id": member} and led["memberCount"] == 1

    shared = [
        r for r in outbox_rows(db, slug, "VolunteerTeam") if r["record_id"] == key(team["id"])
    ]
    assert [row["version"] for row in shared] == [1, 2, 3, 4]
    assert shared[-1]["payload"] == {
        "id": key(team["id"]),
        "name": "红马甲志愿服务队",
        "description": None,
        "member_count": 1,
        "skills": ["理发", "磨刀"],
    }
    # The service orders domain checks a team this way.
    with db.tenant(slug) as conn:
        assert (
            conn.execute(
                text("SELECT name FROM volunteer_teams WHERE id = :id"), {"id": key(team["id"])}
            ).scalar_one()
            == "红马甲志愿服务队"
        )
    assert [a for a in audited() if a.startswith("volunteer_team.")] == [
        "volunteer_team.create",
        "volunteer_team.add_member",
        "volunteer_team.remove_member",
        "volunteer_team.update",
    ]


# -- outbox ---------------------------------------------------------------------


def test_activities_open_to_neighbours_are_shared_once_published(gql, admin, create, db, slug):
    closed = create(publish=True)  # not open: never shared
    fair = create(title="五村联谊文艺汇演", kind="CULTURE", openToNeighbours=True)

    def ours() -> list[dict]:
        """The village's Activity entries about this test's two activities."""
        mine = {key(closed["id"]), key(fair["id"])}
        return [r for r in outbox_rows(db, slug, "Activity") if r["record_id"] in mine]

    assert ours() == []  # a draft is the village's own business
    gql(STEP % "publishActivity", admin, {"input": {"activity": fair["id"]}})
    gql(UPDATE, admin, {"input": {"id": fair["id"], "openToNeighbours": False}})
    gql(UPDATE, admin, {"input": {"id": fair["id"], "openToNeighbours": True}})
    gql(STEP % "cancelActivity", admin, {"input": {"activity": fair["id"]}})
    shared = ours()
    assert {row["record_id"] for row in shared} == {key(fair["id"])}
    assert [(r["operation"], r["version"], r["payload"].get("state")) for r in shared] == [
        ("upsert", 2, "published"),
        ("delete", 3, None),
        ("upsert", 4, "published"),
        ("upsert", 5, "cancelled"),
    ]
    assert shared[0]["payload"]["occurrences"][0]["capacity"] == 30


# -- roles ----------------------------------------------------------------------


def _outsider(db, gql, admin, slug: str) -> str:
    """A resident in a grid of their own, which no grid worker covers."""
    with db.tenant(slug) as conn:
        community = conn.execute(
            select(m.grids.c.id).where(m.grids.c.level == "community")
        ).scalar_one()
        grid = conn.execute(
            m.grids.insert()
            .values(parent_id=community, level="micro", code="outside", name="新建微网格")
            .returning(m.grids.c.id)
        ).scalar_one()
        household = conn.execute(
            m.households.insert()
            .values(address="新区1号", grid_id=grid)
            .returning(m.households.c.id)
        ).scalar_one()
    created = payload(
        gql(
            """mutation($input: CreateResidentInput!) { createResident(input: $input) {
               resident { id } userErrors { code } } }""",
            admin,
            {
                "input": {
                    "village": slug,
                    "name": "新住户",
                    "idNumber": compose("120111", date(1960, 5, 6), 31),
                    "household": encode_id("Household", slug, household),
                }
            },
        ),
        "createResident",
    )
    return created["resident"]["id"]


def test_grid_worker_signs_up_residents_of_their_grids(
    db, gql, token, create, admin, slug, populated_village
):
    """A fresh village: it adds a grid and a resident, which the others' resident lists
    would show."""
    worker = token("grid-worker", village=slug, sub=demo_grid_worker_subject(slug))
    own = ok(gql(RESIDENT_IDS, worker, {"slug": slug}))["village"]["residents"]["edges"][0]
    own = own["node"]["id"]
    others = [_outsider(db, gql, admin, slug)]
    occurrence = create(publish=True)["occurrences"][0]["id"]
    mine = payload(
        gql(SIGN_UP, worker, {"occurrence": occurrence, "resident": own}), "signUpForActivity"
    )
    assert mine["userErrors"] == [] and mine["signUp"]["resident"] == {"id": own}
    theirs = payload(
        gql(SIGN_UP, worker, {"occurrence": occurrence, "resident": others[0]}), "signUpForActivity"
    )
    assert codes(theirs) == [("resident", "NOT_FOUND")]
    placed = payload(
        gql(SIGN_UP, admin, {"occurrence": occurrence, "resident": others[0]}), "signUpForActivity"
    )["signUp"]
    # The worker sees the sign-ups of their grids only, and cannot touch the others.
    listed = ok(gql(OCCURRENCE, worker, {"id": occurrence}))["node"]
    assert [s["resident"]["id"] for s in listed["signUps"]] == [own]
    assert listed["signUpCounts"]["signedUp"] == 2
    assert codes(payload(gql(CANCEL, worker, {"id": placed["id"]}), "cancelActivitySignUp")) == [
        ("signUp", "NOT_FOUND")
    ]
    for mutation, variables in (
        (CREATE, {"input": activity_input(slug)}),
        (POINTS % "awardPoints", {"input": {"resident": own, "points": 5, "reason": "好人好事"}}),
        (TEAM, {"input": {"village": slug, "name": "网格志愿队"}}),
    ):
        assert first_code(gql(mutation, worker, variables)) == "FORBIDDEN"


def test_readers_read_and_cannot_write(
    gql, token, create, residents, slug, populated_village, other_village
):
    """A fresh village: the coordinator's list of its activities starts with this one."""
    activity = create(publish=True)
    coordinator = token("regional-coordinator", region=populated_village.region_id)
    listed = ok(
        gql(
            """query($slug: String!) { village(slug: $slug) { activities(first: 5) {
        edges { node { id occurrences { signUpCounts { signedUp } } } } } } }""",
            coordinator,
            {"slug": slug},
        )
    )
    assert listed["village"]["activities"]["edges"][0]["node"]["id"] == activity["id"]
    occurrence = activity["occurrences"][0]["id"]
    assert (
        first_code(gql(SIGN_UP, coordinator, {"occurrence": occurrence, "resident": residents[0]}))
        == "FORBIDDEN"
    )
    assert (
        first_code(
            gql(STEP % "cancelActivity", coordinator, {"input": {"activity": activity["id"]}})
        )
        == "FORBIDDEN"
    )
    neighbour = token("village-admin", village=other_village.slug)
    for raw in (activity["id"], occurrence):
        assert (
            first_code(gql("query($id: ID!) { node(id: $id) { id } }", neighbour, {"id": raw}))
            == "NOT_FOUND"
        )
    assert (
        first_code(gql(SIGN_UP, neighbour, {"occurrence": occurrence, "resident": residents[0]}))
        == "NOT_FOUND"
    )


def test_a_resident_of_another_village_cannot_be_signed_up(
    gql, admin, create, token, other_village
):
    occurrence = create(publish=True)["occurrences"][0]["id"]
    created = payload(
        gql(
            """mutation($v: String!) { createResident(input: {village: $v, name: "外村居民",
               idNumber: "120111195804099021"}) { resident { id } userErrors { code } } }""",
            token("platform-admin"),
            {"v": other_village.slug},
        ),
        "createResident",
    )
    stranger = created["resident"]["id"]
    refused = payload(
        gql(SIGN_UP, admin, {"occurrence": occurrence, "resident": stranger}), "signUpForActivity"
    )
    assert codes(refused) == [("resident", "NOT_FOUND")]


def test_every_node_type_round_trips(gql, admin, create, residents, slug):
    activity = create(publish=True, kind="VOLUNTEER_SERVICE", **at(soon(15)))
    occurrence = activity["occurrences"][0]["id"]
    signed = payload(
        gql(SIGN_UP, admin, {"occurrence": occurrence, "resident": residents[0]}),
        "signUpForActivity",
    )["signUp"]
    checked = payload(gql(CHECK_IN, admin, {"id": signed["id"]}), "checkInToActivity")
    team = payload(
        gql(TEAM, admin, {"input": {"village": slug, "name": "巾帼志愿队"}}), "createVolunteerTeam"
    )["team"]
    entry = ok(gql(LEDGER, admin, {"id": residents[0]}))["node"]["pointsLedger"]["edges"][0]
    assert checked["userErrors"] == []
    for node_id in (activity["id"], occurrence, signed["id"], team["id"], entry["node"]["id"]):
        found = ok(
            gql("query($id: ID!) { node(id: $id) { id __typename } }", admin, {"id": node_id})
        )["node"]
        assert found["id"] == node_id


# -- statement counts -----------------------------------------------------------

ACTIVITY_LIST = """query($slug: String!, $first: Int!) { village(slug: $slug) {
  activities(first: $first) { edges { node { id kind title state capacity
    schedule { repeat monthDay startTime }
    occurrences { id startsAt placesLeft signUpCounts { signedUp waitlisted checkedIn }
      signUps { state resident { name pointsBalance } } } } } } } }"""
TEAM_LIST = """query($slug: String!, $first: Int!) { village(slug: $slug) {
  volunteerTeams(first: $first) { edges { node { id name memberCount leader { name }
    members { skills resident { name volunteerHours } } } } } } }"""
RESIDENT_POINTS = """query($slug: String!, $first: Int!) { village(slug: $slug) {
  residents(first: $first) { edges { node { id pointsBalance volunteerHours
    pointsLedger(first: 3) { totalCount edges { node { points } } } } } } } }"""


@contextmanager
def count_statements(engine):
    statements: list[str] = []

    def before(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


@pytest.fixture
def busy_village(db, populated_village, residents) -> str:
    """50 activities with two occurrences and sign-ups each, 50 teams, points for all."""
    slug = populated_village.slug
    people = [key(r) for r in residents]
    with db.tenant(slug) as conn:
        for n in range(50):
            activity = actions.do_create_activity(
                conn,
                actor(),
                slug,
                {
                    "kind": "weekend_class",
                    "title": f"周末课堂{n}",
                    "place": "活动室",
                    "capacity": 2,
                    "repeat": "weekly",
                    "weekday": 6,
                    "starts_on": (date.today() + timedelta(days=1)).isoformat(),
                    "until": (date.today() + timedelta(days=14)).isoformat(),
                    "start_time": "09:00",
                    "duration_minutes": 60,
                },
            )
            actions.do_publish_activity(conn, actor(), slug, activity["id"])
            o = tables.activity_occurrences
            for occurrence in conn.execute(
                select(o.c.id).where(o.c.activity_id == activity["id"])
            ).scalars():
                for resident in people[n % 20 : n % 20 + 3]:
                    actions.do_sign_up(
                        conn, actor(), slug, occurrence, resident, allowed_grids=None
                    )
            team = teams.do_create_volunteer_team(
                conn, actor(), slug, {"name": f"志愿队{n}"}, leader_id=people[n]
            )
            teams.do_add_team_member(
                conn, actor(), slug, team["id"], people[n + 1], {"skills": ["理发"]}
            )
        for resident in people:
            for _ in range(2):
                points.do_award_points(
                    conn,
                    actor(),
                    slug,
                    resident,
                    {"points": 3, "reason": "积分"},
                    allowed_grids=None,
                )
    return slug


def run(app, gql, admin, query, slug, first) -> list[str]:
    with count_statements(app.extensions["villagelink"].db.engine) as statements:
        result = gql(query, admin, {"slug": slug, "first": first})
    ok(result)
    return statements


# query -> statements, the same for a page of 5 and of 50
PINNED = {
    # role, path and access epoch (the caller's reach is kept with the token), the page,
    # occurrences with counts, sign-ups, residents, balances
    ACTIVITY_LIST: 6,
    # role, path and epoch, the page, member counts, leaders, members, hours,
    # and the members who lead no team of the page
    TEAM_LIST: 7,
    # role, path and epoch, the page, balances, hours, ledgers, ledger counts
    RESIDENT_POINTS: 6,
}


def test_statement_counts_are_pinned_and_flat(app, gql, token, busy_village):
    admin = token("village-admin", village=busy_village)
    for query, expected in PINNED.items():
        run(app, gql, admin, query, busy_village, 1)  # warm the pool and the kept reach
        five = run(app, gql, admin, query, busy_village, 5)
        fifty = run(app, gql, admin, query, busy_village, 50)
        assert len(five) == len(fifty) == expected, "\n".join(fifty)


# -- residents of neighbouring villages (five-village linkage) -----------------
# These tests make agreements between two villages and read village-wide lists (outgoing
# sign-ups, audit entries, the points ledger): each has fresh villages of its own.

NEIGHBOUR_SIGN_UP = """mutation($input: SignUpNeighbourForActivityInput!) {
  signUpNeighbourForActivity(input: $input) {
    signUp { id state waitlistPosition note neighbour { village resident name } resident { id } }
    userErrors { field message code } } }"""
NEIGHBOUR_CANCEL = """mutation($input: CancelNeighbourActivitySignUpInput!) {
  cancelNeighbourActivitySignUp(input: $input) { signUp { id state } promoted { id }
    userErrors { field message code } } }"""
OUTGOING_SIGN_UPS = """query($slug: String!) { village(slug: $slug) {
  outgoingActivitySignUps { village activityTitle place startsAt
    signUp { id state waitlistPosition neighbour { name } } } } }"""
OCCURRENCE_WITH_NEIGHBOURS = """query($id: ID!) { node(id: $id) { ... on ActivityOccurrence {
  placesLeft signUps { id state resident { id } neighbour { village name } note } } } }"""


@pytest.fixture
def guests(gql, token, village) -> list[str]:
    """Two residents of `village`, the neighbouring village."""
    made = []
    for n, name in enumerate(("邻村张三", "邻村李四")):
        created = payload(
            gql(
                """mutation($v: String!, $name: String!, $idn: String!) {
                   createResident(input: {village: $v, name: $name, idNumber: $idn}) {
                   resident { id } userErrors { code } } }""",
                token("platform-admin"),
                {"v": village.slug, "name": name, "idn": compose("120111", date(1958, 4, 9), n)},
            ),
            "createResident",
        )
        made.append(created["resident"]["id"])
    return made


def neighbour_input(occurrence: str, village: str, resident: str, **more) -> dict:
    return {"input": {"occurrence": occurrence, "village": village, "resident": resident, **more}}


def test_a_neighbour_signs_its_residents_up_under_an_agreement(
    db, gql, admin, create, slug, populated_village, village, token, guests, residents
):
    activity = create(publish=True, openToNeighbours=True, capacity=2)
    occurrence = activity["occurrences"][0]["id"]
    neighbour = token("village-admin", village=village.slug)
    given = neighbour_input(occurrence, village.slug, guests[0], note="需要轮椅通道")
    # No agreement: the neighbour's activity does not exist for this village.
    assert first_code(gql(NEIGHBOUR_SIGN_UP, neighbour, given)) == "NOT_FOUND"
    agreement = agree(db, slug, village.slug, {"open_activity": ["title"]})

    first = payload(gql(NEIGHBOUR_SIGN_UP, neighbour, given), "signUpNeighbourForActivity")
    sign_up = first["signUp"]
    assert sign_up["state"] == "SIGNED_UP" and sign_up["resident"] is None
    assert sign_up["neighbour"] == {
        "village": village.slug,
        "resident": guests[0],
        "name": "邻村张三",
    }
    assert sign_up["note"] == "需要轮椅通道" and decode_id(sign_up["id"]).village == slug
    again = payload(gql(NEIGHBOUR_SIGN_UP, neighbour, given), "signUpNeighbourForActivity")
    assert codes(again) == [("resident", "DUPLICATE")]
    # Capacity is shared with the owner's residents: the second neighbour waits.
    payload(
        gql(SIGN_UP, admin, {"occurrence": occurrence, "resident": residents[0]}),
        "signUpForActivity",
    )
    waiting = payload(
        gql(NEIGHBOUR_SIGN_UP, neighbour, neighbour_input(occurrence, village.slug, guests[1])),
        "signUpNeighbourForActivity",
    )["signUp"]
    assert (waiting["state"], waiting["waitlistPosition"]) == ("WAITLISTED", 1)
    outgoing = ok(gql(OUTGOING_SIGN_UPS, neighbour, {"slug": village.slug}))["village"]
    assert [
        (o["village"], o["activityTitle"], o["signUp"]["state"], o["signUp"]["neighbour"]["name"])
        for o in outgoing["outgoingActivitySignUps"]
    ] == [
        (slug, "防诈骗讲座", "SIGNED_UP", "邻村张三"),
        (slug, "防诈骗讲座", "WAITLISTED", "邻村李四"),
    ]
    assert outgoing["outgoingActivitySignUps"][0]["startsAt"].endswith("+08:00")
    # A resident of the owner's village is not the neighbour's to sign up.
    foreign = payload(
        gql(NEIGHBOUR_SIGN_UP, neighbour, neighbour_input(occurrence, village.slug, residents[1])),
        "signUpNeighbourForActivity",
    )
    assert codes(foreign) == [("resident", "NOT_FOUND")]

    seen = ok(gql(OCCURRENCE_WITH_NEIGHBOURS, admin, {"id": occurrence}))["node"]
    assert [(s["state"], s["neighbour"] and s["neighbour"]["name"]) for s in seen["signUps"]] == [
        ("SIGNED_UP", "邻村张三"),
        ("SIGNED_UP", None),
        ("WAITLISTED", "邻村李四"),
    ]
    # The owner's own sign-ups are not the neighbour's to cancel.
    own = seen["signUps"][1]["id"]
    refused = payload(
        gql(NEIGHBOUR_CANCEL, neighbour, {"input": {"signUp": own, "village": village.slug}}),
        "cancelNeighbourActivitySignUp",
    )
    assert codes(refused) == [("signUp", "NOT_FOUND")]
    cancelled = payload(
        gql(
            NEIGHBOUR_CANCEL,
            neighbour,
            {"input": {"signUp": sign_up["id"], "village": village.slug}},
        ),
        "cancelNeighbourActivitySignUp",
    )
    assert cancelled["signUp"]["state"] == "CANCELLED" and cancelled["promoted"] is None
    seen = ok(gql(OCCURRENCE_WITH_NEIGHBOURS, admin, {"id": occurrence}))["node"]
    assert [s["state"] for s in seen["signUps"]] == ["CANCELLED", "SIGNED_UP", "SIGNED_UP"]

    with db.platform() as conn:
        details = (
            conn.execute(
                select(pm.audit_log.c.details)
                .where(pm.audit_log.c.village == slug, pm.audit_log.c.action == "activity.sign_up")
                .order_by(pm.audit_log.c.occurred_at)
            )
            .scalars()
            .all()
        )
    assert details[0]["guest_village"] == village.slug
    assert details[0]["agreement_ids"] == [agreement]
    assert "name" not in details[0] and "guest_name" not in details[0]


def test_what_a_neighbour_cannot_sign_up_for(
    db, gql, create, slug, populated_village, village, token, guests
):
    agree(db, slug, village.slug, {"open_activity": ["title"]})
    neighbour = token("village-admin", village=village.slug)
    closed = create(publish=True)  # not open to neighbours
    draft = create(openToNeighbours=True)
    for activity in (closed, draft):
        refused = payload(
            gql(
                NEIGHBOUR_SIGN_UP,
                neighbour,
                neighbour_input(activity["occurrences"][0]["id"], village.slug, guests[0]),
            ),
            "signUpNeighbourForActivity",
        )
        assert codes(refused) == [("occurrence", "NOT_FOUND")]
    # An agreement on shared resources only covers no activity.
    other = new_village(db, "第三村").slug
    agree(db, slug, other, {"shared_resource": ["name"]})
    opened = create(publish=True, openToNeighbours=True)["occurrences"][0]["id"]
    assert (
        first_code(
            gql(
                NEIGHBOUR_SIGN_UP,
                token("village-admin", village=other),
                neighbour_input(opened, other, guests[0]),
            )
        )
        == "NOT_FOUND"
    )


def test_a_neighbour_checked_in_earns_hours_but_no_points_here(
    db, gql, admin, create, slug, populated_village, village, token, guests
):
    agree(db, slug, village.slug, {"open_activity": ["title"]})
    activity = create(publish=True, openToNeighbours=True, kind="VOLUNTEER_SERVICE", **at(soon(15)))
    signed = payload(
        gql(
            NEIGHBOUR_SIGN_UP,
            token("village-admin", village=village.slug),
            neighbour_input(activity["occurrences"][0]["id"], village.slug, guests[0]),
        ),
        "signUpNeighbourForActivity",
    )["signUp"]
    checked = payload(gql(CHECK_IN, admin, {"id": signed["id"]}), "checkInToActivity")["signUp"]
    assert checked["state"] == "CHECKED_IN" and checked["volunteerHours"] == 1.5
    assert checked["resident"] is None
    with db.tenant(slug) as conn:
        assert conn.execute(select(func.count()).select_from(tables.points_ledger)).scalar() == 0

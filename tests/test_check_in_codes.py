"""Check-in by the organiser's code (签到码): the village or the activity's team leader
shows a six-digit code on the day; a resident checks in from the app by typing it.
Wrong, missing and expired codes are refused in Chinese and check nobody in; wrong
guesses are limited, a new code forgives them."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from villagelink.platform import models as pm
from villagelink.tenants.activities import check_in_codes, queries
from villagelink.tenants.activities.actions import CHECK_IN_OPENS
from villagelink.tenants.activities.check_in_codes import MAX_WRONG_CODES
from villagelink.tenants.activities.tables import activity_check_in_codes, activity_occurrences
from villagelink.tenants.clock import day_start, today
from villagelink.tenants.user_errors import ActionFailed

from .test_activities import CREATE, STEP, activity_input, actor, at, key, soon
from .test_resident_accounts import bind, code, data, errors, place, resident_token  # noqa: F401

TEAM = """mutation($input: CreateVolunteerTeamInput!) { createVolunteerTeam(input: $input) {
  team { id } userErrors { field code } } }"""
SIGN_UP = """mutation($occurrence: ID!, $resident: ID!) {
  signUpForActivity(input: {occurrence: $occurrence, resident: $resident}) {
    signUp { id state } userErrors { field code } } }"""
CHECK_IN = """mutation($id: ID!, $code: String) {
  checkInToActivity(input: {signUp: $id, code: $code}) {
    signUp { id state checkedInAt } userErrors { field message code } } }"""
ROTATE = """mutation($id: ID!) { rotateActivityCheckInCode(input: {occurrence: $id}) {
  checkInCode { code validOn issuedAt } userErrors { field message code } } }"""
SHOWN = """query($id: ID!) { node(id: $id) { ... on ActivityOccurrence {
  checkInCode { code validOn } activity { team { id } } } } }"""
# Residents read their village's activities through `me`.
SHOWN_TO_RESIDENT = """{ me { resident { activities(first: 5) { edges { node {
  occurrences { checkInCode { code validOn } } } } } } } }"""


# A team leader's own list of today's occurrences to show a code for.
LED_TODAY = """{ me { resident { teamOccurrencesToday { id activity { title }
  checkInCode { code validOn } } } } }"""


def led_today(gql, caller: str) -> list:
    return data(gql(LED_TODAY, caller))["me"]["resident"]["teamOccurrencesToday"]


def shown_to_resident(gql, caller: str) -> list:
    edges = data(gql(SHOWN_TO_RESIDENT, caller))["me"]["resident"]["activities"]["edges"]
    return [o["checkInCode"] for e in edges for o in e["node"]["occurrences"]]


@pytest.fixture
def day(db, gql, token, place):  # noqa: F811 (the fixture imported above)
    """An activity run by a team, starting in ten minutes (check-in is open): its
    occurrence, the leader's and a resident's tokens, and the resident's sign-up."""
    slug = place["slug"]
    admin = token("village-admin", village=slug)
    bind(gql, admin, place["other"], "leader-1")
    bind(gql, admin, place["me"], "checker-1")
    team = data(
        gql(
            TEAM,
            admin,
            {"input": {"village": slug, "name": "便民服务队", "leader": place["other"].gid}},
        )
    )["createVolunteerTeam"]["team"]["id"]
    starts = soon(10)
    created = data(gql(CREATE, admin, {"input": activity_input(slug, team=team, **at(starts))}))[
        "createActivity"
    ]
    assert created["userErrors"] == [], created
    activity = created["activity"]
    data(gql(STEP % "publishActivity", admin, {"input": {"activity": activity["id"]}}))
    occurrence = activity["occurrences"][0]["id"]
    resident = resident_token(token, slug, "checker-1")
    signed = data(gql(SIGN_UP, resident, {"occurrence": occurrence, "resident": place["me"].gid}))
    return {
        "slug": slug,
        "admin": admin,
        "leader": resident_token(token, slug, "leader-1"),
        "resident": resident,
        "team": team,
        "occurrence": occurrence,
        "sign_up": signed["signUpForActivity"]["signUp"]["id"],
        # Its codes' day: tomorrow's date from 23:50 in the village.
        "valid_on": starts.date().isoformat(),
    }


def check_in(gql, day: dict, typed: str | None) -> dict:
    return data(gql(CHECK_IN, day["resident"], {"id": day["sign_up"], "code": typed}))[
        "checkInToActivity"
    ]


def issuers(db, slug: str) -> list[str]:
    """Who issued the village's check-in codes, in the audit log."""
    a = pm.audit_log
    with db.platform() as conn:
        return list(
            conn.execute(
                select(a.c.actor_sub).where(
                    a.c.village == slug, a.c.action == "activity.check_in_code"
                )
            ).scalars()
        )


def check_ins(db, slug: str) -> int:
    with db.platform() as conn:
        return len(
            conn.execute(
                select(pm.audit_log.c.id).where(
                    pm.audit_log.c.village == slug, pm.audit_log.c.action == "activity.check_in"
                )
            ).all()
        )


def test_a_resident_checks_in_with_the_code_the_team_leader_shows(db, gql, day, place):  # noqa: F811
    # Nobody but the organisers sees a code; none exists until one is issued.
    assert data(gql(SHOWN, day["admin"], {"id": day["occurrence"]}))["node"] == {
        "checkInCode": None,
        "activity": {"team": {"id": day["team"]}},
    }
    missing = check_in(gql, day, None)
    assert errors(missing) == [("code", "REQUIRED")]
    assert missing["userErrors"][0]["message"] == "请输入组织者出示的签到码"
    assert errors(check_in(gql, day, "123456")) == [("code", "INVALID")]

    # A resident who leads no team may not; one who leads another team is refused by
    # the action (under the occurrence's lock), and neither is given a code.
    assert code(gql(ROTATE, day["resident"], {"id": day["occurrence"]})) == "FORBIDDEN"
    assert led_today(gql, day["leader"]) == [
        {"id": day["occurrence"], "activity": {"title": "防诈骗讲座"}, "checkInCode": None}
    ]
    data(
        gql(
            TEAM,
            day["admin"],
            {"input": {"village": day["slug"], "name": "文艺队", "leader": place["me"].gid}},
        )
    )
    assert led_today(gql, day["resident"]) == []
    other = data(gql(ROTATE, day["resident"], {"id": day["occurrence"]}))
    other = other["rotateActivityCheckInCode"]
    assert other["checkInCode"] is None and errors(other) == [("occurrence", "FORBIDDEN")]
    assert other["userErrors"][0]["message"] == check_in_codes.NOT_ORGANISER
    shown = data(gql(ROTATE, day["leader"], {"id": day["occurrence"]}))["rotateActivityCheckInCode"]
    assert shown["userErrors"] == []
    # The leader issued it as themselves: the audit names them.
    assert issuers(db, day["slug"]) == ["leader-1"]
    issued = shown["checkInCode"]
    assert len(issued["code"]) == 6 and issued["code"].isdigit()
    assert issued["validOn"] == day["valid_on"]
    expected = {"code": issued["code"], "validOn": issued["validOn"]}
    shown_to_admin = data(gql(SHOWN, day["admin"], {"id": day["occurrence"]}))["node"]
    assert shown_to_admin["checkInCode"] == expected
    assert shown_to_resident(gql, day["leader"]) == [expected]
    assert led_today(gql, day["leader"])[0]["checkInCode"] == expected
    assert shown_to_resident(gql, day["resident"]) == [None]

    wrong = str((int(issued["code"]) + 1) % 10**6).zfill(6)
    refused = check_in(gql, day, wrong)
    assert refused["signUp"] is None and errors(refused) == [("code", "INVALID")]
    # Issuing the code forgave the wrong one typed before (123456): one try used.
    assert refused["userErrors"][0]["message"] == f"签到码不正确，还可再试{MAX_WRONG_CODES - 1}次"
    assert check_ins(db, day["slug"]) == 0

    checked = check_in(gql, day, f" {issued['code']} ")
    assert checked["userErrors"] == [] and checked["signUp"]["state"] == "CHECKED_IN"
    assert check_ins(db, day["slug"]) == 1
    # Staff still check residents in without a code.
    assert (
        data(gql(CHECK_IN, day["admin"], {"id": day["sign_up"]}))["checkInToActivity"]["signUp"][
            "state"
        ]
        == "CHECKED_IN"
    )


def test_wrong_codes_run_out_and_a_new_code_forgives_them(db, gql, day):
    issued = data(gql(ROTATE, day["admin"], {"id": day["occurrence"]}))[
        "rotateActivityCheckInCode"
    ]["checkInCode"]["code"]
    wrong = str((int(issued) + 1) % 10**6).zfill(6)
    seen = [errors(check_in(gql, day, wrong)) for _ in range(MAX_WRONG_CODES)]
    assert seen == [[("code", "INVALID")]] * (MAX_WRONG_CODES - 1) + [
        [("code", "TOO_MANY_ATTEMPTS")]
    ]
    # Used up: even the right code is refused, and nothing is checked in.
    locked = check_in(gql, day, issued)
    assert errors(locked) == [("code", "TOO_MANY_ATTEMPTS")]
    assert locked["userErrors"][0]["message"] == "签到码输错次数过多，请组织者重新生成签到码后再试"
    assert check_ins(db, day["slug"]) == 0

    renewed = data(gql(ROTATE, day["admin"], {"id": day["occurrence"]}))[
        "rotateActivityCheckInCode"
    ]["checkInCode"]["code"]
    if renewed != issued:  # one chance in a million that the new code is the old one
        assert errors(check_in(gql, day, issued)) == [("code", "INVALID")]
    assert check_in(gql, day, renewed)["signUp"]["state"] == "CHECKED_IN"


def test_a_code_checks_in_on_its_day_only(db, gql, day):
    issued = data(gql(ROTATE, day["admin"], {"id": day["occurrence"]}))[
        "rotateActivityCheckInCode"
    ]["checkInCode"]["code"]
    occurrence = key(day["occurrence"])
    with db.tenant(day["slug"]) as conn:
        # Yesterday's code for the same occurrence: it has expired.
        conn.execute(
            update(activity_check_in_codes)
            .where(activity_check_in_codes.c.occurrence_id == occurrence)
            .values(valid_on=today() - timedelta(days=1))
        )
    expired = check_in(gql, day, issued)
    assert errors(expired) == [("code", "NOT_OPEN")]
    assert expired["userErrors"][0]["message"] == "签到码已过期，请向组织者获取当天的签到码"
    assert check_ins(db, day["slug"]) == 0

    o = activity_occurrences
    with db.tenant(day["slug"]) as conn:
        conn.execute(
            update(o)
            .where(o.c.id == occurrence)
            .values(
                starts_at=o.c.starts_at - timedelta(days=2), ends_at=o.c.ends_at - timedelta(days=2)
            )
        )
    past = data(gql(ROTATE, day["admin"], {"id": day["occurrence"]}))["rotateActivityCheckInCode"]
    assert past["checkInCode"] is None and errors(past) == [("occurrence", "NOT_OPEN")]


def test_a_session_just_after_midnight_is_shown_once_its_check_in_opens(db, day):
    """Check-in opens an hour before a session starts: at 23:10 for one at 00:10, when the
    leader's list, by the day alone, did not show it until midnight (a test moving a
    session to "now + 20 minutes" failed between 23:40 and 24:00 village time)."""
    occurrence = key(day["occurrence"])
    starts = day_start(today() + timedelta(days=1)) + timedelta(minutes=10)
    o = activity_occurrences
    with db.tenant(day["slug"]) as conn:
        conn.execute(
            update(o)
            .where(o.c.id == occurrence)
            .values(starts_at=starts, ends_at=starts + timedelta(hours=2))
        )

        def led_at(moment) -> list[int]:
            found = queries.team_occurrences_on(
                conn, [key(day["team"])], today(), moment + CHECK_IN_OPENS
            )
            return [row["id"] for row in found]

        assert led_at(starts - timedelta(minutes=70)) == []
        assert led_at(starts - timedelta(minutes=50)) == [occurrence]


def test_guesses_sent_at_once_are_counted_one_by_one(db, gql, day):
    """Eight wrong codes at the same moment: each try counted, none lost, the limit holds."""
    issued = data(gql(ROTATE, day["admin"], {"id": day["occurrence"]}))[
        "rotateActivityCheckInCode"
    ]["checkInCode"]["code"]
    wrong = str((int(issued) + 1) % 10**6).zfill(6)
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def guess() -> None:
        # As the API does: a refusal is an answer, and the transaction still commits.
        with db.tenant(day["slug"]) as conn:
            start.wait()
            try:
                check_in_codes.do_check_in_by_code(
                    conn,
                    actor("guesser"),
                    day["slug"],
                    key(day["sign_up"]),
                    wrong,
                    allowed_grids=None,
                )
                outcomes.append("checked_in")
            except ActionFailed as failed:
                outcomes.append(failed.errors[0].code)

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["INVALID"] * (MAX_WRONG_CODES - 1) + ["TOO_MANY_ATTEMPTS"] * (
        9 - MAX_WRONG_CODES
    )
    assert check_ins(db, day["slug"]) == 0

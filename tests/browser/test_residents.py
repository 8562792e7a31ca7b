"""The residents' app (/h5/) in a real browser at 390x844: a resident signs in, asks for
实名认证 and is approved, reads a notice (the village's read count grows), reports a problem
with a camera photo (the village sees it through the API), signs up for the 20th's service
day, which the village moves to today, and checks in with the code the team leader's phone
shows. Screenshots for docs/residents-app.md."""

from __future__ import annotations

import io
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import requests
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from villagelink.platform.db import Database
from villagelink.platform.identity.accounts import DevDirectory
from villagelink.platform.settings import load_settings
from villagelink.tenants.demo.accounts import DEMO_PASSWORD, demo_accounts
from villagelink.tenants.demo.plans import DEMO_VILLAGES

from .conftest import Stack, check_accessible, login, opened, shot

TOKEN_PATH = "/dev-issuer/realms/villagelink/protocol/openid-connect/token"


class Api:
    """The village admin's side of the story, through the public API."""

    def __init__(self, stack: Stack, village: str):
        self.url = stack.url
        self.village = village
        answer = requests.post(
            stack.url + TOKEN_PATH,
            data={
                "grant_type": "password",
                "client_id": "villagelink-console",
                "username": f"village-admin-{village}",
                "password": DEMO_PASSWORD,
            },
            timeout=10,
        )
        answer.raise_for_status()
        self.token = answer.json()["access_token"]

    def __call__(self, query: str, **variables) -> dict:
        answer = requests.post(
            self.url + "/graphql",
            json={"query": query, "variables": {"village": self.village, **variables}},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=20,
        ).json()
        assert "errors" not in answer, answer
        return answer["data"]


def resident_account(village: str):
    return next(a for a in demo_accounts() if a.role == "resident" and a.villages == (village,))


def settle(check, timeout: float = 10.0):
    """What the API says once the browser's write has landed (polling, the UI moves on first)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def found_id(api: Api, text: str) -> str:
    return api(REQUEST_ID, text=text)["village"]["requests"]["edges"][0]["node"]["id"]


def camera_photo() -> bytes:
    """A phone-sized photo (4000x3000), for the app to shrink before upload."""
    buffer = io.BytesIO()
    Image.new("RGB", (4000, 3000), (90, 140, 60)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def another_resident_login(stack: Stack, village: str, name: str) -> tuple[str, str, str]:
    """A second resident account of the village (the demo has one a village), made the
    way the village makes accounts on the development issuer: (sub, username, password)."""
    db = Database(load_settings(stack.platform.env).database_url)
    try:
        username = f"resident-{village}-{uuid.uuid4().hex[:8]}"
        made = DevDirectory(db).invite(village, "resident", username, name)
    finally:
        db.engine.dispose()
    return made.sub, username, made.temporary_password


def service_day_activity(api: Api) -> str:
    edges = api(SERVICE_DAYS)["village"]["activities"]["edges"]
    return next(e["node"]["id"] for e in edges if e["node"]["title"] == "每月20日便民服务日")


def _occurrences(api: Api, activity: str) -> list[dict]:
    return api(SERVICE_DAY_SIGN_UPS, id=activity)["node"]["occurrences"]


def my_occurrence(api: Api, activity: str, resident: str) -> str | None:
    """The first occurrence where the resident holds a place."""
    return next(
        (
            o["id"]
            for o in _occurrences(api, activity)
            for s in o["signUps"]
            if s["resident"] and s["resident"]["id"] == resident and s["state"] == "SIGNED_UP"
        ),
        None,
    )


def checked_in(api: Api, activity: str, resident: str) -> bool:
    return any(
        s["checkedInAt"]
        for o in _occurrences(api, activity)
        for s in o["signUps"]
        if s["resident"] and s["resident"]["id"] == resident
    )


def check_accessible_after_toast(page: Page) -> None:
    """Vant's toast is a popup with role dialog and no name: axe once it has gone."""
    expect(page.locator(".van-toast")).to_be_hidden()
    check_accessible(page)


RESIDENT_WITH_HOUSEHOLD = """query($village: String!) { village(slug: $village) {
  residents(first: 10) { edges { node { id name household { id }
    idNumber(unmasked: true, reason: "浏览器测试核对")
    phone(unmasked: true, reason: "浏览器测试核对") } } } } }"""
PENDING = """query($village: String!) { village(slug: $village) {
  residentAccounts(first: 10, state: PENDING) { edges { node { id username } } } } }"""
APPROVE = """mutation($id: ID!) {
  approveResidentAccount(input: {id: $id, verification: "身份证原件核验"}) {
  residentAccount { state } userErrors { message } } }"""
NOTICES = """query($village: String!) { village(slug: $village) {
  notices(first: 30) { edges { node { id title visible readCount } } } } }"""
REQUESTS = """query($village: String!, $text: String!) { village(slug: $village) {
  requests(first: 5, filter: {text: $text}) { edges { node { channel state description
    category { name } location { text household { id } } reporter { name }
    photos { contentType size } } } } } }"""
REQUEST_ID = """query($village: String!, $text: String!) { village(slug: $village) {
  requests(first: 1, filter: {text: $text}) { edges { node { id } } } } }"""
ACCEPT = (
    """mutation($id: ID!) { step: acceptRequest(input: {id: $id}) { userErrors { message } } }"""
)
ASSIGN = (
    """mutation($id: ID!) { step: assignRequest(input: {id: $id}) { userErrors { message } } }"""
)
START = """mutation($id: ID!) { step: startRequest(input: {id: $id}) { userErrors { message } } }"""
RESOLVE = """mutation($id: ID!) { step: resolveRequest(input: {id: $id, resolution: "已清运"}) {
  userErrors { message } } }"""
BIND = """mutation($resident: ID!, $account: String!) { bindResidentAccount(input: {
  resident: $resident, account: $account, verification: "身份证原件核验"}) {
  residentAccount { state } userErrors { message } } }"""
CREATE_TEAM = """mutation($village: String!, $name: String!, $leader: ID!) {
  createVolunteerTeam(input: {village: $village, name: $name, leader: $leader}) {
    team { id } userErrors { message } } }"""
SERVICE_DAYS = """query($village: String!) { village(slug: $village) {
  activities(first: 10, filter: {kind: SERVICE_DAY, state: PUBLISHED}) { edges { node {
    id title } } } } }"""
SET_TEAM = """mutation($id: ID!, $team: ID!) { updateActivity(input: {id: $id, team: $team}) {
  userErrors { message } } }"""
SERVICE_DAY_SIGN_UPS = """query($id: ID!) { node(id: $id) { ... on Activity {
  occurrences { id signUps { state checkedInAt resident { id } } } } } }"""
POINTS = """query($id: ID!) { node(id: $id) { ... on Resident { pointsBalance } } }"""
MOVE = """mutation($id: ID!, $startsAt: DateTime!) { moveActivityOccurrence(input: {
  occurrence: $id, startsAt: $startsAt, reason: "因雨改期"}) { userErrors { field message } } }"""


def test_a_resident_is_verified_reads_a_notice_and_reports_a_problem_with_a_photo(
    phone: Page, browser_stack: Stack
):
    village = DEMO_VILLAGES[1].slug
    api = Api(browser_stack, village)
    person = api(RESIDENT_WITH_HOUSEHOLD)["village"]["residents"]["edges"][0]["node"]

    # 实名认证: the first time, the app asks who they are and waits for the village.
    login(phone, resident_account(village).username, DEMO_PASSWORD, app="h5")
    expect(phone).to_have_url(re.compile(r"/h5/verify"))
    phone.get_by_label("身份证号").fill(person["idNumber"])
    phone.get_by_label("手机号").fill(person["phone"])
    check_accessible(phone)
    shot(phone, "residents-verify")
    phone.get_by_role("button", name="提交认证").click()
    expect(phone.get_by_text("已提交，等待村务管理员审核")).to_be_visible()
    shot(phone, "residents-verify-pending")

    pending = api(PENDING)["village"]["residentAccounts"]["edges"]
    account = next(
        e["node"] for e in pending if e["node"]["username"] == resident_account(village).username
    )
    assert (
        api(APPROVE, id=account["id"])["approveResidentAccount"]["residentAccount"]["state"]
        == "BOUND"
    )
    phone.get_by_role("button", name="刷新审核状态").click()
    expect(phone).to_have_url(re.compile(r"/h5/home"))
    expect(
        phone.get_by_role("heading", name=re.compile(f"^{person['name']}，您好"))
    ).to_be_visible()

    # 首页: reading the newest notice counts toward the village's read count.
    newest = next(
        e["node"] for e in api(NOTICES)["village"]["notices"]["edges"] if e["node"]["visible"]
    )
    check_accessible(phone)
    shot(phone, "residents-home")
    phone.get_by_text(newest["title"]).first.click()
    dialog = phone.get_by_role("dialog", name=newest["title"])
    expect(dialog.get_by_text(f"{newest['readCount'] + 1} 人已读")).to_be_visible()
    shot(phone, "residents-notice")

    def read_count() -> int:
        notices = api(NOTICES)["village"]["notices"]["edges"]
        return next(e["node"]["readCount"] for e in notices if e["node"]["id"] == newest["id"])

    assert read_count() == newest["readCount"] + 1
    dialog.locator(".van-popup__close-icon").click()

    # 我要反映: category, words, place and a camera photo, shrunk before upload.
    phone.get_by_role("tab", name="反映问题").click()
    phone.get_by_label("问题分类").click()
    phone.get_by_role("tab", name="请选择").get_by_text("请选择").wait_for()
    phone.locator(".van-cascader__option", has_text="环境卫生").click()
    description = f"村口垃圾桶满了没人清运 {int(time.time())}"
    phone.get_by_label("问题描述").fill(description)
    phone.get_by_label("地点").fill("村口广场")
    phone.locator("input[type=file]").set_input_files(
        {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": camera_photo()}
    )
    expect(phone.get_by_role("img", name="照片 1")).to_be_visible()
    check_accessible(phone)
    shot(phone, "residents-report")
    phone.get_by_role("button", name="提交").click()
    expect(phone).to_have_url(re.compile(r"/h5/requests/"))
    expect(phone.get_by_text("已登记").first).to_be_visible()
    expect(phone.get_by_role("img", name="照片 1")).to_be_visible()
    check_accessible_after_toast(phone)
    shot(phone, "residents-request")

    # The village sees it: from the residents' app, at their household, with the photo,
    # shrunk on the phone to 1600 px (a few dozen KB instead of the camera's MB).
    found = api(REQUESTS, text=description)["village"]["requests"]["edges"]
    assert len(found) == 1
    request = found[0]["node"]
    assert request["channel"] == "MINI_PROGRAM" and request["state"] == "SUBMITTED"
    assert request["category"]["name"] == "环境卫生"
    assert request["location"]["text"] == "村口广场"
    assert request["location"]["household"]["id"] == person["household"]["id"]
    assert request["reporter"]["name"] == person["name"]
    [photo] = request["photos"]
    assert photo["contentType"] == "image/jpeg" and photo["size"] < len(camera_photo()) / 2

    # The village works it to 已办结; a rating of 2 sends it back (重新办理), as the rules say.
    for step in (ACCEPT, ASSIGN, START, RESOLVE):
        assert not api(step, id=found_id(api, description))["step"]["userErrors"]
    phone.reload()
    expect(phone.get_by_text("已办结").first).to_be_visible()
    phone.locator(".van-rate__item").nth(1).click()
    phone.get_by_label("评价说明（选填）").fill("垃圾桶还是满的")
    shot(phone, "residents-rate")
    phone.get_by_role("button", name="评价").click()
    expect(phone.get_by_text("已退回重新办理")).to_be_visible()
    assert api(REQUESTS, text=description)["village"]["requests"]["edges"][0]["node"]["state"] == (
        "REOPENED"
    )

    # The staff console has no screen for a resident: its sign-in sends them to their app.
    phone.goto("/console/")
    phone.wait_for_url(re.compile(r"/protocol/openid-connect/auth"))
    phone.get_by_label("用户名").fill(resident_account(village).username)
    phone.get_by_label("密码").fill(DEMO_PASSWORD)
    phone.get_by_role("button", name="登录").click()
    expect(phone.get_by_text("居民账号请在居民端登录。")).to_be_visible()


def test_a_resident_checks_in_at_the_service_day_moved_to_today(
    browser: Browser, phone: Page, browser_stack: Stack
):
    village = DEMO_VILLAGES[0].slug
    api = Api(browser_stack, village)
    people = api(RESIDENT_WITH_HOUSEHOLD)["village"]["residents"]["edges"]
    person, leader = people[0]["node"], people[1]["node"]
    account = resident_account(village)
    bound = api(BIND, resident=person["id"], account=account.subject)["bindResidentAccount"]
    assert bound["residentAccount"]["state"] == "BOUND", bound
    # The service day is run by a volunteer team whose leader has the app too.
    leader_sub, leader_name, leader_password = another_resident_login(
        browser_stack, village, "队长"
    )
    assert api(BIND, resident=leader["id"], account=leader_sub)["bindResidentAccount"][
        "residentAccount"
    ]
    team = api(CREATE_TEAM, name=f"便民服务队{int(time.time())}", leader=leader["id"])
    service_day = service_day_activity(api)
    organised = api(SET_TEAM, id=service_day, team=team["createVolunteerTeam"]["team"]["id"])
    assert not organised["updateActivity"]["userErrors"], organised

    # The 20th's service day (每月20日便民服务日): a place at its next occurrence.
    login(phone, account.username, DEMO_PASSWORD, app="h5")
    phone.get_by_role("tab", name="活动").click()
    phone.locator(".van-dropdown-menu__item").click()
    phone.locator(".van-dropdown-item__option", has_text="便民服务日").click()
    card = phone.get_by_role("article", name="每月20日便民服务日")
    card.get_by_role("button", name="报名").first.click()
    # 为谁报名: the household's members without a place; the resident chooses themselves.
    phone.locator(".van-action-sheet").get_by_role("button", name=person["name"]).click()
    expect(card.locator(".sign-up", has_text=person["name"]).get_by_text("已报名")).to_be_visible()
    check_accessible_after_toast(phone)
    shot(phone, "residents-service-day")

    # Rain on the day: the village moves that occurrence to today, starting within the
    # hour (check-in opens an hour before); the resident keeps the place.
    occurrence = settle(lambda: my_occurrence(api, service_day, person["id"]))
    assert occurrence, "the sign-up did not reach the village"
    starts = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=20)
    moved = api(MOVE, id=occurrence, startsAt=starts.isoformat())["moveActivityOccurrence"]
    assert not moved["userErrors"], moved
    assert my_occurrence(api, service_day, person["id"]) == occurrence

    # On the day the team's leader shows the code (签到码) on their own phone.
    with opened(browser, browser_stack, phone=True) as theirs:
        login(theirs, leader_name, leader_password, app="h5")
        theirs.get_by_role("tab", name="活动").click()
        theirs.get_by_text("出示签到码（队长）").click()
        shown = theirs.get_by_role("article", name="每月20日便民服务日")
        shown.get_by_role("button", name="生成签到码").click()
        code_shown = shown.locator("[data-test=check-in-code]")
        expect(code_shown).to_have_text(re.compile(r"^\d{6}$"))
        code = code_shown.inner_text()
        check_accessible_after_toast(theirs)
        shot(theirs, "residents-leader-check-in-code")

    # The resident types it. A wrong one is refused beside the field, checking nobody in.
    phone.reload()
    phone.locator(".van-dropdown-menu__item").click()
    phone.locator(".van-dropdown-item__option", has_text="便民服务日").click()
    expect(card.get_by_text("已改期").first).to_be_visible()
    expect(phone.locator(".van-dropdown-item__content")).to_be_hidden()  # the menu closed
    shot(phone, "residents-activities")
    card.get_by_role("button", name="现场签到").click()
    dialog = phone.get_by_role("dialog", name="现场签到")
    dialog.get_by_label("签到码").fill(str((int(code) + 1) % 10**6).zfill(6))
    dialog.get_by_role("button", name="现场签到").click()
    expect(dialog.get_by_text(re.compile("签到码不正确，还可再试4次"))).to_be_visible()
    check_accessible(phone)
    shot(phone, "residents-check-in-code")
    dialog.get_by_label("签到码").fill(code)
    expect(dialog.get_by_text(re.compile("签到码不正确"))).to_have_count(0)
    dialog.get_by_role("button", name="现场签到").click()
    expect(card.get_by_text("已签到")).to_be_visible()
    assert settle(lambda: checked_in(api, service_day, person["id"]))

    # Points and hours, as the village keeps them (a service day earns none by the rules:
    # only volunteer service does, tests/test_activities.py).
    balance = api(POINTS, id=person["id"])["node"]["pointsBalance"]
    phone.get_by_text("积分与志愿时长").click()
    expect(phone.locator(".figure").first).to_have_text(f"{balance:,}")
    shot(phone, "residents-points")

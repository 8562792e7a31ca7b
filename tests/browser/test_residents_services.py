"""The residents' app (/h5/) at 390x844, two more journeys: a resident orders a service in
a free slot, the village dispatches it to a volunteer team whose leader accepts and
completes it on their own phone (队长接单), and the resident rates it (群众评单); and a report
written without a network survives a reload and is sent once the phone is back online."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser, Page, expect

from villagelink.tenants.demo.accounts import DEMO_PASSWORD, DemoAccount
from villagelink.tenants.demo.plans import DEMO_VILLAGES

from .conftest import Stack, check_accessible, login, opened, shot
from .test_residents import (
    BIND,
    CREATE_TEAM,
    RESIDENT_WITH_HOUSEHOLD,
    Api,
    another_resident_login,
    check_accessible_after_toast,
    resident_account,
    settle,
)

SERVICE_ITEMS = """query($village: String!) { village(slug: $village) {
  serviceItems(first: 1) { edges { node { id name } } } } }"""
CREATE_SLOT = """mutation($item: ID!, $startsAt: DateTime!, $endsAt: DateTime!) {
  createServiceSlot(input: {item: $item, startsAt: $startsAt, endsAt: $endsAt, capacity: 2}) {
    serviceSlot { id } userErrors { message } } }"""
ORDERS = """query($village: String!, $resident: ID!) { village(slug: $village) {
  serviceOrders(first: 20, filter: {resident: $resident}) { edges { node {
    id state rating slot { id } } } } } }"""
DISPATCH = """mutation($order: ID!, $team: ID!) {
  dispatchServiceOrder(input: {order: $order, team: $team}) {
    serviceOrder { state } userErrors { message } } }"""
BOUND_ACCOUNTS = """query($village: String!) { village(slug: $village) {
  residentAccounts(first: 50, state: BOUND) { edges { node { account } } } } }"""
REQUESTS = """query($village: String!, $text: String!) { village(slug: $village) {
  requests(first: 5, filter: {text: $text}) { edges { node { description channel } } } } }"""


# A village no other browser test binds a resident of; both tests here use its demo resident.
VILLAGE = DEMO_VILLAGES[4].slug


def app_resident(api: Api) -> tuple[dict, DemoAccount]:
    """The village's demo resident account, bound to its first resident by the admin
    through the API, once a run whichever test here comes first."""
    person = api(RESIDENT_WITH_HOUSEHOLD)["village"]["residents"]["edges"][0]["node"]
    account = resident_account(VILLAGE)
    accounts = api(BOUND_ACCOUNTS)["village"]["residentAccounts"]["edges"]
    if account.subject not in {e["node"]["account"] for e in accounts}:
        bound = api(BIND, resident=person["id"], account=account.subject)["bindResidentAccount"]
        assert bound["residentAccount"]["state"] == "BOUND", bound
    return person, account


def test_a_resident_orders_a_service_a_team_leader_accepts_and_completes_it(
    browser: Browser, phone: Page, browser_stack: Stack
):
    village = VILLAGE
    api = Api(browser_stack, village)
    me, account = app_resident(api)
    leader = api(RESIDENT_WITH_HOUSEHOLD)["village"]["residents"]["edges"][1]["node"]
    leader_sub, leader_name, leader_password = another_resident_login(
        browser_stack, village, "队长"
    )
    assert api(BIND, resident=leader["id"], account=leader_sub)["bindResidentAccount"][
        "residentAccount"
    ]
    team = api(CREATE_TEAM, name=f"上门维修队{int(time.time())}", leader=leader["id"])
    team_id = team["createVolunteerTeam"]["team"]["id"]
    item = api(SERVICE_ITEMS)["village"]["serviceItems"]["edges"][0]["node"]
    starts = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    slot = api(
        CREATE_SLOT,
        item=item["id"],
        startsAt=starts.isoformat(),
        endsAt=(starts + timedelta(hours=1)).isoformat(),
    )["createServiceSlot"]["serviceSlot"]["id"]

    # 基层点单: the resident books the free slot.
    login(phone, account.username, DEMO_PASSWORD, app="h5")
    phone.get_by_role("tab", name="服务").click()
    shown_at = (starts + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")  # village time
    free = phone.locator(".van-cell", has_text=item["name"]).filter(has_text=shown_at)
    free.get_by_role("button", name="预约").click()
    phone.get_by_role("button", name="预约").last.click()
    expect(phone.get_by_text("已预约，等待派单")).to_be_visible()

    def order() -> dict | None:
        edges = api(ORDERS, resident=me["id"])["village"]["serviceOrders"]["edges"]
        return next((e["node"] for e in edges if e["node"]["slot"]["id"] == slot), None)

    placed = settle(order)
    assert placed and placed["state"] == "ORDERED"
    # 中心派单: the village gives it to the team.
    dispatched = api(DISPATCH, order=placed["id"], team=team_id)["dispatchServiceOrder"]
    assert dispatched["serviceOrder"]["state"] == "DISPATCHED", dispatched

    # 志愿组织接单: the team's leader, on their own phone.
    with opened(browser, browser_stack, phone=True) as theirs:
        login(theirs, leader_name, leader_password, app="h5")
        theirs.get_by_role("tab", name="服务").click()
        theirs.get_by_text("队长接单").click()
        card = theirs.get_by_role("article", name=item["name"]).first
        card.get_by_role("button", name="接单").click()
        expect(card.get_by_text("已接单").first).to_be_visible()
        check_accessible_after_toast(theirs)
        shot(theirs, "residents-team-orders")
        card.get_by_role("button", name="服务完成").click()
        expect(card.get_by_role("button", name="服务完成")).to_be_hidden()
    assert settle(lambda: (order() or {}).get("state") == "COMPLETED")

    # 群众评单: the resident rates it.
    phone.reload()
    phone.get_by_role("tab", name="我的预约").click()
    phone.get_by_role("button", name="评价").first.click()
    sheet = phone.locator(".van-popup--bottom", has_text="评价")
    sheet.locator(".van-rate__item").nth(4).click()
    sheet.get_by_role("button", name="评价").click()
    expect(phone.get_by_text("已评价，谢谢")).to_be_visible()
    rated = settle(lambda: (order() or {}).get("rating"))
    assert rated == 5
    check_accessible_after_toast(phone)
    shot(phone, "residents-services-rated")


def test_a_report_written_offline_is_kept_and_sent_once_online(phone: Page, browser_stack: Stack):
    api = Api(browser_stack, VILLAGE)
    _person, account = app_resident(api)
    login(phone, account.username, DEMO_PASSWORD, app="h5")
    phone.get_by_role("tab", name="反映问题").click()
    # Seen once online: the app shell and the categories are on the phone now.
    expect(phone.get_by_label("问题分类")).to_be_visible()

    phone.context.set_offline(True)
    phone.get_by_label("问题分类").click()
    phone.get_by_role("tab", name="请选择").get_by_text("请选择").wait_for()
    phone.locator(".van-cascader__option", has_text="环境卫生").click()
    description = f"路灯不亮，晚上看不清路 {int(time.time())}"
    phone.get_by_label("问题描述").fill(description)
    phone.get_by_role("button", name="提交").click()
    expect(phone.get_by_text("当前离线，已保存在手机上，联网后自动提交")).to_be_visible()

    # Reloaded without a network: the report is still on the phone, waiting.
    phone.reload()
    expect(phone.get_by_text(re.compile(r"待发送（1）"))).to_be_visible()
    expect(phone.get_by_text(description)).to_be_visible()
    shot(phone, "residents-offline-outbox")

    phone.context.set_offline(False)

    def arrived() -> list:
        return api(REQUESTS, text=description)["village"]["requests"]["edges"]

    sent = settle(arrived, timeout=20)
    assert [e["node"] for e in sent] == [{"description": description, "channel": "MINI_PROGRAM"}]
    expect(phone.get_by_text(re.compile(r"待发送"))).to_be_hidden()
    check_accessible(phone)

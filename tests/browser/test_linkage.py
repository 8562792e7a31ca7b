"""The grid worker's phone, the five-village linkage screens and the coordinator's overview in
a real browser against the real stack: an alert raised through the device ingest API reaches
the grid worker's open phone (live) and is acknowledged and resolved there; two village
admins, each in their own browser, revoke, propose and accept an agreement and the
neighbour's feed follows it; the coordinator's charts show the figures the API returns."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import requests
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import insert

from villagelink.platform import models as pm
from villagelink.platform.db import Database
from villagelink.platform.identity.accounts import hash_secret
from villagelink.platform.settings import load_settings
from villagelink.tenants.demo.accounts import DEMO_PASSWORD

from ..processes import VILLAGELINK
from .conftest import Stack, check_accessible, login, new_context, shot

# What a device of each kind reports when something happens (as the device simulator does).
INCIDENTS = {
    "MMWAVE_RADAR": "fall",
    "WRISTBAND": "sos",
    "AI_CAMERA": "fall",
    "SMOKE_SENSOR": "smoke",
    "FIRE_LANE_SENSOR": "fire_lane_blocked",
}
# How long signing in and opening the live stream may take on a busy machine.
LIVE_WITHIN_MS = 60_000
# How long the sync may take to carry a change to a neighbour (seconds after the commit).
SYNC_WITHIN = 60


def api_token(stack: Stack, *scope: str) -> str:
    """A bearer token from the stack's own development issuer (`villagelink token`)."""
    return subprocess.check_output(
        [VILLAGELINK, "token", *scope], env=stack.platform.env, text=True, timeout=60
    ).strip()


def gql(stack: Stack, token: str, query: str, variables: dict | None = None) -> dict:
    answer = requests.post(
        stack.url + "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


WORKER_DEVICES = """query { devices(village: "liulin", first: 100) {
  edges { node { id kind } } } }"""
INGEST = """mutation($input: IngestDeviceEventsInput!) { ingestDeviceEvents(input: $input) {
  accepted alerts userErrors { message } itemErrors { message } } }"""
WORKER_ALERTS = """query { village(slug: "liulin") {
  alerts(first: 50, state: [OPEN, ASSIGNED, ACKNOWLEDGED, RESOLVED]) {
    edges { node { id state summary outcome device { id } } } } } }"""


def worker_alert(stack: Stack, token: str, device: str) -> dict | None:
    edges = gql(stack, token, WORKER_ALERTS)["village"]["alerts"]["edges"]
    return next((e["node"] for e in edges if (e["node"]["device"] or {}).get("id") == device), None)


def test_an_alert_from_a_device_is_acknowledged_and_resolved_on_the_grid_workers_phone(
    phone: Page, browser_stack: Stack
):
    worker = api_token(browser_stack, "--role", "grid-worker", "--village", "liulin")
    integrator = api_token(browser_stack, "--role", "integrator", "--client", "demo-integrator")
    # A device in the grid worker's own grids (the API shows a grid worker no other).
    devices = gql(browser_stack, worker, WORKER_DEVICES)["devices"]["edges"]
    device = next(e["node"] for e in devices if e["node"]["kind"] in INCIDENTS)

    # Signed in, the alerts tab subscribes to the live process: once that stream is open,
    # what commits from now on reaches the phone.
    with phone.expect_response(lambda r: "/graphql/stream" in r.url, timeout=LIVE_WITHIN_MS):
        login(phone, "grid-worker-liulin", DEMO_PASSWORD)
    expect(phone).to_have_url(re.compile(r"/console/grid/alerts"))
    expect(phone.get_by_role("tab", name="预警")).to_be_visible()

    # The device platform reports an incident through the public ingest API.
    event = {
        "device": device["id"],
        "eventId": f"browser-{uuid.uuid4()}",
        "kind": INCIDENTS[device["kind"]],
        "occurredAt": datetime.now(UTC).isoformat(),
    }
    sent = gql(browser_stack, integrator, INGEST, {"input": {"events": [event]}})
    assert sent["ingestDeviceEvents"]["accepted"] == 1, sent
    alert = worker_alert(browser_stack, worker, device["id"])
    assert alert is not None and alert["state"] in ("ASSIGNED", "OPEN"), alert

    # Live: the card appears without reloading, with its summary and a big 确认.
    card = phone.locator(f'[data-alert="{alert["id"]}"]')
    expect(card).to_contain_text(alert["summary"])
    check_accessible(phone)
    shot(phone, "grid-alerts")
    card.get_by_role("button", name="确认").click()
    expect(phone.get_by_text("已确认，请尽快到场处置")).to_be_visible()
    expect(card.get_by_role("button", name="处置")).to_be_visible()
    assert worker_alert(browser_stack, worker, device["id"])["state"] == "ACKNOWLEDGED"

    # 处置: an empty outcome is refused beside the field, then the outcome is kept.
    card.get_by_role("button", name="处置").click()
    dialog = phone.get_by_role("dialog")
    dialog.get_by_role("button", name="确认").click()
    expect(dialog.locator(".van-field__error-message")).not_to_be_empty()
    dialog.get_by_label("处置结果").fill("已到场查看，老人无碍，家属陪同")
    # The refusal was of the empty outcome: written, it no longer stands.
    expect(dialog.locator(".van-field__error-message")).to_have_count(0)
    # 已确认's toast gave way to the dialog it led to.
    expect(phone.locator(".van-toast")).to_be_hidden()
    shot(phone, "grid-alert-resolve")
    dialog.get_by_role("button", name="确认").click()
    expect(card).to_have_count(0)
    resolved = worker_alert(browser_stack, worker, device["id"])
    assert resolved["state"] == "RESOLVED"
    assert resolved["outcome"] == "已到场查看，老人无碍，家属陪同"


# A real 1x1 PNG (the API reads an upload's type from its bytes).
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
PHOTOS = """query { village(slug: "liulin") { requests(first: 100, filter: {text: "%s"}) {
  edges { node { description channel photos { contentType } } } } } }"""


def test_the_grid_worker_registers_a_request_with_a_photo_and_sees_residents_and_duty(
    phone: Page, browser_stack: Stack, tmp_path: Path
):
    login(phone, "grid-worker-liulin", DEMO_PASSWORD)
    phone.get_by_role("tab", name="诉求").click()
    phone.get_by_role("button", name="登记诉求").click()
    phone.get_by_role("button", name="提交").click()
    # Refused by the API, in Chinese, beside the field it names.
    expect(phone.locator(".van-field__error-message").first).not_to_be_empty()

    described = f"路灯不亮，夜里看不清台阶 {uuid.uuid4().hex[:6]}"
    phone.get_by_label("分类").click()
    phone.locator(".van-picker__confirm").click()
    expect(phone.locator(".van-picker")).to_have_count(0)
    phone.get_by_label("问题描述").fill(described)
    phone.get_by_label("地点").fill("1号楼东侧路口")
    phone.get_by_label("反映人").fill("王大爷")
    # Each refused field, once changed, is no longer marked before the form is sent again.
    expect(phone.locator(".van-field__error-message")).to_have_count(0)
    photo = tmp_path / "现场.png"
    photo.write_bytes(PIXEL)
    phone.locator(".van-uploader__input").set_input_files(photo)
    expect(phone.get_by_role("img", name="现场照片 1")).to_be_visible()
    expect(phone.locator(".van-list [aria-busy=true]")).to_have_count(0)
    check_accessible(phone)
    shot(phone, "grid-request-register")
    phone.get_by_role("button", name="提交").click()
    expect(phone.get_by_text("诉求已登记")).to_be_visible()
    card = phone.locator("[data-request]", has_text=described)
    expect(card).to_be_visible()
    expect(card.get_by_role("img")).to_have_count(1)
    expect(phone.locator(".van-list [aria-busy=true]")).to_have_count(0)
    # Vant's toast is a dialog without a name: checked once it has gone.
    expect(phone.locator(".van-toast")).to_be_hidden()
    check_accessible(phone)
    shot(phone, "grid-requests")
    worker = api_token(browser_stack, "--role", "grid-worker", "--village", "liulin")
    edges = gql(browser_stack, worker, PHOTOS % described)["village"]["requests"]["edges"]
    assert [e["node"]["channel"] for e in edges] == ["GRID_WORKER"]
    assert [p["contentType"] for p in edges[0]["node"]["photos"]] == ["image/png"]

    phone.goto("/console/grid/residents")
    expect(phone.locator(".van-cell").first).to_be_visible()
    check_accessible(phone)
    shot(phone, "grid-residents")
    phone.get_by_role("tab", name="我的").click()
    expect(phone.get_by_text("我的值班")).to_be_visible()
    # The demo grid worker's login is linked to a staff record: its name and grids show.
    expect(phone.get_by_text("负责网格")).to_be_visible()
    check_accessible(phone)
    shot(phone, "grid-me")


FEED = """query($slug: String!) { village(slug: $slug) {
  neighbourFeed(first: 100, types: [SHARED_RESOURCE]) {
    edges { node { origin { slug } ... on NeighbourResource { name contactPhone } } } } } }"""


def liulin_resources(stack: Stack, token: str) -> list[dict]:
    edges = gql(stack, token, FEED, {"slug": "xinghua"})["village"]["neighbourFeed"]["edges"]
    return [e["node"] for e in edges if e["node"]["origin"]["slug"] == "liulin"]


def until(condition, what: str) -> None:
    deadline = time.monotonic() + SYNC_WITHIN
    while not condition():
        assert time.monotonic() < deadline, f"not within {SYNC_WITHIN} s: {what}"
        time.sleep(1)


def test_two_admins_agree_in_their_browsers_and_the_neighbours_feed_follows(
    desktop: Page, browser: Browser, browser_stack: Stack
):
    xinghua = api_token(browser_stack, "--role", "village-admin", "--village", "xinghua")
    assert liulin_resources(browser_stack, xinghua), "the demo shares resources with neighbours"

    # 柳林村's admin revokes the demo's neighbour agreement with 杏花村.
    login(desktop, "village-admin-liulin", DEMO_PASSWORD)
    desktop.goto("/console/admin/linkage/agreements")
    table = desktop.get_by_test_id("agreements")
    row = table.locator("tr.el-table__row", has_text="杏花村").filter(has_text="相邻村")
    row.get_by_role("button", name="撤回").click()
    desktop.get_by_role("dialog").get_by_label("原因").fill("重新约定共享字段")
    desktop.get_by_role("dialog").get_by_role("button", name="撤回").click()
    expect(desktop.get_by_text("已共享的数据将在一个同步周期内撤回")).to_be_visible()
    until(lambda: not liulin_resources(browser_stack, xinghua), "the copies are withdrawn")

    # ...and proposes a narrower one: resources' names, kinds and places, no phone numbers.
    desktop.get_by_role("button", name="发起协议").click()
    drawer = desktop.get_by_role("dialog", name="发起协议")
    # The drawer slides in; Element Plus's select keeps moving with it until it is open.
    expect(drawer).to_be_visible()
    drawer.get_by_label("对方村").click(force=True)
    desktop.get_by_role("option", name="杏花村").click()
    drawer.get_by_label("共享目的").fill("共享应急资源目录，便于就近调用")
    picker = drawer.get_by_test_id("field-picker")
    resources = picker.locator(".el-card", has_text="共享资源")
    for field in ("类别", "名称/姓名", "地点"):
        resources.get_by_text(field, exact=True).click()
    check_accessible(desktop)
    shot(desktop, "admin-agreement-propose")
    drawer.get_by_role("button", name="发起协议").click()
    expect(desktop.get_by_text("协议已发起，等待对方答复")).to_be_visible()
    proposed = table.locator("tr.el-table__row", has_text="共享应急资源目录")
    expect(proposed).to_contain_text("待答复")

    # 杏花村's admin, in a browser of their own, accepts it.
    other = new_context(browser, browser_stack, phone=False)
    try:
        neighbour = other.new_page()
        login(neighbour, "village-admin-xinghua", DEMO_PASSWORD)
        neighbour.goto("/console/admin/linkage/agreements")
        waiting = neighbour.get_by_test_id("agreements").locator(
            "tr.el-table__row", has_text="共享应急资源目录"
        )
        waiting.get_by_role("button", name="同意").click()
        neighbour.get_by_role("dialog").get_by_role("button", name="同意").click()
        expect(neighbour.get_by_text("已同意，协议生效")).to_be_visible()
        expect(waiting).to_contain_text("生效中")
        until(lambda: liulin_resources(browser_stack, xinghua), "the shared copies arrive")
        shared = liulin_resources(browser_stack, xinghua)
        assert all(r["name"] and r["contactPhone"] is None for r in shared), shared

        # The neighbour's feed shows 柳林村's resources, their phone numbers not shared.
        neighbour.goto("/console/admin/linkage/feed")
        feed = neighbour.get_by_test_id("neighbour-feed")
        row = feed.locator("tr.el-table__row", has_text=shared[0]["name"])
        expect(row).to_contain_text("柳林村")
        expect(row).to_contain_text("联系人：—")
        check_accessible(neighbour)
        shot(neighbour, "admin-neighbour-feed")
        neighbour.goto("/console/admin/linkage/exchange-log")
        log = neighbour.get_by_test_id("exchange-log")
        expect(log).to_contain_text("柳林村")
        # A withdrawal's reason in Chinese, not as the sync writes it for the API; what
        # each entry did, in Chinese too.
        expect(log).not_to_contain_text("no agreement in force")
        expect(log.locator(".el-tag").filter(has_text="发布").first).to_be_visible()
        shot(neighbour, "admin-exchange-log")
    finally:
        other.close()


REGION = """query { region(id: "nanhe") { stats { villages { village { name } stats {
  residents requestsOpenByCategory { count } requestsOverdueByCategory { count } } } } } }"""


def test_the_coordinators_charts_show_the_figures_the_api_returns(
    desktop: Page, browser_stack: Stack
):
    coordinator = api_token(browser_stack, "--role", "regional-coordinator", "--region", "nanhe")
    villages = gql(browser_stack, coordinator, REGION)["region"]["stats"]["villages"]
    published = [v for v in villages if v["stats"] is not None]
    assert published

    login(desktop, "regional-coordinator-nanhe", DEMO_PASSWORD)
    expect(desktop).to_have_url(re.compile(r"/console/region/overview"))
    requests_table = desktop.get_by_test_id("requests-by-village").locator("tbody tr")
    expect(requests_table).to_have_count(len(published))
    comparison = desktop.get_by_test_id("comparison")
    for index, village in enumerate(published):
        stats = village["stats"]
        overdue = sum(c["count"] for c in stats["requestsOverdueByCategory"])
        open_ = sum(c["count"] for c in stats["requestsOpenByCategory"])
        cells = requests_table.nth(index).locator("td")
        expect(cells).to_have_text([village["village"]["name"], str(open_ - overdue), str(overdue)])
        row = comparison.locator("tbody tr", has_text=village["village"]["name"])
        expect(row.locator("td").nth(1)).to_have_text(f"{stats['residents']:,}")
    # The region's screens show the whole region: no village to switch to.
    expect(desktop.locator(".village-switch")).to_have_count(0)
    # 导出 Excel: the same figures as a file, offered once made.
    desktop.get_by_test_id("export").click()
    link = desktop.get_by_test_id("export-download")
    expect(link).to_contain_text("片区统计-nanhe-")
    book = openpyxl.load_workbook(
        io.BytesIO(requests.get(link.get_attribute("href") or "", timeout=30).content)
    )
    assert [row[0] for row in book["诉求（按村）"].values][1:] == [
        v["village"]["name"] for v in published
    ]
    desktop.mouse.move(0, 0)
    expect(desktop.locator(".el-message")).to_have_count(0)
    check_accessible(desktop)
    shot(desktop, "region-overview")

    for path, name in (
        ("alerts", "region-shared-alerts"),
        ("joint-cases", "region-joint-cases"),
        ("escalated-requests", "region-escalated-requests"),
        ("agreements", "region-agreements"),
    ):
        desktop.goto(f"/console/region/{path}")
        expect(desktop.get_by_role("heading", level=1)).to_be_visible()
        desktop.wait_for_load_state("networkidle")
        check_accessible(desktop)
        shot(desktop, name)


CREATE_REGION = """mutation($input: CreateRegionInput!) { createRegion(input: $input) {
  region { id } userErrors { message } } }"""


def test_a_coordinator_of_two_regions_switches_between_them(desktop: Page, browser_stack: Stack):
    """The region's screens show the chosen village's region: a coordinator of two chooses
    the region in the header, and every region screen follows."""
    admin = api_token(browser_stack, "--role", "platform-admin")
    made = gql(
        browser_stack, admin, CREATE_REGION, {"input": {"id": "beishan", "name": "北山片区"}}
    )
    assert made["createRegion"]["userErrors"] == []
    subprocess.run(
        [VILLAGELINK, "tenants", "create", "shanxia", "--name", "山下村", "--region", "beishan"],
        env=browser_stack.platform.env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    db = Database(load_settings(browser_stack.platform.env).database_direct_url)
    try:
        with db.platform() as conn:
            conn.execute(
                insert(pm.dev_accounts).values(
                    sub=str(uuid.uuid4()),
                    username="coordinator-nanhe-beishan",
                    name="两片区协调员",
                    password_hash=hash_secret(DEMO_PASSWORD),
                    roles=["regional-coordinator"],
                    regions=["nanhe", "beishan"],
                )
            )
    finally:
        db.dispose()

    login(desktop, "coordinator-nanhe-beishan", DEMO_PASSWORD)
    expect(desktop).to_have_url(re.compile(r"/console/region/overview"))
    heading = desktop.get_by_role("heading", level=1)
    expect(heading).to_contain_text("南河联动片区")
    switch = desktop.locator(".region-switch")
    expect(switch).to_be_visible()
    switch.click()
    desktop.get_by_role("option", name="北山片区").click()
    expect(heading).to_contain_text("北山片区")
    # Its one village, and none of the other region's.
    comparison = desktop.get_by_test_id("comparison")
    expect(comparison.locator("tbody tr")).to_have_count(1)
    expect(comparison.locator("tbody tr")).to_contain_text("山下村")
    # The other region screens show the chosen region too, and it stays chosen there.
    desktop.goto("/console/region/joint-cases")
    expect(desktop.locator(".region-switch")).to_contain_text("北山片区")
    desktop.mouse.move(0, 0)
    check_accessible(desktop)
    shot(desktop, "region-switch")

"""The village admin's daily work in a real browser: a request registered, assigned and
closed on the 诉求 screens; an alert raised by a device platform appearing in the open
alert feed without a reload, then acknowledged and resolved; every screen of the area
accessible (axe-core) and kept as a screenshot."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests
from playwright.sync_api import Locator, Page, expect

from villagelink.platform.identity.dev_issuer import mint_for_role
from villagelink.platform.settings import load_settings
from villagelink.platform.simulator import INGEST_EVENTS, GraphQLClient, TokenSource, list_devices
from villagelink.tenants.demo.accounts import DEMO_PASSWORD

from .conftest import Stack, check_accessible, login, shot

# The demo device platform runs devices in liulin (DEMO_CLIENT_VILLAGES).
VILLAGE = "liulin"
ADMIN = f"village-admin-{VILLAGE}"
# Device kinds and an event of theirs that raises an alert (platform/simulator.py's incidents).
ALARMS = {"SMOKE_SENSOR": "smoke", "GAS_SENSOR": "gas", "MMWAVE_RADAR": "fall", "WRISTBAND": "sos"}
LIVE_WITHIN_MS = 2_000


def api(stack: Stack, document: str, variables: dict) -> dict:
    """The API as the village admin sees it, to check what the screens did."""
    settings = load_settings(stack.platform.env)
    token = mint_for_role(settings, "village-admin", village=VILLAGE)
    response = requests.post(
        f"{stack.url}/graphql",
        json={"query": document, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def settle(page: Page) -> None:
    """The screen at rest for axe and the screenshot: the pointer off the last button
    clicked (a hovered button is paler) and the success messages gone (one fading out is
    half transparent)."""
    page.mouse.move(0, 0)
    expect(page.locator(".el-message")).to_have_count(0)


def choose(page: Page, scope: Page | Locator, label: str, option: str) -> None:
    """Pick `option` in the el-select labelled `label` inside `scope`."""
    scope.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def staffed_grid(stack: Stack) -> dict:
    """A grid of the village with its staff (a request placed there can go to them)."""
    grids = api(
        stack,
        "query($v:String!){village(slug:$v){grids(first:100){edges{node{"
        "id name staff{id name}}}}}}",
        {"v": VILLAGE},
    )["village"]["grids"]["edges"]
    return next(edge["node"] for edge in grids if edge["node"]["staff"])


@pytest.fixture
def admin(desktop: Page) -> Page:
    login(desktop, ADMIN, DEMO_PASSWORD)
    return desktop


def test_the_admin_registers_assigns_and_closes_a_request(admin: Page, browser_stack: Stack):
    page = admin
    page.goto("/console/admin/requests")
    expect(page.get_by_role("heading", name="诉求")).to_be_visible()
    expect(page.locator(".board .column").first).to_be_visible()
    settle(page)
    check_accessible(page)
    shot(page, "admin-requests-board")

    grid = staffed_grid(browser_stack)
    worker = grid["staff"][0]
    description = f"村口路灯不亮 {uuid.uuid4().hex[:6]}"
    page.get_by_role("button", name="登记诉求").click()
    drawer = page.get_by_role("dialog", name="登记诉求")
    drawer.get_by_label("分类").click()
    page.locator(".el-select-dropdown__item:visible").first.click()
    drawer.get_by_label("诉求内容").fill(description)
    choose(page, drawer, "网格", grid["name"])
    drawer.get_by_label("地点描述").fill("村口")
    drawer.get_by_label("反映人姓名").fill("张大爷")
    drawer.get_by_label("联系电话").fill("123")
    drawer.get_by_role("button", name="保存").click()
    # The API's refusal, in Chinese, beside the field it names; nothing was written.
    expect(
        drawer.locator(".el-form-item", has_text="联系电话").locator(".el-form-item__error")
    ).to_contain_text("电话号码格式不正确")
    page.wait_for_timeout(400)  # the message's fade-in, for axe to see its final colour
    settle(page)
    check_accessible(page)
    shot(page, "admin-request-register-refused")
    drawer.get_by_label("联系电话").fill("13800138000")
    drawer.get_by_role("button", name="保存").click()
    expect(page.get_by_text("诉求已登记")).to_be_visible()

    # The table finds it by its words; its detail walks it through every step.
    page.locator(".el-radio-button", has_text="列表").click()
    page.get_by_label("搜索", exact=True).fill(description)
    page.get_by_label("搜索", exact=True).press("Enter")
    expect(page.locator(".el-table__row")).to_have_count(1)
    settle(page)
    check_accessible(page)
    shot(page, "admin-requests-table")
    page.locator(".el-table__row").get_by_text(description).click()
    detail = page.get_by_role("dialog", name="详情")
    expect(detail.get_by_text("已登记", exact=True)).to_be_visible()

    def step(action: str, fill: dict[str, str] | None = None, assignee: str | None = None):
        detail.get_by_role("button", name=action, exact=True).click()
        dialog = page.get_by_role("dialog", name=action)
        for label, value in (fill or {}).items():
            dialog.get_by_label(label).fill(value)
        if assignee:
            choose(page, dialog, "派给", assignee)
        dialog.get_by_role("button", name="确定").click()
        expect(page.get_by_text(f"已完成：{action}")).to_be_visible()
        expect(dialog).to_be_hidden()

    step("受理")
    step("派单", assignee=worker["name"])
    step("开始办理")
    # Resolving without the outcome is stopped beside the field.
    detail.get_by_role("button", name="办结", exact=True).click()
    resolve = page.get_by_role("dialog", name="办结")
    resolve.get_by_role("button", name="确定").click()
    expect(resolve.locator(".el-form-item__error")).to_have_text("请填写办理结果")
    resolve.get_by_role("button", name="取消").click()
    step("办结", {"办理结果": "已更换灯泡，恢复照明"})
    step("结案")
    expect(detail.get_by_text("已结案", exact=True).first).to_be_visible()
    expect(detail.locator(".el-timeline-item")).to_have_count(6)
    settle(page)
    check_accessible(page)
    shot(page, "admin-request-detail")

    found = api(
        browser_stack,
        "query($v:String!,$t:String){village(slug:$v){requests(first:2,filter:{text:$t}){edges{node{"
        "state resolution assignee{id} reporter{name} timeline{action}}}}}}",
        {"v": VILLAGE, "t": description},
    )["village"]["requests"]["edges"]
    assert len(found) == 1
    request = found[0]["node"]
    assert request["state"] == "CLOSED"
    assert request["assignee"]["id"] == worker["id"]
    assert request["resolution"] == "已更换灯泡，恢复照明"
    assert request["reporter"]["name"] == "张大爷"
    assert [e["action"] for e in request["timeline"]] == [
        "create",
        "accept",
        "assign",
        "start",
        "resolve",
        "close",
    ]


def device_platform(stack: Stack) -> tuple[GraphQLClient, dict]:
    """The demo device platform's client, as the device simulator has it, and one of its
    devices in the village that raises an alert with an event."""
    settings = load_settings(stack.platform.env)
    client = GraphQLClient(f"{stack.url}/graphql", TokenSource(settings, "demo-integrator"))
    device = next(d for d in list_devices(client, VILLAGE) if d["kind"] in ALARMS)
    return client, device


def raise_alert(client: GraphQLClient, device: dict) -> str:
    """The device reports its alarm through ingestDeviceEvents (committed when the answer
    comes); the id of the alert it raised."""
    event = {
        "device": device["id"],
        "eventId": str(uuid.uuid4()),
        "kind": ALARMS[device["kind"]],
        "occurredAt": datetime.now(UTC).isoformat(),
        "details": {"simulated": True},
    }
    result = client.execute(INGEST_EVENTS, {"input": {"events": [event]}})["ingestDeviceEvents"]
    assert result["accepted"] == 1 and len(result["alerts"]) == 1, result
    return result["alerts"][0]


def test_a_raised_alert_appears_in_the_open_feed_within_two_seconds(
    admin: Page, browser_stack: Stack
):
    page = admin
    page.goto("/console/admin/alerts")
    expect(page.get_by_role("heading", name="预警中心")).to_be_visible()
    expect(page.get_by_text(re.compile(r"共 \d+ 条"))).to_be_visible()
    settle(page)
    check_accessible(page)
    shot(page, "admin-alerts")
    # The stream is open once the live process has answered the subscription: the page
    # says 实时 then, 正在连接实时更新… before.
    expect(page.locator(".heading .el-tag", has_text="实时")).to_have_text("实时")

    client, device = device_platform(browser_stack)
    alert_id = raise_alert(client, device)
    # From the commit (the mutation has answered) to the row on screen, no reload.
    committed = time.monotonic()
    fresh = page.locator(".feed .fresh-row")
    expect(fresh).to_have_count(1, timeout=LIVE_WITHIN_MS)
    assert time.monotonic() - committed < LIVE_WITHIN_MS / 1000
    expect(page.locator(".heading .el-badge__content")).to_have_text("1")
    page.wait_for_timeout(400)  # the tags' zoom-in transition, for the screenshot
    settle(page)
    check_accessible(page)
    shot(page, "admin-alerts-live")

    fresh.get_by_role("button", name="确认").click()
    dialog = page.get_by_role("dialog", name="确认")
    dialog.get_by_role("button", name="确定").click()
    expect(page.get_by_text("已完成：确认")).to_be_visible()
    expect(fresh.get_by_role("button", name="处置")).to_be_visible()
    fresh.get_by_role("button", name="处置").click()
    dialog = page.get_by_role("dialog", name="处置")
    dialog.get_by_label("处置结果").fill("现场查看为厨房油烟，已通风")
    dialog.get_by_role("button", name="确定").click()
    expect(page.get_by_text("已完成：处置")).to_be_visible()

    alert = api(
        browser_stack,
        "query($id:ID!){node(id:$id){...on Alert{state outcome timeline{action}}}}",
        {"id": alert_id},
    )["node"]
    assert alert["state"] == "RESOLVED"
    assert alert["outcome"] == "现场查看为厨房油烟，已通风"
    assert {"acknowledge", "resolve"} <= {e["action"] for e in alert["timeline"]}


def test_a_notice_gets_a_pdf_attachment_uploaded_through_storage(
    admin: Page, browser_stack: Stack, tmp_path
):
    page = admin
    pdf = tmp_path / "春节值班表.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
    title = f"春节期间值班安排 {uuid.uuid4().hex[:6]}"
    page.goto("/console/admin/notices")
    page.get_by_role("button", name="新建公告").click()
    drawer = page.get_by_role("dialog", name="新建公告")
    drawer.get_by_label("标题").fill(title)
    drawer.get_by_label("正文").fill("春节期间村委会每日安排专人值班。")
    drawer.get_by_role("button", name="保存").click()
    expect(page.get_by_text("公告已保存")).to_be_visible()
    drawer = page.get_by_role("dialog", name="编辑公告")
    drawer.locator("input[type=file]").set_input_files(str(pdf))
    expect(page.get_by_text("附件已上传")).to_be_visible()
    expect(drawer.get_by_role("link", name="春节值班表.pdf")).to_be_visible()
    settle(page)
    check_accessible(page)
    shot(page, "admin-notice-attachment")

    notices = api(
        browser_stack,
        "query($v:String!){village(slug:$v){notices(first:5){edges{node{"
        "title state attachments{filename contentType size}}}}}}",
        {"v": VILLAGE},
    )["village"]["notices"]["edges"]
    notice = next(edge["node"] for edge in notices if edge["node"]["title"] == title)
    assert notice["state"] == "DRAFT"
    assert notice["attachments"] == [
        {"filename": "春节值班表.pdf", "contentType": "application/pdf", "size": pdf.stat().st_size}
    ]


@pytest.mark.parametrize(
    ("path", "heading"),
    [
        ("action-lists", "行动清单"),
        ("alert-rules", "规则与阈值"),
        ("notices", "村务公开"),
        ("activities", "活动"),
        ("volunteer-teams", "志愿队伍"),
        ("points", "积分"),
        ("service-orders", "服务订单"),
        ("service-items", "服务项目与时段"),
        ("mediation", "调解案件"),
        ("devices", "设备"),
    ],
)
def test_each_screen_is_accessible(admin: Page, path: str, heading: str):
    admin.goto(f"/console/admin/{path}")
    expect(admin.get_by_role("heading", name=heading)).to_be_visible()
    # Loaded: its rows, or the empty state saying what to do.
    expect(admin.locator(".el-table__row, .el-empty").first).to_be_visible()
    # and the API answered (a refused query shows as an error alert over an empty table).
    expect(admin.locator(".el-alert--error")).to_have_count(0)
    settle(admin)
    check_accessible(admin)
    shot(admin, f"admin-{path}")

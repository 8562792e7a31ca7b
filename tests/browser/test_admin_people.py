"""The village admin's people screens in a real browser: 居民 (list, detail, register with
the API's refusals beside the fields, 查看 with a reason that lands in the audit log), 户,
the three-level grid tree with its staff, 居民认证审核, and 一张表 (an xlsx import's progress
and per-row report)."""

from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import requests
from playwright.sync_api import Page, expect
from sqlalchemy import select

from villagelink.graphql.core.ids import decode_id
from villagelink.platform import models as pm
from villagelink.platform.db import Database
from villagelink.platform.identity.dev_issuer import mint_for_role
from villagelink.platform.settings import load_settings
from villagelink.tenants.demo.accounts import DEMO_PASSWORD
from villagelink.tenants.onetable import sheet

from .conftest import Stack, check_accessible, login, shot

ADMIN = "village-admin-xinghua"
REASON = "核对低保申请材料"
WHOLE_ID_NUMBER = re.compile(r"^\d{17}[\dX]$")


def unmasked_reads(stack: Stack, resident_id: str) -> list[dict]:
    """The audit entries of whole reads of one resident (the platform's own database)."""
    settings = load_settings(stack.platform.env)
    db = Database(settings.database_url)
    try:
        with db.platform() as conn:
            rows = conn.execute(
                select(pm.audit_log)
                .where(
                    pm.audit_log.c.village == "xinghua",
                    pm.audit_log.c.action == "resident.read_unmasked",
                    pm.audit_log.c.subject_id == str(resident_id),
                )
                .order_by(pm.audit_log.c.id)
            ).mappings()
            return [dict(row) for row in rows]
    finally:
        db.dispose()


def test_admin_unmasks_an_id_number_with_a_reason_and_the_read_is_audited(
    desktop: Page, browser_stack: Stack
):
    login(desktop, ADMIN, DEMO_PASSWORD)
    desktop.goto("/console/admin/residents")
    first_row = desktop.locator(".el-table__body tr").first
    expect(first_row).to_be_visible()
    check_accessible(desktop)
    shot(desktop, "admin-residents")

    name = first_row.locator("td").first.inner_text().strip()
    cell = first_row.locator("td").nth(3)
    masked = cell.locator("[data-revealed]").inner_text()
    assert "*" in masked, masked
    # The resident's global ID, for the audit entry, from the detail link.
    first_row.get_by_role("button", name="详情").click()
    desktop.wait_for_url(re.compile(r"/console/admin/residents/.+"))
    resident_gid = desktop.url.rsplit("/", 1)[1]
    resident_pk = decode_id(resident_gid, "Resident").key
    desktop.go_back()
    # The browser stack is shared by every browser test file: count from here.
    before = len(unmasked_reads(browser_stack, resident_pk))

    cell = desktop.locator(".el-table__body tr").first.locator("td").nth(3)
    cell.get_by_role("button", name=f"查看 {name} 身份证号").click()
    prompt = desktop.get_by_role("dialog", name="查看原因")
    expect(prompt).to_be_visible()
    # Too short a reason is refused in the prompt and nothing is asked of the API.
    prompt.locator("input").fill("核对")
    prompt.get_by_role("button", name="确定").click()
    expect(prompt.locator(".el-message-box__errormsg")).to_contain_text("至少 4 个字")
    prompt.locator("input").fill(REASON)
    shot(desktop, "admin-residents-unmask-reason")
    prompt.get_by_role("button", name="确定").click()

    shown = cell.locator('[data-revealed="true"]')
    expect(shown).to_have_text(WHOLE_ID_NUMBER)
    whole = shown.inner_text()
    # The whole number is the masked one with its middle filled in.
    assert whole[:6] == masked[:6] and whole[-4:] == masked[-4:], (masked, whole)
    shot(desktop, "admin-residents-unmasked")

    reads = unmasked_reads(browser_stack, resident_pk)
    assert len(reads) == before + 1, reads
    read = reads[-1]
    assert read["reason"] == REASON
    assert read["fields"] == ["id_number"]
    assert read["actor_name"] == ADMIN
    assert read["subject_type"] == "Resident"


def test_admin_registers_a_resident_with_the_apis_refusals_beside_the_fields(desktop: Page):
    login(desktop, ADMIN, DEMO_PASSWORD)
    desktop.goto("/console/admin/residents")
    desktop.get_by_role("button", name="登记居民").click()
    drawer = desktop.get_by_role("dialog", name="登记居民")
    drawer.get_by_label("姓名").fill("测试居民")
    drawer.get_by_label("身份证号").fill("12345")
    drawer.get_by_role("button", name="保存").click()
    # The API's Chinese message, under the field it names.
    expect(
        drawer.locator(".el-form-item", has_text="身份证号").locator(".el-form-item__error")
    ).to_contain_text("18位")
    shot(desktop, "admin-resident-refused")

    drawer.get_by_label("身份证号").fill("110101199003071233")
    # Corrected, the field is no longer marked before it is sent: the message was about
    # the value refused. The name, untouched and never refused, was never marked.
    expect(drawer.locator(".el-form-item__error")).to_have_count(0)
    drawer.get_by_role("button", name="保存").click()
    expect(desktop.get_by_text("已登记")).to_be_visible()
    desktop.get_by_label("按姓名搜索").fill("测试居民")
    desktop.get_by_role("button", name="搜索", exact=True).click()
    expect(desktop.locator(".el-table__body tr")).to_have_count(1)
    desktop.locator(".el-table__body tr").first.get_by_role("button", name="详情").click()
    expect(desktop.get_by_role("heading", name="测试居民")).to_be_visible()
    expect(desktop.get_by_text("110101********1233")).to_be_visible()
    check_accessible(desktop)
    shot(desktop, "admin-resident-detail")


def test_households_and_the_grid_tree_with_its_staff(desktop: Page):
    login(desktop, ADMIN, DEMO_PASSWORD)
    desktop.goto("/console/admin/households")
    first = desktop.locator(".el-table__body tr").first
    expect(first).to_be_visible()
    check_accessible(desktop)
    shot(desktop, "admin-households")
    address = first.locator("td").first.inner_text().strip()
    first.get_by_role("button", name="详情").click()
    expect(desktop.get_by_role("heading", name=address)).to_be_visible()
    expect(desktop.locator(".el-table__body tr").first).to_be_visible()
    check_accessible(desktop)
    shot(desktop, "admin-household-detail")

    desktop.goto("/console/admin/grid")
    tree = desktop.get_by_role("tree", name="三级网格")
    expect(tree.get_by_text("杏花村", exact=True)).to_be_visible()
    expect(tree.get_by_text("第1网格", exact=True)).to_be_visible()
    tree.get_by_text("第1网格", exact=True).click()
    expect(desktop.get_by_role("heading", name="第1网格", exact=True)).to_be_visible()
    # Its staff tags fade in: axe would read their colours half-way.
    expect(desktop.locator("[class*=el-zoom-in-center-]")).to_have_count(0)
    # Every tier of the demo village's staff is listed.
    staff = desktop.locator(".staff .el-table__body")
    for tier in ("网格长", "专职网格员", "微网格员"):
        expect(staff.get_by_text(tier, exact=True)).to_be_visible()
    check_accessible(desktop)
    shot(desktop, "admin-grid")


def graphql(stack: Stack, token: str, query: str, variables: dict) -> dict:
    answer = requests.post(
        f"{stack.url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    assert "errors" not in answer, answer
    return answer["data"]


def test_admin_approves_a_residents_account_request(desktop: Page, browser_stack: Stack):
    settings = load_settings(browser_stack.platform.env)
    admin = mint_for_role(settings, "village-admin", village="xinghua")
    # A resident asks with their own ID number and phone, as the residents' app sends them.
    residents = graphql(
        browser_stack,
        admin,
        """query { village(slug: "xinghua") { residents(first: 30, filter: { ageMin: 18 }) {
             edges { node { id name idNumber(unmasked: true, reason: "测试认证申请")
                            phone(unmasked: true, reason: "测试认证申请") } } } } }""",
        {},
    )["village"]["residents"]["edges"]
    # The last adult with a phone: the residents' app's tests (same stack) bind the first.
    person = [edge["node"] for edge in residents if edge["node"]["phone"]][-1]
    resident = mint_for_role(settings, "resident", village="xinghua", sub="browser-resident-1")
    asked = graphql(
        browser_stack,
        resident,
        """mutation($input: RequestResidentAccountInput!) {
             requestResidentAccount(input: $input) { state userErrors { message } } }""",
        {"input": {"village": "xinghua", "idNumber": person["idNumber"], "phone": person["phone"]}},
    )["requestResidentAccount"]
    assert asked == {"state": "PENDING", "userErrors": []}

    login(desktop, ADMIN, DEMO_PASSWORD)
    desktop.goto("/console/admin/settings/approvals")
    row = desktop.locator(".el-table__body tr", has_text=person["name"])
    expect(row.get_by_text("待审核")).to_be_visible()
    check_accessible(desktop)
    shot(desktop, "admin-resident-approvals")
    row.get_by_role("button", name="通过").click()
    prompt = desktop.get_by_role("dialog", name="通过")
    prompt.locator("input").fill("身份证原件现场核验")
    prompt.get_by_role("button", name="确定").click()
    expect(desktop.get_by_text("已通过，账号已绑定")).to_be_visible()
    # Gone from the 待审核 queue; bound, with how the person was checked.
    expect(desktop.locator(".el-table__body tr", has_text=person["name"])).to_have_count(0)
    me = graphql(browser_stack, resident, "query { me { residentAccountState } }", {})
    assert me["me"]["residentAccountState"] == "BOUND"


def id_number(body: str) -> str:
    """A valid 18-character ID number: `body` (17 digits) and its check character."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(digit) * weight for digit, weight in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


def residents_sheet(path: Path) -> Path:
    """The import template's residents sheet: three good rows and two the report names."""
    book = openpyxl.Workbook()
    book.remove(book.worksheets[0])
    rows = book.create_sheet(sheet.RESIDENTS_SHEET)
    rows.append(sheet.COLUMNS)
    good = [
        ("导入甲", id_number("11010119850101002")),
        ("导入乙", id_number("11010119900202003")),
        ("导入丙", id_number("11010119950303004")),
    ]
    for name, number in good:
        rows.append([{sheet.NAME: name, sheet.ID_NUMBER: number}.get(c) for c in sheet.COLUMNS])
    rows.append([{sheet.NAME: "号码错", sheet.ID_NUMBER: "12345"}.get(c) for c in sheet.COLUMNS])
    rows.append([{sheet.ID_NUMBER: id_number("11010120000404005")}.get(c) for c in sheet.COLUMNS])
    book.save(path)
    return path


def test_an_xlsx_import_shows_its_progress_and_its_report(desktop: Page, tmp_path: Path):
    login(desktop, ADMIN, DEMO_PASSWORD)
    desktop.goto("/console/admin/onetable")
    expect(desktop.get_by_role("heading", name="导入居民")).to_be_visible()
    check_accessible(desktop)
    shot(desktop, "admin-onetable")

    desktop.locator("input[type=file]").set_input_files(residents_sheet(tmp_path / "居民信息.xlsx"))
    job = desktop.locator("[data-test=import-job]")
    expect(job.get_by_role("progressbar")).to_be_visible()
    expect(job.get_by_text("已完成")).to_be_visible()
    expect(job.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(job.get_by_text("已处理 5 / 5 行")).to_be_visible()
    expect(job.get_by_text("新增 3 人，更新 0 人，未变 0 人，失败 2 行")).to_be_visible()
    # The report names the two bad rows (the header is row 1) and the column at fault.
    report = job.locator("[data-test=import-report] .el-table__body tr")
    expect(report.filter(has_text="身份证号码").first).to_contain_text("5")
    expect(report.filter(has_text="姓名").first).to_contain_text("6")
    shot(desktop, "admin-onetable-report")
    # The import is listed, and the residents it registered are there.
    expect(desktop.locator(".history .el-table__body tr", has_text="居民信息.xlsx")).to_be_visible()
    desktop.goto("/console/admin/residents")
    desktop.get_by_label("按姓名搜索").fill("导入")
    desktop.get_by_role("button", name="搜索", exact=True).click()
    expect(desktop.locator(".el-table__body tr")).to_have_count(3)


def test_health_duty_and_settings_screens(desktop: Page, browser_stack: Stack):
    login(desktop, ADMIN, DEMO_PASSWORD)
    desktop.goto("/console/admin/health")
    elders = desktop.locator(".el-card", has_text="老人档案").locator(".el-table__body tr")
    expect(elders.first).to_be_visible()
    check_accessible(desktop)
    shot(desktop, "admin-health")
    # 预警阈值: a low bound above the high one is refused beside the field the API names.
    desktop.get_by_role("button", name="调整阈值").click()
    dialog = desktop.get_by_role("dialog", name="预警阈值")

    def threshold(label: str, value: int) -> None:
        field = dialog.get_by_role("spinbutton", name=label)
        field.fill(str(value))
        field.press("Tab")

    threshold("心率下限", 130)
    dialog.get_by_role("button", name="保存").click()
    high = dialog.locator(".el-form-item", has_text="心率上限").locator(".el-form-item__error")
    expect(high).to_contain_text("心率下限须低于上限")
    threshold("心率下限", 45)
    threshold("心率上限", 110)
    dialog.get_by_role("button", name="保存").click()
    expect(desktop.get_by_text("心率 45–110 次/分", exact=False)).to_be_visible()
    # A person with readings, and their chart (the demo's wristbands report every hour).
    measured = elders.filter(has_text=re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")).first
    name = measured.locator("td").first.inner_text().strip()
    measured.get_by_text(name, exact=True).click()
    expect(desktop.get_by_role("img", name=f"{name} 体征趋势")).to_be_visible()
    check_accessible(desktop)
    shot(desktop, "admin-health-person")
    # The record edited in its drawer (the admin sets what the doctor said).
    desktop.get_by_role("button", name=re.compile("编辑档案|建档")).click()
    drawer = desktop.get_by_role("dialog", name=re.compile("编辑档案|建档"))
    drawer.get_by_label("备注").fill("每周三社区医生随访")
    drawer.get_by_role("button", name="保存").click()
    expect(desktop.get_by_text("每周三社区医生随访")).to_be_visible()

    # 值班表: a shift scheduled in the dialog lands on its day; a backwards one is refused
    # beside the field.
    desktop.goto("/console/admin/duty")
    expect(desktop.get_by_role("heading", name="值班表")).to_be_visible()
    staff_name = desktop.locator(".el-table__body tr").first.locator("td").first.locator("a")
    name = staff_name.inner_text().strip()
    desktop.get_by_role("button", name="排班").click()
    dialog = desktop.get_by_role("dialog", name="新增值班")
    dialog.locator(".el-select").first.click()
    desktop.get_by_role("option", name=name).click()
    monday = desktop.locator(".week-label").inner_text().split(" ")[0]

    def pick(placeholder: str, value: str) -> None:
        dialog.get_by_placeholder(placeholder).fill(value)
        dialog.get_by_placeholder(placeholder).press("Enter")
        # Out of the picker, whose panel would cover the buttons.
        dialog.locator(".el-dialog__title").click()

    pick("开始时间", f"{monday} 18:00")
    pick("结束时间", f"{monday} 08:00")
    dialog.get_by_role("button", name="保存").click()
    ends = dialog.locator(".el-form-item", has_text="结束时间").locator(".el-form-item__error")
    expect(ends).to_contain_text("结束时间须晚于开始时间")
    pick("结束时间", f"{monday} 22:00")
    dialog.get_by_role("button", name="保存").click()
    expect(desktop.get_by_text("已排班")).to_be_visible()
    row = desktop.locator(".el-table__body tr", has_text=name)
    expect(row.locator("td").nth(1)).to_contain_text("18:00–22:00")
    check_accessible(desktop)
    shot(desktop, "admin-duty")

    desktop.goto("/console/admin/settings/buildings")
    expect(desktop.get_by_text("1号楼", exact=True)).to_be_visible()
    check_accessible(desktop)
    shot(desktop, "admin-buildings")
    desktop.goto("/console/admin/settings/api-clients")
    switch = desktop.get_by_role("switch", name="示例集成方（设备平台） 本村授权")
    expect(switch).not_to_be_checked()
    check_accessible(desktop)
    shot(desktop, "admin-api-clients")
    # The switch's own input is visually hidden; people click the drawn switch.
    desktop.locator(".el-switch", has=switch).click()
    desktop.get_by_role("button", name="确定").click()
    expect(desktop.get_by_text("已授权", exact=True)).to_be_visible()
    expect(switch).to_be_checked()
    settings = load_settings(browser_stack.platform.env)
    admin = mint_for_role(settings, "village-admin", village="xinghua")
    clients = graphql(browser_stack, admin, "query { apiClients { clientId villages } }", {})
    assert "xinghua" in clients["apiClients"][0]["villages"]

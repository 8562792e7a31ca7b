"""One table (一张表): resident imports from .xlsx sheets with a per-row report, exports
with the caller's masking, the template, the import job's states, roles, audit and the
statement count of the import list. Against the real PostgreSQL, Valkey and object store
(the local disk; the whole flow also on MinIO, with test_storage's fixtures)."""

from __future__ import annotations

import io
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from urllib.parse import urlsplit

import openpyxl
import pytest
import requests
from rq import Queue
from rq.job import Job
from sqlalchemy import func, select, text

from villagelink.graphql.core.ids import decode_id
from villagelink.jobs import onetable as onetable_jobs
from villagelink.jobs.queues import QUEUES, redis_connection
from villagelink.jobs.worker import reset_job_runtime
from villagelink.platform import models as pm
from villagelink.platform.audit import Actor
from villagelink.platform.identity.principal import Principal
from villagelink.platform.settings import Settings
from villagelink.storage.factory import object_store
from villagelink.storage.purposes import XLSX
from villagelink.tenants import id_numbers
from villagelink.tenants import models as m
from villagelink.tenants.demo.plans import demo_grid_worker_subject
from villagelink.tenants.grids import grids_of_account
from villagelink.tenants.onetable import actions, sheet
from villagelink.tenants.onetable.importing import RowImporter
from villagelink.tenants.onetable.tables import (
    FAILED,
    FINISHED,
    IMPORT_STATUSES,
    RUNNING,
    import_jobs,
    resident_exports,
)
from villagelink.tenants.sensitive import REASON_REQUIRED
from villagelink.tenants.user_errors import ActionFailed

from .conftest import TEST_REGION
from .test_query_count import count_statements

# The storage tests' fixtures (the application on each object store, its job settings).
from .test_storage import backend, gql_on  # noqa: F401
from .test_storage import jobs as storage_jobs  # noqa: F401
from .test_storage import work_off as work_off_checked

CREATE_UPLOAD = """mutation($input: CreateUploadUrlInput!) { createUploadUrl(input: $input) {
  upload { key url method headers { name value } } userErrors { field message code } } }"""
START = """mutation($input: StartResidentImportInput!) { startResidentImport(input: $input) {
  importJob { id status filename } userErrors { field message code } } }"""
JOB = """query($id: ID!) { node(id: $id) { ... on ImportJob { id filename status totalRows
  processedRows imported updated unchanged failed report { row column message } createdBy
  startedAt finishedAt } } }"""
EXPORT = """mutation($input: ExportResidentsInput!) { exportResidents(input: $input) {
  download { url filename expiresAt } rows userErrors { field message code } } }"""
TEMPLATE = """query($slug: String!) { village(slug: $slug) {
  residentImportTemplate { url filename expiresAt } } }"""
JOBS = """query($slug: String!, $first: Int!) { village(slug: $slug) { importJobs(first: $first) {
  edges { node { id status filename totalRows processedRows imported updated unchanged failed
                 report { row column message } createdBy createdAt startedAt finishedAt } } } } }"""

ACTOR = Actor(
    Principal(
        sub="onetable-test",
        username="一表通测试",
        roles=frozenset({"village-admin"}),
        villages=frozenset(),
        regions=frozenset(),
        client_id=None,
    )
)


# -- sheets ---------------------------------------------------------------------


def workbook(rows: list[dict], columns: tuple[str, ...] = sheet.COLUMNS) -> bytes:
    """An .xlsx with `columns` as its header and one line per dict (header → value)."""
    book = openpyxl.Workbook()
    data = book.active
    data.append(columns)
    for row in rows:
        data.append([row.get(c) for c in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def read_rows(data: bytes) -> list[dict]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    header, *rows = book.worksheets[0].iter_rows(values_only=True)
    # A streamed sheet's rows end at their last filled cell.
    return [{h: row[i] if i < len(row) else None for i, h in enumerate(header)} for row in rows]


def person(born: date, sequence: int, name: str = "王秀英", **cells) -> dict:
    return {
        sheet.NAME: name,
        sheet.ID_NUMBER: id_numbers.compose("120111", born, sequence),
        **cells,
    }


def with_check_character(first17: str) -> str:
    return first17 + id_numbers.check_character(first17)


# -- the village ----------------------------------------------------------------


def first_building(db, slug: str) -> dict:
    """A building of the populated village, its grid's code, and one of its households."""
    with db.tenant(slug) as conn:
        building = dict(
            conn.execute(select(m.buildings).order_by(m.buildings.c.id).limit(1)).mappings().one()
        )
        building["grid_code"] = conn.execute(
            select(m.grids.c.code).where(m.grids.c.id == building["grid_id"])
        ).scalar_one()
        building["household"] = dict(
            conn.execute(
                select(m.households)
                .where(m.households.c.building_id == building["id"])
                .order_by(m.households.c.id)
                .limit(1)
            )
            .mappings()
            .one()
        )
    return building


def counts(db, slug: str) -> dict[str, int]:
    with db.tenant(slug) as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (m.residents, m.households, m.resident_tags)
        }


def audit_actions(db, slug: str) -> Counter:
    with db.platform() as conn:
        return Counter(
            conn.execute(
                select(pm.audit_log.c.action).where(pm.audit_log.c.village == slug)
            ).scalars()
        )


def resident(db, slug: str, number: str) -> dict | None:
    with db.tenant(slug) as conn:
        row = (
            conn.execute(select(m.residents).where(m.residents.c.id_number == number))
            .mappings()
            .first()
        )
        return dict(row) if row else None


# -- jobs and the API ---------------------------------------------------------


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[Settings]:
    """Jobs read their settings from the environment, as in `villagelink worker`: the
    same database, Redis and local object store as the `app` fixture."""
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("VILLAGELINK_VAR_DIR", str(settings.var_dir))
    for name in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    reset_job_runtime()
    _empty_queues(settings)
    yield settings
    _empty_queues(settings)
    reset_job_runtime()


def _empty_queues(settings: Settings) -> None:
    for name in QUEUES:
        waiting = Queue(name, connection=redis_connection(settings))
        waiting.empty()
        for job_id in waiting.scheduled_job_registry.get_job_ids():
            waiting.scheduled_job_registry.remove(job_id, delete_job=True)


def work_off(settings: Settings) -> None:
    """Run the queued jobs in forked work horses, as `villagelink worker` does; none
    may have failed, not even into a retry."""
    work_off_checked(settings)
    retries = Queue("ingest", connection=redis_connection(settings)).scheduled_job_registry
    assert retries.get_job_ids() == []


def fetch(client, url: str) -> bytes:
    """GET a presigned URL of the local store through the application."""
    parts = urlsplit(url)
    response = client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200, response.data
    return response.data


def upload(gql, client, admin: str, slug: str, data: bytes, filename="居民信息.xlsx") -> str:
    """createUploadUrl, then PUT the file to the presigned URL; returns the key."""
    upload_input = {
        "village": slug,
        "purpose": "IMPORT_SHEET",
        "filename": filename,
        "contentType": XLSX,
        "size": len(data),
    }
    _, body = gql(CREATE_UPLOAD, admin, {"input": upload_input})
    ticket = body["data"]["createUploadUrl"]["upload"]
    parts = urlsplit(ticket["url"])
    headers = {h["name"]: h["value"] for h in ticket["headers"]}
    assert client.put(f"{parts.path}?{parts.query}", data=data, headers=headers).status_code == 200
    return ticket["key"]


def start(gql, admin: str, slug: str, key: str) -> dict:
    _, body = gql(START, admin, {"input": {"village": slug, "key": key}})
    return body["data"]["startResidentImport"]


def import_job(gql, admin: str, job_id: str) -> dict:
    _, body = gql(JOB, admin, {"id": job_id})
    assert "errors" not in body, body
    return body["data"]["node"]


def run_sheet(gql, client, jobs, admin: str, slug: str, data: bytes) -> dict:
    """The whole flow: upload, start, let the worker run it, read the job."""
    started = start(gql, admin, slug, upload(gql, client, admin, slug, data))
    assert started["userErrors"] == [], started
    assert started["importJob"]["status"] == "QUEUED"
    work_off(jobs)
    return import_job(gql, admin, started["importJob"]["id"])


@pytest.fixture
def admin(token, case_village) -> str:
    """The admin of the test's village: its own `populated_village` when it names one (it
    counts or changes what is village-wide: all residents, exports, grids), else the
    module's `shared_village`, where tests run one after another and read only what they
    made (their own jobs, residents by ID number, flats by room, counts as differences)."""
    return token("village-admin", village=case_village.slug)


# -- the bad sheet ------------------------------------------------------------------


def test_a_bad_sheet_gives_exactly_the_expected_report(
    gql, client, jobs, db, admin, shared_village
):
    slug = shared_village.slug
    building = first_building(db, slug)
    before_counts, before_audit = counts(db, slug), audit_actions(db, slug)
    valid_new_flat = person(
        date(1950, 6, 1),
        11,
        楼号=building["name"],
        单元=1,
        室="9901",
        与户主关系="户主",
        标签="独居老人",
        网格编码=building["grid_code"],
    )
    valid_in_household = person(
        date(2015, 9, 3), 12, name="张小明", 户编号=building["household"]["id"], 与户主关系="孙子女"
    )
    rows = [
        valid_new_flat,  # row 2
        {sheet.NAME: "李四", sheet.ID_NUMBER: "120111198001010011"},  # row 3: wrong checksum
        {sheet.ID_NUMBER: id_numbers.compose("120111", date(1980, 1, 1), 13)},  # 4: no name
        valid_in_household,  # row 5
        {**valid_in_household, sheet.NAME: "张小明二"},  # row 6: row 5's ID number again
        person(date(1990, 3, 7), 14, 出生日期="1990-02-30"),  # row 7: no such date
        {sheet.NAME: "赵六", sheet.ID_NUMBER: with_check_character("12011119900230015")},  # 8
        person(date(1985, 5, 5), 16, 户编号=999999),  # row 9: no such household
        person(date(1985, 5, 6), 17, 楼号="99号楼", 单元=1, 室="101"),  # row 10: no such building
    ]
    assert id_numbers.check_character("12011119800101001") != "1"  # row 3 is really wrong

    job = run_sheet(gql, client, jobs, admin, slug, workbook(rows))

    assert job["report"] == [
        {"row": 3, "column": "身份证号码", "message": "身份证号码校验位不正确"},
        {"row": 4, "column": "姓名", "message": "此项为必填项"},
        {"row": 6, "column": "身份证号码", "message": "与第5行的身份证号码重复"},
        {"row": 7, "column": "出生日期", "message": "出生日期不存在，请按 1990-03-07 的格式填写"},
        {"row": 8, "column": "身份证号码", "message": "身份证号码中的出生日期无效"},
        {"row": 9, "column": "户编号", "message": "户不存在"},
        {"row": 10, "column": "楼号", "message": "户不存在，且本村没有该楼，无法新建"},
    ]
    assert {k: job[k] for k in ("status", "totalRows", "processedRows")} == {
        "status": "FINISHED",
        "totalRows": 9,
        "processedRows": 9,
    }
    assert (job["imported"], job["updated"], job["unchanged"], job["failed"]) == (2, 0, 0, 7)
    assert job["createdBy"] and job["startedAt"] and job["finishedAt"]

    # The valid rows, and nothing else: one resident each, one new household, one tag.
    after = counts(db, slug)
    assert {k: after[k] - before_counts[k] for k in after} == {
        "residents": 2,
        "households": 1,
        "resident_tags": 1,
    }
    alone = resident(db, slug, valid_new_flat[sheet.ID_NUMBER])
    with db.tenant(slug) as conn:
        home = (
            conn.execute(select(m.households).where(m.households.c.id == alone["household_id"]))
            .mappings()
            .one()
        )
    assert (home["building_id"], home["unit_no"], home["room_no"]) == (building["id"], 1, "9901")
    assert home["head_resident_id"] == alone["id"] and home["grid_id"] == building["grid_id"]
    assert home["address"] == f"测试村{building['name']}1单元9901室"
    grandchild = resident(db, slug, valid_in_household[sheet.ID_NUMBER])
    assert grandchild["household_id"] == building["household"]["id"]
    assert grandchild["relation_to_head"] == "grandchild"
    assert (grandchild["gender"], grandchild["birth_date"]) == ("female", date(2015, 9, 3))

    # One audit entry for each end of the job; the rows' own from the resident actions.
    assert audit_actions(db, slug) - before_audit == Counter(
        {
            "upload.create": 1,
            "attachment.create": 1,
            "resident_import.start": 1,
            "household.create": 1,
            "resident.create": 2,
            "resident.tag": 1,
            "resident_import.finish": 1,
        }
    )

    # The same file again changes nothing, and says the same about the same rows.
    again = run_sheet(gql, client, jobs, admin, slug, workbook(rows))
    assert again["report"] == job["report"]
    assert (again["imported"], again["updated"], again["unchanged"], again["failed"]) == (
        0,
        0,
        2,
        7,
    )
    assert counts(db, slug) == after
    written = audit_actions(db, slug) - before_audit
    assert all(written[a] == 1 for a in ("household.create", "resident.tag"))
    assert written["resident.create"] == 2


def test_updates_only_what_differs(gql, client, jobs, db, admin, populated_village):
    slug = populated_village.slug
    building = first_building(db, slug)
    with db.tenant(slug) as conn:
        someone = dict(
            conn.execute(
                select(m.residents)
                .where(m.residents.c.household_id != building["household"]["id"])
                .order_by(m.residents.c.id)
                .limit(1)
            )
            .mappings()
            .one()
        )
    row = {
        sheet.NAME: someone["name"] + "华",
        sheet.ID_NUMBER: someone["id_number"].lower(),
        sheet.PHONE: 13900001111,  # a numeric cell, as Excel keeps it
        sheet.HOUSEHOLD: building["household"]["id"],
        sheet.RELATION: "其他",
        sheet.TAGS: "党员，残疾（2级）",
    }
    job = run_sheet(gql, client, jobs, admin, slug, workbook([row]))
    assert (job["imported"], job["updated"], job["unchanged"], job["failed"]) == (0, 1, 0, 0)
    changed = resident(db, slug, someone["id_number"])
    assert (changed["name"], changed["phone"]) == (someone["name"] + "华", "13900001111")
    assert changed["household_id"] == building["household"]["id"]
    assert changed["relation_to_head"] == "other"
    assert changed["grid_id"] == building["household"]["grid_id"]
    with db.tenant(slug) as conn:
        tags = dict(
            conn.execute(
                select(m.resident_tags.c.tag, m.resident_tags.c.level).where(
                    m.resident_tags.c.resident_id == someone["id"]
                )
            ).all()
        )
    assert tags["party_member"] is None and tags["disabled"] == 2

    # Blank cells change nothing; the same row again is unchanged.
    quiet = {sheet.NAME: changed["name"], sheet.ID_NUMBER: someone["id_number"]}
    job = run_sheet(gql, client, jobs, admin, slug, workbook([quiet, {**row, sheet.TAGS: "党员"}]))
    assert (job["imported"], job["updated"], job["unchanged"], job["failed"]) == (0, 0, 1, 1)
    assert job["report"] == [
        {"row": 3, "column": "身份证号码", "message": "与第2行的身份证号码重复"}
    ]
    assert resident(db, slug, someone["id_number"]) == changed

    # Into a flat with no household yet: it is made, and they head it.
    moving = {**quiet, sheet.BUILDING: building["name"], sheet.UNIT: 1, sheet.ROOM: "9903"}
    job = run_sheet(gql, client, jobs, admin, slug, workbook([{**moving, sheet.RELATION: "户主"}]))
    assert (job["updated"], job["report"]) == (1, [])
    moved = resident(db, slug, someone["id_number"])
    with db.tenant(slug) as conn:
        home = (
            conn.execute(select(m.households).where(m.households.c.id == moved["household_id"]))
            .mappings()
            .one()
        )
    assert (home["room_no"], home["head_resident_id"], moved["relation_to_head"]) == (
        "9903",
        someone["id"],
        "head",
    )


def test_an_exported_sheet_imports_back_unchanged(gql, client, jobs, db, admin, populated_village):
    """一表采集、多头应用: what the platform hands out can come back as it is."""
    slug = populated_village.slug
    _, body = gql(
        EXPORT, admin, {"input": {"village": slug, "unmasked": True, "reason": "年度核对"}}
    )
    export = body["data"]["exportResidents"]
    assert export["userErrors"] == [] and export["rows"] == 60
    data = fetch(client, export["download"]["url"])
    before = counts(db, slug)

    job = run_sheet(gql, client, jobs, admin, slug, data)

    assert (job["totalRows"], job["unchanged"], job["failed"], job["report"]) == (60, 60, 0, [])
    assert counts(db, slug) == before


def test_the_default_masked_export_imports_back_and_judges_its_masked_cells(
    gql, client, jobs, db, admin, populated_village
):
    """The export a clerk gets by default hides ID numbers and phones: unchanged masked
    cells are unchanged, edits elsewhere go in, and a masked cell that cannot be judged
    says so (naming the full export)."""
    slug = populated_village.slug
    _, body = gql(EXPORT, admin, {"input": {"village": slug}})
    data = fetch(client, body["data"]["exportResidents"]["download"]["url"])
    rows = read_rows(data)
    assert all("*" in row[sheet.ID_NUMBER] for row in rows)
    before = counts(db, slug)

    job = run_sheet(gql, client, jobs, admin, slug, data)
    assert (job["totalRows"], job["unchanged"], job["failed"], job["report"]) == (60, 60, 0, [])
    assert counts(db, slug) == before

    with_phone = [row for row in rows if row[sheet.PHONE]]
    renamed, new_phone, other_mask, lost_no, wrong_id, wrong_no = with_phone[:6]
    renamed[sheet.NAME] = "改名字"
    new_phone[sheet.PHONE] = "13900001111"
    other_mask[sheet.PHONE] = other_mask[sheet.PHONE][:3] + "****0000"
    lost_no[sheet.RESIDENT_NO] = None
    wrong_id[sheet.ID_NUMBER] = "999999********0000"
    wrong_no[sheet.RESIDENT_NO] = 999999
    edited = [renamed, new_phone, other_mask, lost_no, wrong_id, wrong_no, rows[-1], rows[-1]]
    job = run_sheet(gql, client, jobs, admin, slug, workbook(edited))
    assert (job["updated"], job["unchanged"], job["failed"]) == (2, 1, 5)
    full = "完整导出（导出时选择显示完整号码）"
    phone = f"联系电话已打码，无法判断是否更改：请填写完整号码或留空，核对完整号码请使用{full}"
    unknown = f"身份证号码已打码，无法确定是哪位居民：请保留导出表中的居民编号，或使用{full}"
    assert job["report"] == [
        {
            "row": 4,
            "column": "联系电话",
            "message": phone,
        },
        {
            "row": 5,
            "column": "身份证号码",
            "message": unknown,
        },
        {
            "row": 6,
            "column": "身份证号码",
            "message": f"身份证号码已打码，无法核对更改：更正身份证号码请使用{full}",
        },
        {
            "row": 7,
            "column": "身份证号码",
            "message": unknown,
        },
        {"row": 7, "column": "居民编号", "message": "居民编号不存在"},
        {"row": 9, "column": "居民编号", "message": "与第8行的居民编号重复"},
    ]
    with db.tenant(slug) as conn:
        found = {
            row.id: row
            for row in conn.execute(
                select(m.residents.c.id, m.residents.c.name, m.residents.c.phone)
            ).all()
        }
    assert found[renamed[sheet.RESIDENT_NO]].name == "改名字"
    assert found[new_phone[sheet.RESIDENT_NO]].phone == "13900001111"
    assert found[other_mask[sheet.RESIDENT_NO]].phone[-4:] != "0000"


STRUCTURE_REPORT = """query($id: ID!) { node(id: $id) { ... on ImportJob {
  report { sheet row column message } } } }"""


def structure_workbook(sheets: dict[str, tuple[tuple, list[tuple]]]) -> bytes:
    """A workbook of named sheets, each a header and its rows, in the order given."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, (header, rows) in sheets.items():
        data = book.create_sheet(name)
        data.append(header)
        for row in rows:
            data.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_village_is_loaded_from_one_workbook_structure_then_residents(
    gql, client, jobs, db, token, village
):
    slug = village.slug
    admin = token("village-admin", village=slug)
    grids = (
        ("网格编码", "名称", "层级", "上级网格编码"),
        [
            ("S", "新村社区", "社区", None),
            ("S-1", "第1网格", "网格", "S"),
            ("S-1-1", "第1微网格", "微网格", "S-1"),
            ("S-1-2", "挂错的微网格", "微网格", "S"),
            ("S-9", "无名上级", "网格", "S-404"),
        ],
    )
    buildings = (
        ("楼号", "网格编码", "单元数", "层数"),
        [(1, "S-1-1", 2, 6), ("2号楼", "S", 1, 5), ("3号", "S-1-1", "两", 5)],
    )
    households = (
        ("楼号", "单元", "室", "地址", "网格编码"),
        [
            (1, 1, "101", None, None),
            (None, None, None, "村东头12号", "S-1"),
            (1, 3, "101", None, None),
        ],
    )
    resident = person(date(1950, 3, 7), 41, 楼号="1号楼", 单元=1, 室="101", 与户主关系="户主")
    residents = (sheet.COLUMNS, [[resident.get(c) for c in sheet.COLUMNS]])
    data = structure_workbook(
        {"居民信息": residents, "户": households, "楼栋": buildings, "网格": grids}
    )

    job = run_sheet(gql, client, jobs, admin, slug, data)

    assert (job["totalRows"], job["imported"], job["failed"]) == (12, 7, 5), job["report"]
    _, body = gql(STRUCTURE_REPORT, admin, {"id": job["id"]})
    assert body["data"]["node"]["report"] == [
        {
            "sheet": "网格",
            "row": 5,
            "column": "上级网格编码",
            "message": "微网格的上级须为网格，不能是社区",
        },
        {"sheet": "网格", "row": 6, "column": "上级网格编码", "message": "网格不存在"},
        {
            "sheet": "楼栋",
            "row": 3,
            "column": "网格编码",
            "message": "楼栋和户须归属网格或微网格，不能直接归属社区",
        },
        {"sheet": "楼栋", "row": 4, "column": "单元数", "message": "单元数应为数字"},
        {"sheet": "户", "row": 4, "column": "单元", "message": "该楼没有此单元"},
    ]
    with db.tenant(slug) as conn:
        placed = conn.execute(
            select(m.households.c.address, m.residents.c.relation_to_head).join(
                m.residents, m.residents.c.household_id == m.households.c.id
            )
        ).one()
    assert tuple(placed) == ("测试村1号楼1单元101室", "head")

    again = run_sheet(gql, client, jobs, admin, slug, data)
    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 0, 7)


# -- reading sheets -------------------------------------------------------------


def test_cells_read_the_way_clerks_type_them(gql, client, jobs, db, admin, shared_village):
    slug = shared_village.slug
    building = first_building(db, slug)
    number = building["name"].removesuffix("号楼")
    rows = [
        # 楼号 as a bare number, 单元 with its suffix, a date as Excel stores it.
        person(
            date(1962, 1, 31),
            21,
            楼号=int(number),
            单元="1单元",
            室="9902室",
            出生日期=date(1962, 1, 31),
            性别="男",
        ),
        person(date(1962, 2, 1), 22, 出生日期="1962年2月1日", 性别="女"),
        person(date(1970, 5, 1), 23, 出生日期="1970/05/02"),  # disagrees with the ID number
        person(date(1970, 5, 3), 24, 性别="未知", 与户主关系="邻居", 标签="独居老人、富豪"),
        {sheet.NAME: "钱七", sheet.ID_NUMBER: 120111197005051234},  # a numeric ID cell
        person(date(1970, 5, 6), 26, 楼号=building["name"], 室="101"),  # no 单元
        person(date(1970, 5, 7), 27, 单元="二", 网格编码="no-such-grid", 户编号="甲"),
        person(date(1970, 5, 8), 28, 网格编码=building["grid_code"]),
        person(date(1970, 5, 9), 29, 标签="党员(2级)"),
    ]
    job = run_sheet(gql, client, jobs, admin, slug, workbook(rows))
    assert job["report"] == [
        {"row": 4, "column": "出生日期", "message": "出生日期与身份证号码不一致"},
        {"row": 5, "column": "性别", "message": "性别取值无效"},
        {"row": 5, "column": "与户主关系", "message": "与户主关系取值无效"},
        {"row": 5, "column": "标签", "message": "标签取值无效"},
        {
            "row": 6,
            "column": "身份证号码",
            "message": "身份证号码须按文本填写：数字格式的单元格会改变末几位",
        },
        {"row": 7, "column": "单元", "message": "楼号、单元、室须一起填写"},
        {"row": 8, "column": "单元", "message": "单元应为数字，如 2"},
        {"row": 8, "column": "网格编码", "message": "网格不存在"},
        {"row": 8, "column": "户编号", "message": "户编号应为数字"},
        {"row": 9, "column": "网格编码", "message": "填写网格编码时须同时指明所在户"},
        {"row": 10, "column": "标签", "message": "只有残疾标签可以填写等级"},
    ]
    assert job["imported"] == 2
    made = resident(db, slug, rows[0][sheet.ID_NUMBER])
    assert made["household_id"] is not None


def test_a_sheet_without_the_required_columns_fails(db, jobs, shared_village):
    slug = shared_village.slug
    before_audit = audit_actions(db, slug)
    data = workbook([{sheet.NAME: "王五"}], columns=(sheet.NAME, sheet.PHONE, sheet.PHONE))
    job_id = _queued_job(db, object_store(jobs), slug, data)
    assert onetable_jobs.run_import(db, object_store(jobs), slug, job_id) is None
    job = _job_row(db, slug, job_id)
    assert job["status"] == FAILED and job["finished_at"] is not None
    assert job["report"] == [
        {"row": 1, "column": "联系电话", "message": "列名重复"},
        {"row": 1, "column": "身份证号码", "message": "缺少此列"},
    ]
    assert (audit_actions(db, slug) - before_audit)["resident_import.fail"] == 1


def test_the_untouched_template_imports_nothing(gql, client, jobs, db, admin, shared_village):
    slug = shared_village.slug
    _, body = gql(TEMPLATE, admin, {"slug": slug})
    link = body["data"]["village"]["residentImportTemplate"]
    assert link["filename"] == "居民信息导入模板.xlsx"
    data = fetch(client, link["url"])
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["居民信息", "网格", "楼栋", "户", "填写说明"]
    for name, (columns, _required) in sheet.STRUCTURE_SHEETS.items():
        assert tuple(c.value for c in book[name][1]) == columns
    assert tuple(c.value for c in book["居民信息"][1]) == sheet.COLUMNS
    assert book["居民信息"].column_dimensions["B"].number_format == "@"
    explained = [row[0] for row in book["填写说明"].iter_rows(min_row=2, values_only=True)]
    assert set(sheet.COLUMNS) <= set(explained)
    guide = " ".join(str(v) for row in book["填写说明"].values for v in row if v)
    for label in (*sheet.RELATION_LABELS.values(), *sheet.TAG_LABELS.values(), "男", "女"):
        assert label in guide

    job = run_sheet(gql, client, jobs, admin, slug, data)
    assert (job["status"], job["totalRows"], job["report"]) == ("FINISHED", 0, [])


def test_sheet_labels_cover_every_code():
    assert set(sheet.GENDER_LABELS) == set(m.GENDERS)
    assert set(sheet.RELATION_LABELS) == set(m.RELATIONS)
    assert set(sheet.TAG_LABELS) == set(m.RESIDENT_TAGS)


# -- the job: progress, resume, states -------------------------------------------


def _queued_job(db, store, slug: str, data: bytes) -> int:
    """An import job whose sheet is in the store, as startResidentImport leaves it."""
    key = f"files/import_sheet/{uuid.uuid4().hex}.xlsx"
    store.ensure_bucket(slug)
    store.put(slug, key, data, XLSX)
    with db.tenant(slug) as conn:
        return conn.execute(
            import_jobs.insert()
            .values(
                object_key=key,
                filename="测试.xlsx",
                created_by=ACTOR.principal.sub,
                created_by_name=ACTOR.principal.username,
                created_by_roles=sorted(ACTOR.principal.roles),
            )
            .returning(import_jobs.c.id)
        ).scalar_one()


def _job_row(db, slug: str, job_id: int) -> dict:
    with db.tenant(slug) as conn:
        return dict(
            conn.execute(select(import_jobs).where(import_jobs.c.id == job_id)).mappings().one()
        )


def test_progress_is_committed_per_batch_and_a_retry_resumes(db, jobs, shared_village, monkeypatch):
    slug = shared_village.slug
    rows = [person(date(1980, 1, 1 + i), 40 + i, name=f"居民{i}") for i in range(7)]
    job_id = _queued_job(db, object_store(jobs), slug, workbook(rows))
    monkeypatch.setattr(onetable_jobs, "BATCH_ROWS", 2)
    real_run = RowImporter.run
    seen_progress = []

    def crash_on_row_6(self, given, registered):
        # The progress a console sees while the job runs: batches already committed.
        seen_progress.append(_job_row(db, slug, job_id)["processed_rows"])
        if given.number == 6:
            raise RuntimeError("the worker died")
        return real_run(self, given, registered)

    monkeypatch.setattr(RowImporter, "run", crash_on_row_6)
    with pytest.raises(RuntimeError):
        onetable_jobs.run_import(db, object_store(jobs), slug, job_id)
    job = _job_row(db, slug, job_id)
    assert (job["status"], job["total_rows"], job["processed_rows"], job["imported"]) == (
        RUNNING,
        7,
        4,
        4,
    )
    assert seen_progress == [0, 0, 2, 2, 4]
    # Rows 2-5 were committed with the progress; row 6's batch left nothing behind.
    assert resident(db, slug, rows[3][sheet.ID_NUMBER]) is not None
    assert resident(db, slug, rows[4][sheet.ID_NUMBER]) is None

    monkeypatch.setattr(RowImporter, "run", real_run)
    result = onetable_jobs.run_import(db, object_store(jobs), slug, job_id)
    assert result == {"imported": 7, "updated": 0, "unchanged": 0, "failed": 0}
    assert _job_row(db, slug, job_id)["status"] == FINISHED
    # Finished is final: running it again does nothing.
    assert onetable_jobs.run_import(db, object_store(jobs), slug, job_id) is None


def test_two_imports_at_once_make_one_household_per_flat(db, jobs, shared_village, monkeypatch):
    slug = shared_village.slug
    building = first_building(db, slug)
    monkeypatch.setattr(onetable_jobs, "BATCH_ROWS", 2)
    flats = [f"98{n:02d}" for n in range(6)]
    sheets = [
        workbook(
            [
                person(date(1960 + k, 1, 1 + n), 70 + n, 楼号=building["name"], 单元=1, 室=room)
                for n, room in enumerate(flats)
            ]
        )
        for k in range(2)
    ]
    job_ids = [_queued_job(db, object_store(jobs), slug, data) for data in sheets]
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(lambda j: onetable_jobs.run_import(db, object_store(jobs), slug, j), job_ids)
        )
    assert [r["imported"] for r in results] == [6, 6]
    with db.tenant(slug) as conn:
        per_flat = Counter(
            conn.execute(
                select(m.households.c.room_no).where(
                    m.households.c.building_id == building["id"],
                    m.households.c.room_no.in_(flats),
                )
            ).scalars()
        )
    assert per_flat == Counter(flats)


def test_a_long_report_is_cut_short(db, jobs, shared_village, monkeypatch):
    slug = shared_village.slug
    monkeypatch.setattr(actions, "MAX_REPORT", 3)
    monkeypatch.setattr(onetable_jobs, "BATCH_ROWS", 2)
    nameless = [
        {sheet.ID_NUMBER: id_numbers.compose("120111", date(1990, 1, 1), n)} for n in range(5)
    ]
    job_id = _queued_job(db, object_store(jobs), slug, workbook(nameless))
    onetable_jobs.run_import(db, object_store(jobs), slug, job_id)
    job = _job_row(db, slug, job_id)
    assert job["failed"] == 5
    assert job["report"] == [
        {"row": 2, "column": "姓名", "message": "此项为必填项"},
        {"row": 3, "column": "姓名", "message": "此项为必填项"},
        {"row": 4, "column": "姓名", "message": "此项为必填项"},
        actions.CUT_SHORT,
    ]


@pytest.mark.parametrize("status", IMPORT_STATUSES)
def test_every_step_from_every_state(db, shared_village, status):
    """begin: queued|running → running; progress: running; finish: running → finished;
    fail: queued|running → failed. Anything else is INVALID_TRANSITION and changes nothing."""
    slug = shared_village.slug
    allowed = {step: status in sources for step, (sources, _) in actions.STEPS.items()}
    steps = {
        "begin": lambda conn, job_id: actions.do_begin_import(conn, slug, job_id),
        "progress": lambda conn, job_id: actions.do_record_progress(conn, job_id, []),
        "finish": lambda conn, job_id: actions.do_finish_import(conn, ACTOR, slug, job_id),
        "fail": lambda conn, job_id: actions.do_fail_import(conn, ACTOR, slug, job_id, []),
    }
    assert set(steps) == set(actions.STEPS)
    for step, run in steps.items():
        with db.tenant(slug) as conn:
            job_id = conn.execute(
                import_jobs.insert()
                .values(
                    object_key=f"k-{status}-{step}",
                    filename="x.xlsx",
                    status=status,
                    created_by="t",
                    created_by_roles=[],
                )
                .returning(import_jobs.c.id)
            ).scalar_one()
        with db.tenant(slug) as conn:
            if allowed[step]:
                assert run(conn, job_id)["status"] == actions.STEPS[step][1]
            else:
                with pytest.raises(ActionFailed) as refused:
                    run(conn, job_id)
                assert [e.code for e in refused.value.errors] == ["INVALID_TRANSITION"]
                assert _job_row(db, slug, job_id)["status"] == status
    with db.tenant(slug) as conn, pytest.raises(ActionFailed) as missing:
        actions.do_begin_import(conn, slug, 999999)
    assert [e.code for e in missing.value.errors] == ["NOT_FOUND"]


def test_a_job_that_keeps_failing_is_marked_failed_after_its_last_retry(db, jobs, shared_village):
    slug = shared_village.slug
    job_id = _queued_job(db, object_store(jobs), slug, workbook([]))
    with db.tenant(slug) as conn:
        actions.do_begin_import(conn, slug, job_id)
    rq_job = Job.create(
        onetable_jobs.import_residents, args=(slug, job_id), connection=redis_connection(jobs)
    )
    rq_job.retries_left = 2
    onetable_jobs.give_up_import(rq_job, None, RuntimeError, RuntimeError("x"), None)
    assert _job_row(db, slug, job_id)["status"] == RUNNING
    rq_job.retries_left = 0
    onetable_jobs.give_up_import(rq_job, None, RuntimeError, RuntimeError("x"), None)
    job = _job_row(db, slug, job_id)
    assert job["status"] == FAILED
    assert job["report"] == [{"row": None, "column": None, "message": onetable_jobs.GAVE_UP}]


def test_import_jobs_are_enqueued_on_ingest_with_retries(gql, client, jobs, admin, shared_village):
    slug = shared_village.slug
    started = start(gql, admin, slug, upload(gql, client, admin, slug, workbook([])))
    [queued] = Queue("ingest", connection=redis_connection(jobs)).get_jobs()
    assert queued.args == (slug, int(decode_id(started["importJob"]["id"]).key))
    assert queued.retries_left == onetable_jobs.IMPORT_RETRY.max
    assert queued.timeout == onetable_jobs.IMPORT_TIMEOUT


# -- starting an import -----------------------------------------------------------


def test_start_refuses_what_is_not_this_villages_spreadsheet(
    gql, client, jobs, db, token, admin, shared_village, other_village
):
    slug = shared_village.slug
    jobs_in_village = select(func.count()).select_from(import_jobs)
    with db.tenant(slug) as conn:
        jobs_before = conn.execute(jobs_in_village).scalar_one()
    # Bytes that are no spreadsheet, declared as one: refused, removed, no job.
    key = upload(gql, client, admin, slug, b"PK\x03\x04 not really a zip")
    payload = start(gql, admin, slug, key)
    assert payload["importJob"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [("key", "MISMATCH")]
    # A key never uploaded, and another village's key.
    assert start(gql, admin, slug, "incoming/nothing")["userErrors"][0]["code"] == "NOT_FOUND"
    other_admin = token("village-admin", village=other_village.slug)
    other_key = upload(gql, client, other_admin, other_village.slug, workbook([]))
    assert start(gql, admin, slug, other_key)["userErrors"][0]["code"] == "NOT_FOUND"
    # A key is used once.
    key = upload(gql, client, admin, slug, workbook([]))
    assert start(gql, admin, slug, key)["userErrors"] == []
    assert start(gql, admin, slug, key)["userErrors"][0]["code"] == "NOT_FOUND"
    with db.tenant(slug) as conn:
        assert conn.execute(jobs_in_village).scalar_one() == jobs_before + 1


def test_attach_file_cannot_add_a_sheet_to_an_existing_job(
    gql, client, jobs, admin, shared_village
):
    slug = shared_village.slug
    started = start(gql, admin, slug, upload(gql, client, admin, slug, workbook([])))
    key = upload(gql, client, admin, slug, workbook([]))
    _, body = gql(
        """mutation($input: AttachFileInput!) { attachFile(input: $input) {
           attachment { id } userErrors { field code } } }""",
        admin,
        {
            "input": {
                "village": slug,
                "key": key,
                "recordType": "ImportJob",
                "recordId": started["importJob"]["id"],
            }
        },
    )
    assert body["data"]["attachFile"]["userErrors"] == [{"field": "recordId", "code": "NOT_FOUND"}]


# -- exports --------------------------------------------------------------------


def test_export_is_masked_unless_the_admin_gives_a_reason(
    gql, client, jobs, db, admin, token, populated_village
):
    slug = populated_village.slug
    _, body = gql(EXPORT, admin, {"input": {"village": slug}})
    export = body["data"]["exportResidents"]
    assert export["userErrors"] == [] and export["rows"] == 60
    assert export["download"]["filename"].startswith(f"居民信息-{slug}-")
    rows = read_rows(fetch(client, export["download"]["url"]))
    assert len(rows) == 60 and tuple(rows[0]) == sheet.COLUMNS
    assert all(r["身份证号码"][6:14] == "********" for r in rows)
    assert all(r["联系电话"] is None or r["联系电话"][3:7] == "****" for r in rows)
    assert {r["性别"] for r in rows} == {"男", "女"}
    assert all(r["户编号"] and r["楼号"].endswith("号楼") and r["网格编码"] for r in rows)

    # Whole numbers: the village admin, with a reason.
    for reason in ({}, {"reason": "   "}, {"reason": " 核对 "}):
        _, body = gql(EXPORT, admin, {"input": {"village": slug, "unmasked": True, **reason}})
        assert body["data"]["exportResidents"]["userErrors"] == [
            {"field": "reason", "message": REASON_REQUIRED, "code": "REQUIRED"}
        ]
    elderly = {"village": slug, "filter": {"ageMin": 60}, "unmasked": True, "reason": "敬老金发放"}
    _, body = gql(EXPORT, admin, {"input": elderly})
    export = body["data"]["exportResidents"]
    rows = read_rows(fetch(client, export["download"]["url"]))
    assert export["rows"] == len(rows) > 0
    assert all(id_numbers.has_valid_checksum(r["身份证号码"]) for r in rows)
    with db.platform() as conn:
        entries = (
            conn.execute(
                select(pm.audit_log).where(
                    pm.audit_log.c.village == slug, pm.audit_log.c.action == "resident.export"
                )
            )
            .mappings()
            .all()
        )
    assert [(e["reason"], e["details"]["unmasked"]) for e in entries] == [
        (None, False),
        ("敬老金发放", True),
    ]
    assert len(entries[1]["details"]["residents"]) == len(rows)
    assert entries[1]["fields"] == ["id_number", "phone"]
    assert entries[1]["details"]["filter"] == {"age_min": 60}

    # Nobody else may ask for whole numbers.
    for caller in (token("platform-admin"), _grid_worker(token, slug)):
        _, body = gql(EXPORT, caller, {"input": elderly})
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def _move_some_to_a_new_grid(db, slug: str, n: int) -> None:
    """A small village has one micro-grid: give a few residents another, out of the grid
    worker's reach."""
    with db.tenant(slug) as conn:
        grid_id = conn.execute(
            m.grids.insert()
            .values(level="micro", code=f"{slug}-new", name="新网格")
            .returning(m.grids.c.id)
        ).scalar_one()
        household_id = conn.execute(
            m.households.insert()
            .values(address="测试村新区1号", grid_id=grid_id)
            .returning(m.households.c.id)
        ).scalar_one()
        moved = select(m.residents.c.id).order_by(m.residents.c.id.desc()).limit(n)
        conn.execute(
            m.residents.update()
            .where(m.residents.c.id.in_(moved.scalar_subquery()))
            .values(grid_id=grid_id, household_id=household_id, relation_to_head=None)
        )


def _grid_worker(token, slug: str) -> str:
    return token("grid-worker", village=slug, sub=demo_grid_worker_subject(slug))


def test_grid_workers_export_their_own_grids_and_may_not_import(
    gql, client, jobs, db, token, admin, populated_village
):
    slug = populated_village.slug
    _move_some_to_a_new_grid(db, slug, 5)
    worker = _grid_worker(token, slug)
    _, body = gql(EXPORT, worker, {"input": {"village": slug}})
    export = body["data"]["exportResidents"]
    with db.tenant(slug) as conn:
        grids = grids_of_account(conn, demo_grid_worker_subject(slug))
        own = conn.execute(
            select(func.count()).select_from(m.residents).where(m.residents.c.grid_id.in_(grids))
        ).scalar_one()
    assert 0 < export["rows"] == own < 60
    assert len(read_rows(fetch(client, export["download"]["url"]))) == own

    key = upload(gql, client, admin, slug, workbook([]))
    _, body = gql(START, worker, {"input": {"village": slug, "key": key}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    _, body = gql(TEMPLATE, worker, {"slug": slug})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_read_only_roles_and_strangers_may_neither_import_nor_export(
    gql, client, jobs, token, admin, shared_village, other_village, demo_region
):
    slug = shared_village.slug
    started = start(gql, admin, slug, upload(gql, client, admin, slug, workbook([])))
    key = upload(gql, client, admin, slug, workbook([]))
    callers = {
        "FORBIDDEN": [token("regional-coordinator", region=TEST_REGION)],
        "NOT_FOUND": [token("village-admin", village=other_village.slug)],
    }
    for code, tokens in callers.items():
        for caller in tokens:
            _, body = gql(START, caller, {"input": {"village": slug, "key": key}})
            assert body["errors"][0]["extensions"]["code"] == code
            _, body = gql(EXPORT, caller, {"input": {"village": slug}})
            assert body["errors"][0]["extensions"]["code"] == code
            _, body = gql(JOBS, caller, {"slug": slug, "first": 5})
            assert body["errors"][0]["extensions"]["code"] == code
            _, body = gql(JOB, caller, {"id": started["importJob"]["id"]})
            assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    integrator = token("integrator", client="demo-integrator")
    _, body = gql(EXPORT, integrator, {"input": {"village": "liulin"}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    _, body = gql(START, token("platform-admin"), {"input": {"village": slug, "key": key}})
    assert body["data"]["startResidentImport"]["userErrors"] == []


def test_expired_exports_are_removed_with_their_objects(gql, jobs, db, admin, populated_village):
    slug = populated_village.slug
    _, body = gql(EXPORT, admin, {"input": {"village": slug, "filter": {"ageMin": 90}}})
    assert body["data"]["exportResidents"]["userErrors"] == []
    scheduled = Queue("reports", connection=redis_connection(jobs)).scheduled_job_registry
    assert [
        Job.fetch(job_id, connection=redis_connection(jobs)).args
        for job_id in scheduled.get_job_ids()
    ] == [(slug,)]
    store = object_store(jobs)
    with db.tenant(slug) as conn:
        [key] = conn.execute(select(resident_exports.c.object_key)).scalars()
        assert onetable_jobs.remove_expired_exports(slug) == 0  # not expired yet
        conn.execute(resident_exports.update().values(expires_at=text("now() - interval '1 s'")))
    assert store.stat(slug, key) is not None
    assert onetable_jobs.remove_expired_exports(slug) == 1
    assert store.stat(slug, key) is None
    with db.tenant(slug) as conn:
        assert conn.execute(select(resident_exports)).all() == []


# -- the list: statements -------------------------------------------------------


def test_import_list_statement_count_is_flat(app, gql, token, db, shared_village):
    slug = shared_village.slug
    admin = token("village-admin", village=slug)
    for _ in range(50):
        _queued_job_row(db, slug)

    def run(first: int) -> list[str]:
        with count_statements(app.extensions["villagelink"].db.engine) as statements:
            _, body = gql(JOBS, admin, {"slug": slug, "first": first})
        assert "errors" not in body, body
        assert len(body["data"]["village"]["importJobs"]["edges"]) == first
        return statements

    run(1)  # warm the pool: pre-ping is not ours to count
    five, fifty = run(5), run(50)
    # role, path and access epoch (the caller's reach is kept with the token), the page
    assert len(five) == len(fifty) == 2, "\n".join(fifty)


def _queued_job_row(db, slug: str) -> None:
    with db.tenant(slug) as conn:
        conn.execute(
            import_jobs.insert().values(
                object_key=f"files/import_sheet/{uuid.uuid4().hex}.xlsx",
                filename="居民.xlsx",
                created_by="t",
                created_by_name="测试",
                created_by_roles=["village-admin"],
                report=[{"row": 2, "column": "姓名", "message": "此项为必填项"}],
            )
        )


# -- both object stores ---------------------------------------------------------


def test_the_whole_flow_on_each_object_store(db, backend, gql_on, storage_jobs, populated_village):  # noqa: F811
    """Upload over real HTTP, import in a worker, export and download: local disk and MinIO."""
    slug = populated_village.slug
    store = backend.store
    store.ensure_bucket(slug)
    rows = [person(date(1948, 8, 8), 61, 标签="独居老人")]
    data = workbook(rows)
    body = gql_on(
        CREATE_UPLOAD,
        "village-admin",
        {
            "input": {
                "village": slug,
                "purpose": "IMPORT_SHEET",
                "filename": "新登记.xlsx",
                "contentType": XLSX,
                "size": len(data),
            }
        },
        village=slug,
    )
    ticket = body["data"]["createUploadUrl"]["upload"]
    headers = {h["name"]: h["value"] for h in ticket["headers"]}
    assert requests.put(ticket["url"], data=data, headers=headers, timeout=30).status_code == 200
    body = gql_on(
        START, "village-admin", {"input": {"village": slug, "key": ticket["key"]}}, village=slug
    )
    job_id = body["data"]["startResidentImport"]["importJob"]["id"]
    work_off_checked(storage_jobs)
    job = gql_on(JOB, "village-admin", {"id": job_id}, village=slug)["data"]["node"]
    assert (job["status"], job["filename"], job["imported"], job["report"]) == (
        "FINISHED",
        "新登记.xlsx",
        1,
        [],
    )
    body = gql_on(
        EXPORT,
        "village-admin",
        {"input": {"village": slug, "filter": {"tag": "ELDERLY_LIVING_ALONE"}}},
        village=slug,
    )
    export = body["data"]["exportResidents"]
    exported = read_rows(requests.get(export["download"]["url"], timeout=30).content)
    assert rows[0][sheet.NAME] in {r["姓名"] for r in exported}
    assert len(exported) == export["rows"]

"""The residents sheet (居民信息表): its Chinese columns, how its cells read, and the
workbooks written from it (the import template and exports), with openpyxl.

Reading turns cells into the input the resident actions take (the same dicts a
GraphQL mutation would pass), so every rule about residents stays in
tenants/residents. What is decided here is only what belongs to spreadsheets:
Chinese labels for codes, numbers typed as text or text as numbers, dates in the
shapes clerks type them.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

NAME = "姓名"
ID_NUMBER = "身份证号码"
GENDER = "性别"
BIRTH_DATE = "出生日期"
PHONE = "联系电话"
RELATION = "与户主关系"
BUILDING = "楼号"
UNIT = "单元"
ROOM = "室"
GRID = "网格编码"
TAGS = "标签"
HOUSEHOLD = "户编号"
RESIDENT_NO = "居民编号"
COLUMNS = (
    NAME,
    ID_NUMBER,
    GENDER,
    BIRTH_DATE,
    PHONE,
    RELATION,
    BUILDING,
    UNIT,
    ROOM,
    GRID,
    TAGS,
    HOUSEHOLD,
    RESIDENT_NO,
)
REQUIRED_COLUMNS = (NAME, ID_NUMBER)
RESIDENTS_SHEET = "居民信息"

# The structure sheets (网格, 楼栋, 户), read before the residents sheet of the same
# workbook, in this order: a village is loaded structure first, then residents.
GRIDS_SHEET = "网格"
BUILDINGS_SHEET = "楼栋"
HOUSEHOLDS_SHEET = "户"
GRID_NAME = "名称"
LEVEL = "层级"
PARENT_GRID = "上级网格编码"
UNITS = "单元数"
FLOORS = "层数"
ADDRESS = "地址"
STRUCTURE_SHEETS = {
    GRIDS_SHEET: ((GRID, GRID_NAME, LEVEL, PARENT_GRID), (GRID, GRID_NAME, LEVEL)),
    BUILDINGS_SHEET: ((BUILDING, GRID, UNITS, FLOORS), (BUILDING, GRID, UNITS, FLOORS)),
    HOUSEHOLDS_SHEET: ((BUILDING, UNIT, ROOM, ADDRESS, GRID), ()),
}

GENDER_LABELS = {"male": "男", "female": "女"}
RELATION_LABELS = {
    "head": "户主",
    "spouse": "配偶",
    "child": "子女",
    "parent": "父母",
    "grandchild": "孙子女",
    "sibling": "兄弟姐妹",
    "other": "其他",
}
TAG_LABELS = {
    "elderly_living_alone": "独居老人",
    "disabled": "残疾",
    "low_income": "低保",
    "key_focus": "重点关注",
    "party_member": "党员",
    "volunteer": "志愿者",
    "relocated_villager": "还迁村民",
    "floating_population": "流动人口",
}
_CODES = {
    GENDER: {v: k for k, v in GENDER_LABELS.items()},
    RELATION: {v: k for k, v in RELATION_LABELS.items()},
    TAGS: {v: k for k, v in TAG_LABELS.items()},
}

# 独居老人、残疾(2级)；低保 : labels split on Chinese or Western separators.
_TAG_SEPARATORS = re.compile(r"[、,，;；\s]+")
_TAG_WITH_LEVEL = re.compile(r"^(.+?)[（(]\s*(\d)\s*级\s*[)）]$")
_DATE_SHAPES = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)
# What a masked export writes in place of the hidden digits (tenants/sensitive.py).
MASK = "*"
# Above this a number in a cell is not exact any more (IEEE double): an ID number
# typed into a numeric cell has lost its last digits.
_EXACT_DIGITS = 15


@dataclass(frozen=True)
class Problem:
    """One line of an import report: the row (header = 1) and column header, or None
    for the whole file or row, and what is wrong in Chinese; `sheet` names a structure
    sheet (None: the residents sheet, or the whole file)."""

    row: int | None
    column: str | None
    message: str
    sheet: str | None = None

    def as_json(self) -> dict[str, Any]:
        found = {"row": self.row, "column": self.column, "message": self.message}
        return found if self.sheet is None else {"sheet": self.sheet, **found}


class UnreadableSheet(Exception):
    """The file is no spreadsheet we can import; `problems` say why."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class SheetRow:
    number: int
    # Header → value, for the cells that are not blank.
    cells: dict[str, Any]
    # A structure sheet's name; None for the residents sheet.
    sheet: str | None = None


@dataclass
class RowInput:
    """One row as input to the resident actions, and what could not be read."""

    number: int
    person: dict[str, Any] = field(default_factory=dict)
    tags: list[dict[str, Any]] = field(default_factory=list)
    building: str | None = None
    unit_no: int | None = None
    room_no: str | None = None
    household_no: int | None = None
    grid_code: str | None = None
    # The resident's number from an export (居民编号), which names them where a
    # masked export hides the ID number.
    resident_no: int | None = None
    # Cells as a masked export wrote them (110101********1234, 138****5678): they
    # are judged against the registered resident's, not loaded as input.
    masked_id_number: str | None = None
    masked_phone: str | None = None
    problems: list[Problem] = field(default_factory=list)

    def problem(self, column: str, message: str) -> None:
        self.problems.append(Problem(self.number, column, message))


# -- reading -------------------------------------------------------------------


def read_sheet(data: bytes) -> list[SheetRow]:
    """The data rows of the workbook, blank rows left out: those of its structure
    sheets (网格, 楼栋, 户) first, in that order, then those of the residents sheet
    (居民信息, or the first other sheet). Raises UnreadableSheet for a file that is no
    workbook or lacks a required column."""
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise UnreadableSheet([Problem(None, None, "无法读取表格文件，请上传 .xlsx 文件")]) from exc
    try:
        found: list[SheetRow] = []
        problems: list[Problem] = []
        for name, (columns, required) in STRUCTURE_SHEETS.items():
            if name in workbook.sheetnames:
                found += _rows(workbook[name], columns, required, name, problems)
        others = [w for w in workbook.worksheets if w.title not in STRUCTURE_SHEETS]
        residents = next((w for w in others if w.title == RESIDENTS_SHEET), None)
        if residents is None and others and not found:
            residents = others[0]
        if residents is not None:
            found += _rows(residents, COLUMNS, REQUIRED_COLUMNS, None, problems)
        if problems:
            raise UnreadableSheet(problems)
        return found
    finally:
        workbook.close()


def _rows(
    worksheet,
    known: tuple[str, ...],
    required: tuple[str, ...],
    sheet: str | None,
    problems: list[Problem],
) -> list[SheetRow]:
    rows = worksheet.iter_rows(min_row=1, values_only=True)
    columns = _header(next(rows, ()), known, required, sheet, problems)
    found = []
    for number, values in enumerate(rows, start=2):
        cells = {columns[i]: v for i, v in enumerate(values) if i in columns and not _blank(v)}
        if cells:
            found.append(SheetRow(number, cells, sheet))
    return found


def _header(
    values: Iterable[Any],
    known: tuple[str, ...],
    required: tuple[str, ...],
    sheet: str | None,
    problems: list[Problem],
) -> dict[int, str]:
    """Column position → header, for the headers we know; a sheet without the required
    ones or with one twice joins `problems`."""
    columns: dict[int, str] = {}
    for i, value in enumerate(values):
        name = cell_text(value)
        if name in columns.values():
            problems.append(Problem(1, name, "列名重复", sheet))
        elif name in known:
            columns[i] = name
    problems += [
        Problem(1, name, "缺少此列", sheet) for name in required if name not in columns.values()
    ]
    return columns


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def cell_text(value: Any) -> str | None:
    """A cell as text: whole numbers without '.0', dates as YYYY-MM-DD."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip() or None


def row_input(row: SheetRow) -> RowInput:
    """What the row asks for, in the resident actions' terms."""
    given = RowInput(row.number)
    cells = row.cells
    if NAME in cells:
        given.person["name"] = cell_text(cells[NAME])
    if PHONE in cells:
        phone = cell_text(cells[PHONE])
        if masked(phone):
            given.masked_phone = phone
        else:
            given.person["phone"] = phone
    if ID_NUMBER in cells:
        number = _id_number(given, cells[ID_NUMBER])
        if masked(number):
            given.masked_id_number = number
        else:
            given.person["id_number"] = number
    if RESIDENT_NO in cells:
        number = cell_text(cells[RESIDENT_NO])
        if number.isdigit():
            given.resident_no = int(number)
        else:
            given.problem(RESIDENT_NO, "居民编号应为数字")
    for column, key in ((GENDER, "gender"), (RELATION, "relation_to_head")):
        if column in cells:
            label = cell_text(cells[column])
            # An unknown label goes on as it is: the resident rules refuse it.
            given.person[key] = _CODES[column].get(label, label)
    if BIRTH_DATE in cells:
        born = _birth_date(given, cells[BIRTH_DATE])
        if born is not None:
            given.person["birth_date"] = born
    if TAGS in cells:
        given.tags = [
            _tag(label) for label in _TAG_SEPARATORS.split(cell_text(cells[TAGS])) if label
        ]
    _address(given, cells)
    return given


def masked(value: str | None) -> bool:
    """Whether a cell holds a number as a masked export wrote it."""
    return value is not None and MASK in value


def _id_number(given: RowInput, value: Any) -> str:
    if isinstance(value, float) or (isinstance(value, int) and len(str(value)) > _EXACT_DIGITS):
        given.problem(ID_NUMBER, "身份证号码须按文本填写：数字格式的单元格会改变末几位")
    return cell_text(value) or ""


def _birth_date(given: RowInput, value: Any) -> str | None:
    """ISO text for the resident rules; a date that does not exist (1990-02-30) is
    reported here, anything else that is no date is left to the rules to refuse."""
    text = cell_text(value)
    for shape in _DATE_SHAPES:
        found = shape.match(text)
        if found:
            try:
                return date(*(int(part) for part in found.groups())).isoformat()
            except ValueError:
                given.problem(BIRTH_DATE, "出生日期不存在，请按 1990-03-07 的格式填写")
                return None
    return text


def _tag(label: str) -> dict[str, Any]:
    found = _TAG_WITH_LEVEL.match(label)
    name, level = (found.group(1), int(found.group(2))) if found else (label, None)
    tag = {"tag": _CODES[TAGS].get(name, name)}
    if level is not None:
        tag["level"] = level
    return tag


def building_name(value: Any) -> str | None:
    """楼号 3 / 3号 / 3号楼 all name the building 3号楼."""
    building = cell_text(value)
    if building and building.isdigit():
        return building + "号楼"
    if building and building.endswith("号"):
        return building + "楼"
    return building


def whole_number(value: Any) -> int | None:
    """A cell as a whole number (2, 2.0 or "2"); None when it is not one."""
    text = cell_text(value)
    return int(text) if text is not None and text.isdigit() else None


def _address(given: RowInput, cells: dict[str, Any]) -> None:
    """楼号 3 / 3号 / 3号楼 all name the building 3号楼; 单元 2 or 2单元; 室 502 or 502室."""
    given.building = building_name(cells.get(BUILDING))
    unit = cell_text(cells.get(UNIT))
    if unit:
        unit = unit.removesuffix("单元")
        if unit.isdigit():
            given.unit_no = int(unit)
        else:
            given.problem(UNIT, "单元应为数字，如 2")
    room = cell_text(cells.get(ROOM))
    if room:
        given.room_no = room.removesuffix("室")
    number = cell_text(cells.get(HOUSEHOLD))
    if number:
        if number.isdigit():
            given.household_no = int(number)
        else:
            given.problem(HOUSEHOLD, "户编号应为数字")
    given.grid_code = cell_text(cells.get(GRID))


# -- writing -------------------------------------------------------------------

GUIDE = (
    (NAME, "必填", "1到50个字"),
    (
        ID_NUMBER,
        "必填",
        "18位居民身份证号码，末位可为X；请以文本格式填写。已登记的号码会更新该居民",
    ),
    (GENDER, "选填", "男、女；须与身份证号码一致，不填则按身份证号码"),
    (BIRTH_DATE, "选填", "如 1990-03-07；须与身份证号码一致，不填则按身份证号码"),
    (PHONE, "选填", "11位手机号码"),
    (RELATION, "选填", "、".join(RELATION_LABELS.values()) + "；每户只能有一位户主"),
    (BUILDING, "选填", "本村已有的楼，如 3号楼（也可写 3）；与单元、室一起指明所在户"),
    (UNIT, "选填", "数字，如 2"),
    (ROOM, "选填", "如 502；楼里还没有这一户时会新建"),
    (GRID, "选填", "所在户的网格编码，用于核对；与所在户的网格不一致时报错"),
    (
        TAGS,
        "选填",
        "、".join(TAG_LABELS.values()) + "，多个用顿号分隔；残疾可写等级，如 残疾(2级)",
    ),
    (HOUSEHOLD, "选填", "已有户的户编号（导出表中有）；不填楼号、单元、室时用它指明所在户"),
    (
        RESIDENT_NO,
        "选填",
        "导出表中的居民编号，请勿修改；打码导出的表导回时据此识别居民："
        "打码的身份证号码、电话与登记相符即视为未改，更改须填写完整号码",
    ),
)
GUIDE_NOTES = (
    "“居民信息”工作表（或第一张工作表）为数据，第一行为列名，每行一位居民；空行会被跳过。",
    "同一身份证号码在表中只能出现一次。",
    "导入不会删除任何信息：留空的单元格不改变已登记的内容，已有的标签会保留。",
    "有错误的行不会导入，导入结束后按行号和列名列出原因；其余行照常导入。",
    "同一文件可另加名为“网格”“楼栋”“户”的工作表：先导入村庄结构，再导入居民。",
)
# The structure sheets' columns, named by sheet: 网格·网格编码 and 楼栋·网格编码 differ.
STRUCTURE_GUIDE = (
    (
        f"{GRIDS_SHEET}·{GRID}",
        "必填",
        "1到40位字母、数字、-或_，本村唯一，如 LL-01-02；已有的编码会更新该网格",
    ),
    (f"{GRIDS_SHEET}·{GRID_NAME}", "必填", "如 第1网格第2微网格"),
    (f"{GRIDS_SHEET}·{LEVEL}", "必填", "社区、网格、微网格；已登记网格的层级不能更改"),
    (
        f"{GRIDS_SHEET}·{PARENT_GRID}",
        "选填",
        "社区不填；网格填所属社区的编码，微网格填所属网格的编码（须在上方的行或已登记）",
    ),
    (f"{BUILDINGS_SHEET}·{BUILDING}", "必填", "如 3号楼（也可写 3）；已有的楼会更新"),
    (f"{BUILDINGS_SHEET}·{GRID}", "必填", "所属网格或微网格的编码（不能是社区）"),
    (f"{BUILDINGS_SHEET}·{UNITS}", "必填", "1到99"),
    (f"{BUILDINGS_SHEET}·{FLOORS}", "必填", "1到200"),
    (f"{HOUSEHOLDS_SHEET}·{BUILDING}/{UNIT}/{ROOM}", "二选一", "楼里的一户：楼号、单元、室"),
    (
        f"{HOUSEHOLDS_SHEET}·{ADDRESS}/{GRID}",
        "二选一",
        "不在楼里的一户：地址（如 村东头12号）和所属网格的编码",
    ),
)
TEXT_FORMAT = "@"
# Bump when the template changes: villages keep their stored copy under this version.
TEMPLATE_VERSION = 3


def template_workbook() -> bytes:
    """The import template: the residents sheet with its headers, the structure sheets
    (网格, 楼栋, 户) with theirs, and a guide sheet."""
    workbook = Workbook()
    data = workbook.active
    data.title = "居民信息"
    data.append(COLUMNS)
    for cell in data[1]:
        cell.font = Font(bold=True)
    _widths(data)
    for position, column in enumerate(COLUMNS, start=1):
        if column in (ID_NUMBER, PHONE, ROOM):
            # Typed as text from the start: Excel would turn an ID number into 1.1E+17.
            data.column_dimensions[get_column_letter(position)].number_format = TEXT_FORMAT
    data.freeze_panes = "A2"
    for name, (columns, _required) in STRUCTURE_SHEETS.items():
        structure = workbook.create_sheet(name)
        structure.append(columns)
        for cell in structure[1]:
            cell.font = Font(bold=True)
        structure.freeze_panes = "A2"
    guide = workbook.create_sheet("填写说明")
    guide.append(("列名", "是否必填", "说明"))
    for cell in guide[1]:
        cell.font = Font(bold=True)
    for line in GUIDE:
        guide.append(line)
    guide.append(())
    guide.append(("村庄结构（先于居民导入，可不填）",))
    for line in STRUCTURE_GUIDE:
        guide.append(line)
    guide.append(())
    for note in GUIDE_NOTES:
        guide.append((note,))
    guide.column_dimensions["A"].width = 16
    guide.column_dimensions["C"].width = 80
    return saved(workbook)


def export_workbook(rows: Iterator[tuple]) -> bytes:
    """An export in the template's columns, so that it can be edited and imported
    again; `rows` are tuples in COLUMNS order. Streamed (write-only) to keep memory flat."""
    workbook = Workbook(write_only=True)
    data = workbook.create_sheet("居民信息")
    _widths(data)
    data.append(COLUMNS)
    for row in rows:
        data.append(row)
    return saved(workbook)


def tag_labels(tags: Iterable[dict]) -> str:
    """A resident's tags as the sheet writes them: 独居老人、残疾(2级)."""
    return "、".join(
        TAG_LABELS[t["tag"]] + (f"({t['level']}级)" if t.get("level") else "") for t in tags
    )


def _widths(sheet) -> None:
    for position, column in enumerate(COLUMNS, start=1):
        width = 22 if column in (ID_NUMBER, TAGS) else 12
        sheet.column_dimensions[get_column_letter(position)].width = width


def saved(workbook: Workbook) -> bytes:
    """The workbook as the bytes of an .xlsx file."""
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()

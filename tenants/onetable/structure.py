"""Importing the structure sheets (网格, 楼栋, 户) through the structure actions.

A village is loaded from spreadsheets in order: its grids (each after its parent,
as the sheet lists them), buildings and households, then its residents, who are
placed in those. Each row is written in a savepoint of its own by the same actions
as `createGrid`, `createBuilding` and `createHousehold` (and their updates), so a
row is refused exactly when the console would refuse it. A row naming a record that
exists already (a grid by its code, a building by its name, a household by its flat
or address) updates what differs, or is unchanged: importing the same workbook again
changes nothing. Blank cells change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, select

from villagelink.platform.audit import Actor
from villagelink.tenants import models as m
from villagelink.tenants.onetable.queries import Places
from villagelink.tenants.onetable.sheet import (
    ADDRESS,
    BUILDING,
    BUILDINGS_SHEET,
    FLOORS,
    GRID,
    GRID_NAME,
    GRIDS_SHEET,
    HOUSEHOLDS_SHEET,
    LEVEL,
    PARENT_GRID,
    ROOM,
    STRUCTURE_SHEETS,
    UNIT,
    UNITS,
    Problem,
    SheetRow,
    building_name,
    cell_text,
    whole_number,
)
from villagelink.tenants.structure import actions
from villagelink.tenants.user_errors import ActionFailed

IMPORTED = "imported"
UPDATED = "updated"
UNCHANGED = "unchanged"
FAILED = "failed"

LEVEL_CODES = {label: level for level, label in actions.LEVEL_LABELS.items()}
# Where the fields the structure actions name are found in each sheet.
FIELD_COLUMNS = {
    GRIDS_SHEET: {"code": GRID, "name": GRID_NAME, "level": LEVEL, "parent": PARENT_GRID},
    BUILDINGS_SHEET: {"name": BUILDING, "grid": GRID, "units": UNITS, "floors": FLOORS},
    HOUSEHOLDS_SHEET: {
        "building": BUILDING,
        "unitNo": UNIT,
        "roomNo": ROOM,
        "address": ADDRESS,
        "grid": GRID,
    },
}


class StructureImporter:
    """Imports structure rows into one village, in the caller's transaction, keeping
    `places` (what resident rows are placed by) up to date as it goes."""

    def __init__(
        self, conn: Connection, actor: Actor, village: str, village_name: str, places: Places
    ):
        self.conn = conn
        self.actor = actor
        self.village = village
        self.village_name = village_name
        self.places = places

    def run(self, row: SheetRow) -> tuple[str, tuple[Problem, ...]]:
        """Import one row; its outcome and its problems."""
        step = {
            GRIDS_SHEET: self._grid,
            BUILDINGS_SHEET: self._building,
            HOUSEHOLDS_SHEET: self._household,
        }[row.sheet]
        problems: list[Problem] = []
        try:
            with self.conn.begin_nested():
                outcome = step(row, problems)
                if problems:
                    return FAILED, self._ordered(row, problems)
        except ActionFailed as failed:
            columns = FIELD_COLUMNS[row.sheet]
            for e in failed.errors:
                problems.append(Problem(row.number, columns.get(e.field), e.message, row.sheet))
            return FAILED, self._ordered(row, problems)
        return outcome, ()

    @staticmethod
    def _ordered(row: SheetRow, problems: Iterable[Problem]) -> tuple[Problem, ...]:
        order = STRUCTURE_SHEETS[row.sheet][0]
        return tuple(
            sorted(problems, key=lambda p: -1 if p.column is None else order.index(p.column))
        )

    def _grid_id(self, row: SheetRow, column: str, problems: list[Problem]) -> int | None:
        code = cell_text(row.cells.get(column))
        if code is None:
            return None
        grid = self.places.grids.get(code)
        if grid is None:
            problems.append(Problem(row.number, column, "网格不存在", row.sheet))
            return None
        return grid["id"]

    @staticmethod
    def _number(row: SheetRow, column: str, problems: list[Problem]) -> int | None:
        if column not in row.cells:
            return None
        number = whole_number(row.cells[column])
        if number is None:
            problems.append(Problem(row.number, column, f"{column}应为数字", row.sheet))
        return number

    @staticmethod
    def _changed(current: dict, wanted: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in wanted.items() if v is not None and current[k] != v}

    def _write(
        self, problems: list[Problem], existing: dict | None, create: Callable, update: Callable
    ) -> str:
        if problems:
            return FAILED
        if existing is None:
            create()
            return IMPORTED
        return UPDATED if update() else UNCHANGED

    # -- the three sheets -----------------------------------------------------------

    def _grid(self, row: SheetRow, problems: list[Problem]) -> str:
        cells = row.cells
        code = cell_text(cells.get(GRID))
        label = cell_text(cells.get(LEVEL))
        level = LEVEL_CODES.get(label, label)
        parent_id = self._grid_id(row, PARENT_GRID, problems)
        name = cell_text(cells.get(GRID_NAME))
        existing = self.places.grids.get(code)
        if existing is not None and level != existing["level"]:
            problems.append(
                Problem(row.number, LEVEL, "层级与已登记的不同：层级不能更改", row.sheet)
            )

        def create() -> None:
            grid = actions.do_create_grid(
                self.conn,
                self.actor,
                self.village,
                {"code": code, "name": name, "level": level},
                parent_id=parent_id,
            )
            self.places.grids[grid["code"]] = grid

        def update() -> bool:
            changes = self._changed(existing, {"name": name, "parent_id": parent_id})
            if not changes:
                return False
            grid = actions.do_update_grid(
                self.conn,
                self.actor,
                self.village,
                existing["id"],
                {k: v for k, v in changes.items() if k != "parent_id"},
                parent_id=changes.get("parent_id"),
            )
            self.places.grids[grid["code"]] = grid
            return True

        return self._write(problems, existing, create, update)

    def _building(self, row: SheetRow, problems: list[Problem]) -> str:
        name = building_name(row.cells.get(BUILDING))
        grid_id = self._grid_id(row, GRID, problems)
        units = self._number(row, UNITS, problems)
        floors = self._number(row, FLOORS, problems)
        existing = self.places.buildings.get(name)
        wanted = {"units": units, "floors": floors}

        def create() -> None:
            building = actions.do_create_building(
                self.conn,
                self.actor,
                self.village,
                {"name": name, **wanted},
                grid_id=grid_id,
            )
            self.places.buildings[building["name"]] = building

        def update() -> bool:
            changes = self._changed(existing, {**wanted, "grid_id": grid_id})
            if not changes:
                return False
            building = actions.do_update_building(
                self.conn,
                self.actor,
                self.village,
                existing["id"],
                {k: v for k, v in changes.items() if k != "grid_id"},
                grid_id=changes.get("grid_id"),
                village_name=self.village_name,
            )
            self.places.buildings[building["name"]] = building
            return True

        return self._write(problems, existing, create, update)

    def _household(self, row: SheetRow, problems: list[Problem]) -> str:
        cells = row.cells
        name = building_name(cells.get(BUILDING))
        unit_no = self._number(row, UNIT, problems)
        room_no = cell_text(cells.get(ROOM))
        address = cell_text(cells.get(ADDRESS))
        grid_id = self._grid_id(row, GRID, problems)
        existing = None
        building_id = None
        if name is not None:
            building = self.places.buildings.get(name)
            if building is None:
                problems.append(Problem(row.number, BUILDING, "楼栋不存在", row.sheet))
            else:
                building_id = building["id"]
                flat = (building_id, unit_no, (room_no or "").removesuffix("室"))
                existing = self.places.households_by_flat.get(flat)
            data = {"unit_no": unit_no, "room_no": room_no and room_no.removesuffix("室")}
        elif address is None:
            problems.append(
                Problem(row.number, None, "请填写楼号、单元、室，或填写地址和网格编码", row.sheet)
            )
            data = {}
        else:
            h = m.households
            found = (
                self.conn.execute(
                    select(h).where(h.c.address == address, h.c.archived_at.is_(None))
                )
                .mappings()
                .first()
            )
            existing = dict(found) if found else None
            data = {"address": address}
        if existing is not None and grid_id is not None and grid_id != existing["grid_id"]:
            problems.append(Problem(row.number, GRID, "网格编码与该户的网格不一致", row.sheet))

        def create() -> None:
            household = actions.do_create_household(
                self.conn,
                self.actor,
                self.village,
                {k: v for k, v in data.items() if v is not None},
                building_id=building_id,
                grid_id=grid_id,
                village_name=self.village_name,
            )
            self.places.add_household(household)

        # A household is its flat or address: a row naming one that exists changes nothing.
        return self._write(problems, existing, create, lambda: False)

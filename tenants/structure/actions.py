"""Writes to the village's structure: grids of the three levels (社区/网格/微网格),
buildings and households. The only place they change.

Nothing residents hang on is ever deleted: a grid, building or household is archived
(`archived_at`), which hides it from the default lists and closes it to new uses,
and is refused while anything live still hangs on it. Every structure write of a
village takes the village's structure lock first, so duplicate checks and the
checks of what hangs on a record see each other's writes. Each action validates
its input, writes, and appends an audit entry in the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, func, literal, select

from villagelink.platform.audit import Actor, record
from villagelink.platform.db import hold_lock
from villagelink.tenants import models as m
from villagelink.tenants.residents.queries import households_by_ids
from villagelink.tenants.structure.queries import live_dependants, live_row
from villagelink.tenants.structure.validation import (
    AddressSchema,
    BuildingChangesSchema,
    GridChangesSchema,
    HouseholdChangesSchema,
    NewBuildingSchema,
    NewGridSchema,
    NewHouseholdSchema,
)
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID,
    MISMATCH,
    REQUIRED,
    refused,
    validated,
)

GRID = "Grid"
BUILDING = "Building"
HOUSEHOLD = "Household"

LEVEL_LABELS = {"community": "社区", "large": "网格", "micro": "微网格"}
# The level a grid's parent must have; a community is the top and has none.
PARENT_LEVEL = {"community": None, "large": "community", "micro": "large"}
# Buildings and households lie in a grid or a micro-grid, not in the community as a whole.
PLACE_LEVELS = ("large", "micro")


def _lock_structure(conn: Connection, village: str) -> None:
    hold_lock(conn, f"structure:{village}")


def _audit(conn, actor, village, action, subject_type, subject_id, fields, **extra) -> None:
    record(
        conn,
        actor,
        village=village,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        fields=sorted(fields),
        **extra,
    )


# -- grids ---------------------------------------------------------------------


def _check_parent(conn: Connection, level: str, parent_id: int | None) -> None:
    """A micro-grid's parent is a grid, a grid's parent a community, a community has none."""
    wanted = PARENT_LEVEL[level]
    if wanted is None:
        if parent_id is not None:
            raise refused("parent", "社区是最上一级，不设上级网格", INVALID)
        return
    if parent_id is None:
        raise refused("parent", f"{LEVEL_LABELS[level]}须有上级{LEVEL_LABELS[wanted]}", REQUIRED)
    parent = live_row(conn, m.grids, parent_id, "parent")
    if parent["level"] != wanted:
        raise refused(
            "parent",
            f"{LEVEL_LABELS[level]}的上级须为{LEVEL_LABELS[wanted]}，"
            f"不能是{LEVEL_LABELS[parent['level']]}",
            MISMATCH,
        )


def _check_grid_unique(
    conn: Connection, code: str | None, name: str | None, parent_id: int | None, own: int | None
) -> None:
    g = m.grids
    others = g.c.id != own if own is not None else literal(True)
    if code is not None and conn.execute(select(g.c.id).where(g.c.code == code, others)).first():
        # Codes stay taken by archived grids too: old exports and reports name them.
        raise refused("code", "网格编码已存在", DUPLICATE)
    if name is not None:
        same_parent = g.c.parent_id.is_(None) if parent_id is None else g.c.parent_id == parent_id
        taken = conn.execute(
            select(g.c.id).where(g.c.name == name, same_parent, g.c.archived_at.is_(None), others)
        ).first()
        if taken:
            raise refused("name", "同一上级下已有同名网格", DUPLICATE)


def do_create_grid(
    conn: Connection, actor: Actor, village: str, data: dict[str, Any], *, parent_id: int | None
) -> dict:
    values = validated(NewGridSchema(), data)
    _lock_structure(conn, village)
    _check_parent(conn, values["level"], parent_id)
    _check_grid_unique(conn, values["code"], values["name"], parent_id, None)
    row = {**values, "parent_id": parent_id}
    grid = conn.execute(m.grids.insert().values(**row).returning(m.grids)).mappings().one()
    _audit(conn, actor, village, "grid.create", GRID, grid["id"], row)
    return dict(grid)


def do_update_grid(
    conn: Connection,
    actor: Actor,
    village: str,
    grid_id: int,
    changes: dict[str, Any],
    *,
    parent_id: int | None = None,
) -> dict:
    """Name, code, or (with `parent_id`) another parent of the same level as before;
    a grid's level is fixed, since its children and buildings depend on it."""
    values = validated(GridChangesSchema(), changes)
    _lock_structure(conn, village)
    grid = live_row(conn, m.grids, grid_id, "id", for_update=True)
    if parent_id is not None:
        _check_parent(conn, grid["level"], parent_id)
        values["parent_id"] = parent_id
    changed = {k: v for k, v in values.items() if grid[k] != v}
    if not changed:
        return grid
    _check_grid_unique(
        conn,
        changed.get("code"),
        values.get("name", grid["name"]) if {"name", "parent_id"} & set(changed) else None,
        values.get("parent_id", grid["parent_id"]),
        grid_id,
    )
    updated = (
        conn.execute(
            m.grids.update()
            .where(m.grids.c.id == grid_id)
            .values(**changed, updated_at=func.now())
            .returning(m.grids)
        )
        .mappings()
        .one()
    )
    _audit(conn, actor, village, "grid.update", GRID, grid_id, changed)
    return dict(updated)


def do_archive_grid(conn: Connection, actor: Actor, village: str, grid_id: int) -> dict:
    """Archive a grid nothing live hangs on any more (child grids, buildings,
    households, residents, staff): the refusal names what is left."""
    _lock_structure(conn, village)
    live_row(conn, m.grids, grid_id, "id", for_update=True)
    left = live_dependants(conn, grid_id)
    if left:
        raise refused("id", f"该网格下还有{'、'.join(left)}，请先调整后再归档", INVALID)
    archived = (
        conn.execute(
            m.grids.update()
            .where(m.grids.c.id == grid_id)
            .values(archived_at=func.now(), updated_at=func.now())
            .returning(m.grids)
        )
        .mappings()
        .one()
    )
    _audit(conn, actor, village, "grid.archive", GRID, grid_id, ["archived_at"])
    return dict(archived)


# -- buildings -----------------------------------------------------------------


def _place_grid(conn: Connection, grid_id: int | None, field: str = "grid") -> dict:
    """The live grid or micro-grid a building or household is placed in."""
    if grid_id is None:
        raise refused(field, "请选择所属网格", REQUIRED)
    grid = live_row(conn, m.grids, grid_id, field)
    if grid["level"] not in PLACE_LEVELS:
        raise refused(field, "楼栋和户须归属网格或微网格，不能直接归属社区", INVALID)
    return grid


def _check_building_name(conn: Connection, name: str, own: int | None) -> None:
    """Names are what people say (3号楼) and what the 一张表 sheet matches on: one
    live building of a name."""
    b = m.buildings
    query = select(b.c.id).where(b.c.name == name, b.c.archived_at.is_(None))
    if own is not None:
        query = query.where(b.c.id != own)
    if conn.execute(query).first():
        raise refused("name", "已有同名楼栋", DUPLICATE)


def flat_address(village_name: str, building_name: str | ColumnElement, unit_no, room_no):
    """A flat's address as every household in a building shows it: 柳林村3号楼2单元502室.
    A SQL expression, so a renamed building's households are readdressed in one statement."""
    return func.concat(village_name, building_name, unit_no, "单元", room_no, "室")


def do_create_building(
    conn: Connection, actor: Actor, village: str, data: dict[str, Any], *, grid_id: int | None
) -> dict:
    values = validated(NewBuildingSchema(), data)
    _lock_structure(conn, village)
    _place_grid(conn, grid_id)
    _check_building_name(conn, values["name"], None)
    row = {**values, "grid_id": grid_id}
    b = m.buildings
    building = conn.execute(b.insert().values(**row).returning(b)).mappings().one()
    _audit(conn, actor, village, "building.create", BUILDING, building["id"], row)
    return dict(building)


def do_update_building(
    conn: Connection,
    actor: Actor,
    village: str,
    building_id: int,
    changes: dict[str, Any],
    *,
    grid_id: int | None = None,
    village_name: str,
) -> dict:
    """Name, units, floors, or (with `grid_id`) another grid: its households and their
    residents move with it, and a new name readdresses its households."""
    values = validated(BuildingChangesSchema(), changes)
    _lock_structure(conn, village)
    building = live_row(conn, m.buildings, building_id, "id", for_update=True)
    if grid_id is not None:
        _place_grid(conn, grid_id)
        values["grid_id"] = grid_id
    changed = {k: v for k, v in values.items() if building[k] != v}
    if not changed:
        return building
    h = m.households
    if "name" in changed:
        _check_building_name(conn, changed["name"], building_id)
    if "units" in changed:
        highest = conn.execute(
            select(func.max(h.c.unit_no)).where(
                h.c.building_id == building_id, h.c.archived_at.is_(None)
            )
        ).scalar_one()
        if highest is not None and highest > changed["units"]:
            raise refused("units", f"该楼第{highest}单元还有住户，单元数不能少于{highest}", INVALID)
    b = m.buildings
    updated = (
        conn.execute(
            b.update()
            .where(b.c.id == building_id)
            .values(**changed, updated_at=func.now())
            .returning(b)
        )
        .mappings()
        .one()
    )
    moved = {}
    if "grid_id" in changed:
        moved["grid_id"] = grid_id
    if "name" in changed:
        moved["address"] = flat_address(village_name, changed["name"], h.c.unit_no, h.c.room_no)
    if moved:
        conn.execute(
            h.update().where(h.c.building_id == building_id).values(**moved, updated_at=func.now())
        )
    if "grid_id" in changed:
        r = m.residents
        # Residents carry their household's grid (grid workers' reach needs no join).
        conn.execute(
            r.update()
            .where(r.c.household_id.in_(select(h.c.id).where(h.c.building_id == building_id)))
            .values(grid_id=grid_id, version=r.c.version + 1, updated_at=func.now())
        )
    _audit(conn, actor, village, "building.update", BUILDING, building_id, changed)
    return dict(updated)


def do_archive_building(conn: Connection, actor: Actor, village: str, building_id: int) -> dict:
    """Archive a building without live households."""
    _lock_structure(conn, village)
    live_row(conn, m.buildings, building_id, "id", for_update=True)
    h = m.households
    left = conn.execute(
        select(func.count()).where(h.c.building_id == building_id, h.c.archived_at.is_(None))
    ).scalar_one()
    if left:
        raise refused("id", f"该楼栋还有{left}户，请先归档或调整这些户", INVALID)
    b = m.buildings
    archived = (
        conn.execute(
            b.update()
            .where(b.c.id == building_id)
            .values(archived_at=func.now(), updated_at=func.now())
            .returning(b)
        )
        .mappings()
        .one()
    )
    _audit(conn, actor, village, "building.archive", BUILDING, building_id, ["archived_at"])
    return dict(archived)


# -- households ----------------------------------------------------------------


def _check_flat(
    conn: Connection, building: dict, unit_no: int, room_no: str, own: int | None
) -> None:
    if unit_no > building["units"]:
        raise refused("unitNo", "该楼没有此单元", INVALID)
    h = m.households
    query = select(h.c.id).where(
        h.c.building_id == building["id"],
        h.c.unit_no == unit_no,
        h.c.room_no == room_no,
        h.c.archived_at.is_(None),
    )
    if own is not None:
        query = query.where(h.c.id != own)
    if conn.execute(query).first():
        raise refused("roomNo", "该房屋已登记为一户", DUPLICATE)


def _check_address(conn: Connection, address: str, own: int | None) -> None:
    h = m.households
    query = select(h.c.id).where(h.c.address == address, h.c.archived_at.is_(None))
    if own is not None:
        query = query.where(h.c.id != own)
    if conn.execute(query).first():
        raise refused("address", "该地址已登记为一户", DUPLICATE)


def do_create_household(
    conn: Connection,
    actor: Actor,
    village: str,
    data: dict[str, Any],
    *,
    building_id: int | None,
    grid_id: int | None,
    village_name: str,
) -> dict:
    """A household at a flat (unit and room) of a building, in the building's grid;
    or, outside the village's buildings, at an address in a grid. One live household
    per flat or address."""
    if building_id is not None and data.get("address") is not None:
        raise refused("address", "楼栋中的户按单元和室号定位，不另填地址", INVALID)
    if building_id is None and {"unit_no", "room_no"} & set(data):
        raise refused("building", "填写单元和室号时须选择楼栋", REQUIRED)
    _lock_structure(conn, village)
    if building_id is not None:
        values = validated(NewHouseholdSchema(), data)
        building = live_row(conn, m.buildings, building_id, "building")
        if grid_id is not None and grid_id != building["grid_id"]:
            raise refused("grid", "所选网格与楼栋所在网格不符", MISMATCH)
        _check_flat(conn, building, values["unit_no"], values["room_no"], None)
        row: dict[str, Any] = {
            "building_id": building_id,
            "unit_no": values["unit_no"],
            "room_no": values["room_no"],
            "address": flat_address(
                village_name, building["name"], values["unit_no"], values["room_no"]
            ),
            "grid_id": building["grid_id"],
        }
    else:
        values = validated(AddressSchema(), data)
        _place_grid(conn, grid_id)
        _check_address(conn, values["address"], None)
        row = {"address": values["address"], "grid_id": grid_id}
    h = m.households
    household_id = conn.execute(h.insert().values(**row).returning(h.c.id)).scalar_one()
    _audit(conn, actor, village, "household.create", HOUSEHOLD, household_id, row)
    return households_by_ids(conn, [household_id], allowed_grids=None)[household_id]


def do_update_household(
    conn: Connection,
    actor: Actor,
    village: str,
    household_id: int,
    changes: dict[str, Any],
    *,
    village_name: str,
) -> dict:
    """Another flat of the same building, or another address for a household outside
    the buildings. Its members stay its members."""
    values = validated(HouseholdChangesSchema(), changes)
    _lock_structure(conn, village)
    household = live_row(conn, m.households, household_id, "id", for_update=True)
    changed = {k: v for k, v in values.items() if household[k] != v}
    if not changed:
        return households_by_ids(conn, [household_id], allowed_grids=None)[household_id]
    if household["building_id"] is not None:
        if "address" in changed:
            raise refused("address", "楼栋中的户按单元和室号定位，不另填地址", INVALID)
        building = live_row(conn, m.buildings, household["building_id"], "id")
        unit_no = changed.get("unit_no", household["unit_no"])
        room_no = changed.get("room_no", household["room_no"])
        _check_flat(conn, building, unit_no, room_no, household_id)
        changed["address"] = flat_address(village_name, building["name"], unit_no, room_no)
    else:
        if {"unit_no", "room_no"} & set(changed):
            raise refused("unitNo", "该户不在楼栋中，请修改地址", INVALID)
        _check_address(conn, changed["address"], household_id)
    h = m.households
    conn.execute(h.update().where(h.c.id == household_id).values(**changed, updated_at=func.now()))
    _audit(conn, actor, village, "household.update", HOUSEHOLD, household_id, changed)
    return households_by_ids(conn, [household_id], allowed_grids=None)[household_id]


def do_archive_household(conn: Connection, actor: Actor, village: str, household_id: int) -> dict:
    """Archive a household no resident lives in any more (the tombstones of those who
    moved away keep pointing at it)."""
    _lock_structure(conn, village)
    live_row(conn, m.households, household_id, "id", for_update=True)
    r = m.residents
    members = conn.execute(
        select(func.count()).where(
            r.c.household_id == household_id, r.c.status == m.ACTIVE_RESIDENT
        )
    ).scalar_one()
    if members:
        raise refused("id", f"该户还有居民{members}人，请先将其迁入其他户", INVALID)
    h = m.households
    conn.execute(
        h.update()
        .where(h.c.id == household_id)
        .values(archived_at=func.now(), updated_at=func.now())
    )
    _audit(conn, actor, village, "household.archive", HOUSEHOLD, household_id, ["archived_at"])
    return households_by_ids(conn, [household_id], allowed_grids=None)[household_id]

"""Where something is in a village: a household, a building or a grid.

Requests and devices are placed the same way: the grid follows from the household or
the building, and a grid given as well must agree with it, so that whatever happens
there reaches the grid worker of that place.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from villagelink.tenants import models as m
from villagelink.tenants.grids import grids_by_ids
from villagelink.tenants.residents.queries import Grids, households_by_ids
from villagelink.tenants.user_errors import (
    ARCHIVED,
    DUPLICATE,
    MISMATCH,
    NOT_FOUND,
    refused,
)


def building_named(conn: Connection, name: str) -> dict:
    """The building called `name` (e.g. 3号楼); names are what people say, so two
    buildings of one name are refused rather than guessed between."""
    b = m.buildings
    found = (
        conn.execute(select(b).where(b.c.name == name.strip(), b.c.archived_at.is_(None)))
        .mappings()
        .all()
    )
    if not found:
        raise refused("building", "楼栋不存在", NOT_FOUND)
    if len(found) > 1:
        raise refused("building", "有多个同名楼栋，请改选户或填写位置描述", DUPLICATE)
    return dict(found[0])


def place_of(
    conn: Connection,
    *,
    household_id: int | None,
    building: str | None,
    grid_id: int | None,
    grids: Grids,
) -> dict[str, Any]:
    """Household, building and grid ids of a place given by any of them (all None when
    none is given). `grids` keeps a grid worker to their own grids (None: anywhere)."""
    place: dict[str, Any] = {"household_id": None, "building_id": None, "grid_id": None}
    if household_id is not None:
        household = households_by_ids(conn, [household_id], allowed_grids=grids).get(household_id)
        if household is None:
            raise refused("household", "户不存在或不在您的管辖范围内", NOT_FOUND)
        if household["archived_at"] is not None:
            raise refused("household", "该户已归档", ARCHIVED)
        place.update(
            household_id=household_id,
            building_id=household["building_id"],
            grid_id=household["grid_id"],
        )
    elif building:
        found = building_named(conn, building)
        place.update(building_id=found["id"], grid_id=found["grid_id"])
    if grid_id is not None:
        grid = grids_by_ids(conn, [grid_id]).get(grid_id)
        if grid is None:
            raise refused("grid", "网格不存在", NOT_FOUND)
        if grid["archived_at"] is not None:
            raise refused("grid", "该网格已归档", ARCHIVED)
        if place["grid_id"] is not None and place["grid_id"] != grid_id:
            raise refused("grid", "所选网格与位置不符", MISMATCH)
        place["grid_id"] = grid_id
    if grids is not None and place["grid_id"] not in grids:
        raise refused("grid", "位置不在您的网格内", NOT_FOUND)
    return place

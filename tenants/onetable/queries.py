"""Reading import jobs, and what an import or export needs of the village's residents."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, func, or_, select

from villagelink.tenants import models as m
from villagelink.tenants.grids import grids_by_ids
from villagelink.tenants.onetable.tables import import_jobs
from villagelink.tenants.querying import limit_of
from villagelink.tenants.residents import queries as resident_queries

# Residents read per statement while exporting.
EXPORT_CHUNK = 1000


def import_jobs_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    j = import_jobs
    rows = conn.execute(
        select(j).where(j.c.id.in_(list(ids)), j.c.object_key.is_not(None))
    ).mappings()
    return {row["id"]: dict(row) for row in rows}


def import_job_page(conn: Connection, *, after_id: int | None, limit: int) -> list[dict]:
    """Oldest first, in id order like every connection of the API."""
    j = import_jobs
    query = select(j).where(j.c.object_key.is_not(None)).order_by(j.c.id).limit(limit_of(limit))
    if after_id is not None:
        query = query.where(j.c.id > after_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def import_job_count(conn: Connection) -> int:
    j = import_jobs
    return conn.execute(
        select(func.count()).select_from(j).where(j.c.object_key.is_not(None))
    ).scalar_one()


@dataclass(frozen=True)
class Registered:
    """The registered residents a batch of rows names, each with its tags: by ID
    number, and by resident number (居民编号, what a masked export names them by)."""

    by_id_number: dict[str, dict]
    by_id: dict[int, dict]


def registered_residents(
    conn: Connection, numbers: Iterable[str], ids: Iterable[int]
) -> Registered:
    """What import rows are matched to, in two statements whatever the batch's size."""
    r = m.residents
    rows = [
        dict(row)
        for row in conn.execute(
            select(r).where(or_(r.c.id_number.in_(list(numbers)), r.c.id.in_(list(ids))))
        ).mappings()
    ]
    tags = resident_queries.tags_by_resident(conn, [row["id"] for row in rows])
    for row in rows:
        row["tags"] = tags.get(row["id"], [])
    return Registered({row["id_number"]: row for row in rows}, {row["id"]: row for row in rows})


@dataclass
class Places:
    """Where rows may place residents, read once per import: buildings by name,
    grids by code, households by flat and by number. Households the import
    finds or makes are added as it goes."""

    buildings: dict[str, dict]
    grids: dict[str, dict]
    households_by_flat: dict[tuple[int, int, str], dict]
    households: dict[int, dict]

    def add_household(self, household: dict) -> None:
        self.households[household["id"]] = household
        if household["building_id"] is not None:
            flat = (household["building_id"], household["unit_no"], household["room_no"])
            self.households_by_flat[flat] = household


def household_at(conn: Connection, building_id: int, unit_no: int, room_no: str) -> dict | None:
    h = m.households
    found = (
        conn.execute(
            select(h).where(
                h.c.building_id == building_id,
                h.c.unit_no == unit_no,
                h.c.room_no == room_no,
                h.c.archived_at.is_(None),
            )
        )
        .mappings()
        .first()
    )
    return dict(found) if found else None


def places(conn: Connection) -> Places:
    """The live structure only: an archived building, grid or household takes no one in."""
    b, g, h = m.buildings, m.grids, m.households
    buildings = {
        row["name"]: dict(row)
        for row in conn.execute(select(b).where(b.c.archived_at.is_(None))).mappings()
    }
    grids = {
        row["code"]: dict(row)
        for row in conn.execute(select(g).where(g.c.archived_at.is_(None))).mappings()
    }
    found = Places(buildings, grids, {}, {})
    for row in conn.execute(select(h).where(h.c.archived_at.is_(None))).mappings():
        found.add_household(dict(row))
    return found


@dataclass(frozen=True)
class ExportedResident:
    resident: dict
    household: dict | None
    grid: dict | None
    tags: list[dict]


def residents_for_export(
    conn: Connection,
    flt: resident_queries.ResidentFilter,
    *,
    allowed_grids: resident_queries.Grids,
    today: date,
) -> Iterator[ExportedResident]:
    """Every resident the filter matches, in id order, with household, grid and tags:
    four statements per thousand residents."""
    after_id = None
    while True:
        chunk = resident_queries.resident_page(
            conn,
            flt,
            allowed_grids=allowed_grids,
            after_id=after_id,
            limit=EXPORT_CHUNK,
            today=today,
        )
        if not chunk:
            return
        households = resident_queries.households_by_ids(
            conn, {r["household_id"] for r in chunk if r["household_id"]}, allowed_grids=None
        )
        grids = grids_by_ids(conn, {r["grid_id"] for r in chunk if r["grid_id"]})
        tags = resident_queries.tags_by_resident(conn, [r["id"] for r in chunk])
        for r in chunk:
            yield ExportedResident(
                r, households.get(r["household_id"]), grids.get(r["grid_id"]), tags.get(r["id"], [])
            )
        after_id = chunk[-1]["id"]

"""Rows per second for importing a 5,000-row residents sheet (一张表), and the export.

    .venv/bin/python bench/onetable_import.py [--rows 5000] [--no-cleanup]

Works on DATABASE_URL, or on the embedded PostgreSQL of a running `make run`,
and on the configured object store (the local disk under VILLAGELINK_VAR_DIR,
or MinIO with S3_ENDPOINT). Provisions a village `bench_onetable` with the demo
generator's grids and buildings but no households or residents, writes a sheet
of the generator's Faker-made people (names, ID numbers, phones, flats, tags),
and times, in this process and without a worker:

1. the first import (every row a new resident, most households new),
2. the same sheet again (every row unchanged),
3. an export of every resident (masked), as exportResidents does it.

The sheet is put into the store directly rather than PUT over HTTP, which is
not what is being measured. The village is dropped at the end unless --no-cleanup.
"""

from __future__ import annotations

import argparse
import io
import time
from dataclasses import replace
from datetime import date

import openpyxl
from residents_list import wait_for_quiet_queues

from villagelink.jobs.onetable import run_import
from villagelink.platform import models as pm
from villagelink.platform.audit import Actor
from villagelink.platform.db import Database
from villagelink.platform.identity.principal import Principal
from villagelink.platform.settings import load_settings
from villagelink.storage.factory import object_store
from villagelink.storage.purposes import XLSX
from villagelink.storage.store import ObjectStore
from villagelink.tenants.attachments.actions import do_create_upload
from villagelink.tenants.demo.plans import DEMO_VILLAGES
from villagelink.tenants.demo.residents import VillageRows, build_village, write_village
from villagelink.tenants.onetable import sheet
from villagelink.tenants.onetable.actions import do_export_residents, do_start_import
from villagelink.tenants.provisioning import create_village, drop_village, ensure_region
from villagelink.tenants.residents.queries import ResidentFilter

REGION = "bench"
SLUG = "bench_onetable"
ACTOR = Actor(
    Principal("bench", "基准测试", frozenset({"village-admin"}), frozenset(), frozenset(), None)
)


def village_rows(residents: int) -> VillageRows:
    """The demo generator's village of about this size."""
    plan = replace(DEMO_VILLAGES[0], slug=SLUG, name="基准村", residents=residents)
    return build_village(plan, seed=20151)


def sheet_bytes(rows: VillageRows, count: int) -> bytes:
    """The first `count` residents as the import template's rows."""
    tags: dict[int, list[dict]] = {}
    for t in rows.tags:
        tags.setdefault(t.resident, []).append({"tag": t.tag, "level": t.level})
    book = openpyxl.Workbook(write_only=True)
    data = book.create_sheet("居民信息")
    data.append(sheet.COLUMNS)
    for position, r in enumerate(rows.residents[:count]):
        household = rows.households[r.household]
        cells = {
            sheet.NAME: r.name,
            sheet.ID_NUMBER: r.id_number,
            sheet.GENDER: sheet.GENDER_LABELS[r.gender],
            sheet.BIRTH_DATE: r.birth_date.isoformat(),
            sheet.PHONE: r.phone,
            sheet.RELATION: sheet.RELATION_LABELS[r.relation],
            sheet.BUILDING: rows.buildings[household.building].name,
            sheet.UNIT: household.unit_no,
            sheet.ROOM: household.room_no,
            sheet.TAGS: sheet.tag_labels(tags.get(position, [])) or None,
        }
        data.append([cells.get(c) for c in sheet.COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def start_import(db: Database, store: ObjectStore, data: bytes) -> int:
    with db.tenant(SLUG) as conn:
        upload = do_create_upload(
            conn,
            ACTOR,
            SLUG,
            store,
            {
                "purpose": "import_sheet",
                "filename": "基准.xlsx",
                "content_type": XLSX,
                "size": len(data),
            },
        )
    store.put(SLUG, upload["key"], data, XLSX)
    with db.tenant(SLUG) as conn:
        return do_start_import(conn, ACTOR, SLUG, store, upload["key"])["id"]


def timed_import(db: Database, store: ObjectStore, data: bytes, rows: int, label: str) -> None:
    job_id = start_import(db, store, data)
    started = time.perf_counter()
    counts = run_import(db, store, SLUG, job_id)
    took = time.perf_counter() - started
    print(f"{label}: {rows} rows in {took:.1f}s, {rows / took:.0f} rows/s  {counts}")


def drop_bench_village(db: Database) -> None:
    with db.platform() as conn:
        exists = conn.execute(pm.tenants.select().where(pm.tenants.c.slug == SLUG)).first()
    if exists is not None:
        drop_village(db, SLUG)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument(
        "--cleanup",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="drop the bench village at the end",
    )
    args = parser.parse_args()

    settings = load_settings()
    db = Database(settings.database_url, statement_timeout_ms=0)
    store = object_store(settings)
    try:
        drop_bench_village(db)
        ensure_region(db, REGION, "基准测试片区")
        create_village(db, SLUG, "基准村", REGION, store)
        rows = village_rows(args.rows)
        with db.tenant(SLUG) as conn:
            # Grids, staff and buildings: the households and residents come from the sheet.
            write_village(conn, replace(rows, households=[], residents=[], tags=[]))
        data = sheet_bytes(rows, args.rows)
        count = min(args.rows, len(rows.residents))
        print(f"sheet: {count} residents, {len(data) / 1024:.0f} KiB")
        wait_for_quiet_queues()

        timed_import(db, store, data, count, "first import")
        timed_import(db, store, data, count, "same sheet again")

        started = time.perf_counter()
        with db.tenant(SLUG) as conn:
            export = do_export_residents(
                conn,
                ACTOR,
                SLUG,
                store,
                ResidentFilter(),
                allowed_grids=None,
                unmasked=False,
                reason=None,
                today=date.today(),
            )
        took = time.perf_counter() - started
        print(f"export: {export.rows} rows in {took:.1f}s, {export.rows / took:.0f} rows/s")
    finally:
        if args.cleanup:
            drop_bench_village(db)
        db.dispose()


if __name__ == "__main__":
    main()

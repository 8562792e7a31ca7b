"""Time to provision and to re-migrate 50 villages.

    .venv/bin/python bench/provisioning.py [--villages 50] [--jobs 4] [--no-cleanup]

Works on DATABASE_URL, or on the embedded PostgreSQL of a running `make run`.
The villages are bench_001 … bench_050 in region `bench`; any left over from an
earlier run are dropped first, and all of them again at the end unless
--no-cleanup.
"""

from __future__ import annotations

import argparse
import sys
import time

from residents_list import wait_for_quiet_queues

from villagelink.platform import models as pm
from villagelink.platform.db import Database
from villagelink.platform.settings import load_settings
from villagelink.tenants.provisioning import (
    create_village,
    drop_village,
    ensure_region,
    list_villages,
    migrate_villages,
)

REGION = "bench"


def drop_bench_villages(db: Database) -> int:
    slugs = [v.slug for v in list_villages(db) if v.region_id == REGION]
    for slug in slugs:
        drop_village(db, slug)
    return len(slugs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--villages", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=4, help="villages re-migrated in parallel")
    parser.add_argument(
        "--cleanup",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="drop the bench villages at the end",
    )
    args = parser.parse_args()
    wait_for_quiet_queues()

    settings = load_settings()
    db = Database(settings.database_url, statement_timeout_ms=0)
    try:
        if left_over := drop_bench_villages(db):
            print(f"dropped {left_over} bench villages left from an earlier run")
        ensure_region(db, REGION, "基准测试片区")
        slugs = [f"bench_{n:03d}" for n in range(1, args.villages + 1)]

        started = time.perf_counter()
        for slug in slugs:
            create_village(db, slug, f"基准村{slug[-3:]}", REGION)
        provisioned = time.perf_counter() - started
        print(
            f"provisioned {len(slugs)} villages sequentially in {provisioned:.1f}s "
            f"({provisioned / len(slugs) * 1000:.0f} ms per village)"
        )

        started = time.perf_counter()
        failures = migrate_villages(db, slugs, jobs=args.jobs)
        migrated = time.perf_counter() - started
        print(
            f"re-migrated {len(slugs)} villages (already at head) with jobs={args.jobs} "
            f"in {migrated:.1f}s ({migrated / len(slugs) * 1000:.0f} ms per village)"
        )
        for failure in failures:
            print(f"FAILED {failure.slug}: {failure.error}")

        if args.cleanup:
            started = time.perf_counter()
            drop_bench_villages(db)
            with db.platform() as conn:
                conn.execute(pm.regions.delete().where(pm.regions.c.id == REGION))
            print(f"dropped them again in {time.perf_counter() - started:.1f}s")
    finally:
        db.dispose()
    if failures:
        sys.exit(f"{len(failures)} of {len(slugs)} villages failed to re-migrate")


if __name__ == "__main__":
    main()

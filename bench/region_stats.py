"""A coordinator's region statistics (片区统计) with 5, 100 and 1,000 villages.

    .venv/bin/python bench/region_stats.py [--url URL] [--sizes 100,1000] [--requests 100]
        [--no-cleanup]

Against a running `make run` (same environment). First the demo region `nanhe`: its
five seeded villages with their published statistics. Then a bench region, grown to
each size with the CLI (`villagelink tenants create bstat --count N --region
benchstats`); every new village computes and publishes its statistics through the
real path (the stats action appends to its outbox, the sync copies them to the
region's coordinators). The bench villages are empty, so their statistics are zeros
and short lists, lighter than a real village's.

For each region it sends `region(id) { stats { ... } }` with a regional coordinator's
token `--requests` times, one at a time, and prints p50/p95/max. The bench villages
are dropped at the end unless `--no-cleanup`.
"""

from __future__ import annotations

import argparse
import subprocess
import time

import requests
from residents_list import VILLAGELINK, graphql, mint_token, percentile, wait_for_quiet_queues

from villagelink.platform import models as pm
from villagelink.platform.db import Database
from villagelink.platform.linkage.sync import sync_village
from villagelink.platform.settings import load_settings
from villagelink.tenants.provisioning import drop_village, list_villages
from villagelink.tenants.stats import publish_village_stats

DEMO_REGION = "nanhe"
REGION = "benchstats"
PREFIX = "bstat"

CREATE_REGION = """
mutation Region($input: CreateRegionInput!) {
  createRegion(input: $input) { region { id } userErrors { code message } }
}
"""
REGION_STATS = """
query RegionStats($id: String!) {
  region(id: $id) {
    stats {
      total {
        residents households elderlyLivingAlone volunteerHours pointsBalance
        residentsByAgeBand { band count }
        requestsOpenByCategory { category name count }
        requestsOverdueByCategory { category count }
        alertsByKindPerWeek { week kind count }
      }
      villages { village { slug } computedAt stats { residents elderlyLivingAlone } }
      missing
    }
  }
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="default: the local `make run` server")
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--cleanup", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    wait_for_quiet_queues()
    settings = load_settings()
    url = args.url or f"http://127.0.0.1:{settings.http_port}/graphql"
    db = Database(settings.database_url, statement_timeout_ms=0)
    session = requests.Session()

    measure(session, url, DEMO_REGION, args.requests)

    admin = mint_token("--role", "platform-admin")
    graphql(session, url, admin, CREATE_REGION, {"input": {"id": REGION, "name": "统计基准片区"}})
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            started = time.perf_counter()
            subprocess.run(
                [
                    VILLAGELINK,
                    "tenants",
                    "create",
                    PREFIX,
                    "--name",
                    "统计基准村",
                    "--region",
                    REGION,
                    "--count",
                    str(size),
                ],
                check=True,
            )
            published = publish_all(db)
            print(
                f"{size} villages provisioned, {published} published their statistics "
                f"({time.perf_counter() - started:.0f} s)"
            )
            measure(session, url, REGION, args.requests)
    finally:
        if args.cleanup:
            slugs = [v.slug for v in list_villages(db) if v.region_id == REGION]
            for slug in slugs:
                drop_village(db, slug)
            with db.platform() as conn:
                conn.execute(pm.regions.delete().where(pm.regions.c.id == REGION))
            print(f"dropped the {len(slugs)} bench villages")


def publish_all(db: Database) -> int:
    """Publish the statistics of every bench village that has not yet, and sync it."""
    published = 0
    for village in list_villages(db):
        if village.region_id != REGION:
            continue
        with db.tenant(village.slug) as conn:
            publish_village_stats(conn)
        sync_village(db, village.slug)
        published += 1
    return published


def measure(session: requests.Session, url: str, region: str, count: int) -> None:
    token = mint_token("--role", "regional-coordinator", "--region", region)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        data = graphql(session, url, token, REGION_STATS, {"id": region})
        times.append((time.perf_counter() - started) * 1000)
    stats = data["region"]["stats"]
    print(
        f"region {region}: {len(stats['villages'])} villages ({len(stats['missing'])} missing), "
        f"{stats['total']['residents']} residents: region stats p50 {percentile(times, 50):.0f} ms"
        f"  p95 {percentile(times, 95):.0f} ms  max {max(times):.0f} ms ({count} requests)"
    )


if __name__ == "__main__":
    main()

"""Health readings a second through the gateway, beside raw PostgreSQL COPY of the same rows.

    .venv/bin/python bench/sensing_ingest.py [--url URL] [--village liulin] \
        [--batches 50] [--concurrency 1,2,4]

Against a running `make run` (same environment): the demo device platform
(`demo-integrator`) sends `--batches` batches of 1,000 wristband readings of the
village through `ingestHealthReadings` at each concurrency level, each batch a real
write (validation, abnormal flags against each wearer's range, latest vitals, rules).
Then the same number of rows, built the same way, go into the village's
`health_readings` with one `COPY ... FROM STDIN` per batch under the village's role:
what PostgreSQL alone does with them. Each side's batches are built before its clock
starts, and each side's connections have sent a batch or two before it starts too
(`WARM_UP`): the rate is a running client's. It prints readings/s for both and their
ratio.
The readings are ordinary (no alerts), carry ids starting with `bench-`, and are
deleted again at the end; the wearers' latest vitals keep the values the bench sent.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import requests
from residents_list import (
    HEADER,
    graphql,
    mint_token,
    percentile,
    report,
    run_round,
    wait_for_quiet_queues,
)
from sqlalchemy import text

from villagelink.graphql.core.ids import decode_id
from villagelink.platform.db import Database
from villagelink.platform.settings import load_settings
from villagelink.platform.simulator import INGEST_READINGS, GraphQLClient, list_devices

BATCH = 1000
# Untimed batches each client sends first (and COPY, one): a gateway process's first
# batch compiles its statements and connects to the database, and a client the gateway
# asks to connect again (to even its processes' load) may reach one that has not yet.
WARM_UP = 2
# The ratio to COPY of the last run recorded in bench/README.md, per concurrency level:
# printed beside this run's. Update it with the README.
LAST_RECORDED = {1: 0.32, 2: 0.56, 4: 0.55}
COLUMNS = (
    "device_id",
    "reading_id",
    "resident_id",
    "measured_at",
    "heart_rate",
    "spo2",
    "latitude",
    "longitude",
)


def wristbands(url: str, token: str, village: str) -> list[dict]:
    client = GraphQLClient(url, lambda: token)
    found = [d for d in list_devices(client, village) if d["kind"] == "WRISTBAND"]
    if not found:
        sys.exit(f"demo-integrator runs no wristbands in {village}: seed the demo region first")
    return found


def batch_of(bands: list[dict], number: int, run: str) -> list[dict]:
    """1,000 ordinary readings, one per wristband in turn, a tenth of a second apart,
    in the six hours before now (readings from the future are refused)."""
    start = datetime.now(UTC) - timedelta(hours=6)
    rows = []
    for i in range(BATCH):
        band = bands[(number * BATCH + i) % len(bands)]
        rows.append(
            {
                "device": band["id"],
                "readingId": f"bench-{run}-{number}-{i}",
                "measuredAt": (start + timedelta(seconds=(number * BATCH + i) / 10)).isoformat(),
                "heartRate": 60 + i % 30,
                "spo2": 96 + i % 3,
                "latitude": band["latitude"],
                "longitude": band["longitude"],
            }
        )
    return rows


def copy_rows(db: Database, village: str, rows: list[dict], residents: dict[str, int]) -> None:
    """The batch as PostgreSQL alone would take it: one COPY, no checks of ours."""
    with db.begin_tenant(village) as conn:
        raw = conn.connection.driver_connection
        statement = f"COPY health_readings ({', '.join(COLUMNS)}) FROM STDIN"
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for r in rows:
                copy.write_row(
                    (
                        int(decode_id(r["device"]).key),
                        r["readingId"],
                        residents[r["device"]],
                        r["measuredAt"],
                        r["heartRate"],
                        r["spo2"],
                        r["latitude"],
                        r["longitude"],
                    )
                )
        conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/graphql")
    parser.add_argument("--village", default="liulin")
    parser.add_argument("--batches", type=int, default=50)
    # Two clients fill the two cores; four are the race's share of them.
    parser.add_argument("--concurrency", default="1,2,4")
    args = parser.parse_args()

    settings = load_settings()
    db = Database(settings.database_url)
    token = mint_token("--role", "integrator", "--client", "demo-integrator")
    bands = wristbands(args.url, token, args.village)
    with db.tenant(args.village) as conn:
        owners = dict(
            conn.execute(text("SELECT id, resident_id FROM devices WHERE kind = 'wristband'")).all()
        )
    residents = {band["id"]: owners[int(decode_id(band["id"]).key)] for band in bands}
    run = uuid.uuid4().hex[:6]
    counter = itertools.count()
    wait_for_quiet_queues()

    print(
        f"health readings, batches of {BATCH}, village {args.village}, "
        f"{len(bands)} wristbands, {args.url}"
    )
    print(HEADER.replace("requests", "batches ").replace("  req/s", "batch/s"))
    gateway_rates = []
    for level in (int(c) for c in args.concurrency.split(",")):
        # Built before the clock starts, as COPY's batches are: both sides time the
        # sending, not the making.
        batches = [
            batch_of(bands, next(counter), run) for _ in range(args.batches + WARM_UP * level)
        ]

        def send(session: requests.Session, number: int, batches: list = batches) -> None:
            result = graphql(
                session, args.url, token, INGEST_READINGS, {"input": {"readings": batches[number]}}
            )
            ingest = result["ingestHealthReadings"]
            if ingest["userErrors"] or ingest["itemErrors"] or ingest["accepted"] != BATCH:
                raise RuntimeError(f"refused: {ingest['userErrors'] or ingest['itemErrors'][:2]}")

        outcome = run_round(level, args.batches, 600, send, warm_up=WARM_UP)
        report(outcome)
        for error in outcome.errors[:3]:
            print(f"            error: {error[:300]}")
        rate = len(outcome.latencies_ms) * BATCH / outcome.elapsed_s
        gateway_rates.append((level, rate, percentile(outcome.latencies_ms, 50)))

    copy_rows(db, args.village, batch_of(bands, next(counter), run), residents)
    copies = [batch_of(bands, next(counter), run) for _ in range(args.batches)]
    started = time.perf_counter()
    for rows in copies:
        copy_rows(db, args.village, rows, residents)
    copy_rate = args.batches * BATCH / (time.perf_counter() - started)

    print()
    print(f"{'path':<34} {'rows/s':>10} {'ratio':>8} {'last':>6}")
    print(f"{'COPY (PostgreSQL alone)':<34} {copy_rate:>10.0f} {1:>8.2f}")
    for level, rate, p50 in gateway_rates:
        label = f"gateway, concurrency {level} (p50 {p50:.0f} ms)"
        last = f"{LAST_RECORDED[level]:.2f}" if level in LAST_RECORDED else "-"
        print(f"{label:<34} {rate:>10.0f} {rate / copy_rate:>8.2f} {last:>6}")

    with db.begin_tenant(args.village) as conn:
        removed = conn.execute(
            text("DELETE FROM health_readings WHERE reading_id LIKE :prefix"),
            {"prefix": f"bench-{run}-%"},
        ).rowcount
        conn.commit()
    print(f"removed the bench's {removed} readings again")


if __name__ == "__main__":
    main()

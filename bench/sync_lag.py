"""Sync lag between neighbours: commit in one village → the copy in the exchange schema.

    .venv/bin/python bench/sync_lag.py [--village liulin] [--rates 10,25,50,100,200,400]
        [--seconds 15]

Against a running `make run` (its RQ worker does the sync; same environment). The
village must share open activities with a neighbour under an agreement in force
(the demo's ring agreements do). At each rate, writer threads commit changes of
synthetic open activities for `--seconds` (each its own transaction that appends to
the outbox, followed by the enqueue-after-commit the gateway does), then wait until
the sync has caught up. The lag of each change is what the sync itself records in
the exchange log: the copy's publish time minus the origin transaction's start,
so it includes the write itself and is an upper bound of commit → copy; the
publish commits right after, in the same transaction.

Prints p50/p95/max lag per rate and the highest rate whose p95 stayed under one
second. Afterwards the synthetic records are deleted at the origin, which
withdraws their copies (the exchange log keeps both).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from residents_list import percentile, wait_for_quiet_queues
from sqlalchemy import func, select

from villagelink.jobs.sync import enqueue_sync
from villagelink.platform.db import Database
from villagelink.platform.linkage.policy import audiences
from villagelink.platform.linkage.tables import cursors, log
from villagelink.platform.settings import load_settings
from villagelink.tenants.outbox import DELETE, emit, outbox

# Synthetic activity ids far above any real one, new for every run.
FIRST_ID = 9_000_000_000 + int(time.time()) * 100_000
WRITERS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--village", default="liulin")
    parser.add_argument("--rates", default="10,25,50,100,200,400")
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    settings = load_settings()
    db = Database(settings.database_url, pool_size=WRITERS + 2)
    with db.platform() as conn:
        neighbours = sorted(audiences(conn, args.village).get("open_activity", {}))
    if not neighbours:
        sys.exit(f"{args.village} shares open activities with no neighbour: seed the demo first")
    print(f"{args.village} → {', '.join(neighbours)} (open_activity); {WRITERS} writer threads")
    wait_for_quiet_queues()

    next_id = FIRST_ID
    written: list[int] = []
    results = []
    for rate in [int(r) for r in args.rates.split(",")]:
        ids = list(range(next_id, next_id + int(rate * args.seconds)))
        next_id += len(ids)
        started = time.monotonic()
        _write(db, settings, args.village, ids, rate)
        elapsed = time.monotonic() - started
        _wait_caught_up(db, args.village)
        lags = _lags(db, args.village, ids)
        written += ids
        p50, p95 = percentile(lags, 50), percentile(lags, 95)
        results.append((len(ids) / elapsed, p95))
        print(
            f"rate {rate:>4}/s (achieved {len(ids) / elapsed:6.1f}/s): {len(lags)} copies, "
            f"lag p50 {p50:6.0f} ms  p95 {p95:6.0f} ms  max {max(lags):6.0f} ms"
        )
    under = [achieved for achieved, p95 in results if p95 < 1000]
    print(
        "highest achieved rate with p95 lag under 1 s: "
        + (f"{max(under):.0f}/s" if under else "none")
    )

    with db.tenant(args.village) as conn:
        for record_id in written:
            emit(conn, "Activity", record_id, {}, version=2, operation=DELETE)
    enqueue_sync(settings, [args.village])
    _wait_caught_up(db, args.village)
    print(f"withdrew the {len(written)} synthetic activities")


def _write(db: Database, settings, village: str, ids: list[int], rate: float) -> None:
    """Commit one change per id at `rate` per second overall, from WRITERS threads."""
    start = time.monotonic()

    def writer(mine: list[tuple[int, int]]) -> None:
        for n, record_id in mine:
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            with db.tenant(village) as conn:
                emit(
                    conn,
                    "Activity",
                    record_id,
                    {"title": f"基准活动 {record_id}", "kind": "volunteer", "state": "published"},
                    version=1,
                )
            enqueue_sync(settings, [village])

    numbered = list(enumerate(ids))
    threads = [
        threading.Thread(target=writer, args=(numbered[k::WRITERS],)) for k in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _wait_caught_up(db: Database, village: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.tenant(village) as conn:
            newest = conn.execute(select(func.max(outbox.c.id))).scalar_one()
        with db.platform() as conn:
            position = conn.execute(
                select(cursors.c.outbox_id).where(cursors.c.village == village)
            ).scalar()
        if position is not None and position >= newest:
            return
        time.sleep(0.2)
    sys.exit("the sync did not catch up within 5 minutes: is the worker running?")


def _lags(db: Database, village: str, ids: list[int]) -> list[float]:
    with db.platform() as conn:
        return [
            float(lag)
            for lag in conn.execute(
                select(log.c.lag_ms).where(
                    log.c.origin == village,
                    log.c.record_type == "open_activity",
                    log.c.action == "publish",
                    log.c.origin_id.between(ids[0], ids[-1]),
                    log.c.lag_ms.is_not(None),
                )
            ).scalars()
        ]


if __name__ == "__main__":
    main()

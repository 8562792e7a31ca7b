"""Periodic upkeep on the `maintenance` queue.

`refresh_village_stats` rolls up per-village counts into `platform.village_stats`
so that coordinators' overviews read one small table instead of every village
schema, and has each village publish its statistics through the sync (the region's
coordinators read them from the exchange schema: tenants/stats.py). It runs every
ten minutes (jobs/scheduler.py) and fans out one job per village: each village is
counted under its own role and retried on its own, with a backoff, when it fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from rq import Retry
from sqlalchemy import Connection, func, select, text
from sqlalchemy.dialects.postgresql import insert

from villagelink.jobs.queues import MAINTENANCE, queue
from villagelink.jobs.worker import job_database, job_settings
from villagelink.platform import models as pm
from villagelink.tenants import models as tm
from villagelink.tenants.provisioning import list_villages
from villagelink.tenants.stats import publish_village_stats

# RQ's cron jobs take no retry policy, so the per-village jobs carry it.
STATS_RETRY = Retry(max=3, interval=[30, 120, 600])
STATS_JOB_TIMEOUT = 300
# Failed jobs stay a week in the failed registry, to be looked at and requeued.
FAILURE_TTL = 7 * 24 * 3600


@dataclass(frozen=True)
class VillageStats:
    village: str
    residents: int
    households: int
    aged_60_plus: int


def for_each_village(
    func: Callable, *, args: tuple = (), retry: Retry, timeout: int, label: str
) -> list[str]:
    """Enqueue `func(slug, *args)` on the maintenance queue once per active village, so
    that one village's failure is retried on its own; returns the job ids. The periodic
    jobs are such fan-outs."""
    villages = [v.slug for v in list_villages(job_database()) if v.status == "active"]
    maintenance = queue(MAINTENANCE, job_settings())
    jobs = maintenance.enqueue_many(
        [
            maintenance.prepare_data(
                func,
                args=(slug, *args),
                retry=retry,
                timeout=timeout,
                failure_ttl=FAILURE_TTL,
                description=f"{label}: {slug}",
            )
            for slug in villages
        ]
    )
    return [job.id for job in jobs]


def refresh_village_stats() -> list[str]:
    """Enqueue `refresh_village_stats_for` for every active village; returns the job ids."""
    return for_each_village(
        refresh_village_stats_for,
        retry=STATS_RETRY,
        timeout=STATS_JOB_TIMEOUT,
        label="village stats",
    )


def refresh_village_stats_for(slug: str) -> dict[str, int | str]:
    """Count one village's residents, households and residents aged 60 or more, and
    store the counts (idempotent: one row per village, replaced each time); publish the
    village's statistics to the outbox in the same village transaction (its commit asks
    the sync to carry them to the region now, `job_database`)."""
    with job_database().tenant(slug) as conn:
        stats = count_village(slug, conn)
        publish_village_stats(conn)
    with job_database().platform() as conn:
        counts = {k: v for k, v in asdict(stats).items() if k != "village"}
        conn.execute(
            insert(pm.village_stats)
            .values(village=slug, **counts)
            .on_conflict_do_update(
                index_elements=["village"],
                set_={**counts, "computed_at": func.now()},
            )
        )
    return asdict(stats)


def count_village(slug: str, conn: Connection) -> VillageStats:
    """The counts, read inside the village under its own role (`conn`), in one statement."""
    residents, households = tm.residents, tm.households
    aged_60_plus = (
        select(func.count())
        .select_from(residents)
        .where(
            residents.c.status == tm.ACTIVE_RESIDENT,
            residents.c.birth_date <= text("current_date - interval '60 years'"),
        )
    )
    row = conn.execute(
        select(
            # Moved-out residents stay as tombstones: they are counted where they live now.
            select(func.count())
            .select_from(residents)
            .where(residents.c.status == tm.ACTIVE_RESIDENT)
            .scalar_subquery(),
            # Archived households are kept for what points at them, not lived in.
            select(func.count())
            .select_from(households)
            .where(households.c.archived_at.is_(None))
            .scalar_subquery(),
            aged_60_plus.scalar_subquery(),
        )
    ).one()
    return VillageStats(slug, *row)

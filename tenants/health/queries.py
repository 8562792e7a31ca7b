"""Reading health records, vitals and readings inside one village schema.

Who may see which of it is the API's decision (graphql/health); these queries
only keep to the residents they are given, or to a grid worker's grids.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, func, select, text, tuple_

from villagelink.tenants import models as m
from villagelink.tenants.clock import VILLAGE_TIME_ZONE, day_start
from villagelink.tenants.health.tables import (
    ABNORMALITIES,
    health_readings,
    health_records,
    health_thresholds,
    latest_vitals,
    reading_consents,
)
from villagelink.tenants.querying import limit_of
from villagelink.tenants.residents.queries import Grids
from villagelink.tenants.sensing.tables import alerts

# Downsampling steps for charts (体征趋势图).
BUCKETS = {
    "minute": timedelta(minutes=1),
    "five_minutes": timedelta(minutes=5),
    "fifteen_minutes": timedelta(minutes=15),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
# Buckets start on the village's clock: a day bucket is a local day, midnight to midnight.
BUCKET_ORIGIN = datetime(2000, 1, 1, tzinfo=VILLAGE_TIME_ZONE)
# At most this many points in one series: a chart has no use for more, and a year of
# minute buckets would be half a million rows.
MAX_BUCKETS = 1000


def records_by_resident(
    conn: Connection, resident_ids: Iterable[int], *, lock: bool = False
) -> dict[int, dict]:
    """Health records by resident id; `lock` holds them for an update in this transaction."""
    query = select(health_records).where(health_records.c.resident_id.in_(list(resident_ids)))
    if lock:
        query = query.with_for_update()
    return {row["resident_id"]: dict(row) for row in conn.execute(query).mappings()}


def vitals_by_resident(conn: Connection, resident_ids: Iterable[int]) -> dict[int, dict]:
    rows = conn.execute(
        select(latest_vitals).where(latest_vitals.c.resident_id.in_(list(resident_ids)))
    ).mappings()
    return {row["resident_id"]: dict(row) for row in rows}


def thresholds(conn: Connection, *, lock: bool = False) -> dict:
    query = select(health_thresholds).where(health_thresholds.c.id == 1)
    if lock:
        query = query.with_for_update()
    return dict(conn.execute(query).mappings().one())


# -- readings -------------------------------------------------------------------


def _in_range(resident_id: int, start: datetime, end: datetime):
    h = health_readings
    return (h.c.resident_id == resident_id, h.c.measured_at >= start, h.c.measured_at < end)


def reading_page(
    conn: Connection,
    resident_id: int,
    start: datetime,
    end: datetime,
    *,
    after_id: int | None,
    limit: int,
) -> list[dict]:
    """Readings measured in [start, end), oldest first. Late batches arrive out of
    order, so the page follows (measured_at, id); the cursor's reading tells where
    the last page stopped."""
    h = health_readings
    query = (
        select(h)
        .where(*_in_range(resident_id, start, end))
        .order_by(h.c.measured_at, h.c.id)
        .limit(limit_of(limit))
    )
    if after_id is not None:
        stopped_at = select(h.c.measured_at).where(h.c.id == after_id).scalar_subquery()
        query = query.where(tuple_(h.c.measured_at, h.c.id) > tuple_(stopped_at, after_id))
    return [dict(row) for row in conn.execute(query).mappings()]


def reading_count(conn: Connection, resident_id: int, start: datetime, end: datetime) -> int:
    query = select(func.count()).where(*_in_range(resident_id, start, end))
    return conn.execute(query).scalar_one()


def bucket_count(start: datetime, end: datetime, step: timedelta) -> int:
    """How many buckets of `step` [start, end) touches, whether or not they hold readings."""
    first = math.floor((start - BUCKET_ORIGIN) / step)
    past_last = math.ceil((end - BUCKET_ORIGIN) / step)
    return past_last - first


def reading_series(
    conn: Connection, resident_id: int, start: datetime, end: datetime, step: timedelta
) -> list[dict]:
    """One point per bucket of `step` that holds readings in [start, end), oldest first.
    The first and last buckets hold only the part of them inside the range."""
    h = health_readings
    bucket = func.date_bin(step, h.c.measured_at, BUCKET_ORIGIN).label("starts_at")
    query = (
        select(
            bucket,
            func.count().label("readings"),
            func.avg(h.c.heart_rate).label("heart_rate_avg"),
            func.min(h.c.heart_rate).label("heart_rate_min"),
            func.max(h.c.heart_rate).label("heart_rate_max"),
            func.min(h.c.spo2).label("spo2_min"),
            func.max(h.c.systolic).label("systolic_max"),
            func.max(h.c.diastolic).label("diastolic_max"),
        )
        .where(*_in_range(resident_id, start, end))
        .group_by(bucket)
        .order_by(bucket)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


# -- abnormal today ------------------------------------------------------------


def village_day(day: date) -> tuple[datetime, datetime]:
    """A day on the village's clock, as [midnight, next midnight)."""
    start = day_start(day)
    return start, start + timedelta(days=1)


# Abnormal readings of the day, kept to the caller's grids (`:grids` NULL: all of them).
_ABNORMAL_DAY = """
WITH day AS (
    SELECT h.id, h.resident_id, h.measured_at, h.abnormal
    FROM health_readings h JOIN residents r ON r.id = h.resident_id
    WHERE h.measured_at >= :start AND h.measured_at < :end AND h.abnormal <> '{}'
      AND (CAST(:grids AS bigint[]) IS NULL OR r.grid_id = ANY(CAST(:grids AS bigint[])))
      AND h.resident_id > :after_id
)
"""

# Per resident: which abnormalities, how many abnormal readings, and the latest of them.
_ABNORMAL_PAGE = (
    _ABNORMAL_DAY
    + """,
kinds AS (
    SELECT d.resident_id, array_agg(DISTINCT k.kind) AS abnormalities,
           count(DISTINCT d.id) AS abnormal_readings
    FROM day d CROSS JOIN LATERAL unnest(d.abnormal) AS k(kind)
    GROUP BY d.resident_id
    ORDER BY d.resident_id
    LIMIT :limit
),
latest AS (
    SELECT DISTINCT ON (resident_id) id, resident_id
    FROM day
    ORDER BY resident_id, measured_at DESC, id DESC
)
SELECT k.abnormalities, k.abnormal_readings, h.*
FROM kinds k
JOIN latest l ON l.resident_id = k.resident_id
JOIN health_readings h ON h.id = l.id
ORDER BY k.resident_id
"""
)

_ABNORMAL_COUNT = _ABNORMAL_DAY + "SELECT count(DISTINCT resident_id) FROM day"


def _day_parameters(day: date, allowed_grids: Grids, after_id: int | None) -> dict:
    start, end = village_day(day)
    return {
        "start": start,
        "end": end,
        "grids": None if allowed_grids is None else sorted(allowed_grids),
        "after_id": after_id or 0,
    }


def _abnormal_order(kinds: list[str]) -> list[str]:
    return sorted(kinds, key=ABNORMALITIES.index)


def abnormal_page(
    conn: Connection, day: date, *, allowed_grids: Grids, after_id: int | None, limit: int
) -> list[dict]:
    """Residents with abnormal readings on `day` (village time), by resident id:
    `{"id": resident id, "abnormalities", "abnormal_readings", "latest": reading}`."""
    rows = conn.execute(
        text(_ABNORMAL_PAGE),
        {**_day_parameters(day, allowed_grids, after_id), "limit": limit},
    ).mappings()
    found = []
    for row in rows:
        reading = {c.name: row[c.name] for c in health_readings.columns}
        found.append(
            {
                "id": row["resident_id"],
                "abnormalities": _abnormal_order(row["abnormalities"]),
                "abnormal_readings": row["abnormal_readings"],
                "latest": reading,
            }
        )
    return found


def abnormal_count(conn: Connection, day: date, *, allowed_grids: Grids) -> int:
    return conn.execute(
        text(_ABNORMAL_COUNT), _day_parameters(day, allowed_grids, None)
    ).scalar_one()


# -- consents: an emergency contact watching a wearer (家属查看) ---------------------


def named_contact(record: dict, phone: str) -> dict | None:
    """The record's emergency contact of `phone`, the first if it names several."""
    return next((c for c in record["emergency_contacts"] if c["phone"] == phone), None)


def consents_by_resident(conn: Connection, resident_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Live consents by wearer, oldest first."""
    c = reading_consents.c
    rows = conn.execute(
        select(reading_consents)
        .where(c.resident_id.in_(list(resident_ids)), c.revoked_at.is_(None))
        .order_by(c.id)
    ).mappings()
    found: dict[int, list[dict]] = {}
    for row in rows:
        found.setdefault(row["resident_id"], []).append(dict(row))
    return found


# What a contact sees of the vitals: the readings, not where the wearer is (finding a
# person who wandered off is the village's job, through its alerts).
WATCHED_VITALS = ("measured_at", "heart_rate", "heart_rate_at", "spo2", "spo2_at")
WATCHED_VITALS += ("systolic", "diastolic", "blood_pressure_at")

# The wearers who consented that the contact (`:contact`, of phone `:phone`) sees their
# readings, and still name that phone on their record; with the relation they gave.
_WATCHED = f"""
SELECT c.resident_id, r.name, named.relation,
       {", ".join(f"v.{name} AS vital_{name}" for name in WATCHED_VITALS)}
FROM reading_consents c
JOIN residents r ON r.id = c.resident_id AND r.status = :active
JOIN health_records h ON h.resident_id = c.resident_id
CROSS JOIN LATERAL (
    SELECT e ->> 'relation' AS relation
    FROM jsonb_array_elements(h.emergency_contacts) WITH ORDINALITY AS t(e, position)
    WHERE e ->> 'phone' = c.contact_phone
    ORDER BY position
    LIMIT 1
) named
LEFT JOIN latest_vitals v ON v.resident_id = c.resident_id
WHERE c.contact_resident_id = :contact AND c.contact_phone = :phone AND c.revoked_at IS NULL
ORDER BY c.resident_id
"""


def watched_by(conn: Connection, contact_id: int, phone: str | None) -> list[dict]:
    """`{"id", "name", "relation", "vitals"}` per wearer the contact may watch; `vitals`
    None until a first reading. A contact without a phone is named on no record."""
    if phone is None:
        return []
    rows = conn.execute(
        text(_WATCHED), {"contact": contact_id, "phone": phone, "active": m.ACTIVE_RESIDENT}
    ).mappings()
    return [
        {
            "id": row["resident_id"],
            "name": row["name"],
            "relation": row["relation"],
            "vitals": (
                {name: row[f"vital_{name}"] for name in WATCHED_VITALS}
                if row["vital_measured_at"] is not None
                else None
            ),
        }
        for row in rows
    ]


def alerts_of_day(conn: Connection, resident_ids: Iterable[int], day: date) -> dict[int, list]:
    """Alerts about each resident raised on `day` (village time), newest first."""
    start, end = village_day(day)
    a = alerts.c
    rows = conn.execute(
        select(a.id, a.resident_id, a.kind, a.state, a.summary, a.raised_at, a.closed_at, a.outcome)
        .where(a.resident_id.in_(list(resident_ids)), a.raised_at >= start, a.raised_at < end)
        .order_by(a.raised_at.desc(), a.id.desc())
    ).mappings()
    found: dict[int, list] = {}
    for row in rows:
        found.setdefault(row["resident_id"], []).append(dict(row))
    return found

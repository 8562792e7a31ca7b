"""The village's statistics as it publishes them (村情统计): aggregates, no personal rows.

`publish_village_stats` appends them to the outbox as one record (`VillageStats`, id 1)
with a version that rises at each publication; the sync sends them to the region's
coordinators always (the catalogue's `to_region`) and to neighbours under an agreement
covering `village_stats`. The maintenance job publishes them every ten minutes.

Read in the village's own transaction, under its role; days and weeks are the
village's (Asia/Shanghai), not the server's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    Date,
    DateTime,
    Integer,
    SmallInteger,
    Table,
    case,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import insert

from villagelink.platform.linkage.catalogue import RECORD_TYPES, VILLAGE_STATS
from villagelink.tenants import clock
from villagelink.tenants import models as tm
from villagelink.tenants.activities.tables import activity_sign_ups, points_ledger
from villagelink.tenants.clock import VILLAGE_TIME_ZONE
from villagelink.tenants.models import metadata
from villagelink.tenants.outbox import emit
from villagelink.tenants.requests.tables import OPEN_STATES, request_categories, requests
from villagelink.tenants.sensing.tables import alerts

OUTBOX_TYPE = RECORD_TYPES[VILLAGE_STATS].outbox_type
RECORD_ID = 1  # one record per village: its statistics now
WEEKS = 8
# Upper bounds (exclusive) of the age bands, as the region's reports group them.
AGE_BANDS = (("0-17", 18), ("18-59", 60), ("60-69", 70), ("70-79", 80), ("80+", None))
ELDERLY_LIVING_ALONE = "elderly_living_alone"

# How many times the statistics were published: the version receivers compare.
village_stats_publications = Table(
    "village_stats_publications",
    metadata,
    Column("id", SmallInteger, primary_key=True, server_default="1"),
    Column("version", Integer, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("id = 1", name="village_stats_publications_single"),
)


def _local(moment) -> Any:
    return func.timezone(str(VILLAGE_TIME_ZONE), moment)


def _age_bands(conn: Connection) -> dict[str, int]:
    r = tm.residents
    today = func.cast(_local(func.now()), Date)
    age = func.date_part("year", func.age(today, r.c.birth_date))
    band = case(
        *[(age < upper, literal(name)) for name, upper in AGE_BANDS if upper is not None],
        else_=literal(AGE_BANDS[-1][0]),
    )
    found = dict(
        conn.execute(
            select(band, func.count()).where(r.c.status == tm.ACTIVE_RESIDENT).group_by(band)
        ).all()
    )
    return {name: found.get(name, 0) for name, _upper in AGE_BANDS}


def _requests_by_category(conn: Connection, overdue: bool) -> list[dict[str, Any]]:
    q, c = requests, request_categories
    condition = q.c.state.in_(OPEN_STATES)
    if overdue:
        condition &= q.c.due_at < func.now()
    rows = conn.execute(
        select(c.c.code, c.c.name, func.count())
        .select_from(q.join(c, c.c.id == q.c.category_id))
        .where(condition)
        .group_by(c.c.code, c.c.name)
        .order_by(c.c.code)
    ).all()
    return [{"category": code, "name": name, "count": n} for code, name, n in rows]


def _alerts_by_kind_per_week(conn: Connection) -> list[dict[str, Any]]:
    """The current ISO week and the seven before it, in village time."""
    a = alerts
    local = _local(a.c.raised_at)
    since = func.date_trunc("week", _local(func.now())) - func.make_interval(0, 0, WEEKS - 1)
    week = func.to_char(local, 'IYYY-"W"IW')
    rows = conn.execute(
        select(week, a.c.kind, func.count())
        .where(local >= since)
        .group_by(week, a.c.kind)
        .order_by(week, a.c.kind)
    ).all()
    return [{"week": w, "kind": kind, "count": n} for w, kind, n in rows]


def compute_village_stats(conn: Connection) -> dict[str, Any]:
    """The statistics of the village `conn` is in, keyed as the catalogue's
    `village_stats` fields, JSON-serialisable."""
    r, h, t, s, p = (
        tm.residents,
        tm.households,
        tm.resident_tags,
        activity_sign_ups,
        points_ledger,
    )
    residents, households, alone, hours, points = conn.execute(
        select(
            # Moved-out residents stay as tombstones: they are counted where they live now.
            select(func.count())
            .select_from(r)
            .where(r.c.status == tm.ACTIVE_RESIDENT)
            .scalar_subquery(),
            # Archived households are kept for what points at them, not lived in.
            select(func.count()).select_from(h).where(h.c.archived_at.is_(None)).scalar_subquery(),
            select(func.count(func.distinct(t.c.resident_id)))
            .where(t.c.tag == ELDERLY_LIVING_ALONE)
            .scalar_subquery(),
            # The village's own residents' hours: a neighbour's guests count at home.
            select(func.coalesce(func.sum(s.c.volunteer_hours), 0))
            .where(s.c.resident_id.is_not(None))
            .scalar_subquery(),
            select(func.coalesce(func.sum(p.c.points), 0)).scalar_subquery(),
        )
    ).one()
    stats = {
        "computed_at": clock.now().isoformat(),
        "residents": residents,
        "households": households,
        "residents_by_age_band": _age_bands(conn),
        "elderly_living_alone": alone,
        "requests_open_by_category": _requests_by_category(conn, overdue=False),
        "requests_overdue_by_category": _requests_by_category(conn, overdue=True),
        "alerts_by_kind_per_week": _alerts_by_kind_per_week(conn),
        "volunteer_hours": float(hours),
        "points_balance": int(points),
    }
    return stats


def publish_village_stats(conn: Connection) -> dict[str, Any]:
    """Compute the statistics and append them to the outbox, each publication a new
    version (the counter row is locked by its update: two runs at once take turns)."""
    stats = compute_village_stats(conn)
    v = village_stats_publications
    version = conn.execute(
        insert(v)
        .values(id=RECORD_ID, version=1)
        .on_conflict_do_update(
            index_elements=["id"], set_={"version": v.c.version + 1, "published_at": func.now()}
        )
        .returning(v.c.version)
    ).scalar_one()
    emit(conn, OUTBOX_TYPE, RECORD_ID, stats, version=version)
    return {**stats, "version": version}

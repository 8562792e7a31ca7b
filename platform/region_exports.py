"""A region's figures as an .xlsx for its coordinators (片区总览 → 导出): the same numbers
the overview draws, one sheet per chart, made on request and kept in the region's
storage space until the download link expires (storage/exports.py, as the villages'
resident exports are). One audit entry per export."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from openpyxl import Workbook
from sqlalchemy import Connection

from villagelink.platform import models as pm
from villagelink.platform.audit import Actor, record
from villagelink.storage.exports import Export, new_export, put_export, region_space, remove_expired
from villagelink.storage.store import ObjectStore
from villagelink.tenants import clock
from villagelink.tenants.onetable.sheet import saved

ELDERLY_BANDS = ("60-69", "70-79", "80+")
TOTALS = (
    ("residents", "居民（人）"),
    ("households", "户数"),
    ("elderly_living_alone", "独居老人（人）"),
    ("volunteer_hours", "志愿服务时长（小时）"),
    ("points_balance", "积分余额"),
)


def _sum(counts: list[dict]) -> int:
    return sum(c["count"] for c in counts)


def _band(stats: dict, name: str) -> int:
    return next((b["count"] for b in stats["residents_by_age_band"] if b["band"] == name), 0)


def region_workbook(name: str, stats: dict, kind_label: Callable[[str], str]) -> bytes:
    """`stats` as the `Region.stats` field resolves them; `kind_label` names an alert kind.
    Villages that never published are listed on their own sheet, not counted as zero."""
    workbook = Workbook(write_only=True)
    total = stats["total"]
    published = [v for v in stats["villages"] if v["stats"] is not None]

    sheet = workbook.create_sheet("片区合计")
    sheet.append(["片区", name])
    for field, label in TOTALS:
        sheet.append([label, total[field]])

    weekly = total["alerts_by_kind_per_week"]
    weeks = sorted({c["week"] for c in weekly})
    kinds = list(dict.fromkeys(c["kind"] for c in weekly))
    sheet = workbook.create_sheet("预警（按周）")
    sheet.append(["周", *(kind_label(kind) for kind in kinds)])
    for week in weeks:
        counts = [c for c in weekly if c["week"] == week]
        sheet.append([week, *(_sum([c for c in counts if c["kind"] == k]) for k in kinds)])

    sheet = workbook.create_sheet("诉求（按村）")
    sheet.append(["村", "未超时", "已超时", "办理中合计"])
    for village in published:
        s = village["stats"]
        open_, overdue = (
            _sum(s["requests_open_by_category"]),
            _sum(s["requests_overdue_by_category"]),
        )
        sheet.append([village["village"]["name"], open_ - overdue, overdue, open_])

    sheet = workbook.create_sheet("老年人（按村）")
    sheet.append(["村", *ELDERLY_BANDS, "独居老人"])
    for village in published:
        s = village["stats"]
        bands = [_band(s, band) for band in ELDERLY_BANDS]
        sheet.append([village["village"]["name"], *bands, s["elderly_living_alone"] or 0])

    sheet = workbook.create_sheet("未报送统计的村")
    sheet.append(["村"])
    for village in stats["villages"]:
        if village["stats"] is None:
            sheet.append([village["village"]["name"]])
    return saved(workbook)


def do_export_region(
    conn: Connection,
    actor: Actor,
    store: ObjectStore,
    region: dict,
    data: bytes,
    *,
    villages: int,
    today: date,
) -> Export:
    """Keep the region's workbook `data` (of `villages` villages) until its link expires
    (the caller checked that the actor reads the region); one audit entry."""
    filename = f"片区统计-{region['id']}-{today:%Y%m%d}.xlsx"
    export = new_export(filename, villages, clock.now())
    e = pm.region_exports
    export_id = conn.execute(
        e.insert()
        .values(
            region_id=region["id"],
            object_key=export.key,
            created_by=actor.principal.sub,
            expires_at=export.expires_at,
        )
        .returning(e.c.id)
    ).scalar_one()
    put_export(store, region_space(region["id"]), export, data)
    record(
        conn,
        actor,
        village=None,
        action="region.export",
        subject_type="Region",
        subject_id=region["id"],
        details={"export": export_id},
    )
    return export


def do_remove_expired_region_exports(conn: Connection, store: ObjectStore, region_id: str) -> int:
    """Remove the region's exports whose download link has expired; returns how many."""
    e = pm.region_exports
    return remove_expired(conn, store, region_space(region_id), e, e.c.region_id == region_id)

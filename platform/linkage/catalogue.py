"""The record types villages can agree to share, and the fields each may carry.

An agreement names record types and, per type, the fields of this catalogue it
allows; the sync job copies only those into the exchange schema. A village's outbox
names its records by the type of the domain that wrote them (`Alert`, `Activity`...);
`OUTBOX_TYPES` maps them to what an agreement speaks of.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecordType:
    name: str
    label: str  # zh-CN, as a village admin reads it
    outbox_type: str
    fields: tuple[str, ...]
    # Also copied to the region's coordinators whatever the agreements say: aggregates
    # and cases the coordinators govern (the region's membership is the agreement).
    to_region: bool = False


ALERT_BROADCAST = "alert_broadcast"
SHARED_RESOURCE = "shared_resource"
OPEN_ACTIVITY = "open_activity"
VILLAGE_STATS = "village_stats"
RESIDENT_TRANSFER = "resident_transfer"
JOINT_CASE = "joint_case"

RECORD_TYPES: dict[str, RecordType] = {
    t.name: t
    for t in (
        RecordType(
            ALERT_BROADCAST,
            "火情与走失警情",
            "Alert",
            (
                "kind",
                "severity",
                "state",
                "level",
                "summary",
                "location_text",
                "latitude",
                "longitude",
                "grid",
                "resident_name",
                "resident_gender",
                "resident_birth_year",
                "raised_at",
                "last_triggered_at",
                "acknowledged_at",
                "closed_at",
                "outcome",
            ),
        ),
        RecordType(
            SHARED_RESOURCE,
            "共享资源（微型消防站、场地、AED、车辆）",
            "SharedResource",
            (
                "kind",
                "name",
                "description",
                "location_text",
                "latitude",
                "longitude",
                "contact_name",
                "contact_phone",
                "status",
                "bookable",
            ),
        ),
        RecordType(
            OPEN_ACTIVITY,
            "开放活动",
            "Activity",
            ("kind", "title", "description", "place", "capacity", "state", "occurrences"),
        ),
        RecordType(
            VILLAGE_STATS,
            "村情统计（汇总数，无个人信息）",
            "VillageStats",
            (
                "computed_at",
                "residents",
                "households",
                "residents_by_age_band",
                "elderly_living_alone",
                "requests_open_by_category",
                "requests_overdue_by_category",
                "alerts_by_kind_per_week",
                "volunteer_hours",
                "points_balance",
            ),
            to_region=True,
        ),
        RecordType(
            RESIDENT_TRANSFER,
            "居民迁移",
            "ResidentTransfer",
            (
                "name",
                "gender",
                "birth_date",
                "id_number",
                "phone",
                "ethnicity",
                "tags",
                "points_balance",
                "consent",
                "moved_on",
            ),
        ),
        RecordType(
            JOINT_CASE,
            "难事部门联动（跨村联办事项）",
            "JointCase",
            (
                "title",
                "category",
                "description",
                "state",
                "priority",
                "villages",
                "timeline",
                "opened_at",
                "updated_at",
            ),
            to_region=True,
        ),
    )
}

BY_OUTBOX_TYPE: dict[str, RecordType] = {t.outbox_type: t for t in RECORD_TYPES.values()}

# A payload may name the villages it is meant for (a transfer's destination, the
# villages of a joint case): the copy then goes to those of the agreement's parties
# only. The key never leaves the village.
AUDIENCE_KEY = "_audience"

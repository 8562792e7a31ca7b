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
    # (payload field, value): copied to the region only while the record has it, and
    # withdrawn from the region when it no longer does (a request dispatched back).
    region_while: tuple[str, str] | None = None
    # False: for the region's coordinators alone, never named in an agreement.
    agreeable: bool = True


ALERT_BROADCAST = "alert_broadcast"
SHARED_RESOURCE = "shared_resource"
OPEN_ACTIVITY = "open_activity"
VILLAGE_STATS = "village_stats"
ESCALATED_REQUEST = "escalated_request"
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
            ESCALATED_REQUEST,
            "上报片区的诉求（难事部门联动）",
            "Request",
            (
                "category",
                "category_name",
                "grade",
                "state",
                "description",
                "location_text",
                "building",
                "household_address",
                "grid",
                "grid_name",
                "escalation_level",
                "escalated_at",
                "due_at",
                "last_event",
                "created_at",
                "updated_at",
            ),
            to_region=True,
            # 难事部门联动: the requests escalated to the region are the coordinators' to
            # take up; one dispatched back to its village is the village's again.
            region_while=("escalation_level", "region"),
            agreeable=False,
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

# What each field is called where a village admin picks fields for an agreement (zh-CN).
# One name means the same wherever it occurs; every catalogue field has one (tested).
FIELD_LABELS: dict[str, str] = {
    "kind": "类别",
    "severity": "严重程度",
    "state": "状态",
    "level": "处置层级",
    "summary": "概要",
    "location_text": "地点",
    "latitude": "纬度",
    "longitude": "经度",
    "grid": "网格",
    "resident_name": "当事人姓名",
    "resident_gender": "当事人性别",
    "resident_birth_year": "当事人出生年份",
    "raised_at": "发生时间",
    "last_triggered_at": "最近触发时间",
    "acknowledged_at": "确认时间",
    "closed_at": "关闭时间",
    "outcome": "处置结果",
    "name": "名称/姓名",
    "description": "说明",
    "contact_name": "联系人",
    "contact_phone": "联系电话",
    "status": "可用状态",
    "bookable": "可预约",
    "title": "标题",
    "place": "地点",
    "capacity": "名额",
    "occurrences": "活动场次",
    "computed_at": "统计时间",
    "residents": "居民数",
    "households": "户数",
    "residents_by_age_band": "各年龄段人数",
    "elderly_living_alone": "独居老人数",
    "requests_open_by_category": "各类未办结诉求数",
    "requests_overdue_by_category": "各类超时诉求数",
    "alerts_by_kind_per_week": "各类预警周统计",
    "volunteer_hours": "志愿服务时长",
    "points_balance": "积分余额",
    "gender": "性别",
    "birth_date": "出生日期",
    "id_number": "身份证号码",
    "phone": "手机号码",
    "ethnicity": "民族",
    "tags": "人员标签",
    "consent": "本人同意记录",
    "moved_on": "迁移日期",
    "category": "诉求分类",
    "priority": "紧急程度",
    "villages": "联办村",
    "timeline": "办理记录",
    "opened_at": "发起时间",
    "updated_at": "更新时间",
    "category_name": "诉求分类名称",
    "grade": "诉求等级",
    "building": "楼栋",
    "household_address": "住户门牌地址",
    "grid_name": "网格名称",
    "escalation_level": "上报层级",
    "escalated_at": "上报时间",
    "due_at": "办理时限",
    "last_event": "最近办理记录",
    "created_at": "登记时间",
}

BY_OUTBOX_TYPE: dict[str, RecordType] = {t.outbox_type: t for t in RECORD_TYPES.values()}

# A payload may name the villages it is meant for (a transfer's destination, the
# villages of a joint case): the copy then goes to those of the agreement's parties
# only. The key never leaves the village.
AUDIENCE_KEY = "_audience"

"""Input rules for health records (健康档案) and the village's thresholds (marshmallow),
with messages in Chinese."""

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from villagelink.tenants.fields import (
    MOBILE,
    FreeText,
    choice,
    coordinate_field,
    messages,
    name_field,
)
from villagelink.tenants.health.tables import CARE_LEVELS
from villagelink.tenants.user_errors import (
    INVALID,
    REQUIRED,
    Coded,
    refused,
)

# An emergency contact is often an old neighbour's landline: a mobile number, or a
# fixed line with its area code (022-23456789).
LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")

MAX_CONDITIONS = 20
MAX_CONTACTS = 5
# Heart rates a wristband can report and a doctor could set as someone's range.
HEART_RATE_LIMITS = (30, 220)


def _within(low: float, high: float, message: str) -> validate.Range:
    return validate.Range(low, high, error=Coded(message, INVALID))


def _contact_phone(value: str) -> None:
    if not (MOBILE.match(value) or LANDLINE.match(value)):
        raise ValidationError(
            Coded("联系电话应为11位手机号或带区号的固定电话，如 022-23456789", INVALID)
        )


class EmergencyContactSchema(Schema):
    """Someone to call when the alert is about this person (紧急联系人)."""

    name = name_field(required=True)
    relation = FreeText("与本人关系", 20, required=True)
    phone = fields.String(required=True, validate=_contact_phone, error_messages=messages())


class SafeZoneSchema(Schema):
    """A circle around home (安全区); leaving it raises a missing-person alert."""

    latitude = coordinate_field("latitude", required=True)
    longitude = coordinate_field("longitude", required=True)
    radius_m = fields.Integer(
        required=True,
        strict=True,
        validate=_within(50, 20000, "安全区半径应为50到20000米"),
        error_messages=messages(),
    )


def _heart_rate(**kwargs) -> fields.Integer:
    low, high = HEART_RATE_LIMITS
    return fields.Integer(
        strict=True,
        validate=_within(low, high, f"心率应为{low}到{high}次/分"),
        error_messages=messages(),
        **kwargs,
    )


class HeartRateRangeSchema(Schema):
    """This person's own normal heart rate, set by their doctor (e.g. 45-100 on beta blockers)."""

    min = _heart_rate(required=True)
    max = _heart_rate(required=True)

    @validates_schema(skip_on_field_errors=True)
    def _ordered(self, data: dict, **_kwargs) -> None:
        if data["min"] >= data["max"]:
            raise ValidationError(Coded("心率下限须低于上限", INVALID), field_name="max")


class HealthRecordSchema(Schema):
    """What a health record holds; every field may be left out (update) or given (create)."""

    conditions = fields.List(
        FreeText("病症名称", 50),
        validate=validate.Length(
            max=MAX_CONDITIONS, error=Coded(f"病症最多填写{MAX_CONDITIONS}项", INVALID)
        ),
        error_messages=messages(),
    )
    emergency_contacts = fields.List(
        fields.Nested(EmergencyContactSchema),
        validate=validate.Length(
            max=MAX_CONTACTS, error=Coded(f"紧急联系人最多{MAX_CONTACTS}位", INVALID)
        ),
        error_messages=messages(),
    )
    care_level = choice(CARE_LEVELS, "照护等级")
    wandering_risk = fields.Boolean(error_messages=messages())
    safe_zone = fields.Nested(SafeZoneSchema, allow_none=True)
    heart_rate_range = fields.Nested(HeartRateRangeSchema, allow_none=True)
    note = FreeText("备注", 500, allow_none=True)


def check_safe_zone(record: dict) -> None:
    """A person at risk of wandering needs a safe zone: without one the missing-person
    rule has nothing to measure against, and a flag nobody can act on is worse than none."""
    if record["wandering_risk"] and record["safe_zone_radius_m"] is None:
        raise refused("safeZone", "有走失风险的老人须设置安全区", REQUIRED)


def _threshold(label: str, low: int, high: int) -> fields.Integer:
    return fields.Integer(
        required=True,
        strict=True,
        validate=_within(low, high, f"{label}应为{low}到{high}"),
        error_messages=messages(),
    )


class ThresholdsSchema(Schema):
    """The village's thresholds (预警阈值) for people without a range of their own."""

    heart_rate_min = _threshold("心率下限", *HEART_RATE_LIMITS)
    heart_rate_max = _threshold("心率上限", *HEART_RATE_LIMITS)
    spo2_min = _threshold("血氧下限", 50, 100)
    systolic_max = _threshold("收缩压上限", 90, 250)
    diastolic_max = _threshold("舒张压上限", 50, 150)

    @validates_schema(skip_on_field_errors=True)
    def _consistent(self, data: dict, **_kwargs) -> None:
        if data["heart_rate_min"] >= data["heart_rate_max"]:
            raise ValidationError(Coded("心率下限须低于上限", INVALID), field_name="heart_rate_max")
        if data["diastolic_max"] >= data["systolic_max"]:
            raise ValidationError(
                Coded("舒张压上限须低于收缩压上限", INVALID), field_name="diastolic_max"
            )

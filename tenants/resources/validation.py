"""Input rules for shared resources and bookings (marshmallow), with messages in
Chinese. Field builders are the shared ones of villagelink.tenants.fields."""

from __future__ import annotations

from datetime import timedelta

from marshmallow import Schema, ValidationError, fields, validates_schema

from villagelink.tenants import clock
from villagelink.tenants.fields import (
    FreeText,
    choice,
    coordinate_field,
    messages,
    name_field,
    optional_text,
    phone_field,
)
from villagelink.tenants.resources.tables import RESOURCE_KINDS
from villagelink.tenants.user_errors import INVALID, Coded

# Codes of this domain; the generic ones live in villagelink.tenants.user_errors.
CONFLICT = "CONFLICT"  # the period overlaps an approved booking of the resource
FORBIDDEN_STATE = "FORBIDDEN_STATE"  # the booking or resource is not in a state for this

# What an admin may set by hand; `retired` is the retire action's alone.
SETTABLE_STATUSES = ("available", "unavailable")
# One booking covers at most this long (a venue for a week-long event, a vehicle trip).
MAX_BOOKING = timedelta(days=31)


class ResourceDetailsSchema(Schema):
    """What may change on a resource; loaded with `partial=True` for updates."""

    name = FreeText("资源名称", 50)
    description = FreeText("资源说明", 500, blank=True, allow_none=True)
    location_text = FreeText("位置", 200, blank=True, allow_none=True)
    latitude = coordinate_field("latitude", allow_none=True)
    longitude = coordinate_field("longitude", allow_none=True)
    contact_name = FreeText("联系人", 50, allow_none=True)
    contact_phone = phone_field()
    status = choice(SETTABLE_STATUSES, "状态")
    bookable = fields.Boolean(error_messages=messages())
    shared = fields.Boolean(error_messages=messages())

    @validates_schema(skip_on_field_errors=True)
    def _check(self, data: dict, partial=None, **_kwargs) -> None:
        errors: dict[str, list] = {}
        given = ("latitude" in data, "longitude" in data)
        if any(given) and (
            not all(given) or (data["latitude"] is None) != (data["longitude"] is None)
        ):
            errors["latitude"] = [Coded("经纬度须同时填写或同时留空", INVALID)]
        if errors:
            raise ValidationError(errors)


class NewResourceSchema(ResourceDetailsSchema):
    kind = choice(RESOURCE_KINDS, "资源类型", required=True)
    name = FreeText("资源名称", 50, required=True)
    status = choice(SETTABLE_STATUSES, "状态", load_default="available")
    bookable = fields.Boolean(load_default=True, error_messages=messages())
    shared = fields.Boolean(load_default=False, error_messages=messages())


class BookingSchema(Schema):
    """A request for a resource over a period, by the owner's village or a neighbour."""

    starts_at = fields.AwareDateTime(data_key="from", required=True, error_messages=messages())
    ends_at = fields.AwareDateTime(data_key="to", required=True, error_messages=messages())
    purpose = FreeText("用途", 200, required=True)
    contact_name = name_field(required=True)
    contact_phone = phone_field()

    @validates_schema(skip_on_field_errors=True)
    def _period(self, data: dict, **_kwargs) -> None:
        starts_at, ends_at = data["starts_at"], data["ends_at"]
        if ends_at <= starts_at:
            raise ValidationError({"to": [Coded("结束时间须晚于开始时间", INVALID)]})
        if starts_at < clock.now():
            raise ValidationError({"from": [Coded("开始时间不能早于当前时间", INVALID)]})
        if ends_at - starts_at > MAX_BOOKING:
            raise ValidationError({"to": [Coded("一次预约最长31天", INVALID)]})


class DecisionSchema(Schema):
    """Why a booking was rejected (required) or cancelled (optional)."""

    reason = optional_text("原因", 200)


class RejectionSchema(DecisionSchema):
    reason = FreeText("驳回原因", 200, required=True)

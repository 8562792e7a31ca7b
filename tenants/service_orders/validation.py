"""Input rules for the service catalogue, time slots and orders (marshmallow), in Chinese."""

from __future__ import annotations

from datetime import datetime

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from villagelink.tenants import clock
from villagelink.tenants.fields import MESSAGES, FreeText, optional_text
from villagelink.tenants.service_orders.tables import SERVICE_CATEGORIES
from villagelink.tenants.user_errors import INVALID, Coded

# Codes of this domain; the generic ones live in villagelink.tenants.user_errors.
SLOT_FULL = "SLOT_FULL"
SLOT_CLOSED = "SLOT_CLOSED"
ITEM_INACTIVE = "ITEM_INACTIVE"
TEAM_DECLINED = "TEAM_DECLINED"

MAX_CAPACITY = 500


def _moment() -> fields.AwareDateTime:
    return fields.AwareDateTime(required=True, error_messages=MESSAGES)


class ServiceItemSchema(Schema):
    """A catalogue item (服务项目) as created; `partial=True` for changes."""

    name = FreeText("服务名称", 50, required=True)
    category = fields.String(
        required=True,
        validate=validate.OneOf(SERVICE_CATEGORIES, error=Coded("服务类别取值无效", INVALID)),
        error_messages=MESSAGES,
    )
    description = optional_text("服务说明", 500)
    active = fields.Boolean(load_default=True, error_messages=MESSAGES)


class ServiceSlotSchema(Schema):
    """A time slot (服务时段): when, and how many residents it takes."""

    starts_at = _moment()
    ends_at = _moment()
    capacity = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(
            1, MAX_CAPACITY, error=Coded(f"名额须为1到{MAX_CAPACITY}人", INVALID)
        ),
        error_messages=MESSAGES,
    )

    @validates("starts_at")
    def _in_the_future(self, value: datetime, **_kwargs) -> None:
        if value <= clock.now():
            raise ValidationError(Coded("开始时间须晚于当前时间", INVALID))

    @validates_schema(skip_on_field_errors=True)
    def _ends_after_start(self, data: dict, **_kwargs) -> None:
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError(Coded("结束时间须晚于开始时间", INVALID), field_name="ends_at")


class NoteSchema(Schema):
    """What a resident asks for when ordering, or why a step was taken (备注)."""

    note = optional_text("备注", 200)


class RatingSchema(Schema):
    """The resident's rating (群众评单): 1-5 stars and an optional comment."""

    rating = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(1, 5, error=Coded("评分须为1到5分", INVALID)),
        error_messages=MESSAGES,
    )
    comment = optional_text("评价内容", 500)

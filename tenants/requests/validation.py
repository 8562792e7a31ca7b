"""Input rules for requests, categories, deadlines and action lists (marshmallow), in Chinese."""

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from villagelink.tenants.fields import (
    MESSAGES,
    FreeText,
    mobile_or_landline_field,
    optional_text,
)
from villagelink.tenants.requests.tables import CHANNELS, GRADES, SIMPLE
from villagelink.tenants.user_errors import INVALID, Coded

# Codes of this domain; the generic ones live in villagelink.tenants.user_errors.
NO_ASSIGNEE = "NO_ASSIGNEE"
CATEGORY_INACTIVE = "CATEGORY_INACTIVE"

CATEGORY_CODE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
# A year: longer deadlines are a typing mistake, not a plan.
MAX_DEADLINE_HOURS = 365 * 24


def choice(values: tuple[str, ...], label: str, **kwargs) -> fields.String:
    return fields.String(
        validate=validate.OneOf(values, error=Coded(f"{label}取值无效", INVALID)),
        error_messages=MESSAGES,
        **kwargs,
    )


class NewRequestSchema(Schema):
    """A request as registered (分类登记). The reporter is a resident (checked by the
    action) or a name, with an optional phone."""

    channel = choice(CHANNELS, "来源渠道", required=True)
    grade = choice(GRADES, "处置等级", load_default=SIMPLE)
    description = FreeText("诉求内容", 2000, required=True)
    location_text = optional_text("位置描述", 200)
    reporter_name = optional_text("反映人姓名", 50)
    # A reporter may call from a landline (the 12345 hotline passes such numbers on).
    reporter_phone = mobile_or_landline_field()
    note = optional_text("备注", 500)


class AcceptSchema(Schema):
    """Acceptance (受理) may set the grade, which sets the deadline (分级处置)."""

    grade = choice(GRADES, "处置等级", load_default=None, allow_none=True)
    note = optional_text("备注", 500)


class NoteSchema(Schema):
    note = optional_text("备注", 500)


class DispatchSchema(Schema):
    # What the village is to do: the region has decided who acts.
    note = FreeText("派发说明", 500, required=True)


class ReasonSchema(Schema):
    reason = FreeText("原因", 500, required=True)


class ResolutionSchema(Schema):
    resolution = FreeText("办理结果", 1000, required=True)


class RatingSchema(Schema):
    rating = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(1, 5, error=Coded("评分须为1到5分", INVALID)),
        error_messages=MESSAGES,
    )
    comment = optional_text("评价", 500)


class CategorySchema(Schema):
    code = fields.String(
        required=True,
        validate=validate.Regexp(
            CATEGORY_CODE,
            error=Coded("分类代码须为2到40位小写字母、数字或下划线，以字母开头", INVALID),
        ),
        error_messages=MESSAGES,
    )
    name = FreeText("分类名称", 20, required=True)


class CategoryChangeSchema(Schema):
    """A category renamed, retired or taken back into use; what is left out stays."""

    name = FreeText("分类名称", 20)
    active = fields.Boolean(error_messages=MESSAGES)


def _hours(label: str) -> fields.Integer:
    return fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(
            1, MAX_DEADLINE_HOURS, error=Coded(f"{label}须为1到{MAX_DEADLINE_HOURS}小时", INVALID)
        ),
        error_messages=MESSAGES,
    )


class DeadlinesSchema(Schema):
    """Hours allowed per grade; a harder grade never gets less time than an easier one."""

    simple_hours = _hours("简易事项时限")
    complex_hours = _hours("复杂事项时限")
    hard_hours = _hours("疑难事项时限")

    @validates_schema(skip_on_field_errors=True)
    def _harder_takes_longer(self, data: dict, **_kwargs) -> None:
        if data["complex_hours"] < data["simple_hours"]:
            raise ValidationError(
                Coded("复杂事项时限不能短于简易事项", INVALID), field_name="complex_hours"
            )
        if data["hard_hours"] < data["complex_hours"]:
            raise ValidationError(
                Coded("疑难事项时限不能短于复杂事项", INVALID), field_name="hard_hours"
            )


class ActionListSchema(Schema):
    """An action list as created; `partial=True` for changes."""

    title = FreeText("清单标题", 100, required=True)
    description = optional_text("说明", 1000)
    owner = FreeText("责任人", 50, required=True)
    due_date = fields.Date(required=True, error_messages=MESSAGES)

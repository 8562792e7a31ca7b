"""Input rules for activities, sign-ups, volunteer teams and points (marshmallow),
with messages in Chinese. Field builders are the resident rules' own."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from villagelink.tenants.activities.tables import ACTIVITY_KINDS, REPEATS
from villagelink.tenants.fields import FreeText, choice, messages
from villagelink.tenants.user_errors import INVALID, REQUIRED, Coded

# Codes of this domain; the generic ones live in villagelink.tenants.user_errors.
# The caller may not act on this record (a team leader at another team's activity).
FORBIDDEN = "FORBIDDEN"
# The new time of a moved occurrence overlaps another occurrence of the activity.
CONFLICT = "CONFLICT"
NOT_OPEN = "NOT_OPEN"  # sign-ups and check-ins outside the activity's open time
INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
# Too many wrong check-in codes: the organiser issues a new one.
TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
# A reward with none left, or taken off the list.
OUT_OF_STOCK = "OUT_OF_STOCK"

DEFAULT_HORIZON_DAYS = 92  # about three months of a series is scheduled at a time
MAX_SKILLS = 20


def _whole(label: str, low: int, high: int, **kwargs) -> fields.Integer:
    return fields.Integer(
        validate=validate.Range(low, high, error=Coded(f"{label}应在{low}到{high}之间", INVALID)),
        error_messages=messages(),
        **kwargs,
    )


class ActivityDetailsSchema(Schema):
    """What may change on an activity after it is created; loaded with `partial=True`."""

    title = FreeText("活动名称", 100)
    description = FreeText("活动介绍", 2000, blank=True, allow_none=True)
    place = FreeText("活动地点", 100)
    open_to_neighbours = fields.Boolean(error_messages=messages())
    # The volunteer team that runs it (its key; the action checks it exists).
    team_id = fields.Integer(allow_none=True, error_messages=messages())


class NewActivitySchema(ActivityDetailsSchema):
    kind = choice(ACTIVITY_KINDS, "活动类型", required=True)
    title = FreeText("活动名称", 100, required=True)
    description = FreeText("活动介绍", 2000, blank=True, allow_none=True, load_default=None)
    place = FreeText("活动地点", 100, required=True)
    capacity = _whole("名额", 1, 10000, required=True)
    open_to_neighbours = fields.Boolean(load_default=False, error_messages=messages())
    repeat = choice(REPEATS, "重复方式", load_default="once")
    weekday = _whole("星期", 1, 7, load_default=None, allow_none=True)
    month_day = _whole("每月日期", 1, 31, load_default=None, allow_none=True)
    starts_on = fields.Date(required=True, error_messages=messages())
    until = fields.Date(load_default=None, allow_none=True, error_messages=messages())
    start_time = fields.Time(
        required=True, error_messages=messages(invalid="开始时间格式应为 HH:MM")
    )
    duration_minutes = _whole("时长（分钟）", 1, 1440, required=True)

    @validates_schema(skip_on_field_errors=True)
    def _rule_fits_repeat(self, data: dict, **_kwargs) -> None:
        repeat = data["repeat"]
        for field, wanted, label in (
            ("weekday", "weekly", "星期"),
            ("month_day", "monthly", "每月日期"),
        ):
            if repeat == wanted and data.get(field) is None:
                raise ValidationError(Coded(f"请选择{label}", REQUIRED), field_name=field)
            if repeat != wanted and data.get(field) is not None:
                raise ValidationError(
                    Coded(
                        f"只有{'每周' if wanted == 'weekly' else '每月'}重复的活动可以设置{label}",
                        INVALID,
                    ),
                    field_name=field,
                )
        until = data.get("until")
        if until is not None and repeat == "once":
            raise ValidationError(Coded("单次活动不设结束日期", INVALID), field_name="until")
        if until is not None and until < data["starts_on"]:
            raise ValidationError(Coded("结束日期不能早于开始日期", INVALID), field_name="until")


class ScheduleSchema(Schema):
    horizon_days = _whole("排期天数", 1, 366, load_default=DEFAULT_HORIZON_DAYS)


class MoveOccurrenceSchema(Schema):
    """本场改期: the new time of one occurrence and why (the residents signed up read it)."""

    starts_at = fields.AwareDateTime(required=True, error_messages=messages())
    # The occurrence keeps its length when no end is given.
    ends_at = fields.AwareDateTime(load_default=None, allow_none=True, error_messages=messages())
    reason = FreeText("改期原因", 200, required=True)


class CheckInSchema(Schema):
    # Hours a volunteer served; the occurrence's length when not given.
    volunteer_hours = fields.Decimal(
        places=2,
        load_default=None,
        allow_none=True,
        validate=validate.Range(
            0, 24, min_inclusive=False, error=Coded("志愿时长应大于0且不超过24小时", INVALID)
        ),
        error_messages=messages(),
    )


class TeamSchema(Schema):
    """A volunteer team as created; `partial=True` for changes."""

    name = FreeText("队伍名称", 50, required=True)
    description = FreeText("队伍介绍", 500, blank=True, allow_none=True)


class TeamMemberSchema(Schema):
    skills = fields.List(fields.String(), load_default=list, error_messages=messages())

    @validates("skills")
    def _skills(self, value: list[str], **_kwargs) -> None:
        # Checked here rather than per item: the error names the list, not an index.
        if len(value) > MAX_SKILLS:
            raise ValidationError(Coded(f"技能最多{MAX_SKILLS}项", INVALID))
        if any(not 1 <= len(skill.strip()) <= 20 for skill in value):
            raise ValidationError(Coded("每项技能须为1到20个字", INVALID))


class PointsSchema(Schema):
    """An award or a redemption: always a positive amount; the action gives the sign."""

    points = _whole("积分", 1, 100000, required=True)
    reason = FreeText("原因", 200, required=True)


class PointsRulesSchema(Schema):
    points_per_volunteer_hour = _whole("每小时志愿服务积分", 0, 1000, required=True)


class NeighbourSignUpSchema(Schema):
    """What a neighbouring village adds to its resident's sign-up."""

    note = FreeText("备注", 200, blank=True, allow_none=True, load_default=None)


class RewardSchema(Schema):
    """A reward of the points shop (积分兑换) as created; `partial=True` for changes."""

    name = FreeText("奖品名称", 50, required=True)
    description = FreeText("奖品说明", 500, blank=True, allow_none=True)
    points_cost = _whole("所需积分", 1, 100000, required=True)
    stock = _whole("库存", 0, 100000, required=True)
    active = fields.Boolean(load_default=True, error_messages=messages())

"""Marshmallow fields shared by the village domains: messages in Chinese for the
person at the console, each carrying an English code for programs."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, ValidationError, fields, missing, validate

from villagelink.tenants.user_errors import INVALID, REQUIRED, Coded

if TYPE_CHECKING:
    # marshmallow 4's name for what `error_messages` takes (3.x has no such module member).
    from marshmallow.types import ErrorMessages

MOBILE = re.compile(r"^1[3-9]\d{9}$")

# What a field left out or blank is told, here and for IDs (graphql/core/ids.py).
MISSING = Coded("此项为必填项", REQUIRED)

MESSAGES: ErrorMessages = {
    "required": MISSING,
    "null": Coded("此项不能为空", REQUIRED),
    "invalid": Coded("格式不正确", INVALID),
    # Times without an offset would be read in the server's zone, not the village's.
    "invalid_awareness": Coded("时间须带时区，例如 2026-12-20T09:00:00+08:00", INVALID),
}


def messages(**extra: str) -> dict:
    """The common messages, plus field-specific ones (all coded INVALID)."""
    return {**MESSAGES, **{k: Coded(v, INVALID) for k, v in extra.items()}}


class FreeText(fields.String):
    """Free text, the one rule for every domain: loaded trimmed, at most `max_length`
    characters once trimmed, and more than blanks unless `blank` (a description or a
    note may be left empty; a title or a reason may not). `label` names the field in
    the messages (e.g. 活动名称)."""

    def __init__(self, label: str, max_length: int, *, blank: bool = False, **kwargs):
        overrides = kwargs.pop("error_messages", {})
        super().__init__(error_messages={**messages(), **overrides}, **kwargs)
        self.label = label
        self.max_length = max_length
        self.blank = blank

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text and not self.blank:
            raise ValidationError(Coded(f"{self.label}不能为空", REQUIRED))
        if len(text) > self.max_length:
            raise ValidationError(Coded(f"{self.label}不能超过{self.max_length}个字", INVALID))
        return text


def optional_text(label: str, max_length: int, **kwargs) -> FreeText:
    """`FreeText` that may be left out, null or empty (a note, a comment)."""
    return FreeText(label, max_length, blank=True, load_default=None, allow_none=True, **kwargs)


def name_field(required: bool) -> fields.String:
    return fields.String(
        required=required,
        validate=validate.Length(min=1, max=50, error=Coded("姓名须为1到50个字", INVALID)),
        error_messages=messages(),
    )


def phone_field() -> fields.String:
    return fields.String(
        allow_none=True,
        validate=validate.Regexp(
            MOBILE, error=Coded("手机号码格式不正确，应为11位大陆手机号", INVALID)
        ),
        error_messages=messages(),
    )


# A fixed line with its area code (022-23456789): a hotline caller's, a village office's.
LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")


def _mobile_or_landline(value: str) -> None:
    if not (MOBILE.fullmatch(value) or LANDLINE.fullmatch(value)):
        raise ValidationError(Coded("电话号码格式不正确，应为手机号或带区号的固定电话", INVALID))


def mobile_or_landline_field() -> fields.String:
    """A phone that may be a mobile or a fixed line; may be left out or null."""
    return fields.String(
        load_default=None, allow_none=True, validate=_mobile_or_landline, error_messages=messages()
    )


# Degrees either side of zero, with the name a person reads.
_AXES = {"latitude": ("纬度", 90), "longitude": ("经度", 180)}


def coordinate_field(axis: str, **kwargs) -> fields.Float:
    """A latitude or longitude in degrees, the one rule for every position a caller
    gives (a device, a reading, a safe zone, a resource, a sighting): a double beyond
    the globe, however large, is refused with a message, never stored or computed with."""
    label, bound = _AXES[axis]
    return fields.Float(
        allow_nan=False,
        validate=validate.Range(
            -bound, bound, error=Coded(f"{label}应在{-bound}到{bound}之间", INVALID)
        ),
        error_messages=messages(),
        **kwargs,
    )


def choice(values: tuple[str, ...], label: str, **kwargs) -> fields.String:
    """One of `values`; `label` names the field in the message (e.g. 性别)."""
    return fields.String(
        validate=validate.OneOf(values, error=Coded(f"{label}取值无效", INVALID)),
        error_messages=messages(),
        **kwargs,
    )


class _Declined(Exception):
    """The fast path does not take this item: the schema judges it, with its messages."""


def _fast_field(field: fields.Field) -> Callable[[Any], Any]:
    """One field's load for the ordinary value: free text, strict integers and floats
    checked inline (their validators run as the schema runs them); any other field, or
    any other value, through the field itself. Declines whatever the field would refuse."""
    if isinstance(field, FreeText):

        def text(value: Any) -> str:
            if type(value) is not str:
                raise _Declined
            value = value.strip()
            if (not value and not field.blank) or len(value) > field.max_length:
                raise _Declined
            return value

        load = text
    elif isinstance(field, fields.Integer) and field.strict:

        def integer(value: Any) -> int:
            if type(value) is not int:
                raise _Declined
            return value

        load = integer
    elif isinstance(field, fields.Float) and not field.allow_nan:

        def number(value: Any) -> float:
            if type(value) not in (int, float) or not math.isfinite(value):
                raise _Declined
            return float(value)

        load = number
    elif (
        type(field) is fields.AwareDateTime
        and field.format in (None, "iso", "iso8601")
        and field.default_timezone is None
    ):
        # The field's own reading, `datetime.fromisoformat`, without the field's
        # machinery around it: a third of a device reading's check.
        def moment(value: Any) -> datetime:
            if type(value) is str:
                try:
                    value = datetime.fromisoformat(value)
                except ValueError:
                    raise _Declined from None
            elif type(value) is not datetime:
                raise _Declined
            if value.tzinfo is None or value.utcoffset() is None:
                raise _Declined
            return value

        load = moment
    else:
        return field.deserialize

    if not field.validators:
        return load
    bounds = _closed_range(field.validators)
    if bounds is not None:
        # A measurement's or a coordinate's range, compared here: marshmallow's Range
        # was a call of its own, for four values of every device reading.
        low, high = bounds

        def within(value: Any) -> Any:
            value = load(value)
            if not low <= value <= high:
                raise _Declined
            return value

        return within

    def checked(value: Any) -> Any:
        value = load(value)
        for validator in field.validators:
            if validator(value) is False:
                raise _Declined
        return value

    return checked


def _closed_range(validators: list) -> tuple[Any, Any] | None:
    """The bounds of a field's only validator when it is a Range with both ends, both
    taken in (the measurements' and coordinates'), else None."""
    if len(validators) != 1 or type(validators[0]) is not validate.Range:
        return None
    rule = validators[0]
    if rule.min is None or rule.max is None or not (rule.min_inclusive and rule.max_inclusive):
        return None
    return rule.min, rule.max


def compiled_load(
    schema: Schema, whole: Callable[[dict], None] | None = None
) -> Callable[[dict], dict | None]:
    """`schema.load` for an item the schema takes, built once from its fields, or None for
    an item it may refuse: the caller then asks `schema.load`, whose refusal carries the
    messages. Batches of a thousand device readings spent a third of their time in
    marshmallow's per-item machinery. `whole` is the schema's own check of the whole item
    (what its `validates_schema` runs). Only for schemas without other hooks."""
    steps = []
    for name, field in schema.load_fields.items():
        default = field.load_default
        steps.append((name, field.required, field.allow_none, default, _fast_field(field)))
    known = frozenset(schema.load_fields)

    def load(data: dict) -> dict | None:
        if not known.issuperset(data):
            return None
        values: dict[str, Any] = {}
        try:
            for name, required, allow_none, default, field_load in steps:
                value = data.get(name, missing)
                if value is missing:
                    if required:
                        return None
                    if default is not missing:
                        values[name] = default() if callable(default) else default
                elif value is None:
                    if not allow_none:
                        return None
                    values[name] = None
                else:
                    values[name] = field_load(value)
            if whole is not None:
                whole(values)
        except (_Declined, ValidationError):
            return None
        return values

    return load

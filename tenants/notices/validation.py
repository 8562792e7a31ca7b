"""Input rules for notices (marshmallow), with messages in Chinese."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates

from villagelink.tenants.fields import MESSAGES
from villagelink.tenants.notices.tables import CATEGORIES
from villagelink.tenants.user_errors import INVALID, REQUIRED, Coded

MAX_TITLE = 100
MAX_BODY = 20000
MAX_REASON = 500
MAX_READER = 200


def _text(label: str, max_length: int) -> fields.String:
    return fields.String(
        validate=validate.Length(
            max=max_length, error=Coded(f"{label}不能超过{max_length}个字", INVALID)
        ),
        error_messages=MESSAGES,
    )


def _moment() -> fields.AwareDateTime:
    return fields.AwareDateTime(allow_none=True, error_messages=MESSAGES)


def _not_blank(label: str, value: str) -> None:
    if not value.strip():
        raise ValidationError(Coded(f"{label}不能为空白", REQUIRED))


class NoticeSchema(Schema):
    """A notice as drafted (`partial=True` for changes). Title and body may stay empty
    in a draft; publishing needs them. The window is checked against the stored one
    by the action, since a change may move one end only."""

    category = fields.String(
        required=True,
        validate=validate.OneOf(CATEGORIES, error=Coded("公开类别取值无效", INVALID)),
        error_messages=MESSAGES,
    )
    title = _text("标题", MAX_TITLE)
    body = _text("正文", MAX_BODY)
    publish_from = _moment()
    publish_until = _moment()


class WithdrawalSchema(Schema):
    """Why a published notice is taken down (撤回原因): residents' apps stop showing it."""

    reason = fields.String(
        required=True,
        validate=validate.Length(
            1, MAX_REASON, error=Coded(f"撤回原因须为1到{MAX_REASON}个字", INVALID)
        ),
        error_messages=MESSAGES,
    )

    @validates("reason")
    def _reason(self, value: str, **_kwargs) -> None:
        _not_blank("撤回原因", value)


class ReadSchema(Schema):
    """A resident's read, as their app reports it: `reader` is the app's own opaque id."""

    reader = fields.String(
        required=True,
        validate=validate.Length(
            1, MAX_READER, error=Coded(f"读者标识须为1到{MAX_READER}个字符", INVALID)
        ),
        error_messages=MESSAGES,
    )

    @validates("reader")
    def _reader(self, value: str, **_kwargs) -> None:
        _not_blank("读者标识", value)

"""Input rules for notices (marshmallow), with messages in Chinese."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from villagelink.tenants.fields import MESSAGES, FreeText
from villagelink.tenants.notices.tables import CATEGORIES
from villagelink.tenants.user_errors import INVALID, Coded

MAX_TITLE = 100
MAX_BODY = 20000
MAX_REASON = 500
MAX_READER = 200


def _moment() -> fields.AwareDateTime:
    return fields.AwareDateTime(allow_none=True, error_messages=MESSAGES)


class NoticeSchema(Schema):
    """A notice as drafted (`partial=True` for changes). Title and body may stay empty
    in a draft; publishing needs them. The window is checked against the stored one
    by the action, since a change may move one end only."""

    category = fields.String(
        required=True,
        validate=validate.OneOf(CATEGORIES, error=Coded("公开类别取值无效", INVALID)),
        error_messages=MESSAGES,
    )
    # A draft may leave them empty; publishing needs them.
    title = FreeText("标题", MAX_TITLE, blank=True)
    body = FreeText("正文", MAX_BODY, blank=True)
    publish_from = _moment()
    publish_until = _moment()


class WithdrawalSchema(Schema):
    """Why a published notice is taken down (撤回原因): residents' apps stop showing it."""

    reason = FreeText("撤回原因", MAX_REASON, required=True)


class ReadSchema(Schema):
    """A resident's read, as their app reports it: `reader` is the app's own opaque id."""

    reader = FreeText("读者标识", MAX_READER, required=True)

"""Input rules for grid staff and their logins (marshmallow), with messages in Chinese."""

from __future__ import annotations

import re

from marshmallow import Schema, fields, validate

from villagelink.tenants.fields import FreeText, choice, messages, name_field, phone_field
from villagelink.tenants.models import STAFF_TIERS
from villagelink.tenants.user_errors import INVALID, Coded

# The realm logs people in by email address: an invited account's username is one.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class StaffSchema(Schema):
    """A staff member as added (`partial=True` for changes)."""

    name = name_field(required=True)
    phone = phone_field()
    tier = choice(STAFF_TIERS, "网格员层级", required=True)


class InviteSchema(Schema):
    """The login a staff member is invited to: their email address, lower-cased."""

    email = fields.String(
        required=True,
        validate=[
            validate.Length(max=254, error=Coded("邮箱地址过长", INVALID)),
            validate.Regexp(EMAIL, error=Coded("邮箱地址格式不正确", INVALID)),
        ],
        error_messages=messages(),
    )


class DisableSchema(Schema):
    """Why a staff member is disabled (离岗、调离…), kept in the audit log."""

    reason = FreeText("停用原因", 200, required=True)

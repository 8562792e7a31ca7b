"""Input rules of the one table (marshmallow), with messages in Chinese."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from villagelink.tenants.sensitive import REASON_REQUIRED, is_reason
from villagelink.tenants.user_errors import INVALID, REQUIRED, Coded

MAX_REASON = 500


class ExportSchema(Schema):
    unmasked = fields.Boolean(load_default=False)
    reason = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(
            max=MAX_REASON, error=Coded(f"理由不能超过{MAX_REASON}字", INVALID)
        ),
    )

    @validates_schema(skip_on_field_errors=True)
    def _reason_for_whole_numbers(self, data: dict, **_kwargs) -> None:
        """Whole ID numbers and phones leave the platform in a file: say why."""
        if data["unmasked"] and not is_reason(data.get("reason")):
            raise ValidationError(Coded(REASON_REQUIRED, REQUIRED), field_name="reason")

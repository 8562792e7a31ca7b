"""Input rules of the one table (marshmallow), with messages in Chinese."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validates_schema

from villagelink.tenants.fields import optional_text
from villagelink.tenants.sensitive import REASON_REQUIRED, is_reason
from villagelink.tenants.user_errors import REQUIRED, Coded

MAX_REASON = 500


class ExportSchema(Schema):
    unmasked = fields.Boolean(load_default=False)
    reason = optional_text("理由", MAX_REASON)

    @validates_schema(skip_on_field_errors=True)
    def _reason_for_whole_numbers(self, data: dict, **_kwargs) -> None:
        """Whole ID numbers and phones leave the platform in a file: say why."""
        if data["unmasked"] and not is_reason(data.get("reason")):
            raise ValidationError(Coded(REASON_REQUIRED, REQUIRED), field_name="reason")

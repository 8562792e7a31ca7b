"""Input rules for upload requests (marshmallow), with messages in Chinese."""

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from villagelink.storage.purposes import MB, PURPOSES
from villagelink.tenants.fields import MESSAGES
from villagelink.tenants.user_errors import INVALID, Coded

TOO_LARGE = "TOO_LARGE"
MAX_FILENAME = 200

# Control characters and path separators: the name is shown and offered as a
# download name, never used as a path, but it should not pretend to be one.
_UNSAFE_IN_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


class NewUploadSchema(Schema):
    purpose = fields.String(
        required=True,
        validate=validate.OneOf(sorted(PURPOSES), error=Coded("上传用途取值无效", INVALID)),
        error_messages=MESSAGES,
    )
    filename = fields.String(
        required=True,
        validate=validate.Length(
            min=1, max=MAX_FILENAME, error=Coded(f"文件名须为1到{MAX_FILENAME}个字符", INVALID)
        ),
        error_messages=MESSAGES,
    )
    content_type = fields.String(required=True, error_messages=MESSAGES)
    size = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, error=Coded("文件不能为空", INVALID)),
        error_messages=MESSAGES,
    )

    @post_load
    def _clean_name(self, data: dict, **_kwargs) -> dict:
        name = _UNSAFE_IN_NAME.sub("_", data["filename"].strip())
        if not name.strip("_. "):
            raise ValidationError(Coded("文件名无效", INVALID), "filename")
        return {**data, "filename": name, "content_type": data["content_type"].lower()}

    @validates_schema(skip_on_field_errors=True)
    def _fits_purpose(self, data: dict, **_kwargs) -> None:
        purpose = PURPOSES[data["purpose"]]
        errors = {}
        if data["content_type"].lower() not in purpose.content_types:
            allowed = "、".join(sorted(purpose.content_types))
            errors["content_type"] = [Coded(f"此用途只接受以下类型：{allowed}", INVALID)]
        if data["size"] > purpose.max_bytes:
            errors["size"] = [Coded(f"文件不能超过 {purpose.max_bytes // MB} MB", TOO_LARGE)]
        if errors:
            raise ValidationError(errors)

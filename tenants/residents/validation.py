"""Input rules for resident records (marshmallow), with messages in Chinese."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from villagelink.tenants import clock, id_numbers
from villagelink.tenants.fields import choice, messages, name_field, optional_text, phone_field
from villagelink.tenants.models import GENDERS, RELATIONS, RESIDENT_TAGS
from villagelink.tenants.user_errors import DUPLICATE, INVALID, MISMATCH, Coded


def check_id_number(value: str) -> str:
    number = id_numbers.normalise(value)
    if not id_numbers.is_well_formed(number):
        raise ValidationError(Coded("身份证号码应为18位，最后一位可为X", INVALID))
    if not id_numbers.has_valid_checksum(number):
        raise ValidationError(Coded("身份证号码校验位不正确", INVALID))
    born = id_numbers.birth_date(number)
    if born is None or born > clock.today() or born.year < 1890:
        raise ValidationError(Coded("身份证号码中的出生日期无效", INVALID))
    return number


class NewResidentSchema(Schema):
    name = name_field(required=True)
    id_number = fields.String(required=True, error_messages=messages())
    gender = choice(GENDERS, "性别", load_default=None)
    birth_date = fields.Date(load_default=None, error_messages=messages())
    phone = phone_field()
    relation_to_head = choice(RELATIONS, "与户主关系", load_default=None, allow_none=True)

    @validates("id_number")
    def _id_number(self, value: str, **_kwargs) -> None:
        check_id_number(value)

    @validates_schema(skip_on_field_errors=True)
    def _consistent_with_id_number(self, data: dict, **_kwargs) -> None:
        number = id_numbers.normalise(data["id_number"])
        if data.get("birth_date") and data["birth_date"] != id_numbers.birth_date(number):
            raise ValidationError(
                Coded("出生日期与身份证号码不一致", MISMATCH), field_name="birth_date"
            )
        if data.get("gender") and data["gender"] != id_numbers.gender(number):
            raise ValidationError(Coded("性别与身份证号码不一致", MISMATCH), field_name="gender")


class ResidentChangesSchema(Schema):
    """What `updateResident` may change: the ID number and birth date are fixed
    (a corrected ID number is a new registration)."""

    name = name_field(required=False)
    phone = phone_field()
    relation_to_head = choice(RELATIONS, "与户主关系", allow_none=True)


class TagSchema(Schema):
    tag = choice(RESIDENT_TAGS, "标签", required=True)
    level = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(1, 4, error=Coded("残疾等级应为1到4级", INVALID)),
        error_messages=messages(),
    )
    note = optional_text("备注", 200)

    @validates_schema(skip_on_field_errors=True)
    def _level_only_for_disability(self, data: dict, **_kwargs) -> None:
        if data.get("level") is not None and data["tag"] != "disabled":
            raise ValidationError(Coded("只有残疾标签可以填写等级", INVALID), field_name="level")


DUPLICATE_ID_NUMBER = Coded("该身份证号码已登记", DUPLICATE)

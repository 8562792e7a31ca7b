"""Input rules for the village's structure (marshmallow), with messages in Chinese:
grids of the three levels, buildings, households."""

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from villagelink.tenants.fields import FreeText, choice, messages
from villagelink.tenants.models import GRID_LEVELS
from villagelink.tenants.user_errors import INVALID, Coded

GRID_CODE = re.compile(r"^[0-9A-Za-z_-]{1,40}$")
ROOM_NO = re.compile(r"^[0-9A-Za-z-]{1,10}$")
MAX_UNITS = 99
MAX_FLOORS = 200


def _count(label: str, high: int, **kwargs) -> fields.Integer:
    return fields.Integer(
        strict=True,
        validate=validate.Range(1, high, error=Coded(f"{label}应为1到{high}的整数", INVALID)),
        error_messages=messages(),
        **kwargs,
    )


def _grid_code(**kwargs) -> fields.String:
    return fields.String(
        validate=validate.Regexp(
            GRID_CODE, error=Coded("网格编码须为1到40位字母、数字、-或_，如 LL-01-02", INVALID)
        ),
        error_messages=messages(),
        **kwargs,
    )


class NewGridSchema(Schema):
    level = choice(GRID_LEVELS, "网格层级", required=True)
    code = _grid_code(required=True)
    name = FreeText("网格名称", 50, required=True)


class GridChangesSchema(Schema):
    code = _grid_code()
    name = FreeText("网格名称", 50)


class NewBuildingSchema(Schema):
    name = FreeText("楼栋名称", 30, required=True)
    units = _count("单元数", MAX_UNITS, required=True)
    floors = _count("层数", MAX_FLOORS, required=True)


class BuildingChangesSchema(Schema):
    name = FreeText("楼栋名称", 30)
    units = _count("单元数", MAX_UNITS)
    floors = _count("层数", MAX_FLOORS)


def _room_no(**kwargs) -> fields.String:
    return fields.String(
        validate=validate.Regexp(
            ROOM_NO, error=Coded("室号应为1到10位字母或数字，如 502", INVALID)
        ),
        error_messages=messages(),
        **kwargs,
    )


class NewHouseholdSchema(Schema):
    """A household at a flat of one of the village's buildings (楼号/单元/室)."""

    unit_no = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, error=Coded("单元应为正整数", INVALID)),
        error_messages=messages(),
    )
    room_no = _room_no(required=True)


class HouseholdChangesSchema(Schema):
    """A household's flat (in a building) or address (outside one): one or the other."""

    unit_no = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, error=Coded("单元应为正整数", INVALID)),
        error_messages=messages(),
    )
    room_no = _room_no()
    address = FreeText("地址", 100)

    @validates_schema(skip_on_field_errors=True)
    def _flat_or_address(self, data: dict, **_kwargs) -> None:
        if "address" in data and ("unit_no" in data or "room_no" in data):
            raise ValidationError(
                Coded("楼栋中的户按单元和室号定位，不另填地址", INVALID), field_name="address"
            )


class AddressSchema(Schema):
    """A household outside the village's buildings (e.g. 村东头12号), by address and grid."""

    address = FreeText("地址", 100, required=True)

"""Input rules for mediation cases (marshmallow), with messages in Chinese.

Names and phones follow the resident rules (same field builders), so a party
from outside the village is held to what a resident would be.
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from villagelink.tenants.fields import FreeText, choice, messages, name_field, phone_field
from villagelink.tenants.mediation.tables import CATEGORIES, OUTCOMES, PARTY_ROLES
from villagelink.tenants.user_errors import INVALID, REQUIRED, Coded

OPTIONAL = {"load_default": None, "allow_none": True}


def _integer() -> fields.Integer:
    return fields.Integer(error_messages=messages(), **OPTIONAL)


class MediatorSchema(Schema):
    """A mediator: a name (调解员), or one of the village's grid staff (`staff`)."""

    name = name_field(required=False)
    staff = _integer()

    @validates_schema(skip_on_field_errors=True)
    def _one_of_name_or_staff(self, data: dict, **_kwargs) -> None:
        if data.get("name") and data.get("staff") is not None:
            raise ValidationError(
                Coded("调解员请填写姓名或选择网格人员，二者选一", INVALID), field_name="name"
            )
        if not data.get("name") and data.get("staff") is None:
            raise ValidationError(Coded("请填写调解员姓名或选择网格人员", REQUIRED), "name")


class PartySchema(Schema):
    """A party (当事人): a resident of the village, or someone from outside it by name."""

    role = choice(PARTY_ROLES, "当事人身份", required=True)
    resident = _integer()
    name = name_field(required=False)
    phone = phone_field()

    @validates_schema(skip_on_field_errors=True)
    def _resident_or_outsider(self, data: dict, **_kwargs) -> None:
        if data.get("resident") is None:
            if not data.get("name"):
                raise ValidationError(Coded("请选择本村居民或填写当事人姓名", REQUIRED), "name")
        elif data.get("name") or data.get("phone"):
            # A resident's name and phone are on the resident record already.
            raise ValidationError(
                Coded("本村居民当事人无需填写姓名和电话", INVALID), field_name="resident"
            )


class NewCaseSchema(Schema):
    category = choice(CATEGORIES, "纠纷类别", required=True)
    summary = FreeText("案情简介", 2000, required=True)
    parties = fields.List(fields.Nested(PartySchema), required=True, error_messages=messages())
    mediator = fields.Nested(MediatorSchema, load_default=None, allow_none=True)

    @validates_schema(skip_on_field_errors=True)
    def _both_sides(self, data: dict, **_kwargs) -> None:
        roles = {party["role"] for party in data["parties"]}
        if roles != set(PARTY_ROLES):
            raise ValidationError(
                Coded("当事人须至少包括一名申请人和一名被申请人", INVALID), field_name="parties"
            )


class CaseChangesSchema(Schema):
    """What `updateMediationCase` may change while the case is open. Parties are
    fixed once registered: a case between other people is another case."""

    category = choice(CATEGORIES, "纠纷类别")
    summary = FreeText("案情简介", 2000)
    mediator = fields.Nested(MediatorSchema)


class StartSchema(Schema):
    mediator = fields.Nested(MediatorSchema, load_default=None, allow_none=True)


class SessionSchema(Schema):
    """One mediation session (调解记录): when, where, who came, what was said."""

    held_on = fields.Date(required=True, error_messages=messages())
    place = FreeText("调解地点", 100, required=True)
    attendees = fields.List(
        FreeText("参加人", 50),
        required=True,
        validate=validate.Length(min=1, error=Coded("请填写至少一名参加人", REQUIRED)),
        error_messages=messages(),
    )
    notes = FreeText("调解记录", 10000, **OPTIONAL)


class ConclusionSchema(Schema):
    """How mediation ended: an agreement (its text), none, or referral (to whom)."""

    outcome = choice(OUTCOMES, "调解结果", required=True)
    agreement_text = FreeText("协议内容", 10000, **OPTIONAL)
    referred_to = FreeText("转交单位", 100, **OPTIONAL)
    note = FreeText("结案说明", 1000, **OPTIONAL)

    @validates_schema(skip_on_field_errors=True)
    def _details_match_outcome(self, data: dict, **_kwargs) -> None:
        outcome = data["outcome"]
        if outcome == "agreement" and not data.get("agreement_text"):
            raise ValidationError(Coded("达成协议须填写协议内容", REQUIRED), "agreement_text")
        if outcome != "agreement" and data.get("agreement_text"):
            raise ValidationError(Coded("未达成协议时不应填写协议内容", INVALID), "agreement_text")
        if outcome == "referred" and not data.get("referred_to"):
            raise ValidationError(Coded("转交须填写接收单位", REQUIRED), "referred_to")
        if outcome != "referred" and data.get("referred_to"):
            raise ValidationError(Coded("只有转交时才填写接收单位", INVALID), "referred_to")


class WithdrawalSchema(Schema):
    reason = FreeText("撤回原因", 500, required=True)

"""Health record and threshold mutations: reach and role first, then the action.

Who writes: the village admin, and a grid worker for the residents of their grids
(consents to family members' watching included; a wearer gives or withdraws their own
consent themselves in the residents' app), except for conditions and the
personal heart-rate range, which come from the person's doctor through the village
admin. The thresholds are the admin's alone.
"""

from __future__ import annotations

from collections.abc import Callable

from ariadne import MutationType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import Forbidden
from villagelink.graphql.core.ids import decode_id, int_key
from villagelink.graphql.core.payloads import object_payload, payload
from villagelink.graphql.health.types import (
    OWN_GRIDS,
    WHOLE_VILLAGE,
    health_record_node,
    require_health,
)
from villagelink.tenants.health import actions
from villagelink.tenants.residents.queries import Grids

mutation = MutationType()

RECORD_FIELDS = (
    "conditions",
    "emergency_contacts",
    "care_level",
    "wandering_risk",
    "safe_zone",
    "heart_rate_range",
    "note",
)
# A consent names the emergency contact by the phone the record gives for them.
CONSENT_FIELDS = ("contact_phone",)
# A resident gives or withdraws their own consent, nobody else's.
OWN_CONSENT_ONLY = "居民只能为本人的健康档案授权或撤回家属查看"
# Set on the doctor's word, through the village admin.
ADMIN_ONLY_FIELDS = frozenset({"conditions", "heart_rate_range"})
# Input names as they arrive (Ariadne turns spo2Min into spo_2_min) -> columns.
THRESHOLD_FIELDS = {
    "heart_rate_min": "heart_rate_min",
    "heart_rate_max": "heart_rate_max",
    "spo_2_min": "spo2_min",
    "systolic_max": "systolic_max",
    "diastolic_max": "diastolic_max",
}


def _write_record(
    info, input: dict, action: Callable, fields: tuple[str, ...] = RECORD_FIELDS
) -> dict:
    ctx: RequestContext = info.context
    gid = decode_id(input["resident"], "Resident")
    village = gid.village
    ctx.village(village)  # NOT_FOUND outside reach, before anything else is told
    reach = require_health(ctx, village)
    ctx.require_write(village)
    data = {k: input[k] for k in fields if k in input}
    if reach == OWN_GRIDS and ADMIN_ONLY_FIELDS & data.keys():
        raise Forbidden("conditions and heartRateRange are set by the village admin")
    return _run(ctx, village, int_key(gid), action, data, ctx.allowed_grids(village))


def _run(
    ctx: RequestContext,
    village: str,
    resident_id: int,
    action: Callable,
    data: dict,
    allowed_grids: Grids,
) -> dict:
    def run() -> dict:
        row = action(
            ctx.tenant(village), ctx.actor, village, resident_id, data, allowed_grids=allowed_grids
        )
        return {"health_record": health_record_node(ctx, village, row)}

    return payload(run, "health_record")


def _write_consent(info, input: dict, action: Callable) -> dict:
    """家属查看授权 on the wearer's word: recorded by the village's staff who took it, or
    given by the wearer themselves in the residents' app, for their own record only;
    one action either way, which records who and when."""
    ctx: RequestContext = info.context
    gid = decode_id(input["resident"], "Resident")
    own = ctx.resident_of(gid.village)
    if own is None:
        return _write_record(info, input, action, CONSENT_FIELDS)
    if int_key(gid) != own["id"]:
        raise Forbidden(OWN_CONSENT_ONLY)
    data = {k: input[k] for k in CONSENT_FIELDS}
    # The record is the caller's own: no grid reach applies.
    return _run(ctx, gid.village, own["id"], action, data, None)


@mutation.field("createHealthRecord")
def resolve_create_health_record(_obj, info, input: dict) -> dict:
    return _write_record(info, input, actions.do_create_health_record)


@mutation.field("updateHealthRecord")
def resolve_update_health_record(_obj, info, input: dict) -> dict:
    return _write_record(info, input, actions.do_update_health_record)


@mutation.field("grantReadingConsent")
def resolve_grant_reading_consent(_obj, info, input: dict) -> dict:
    return _write_consent(info, input, actions.do_grant_reading_consent)


@mutation.field("revokeReadingConsent")
def resolve_revoke_reading_consent(_obj, info, input: dict) -> dict:
    return _write_consent(info, input, actions.do_revoke_reading_consent)


@mutation.field("updateHealthThresholds")
def resolve_update_health_thresholds(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.village(village)
    if require_health(ctx, village) != WHOLE_VILLAGE:
        raise Forbidden("the village's thresholds are set by its admin")
    ctx.require_write(village)
    changes = {column: input[name] for name, column in THRESHOLD_FIELDS.items() if name in input}
    return object_payload(
        "health_thresholds",
        lambda: actions.do_update_health_thresholds(
            ctx.tenant(village), ctx.actor, village, changes
        ),
    )


bindables = [mutation]

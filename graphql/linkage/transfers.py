"""Resident transfers (居民迁移): the mutation that moves a resident to a neighbouring
village, the one that completes a registration that arrived without an ID number,
and each village's list of transfers out and in.

A transfer is the business of the whole village: whole-village writers (village
and platform admins) make it and see the lists; grid workers do not.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ariadne import MutationType, ObjectType

from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.errors import NotFound
from villagelink.graphql.core.ids import decode_id, encode_id, key_number, target_id
from villagelink.graphql.core.nodes import as_node
from villagelink.graphql.core.payloads import object_payload
from villagelink.graphql.residents.types import resident_loader
from villagelink.platform.linkage.catalogue import RESIDENT_TRANSFER
from villagelink.platform.linkage.policy import covering
from villagelink.tenants.residents import transfers

OUTGOING = "outgoing"
INCOMING = "incoming"

mutation = MutationType()
village_type = ObjectType("Village")
transfer_type = ObjectType(transfers.TRANSFER)


def _require_admin(ctx: RequestContext, village: str) -> None:
    ctx.require_manage(village, "resident transfers are made by the village's admins")


def _outgoing(village: str, row: dict) -> dict:
    return {
        **as_node(transfers.TRANSFER, village, row),
        "key": f"o{row['id']}",
        "direction": OUTGOING,
        "other_village": row["destination"],
        "consent": {
            "given_by": row["consent_given_by"],
            "method": row["consent_method"],
            "recorded_at": row["consent_recorded_at"],
            "note": row["consent_note"],
        },
    }


def _incoming(village: str, row: dict) -> dict:
    """Only what the agreement let cross is there: the consent may be missing too."""
    consent = row["payload"].get("consent")
    if consent is not None and consent.get("recorded_at"):
        consent = {**consent, "recorded_at": datetime.fromisoformat(consent["recorded_at"])}
    return {
        **as_node(transfers.TRANSFER, village, row),
        "key": f"i{row['id']}",
        "direction": INCOMING,
        "other_village": row["origin"],
        "consent": consent,
        "created_at": row["received_at"],
    }


# -- Village --------------------------------------------------------------------


@village_type.field("residentTransfers")
def resolve_transfers(village: dict, info, direction: str) -> list[dict]:
    ctx: RequestContext = info.context
    slug = village["slug"]
    _require_admin(ctx, slug)
    conn = ctx.tenant(slug)
    if direction == OUTGOING:
        rows = [_outgoing(slug, row) for row in transfers.outgoing_transfers(conn)]
    else:
        rows = [_incoming(slug, row) for row in transfers.incoming(conn)]
    resident_loader(ctx, slug).expect(r["resident_id"] for r in rows)
    return rows


# -- ResidentTransfer -----------------------------------------------------------

# Outgoing and incoming rows are two tables: the key says which ("o12", "i3").
transfer_type.set_field("id", lambda t, *_: encode_id(transfers.TRANSFER, t["village"], t["key"]))


@transfer_type.field("resident")
def resolve_transfer_resident(transfer: dict, info):
    if transfer["resident_id"] is None:
        return None
    return resident_loader(info.context, transfer["village"]).load(transfer["resident_id"])


# -- mutations --------------------------------------------------------------------


def _payload(village: str, shape: Callable[[str, dict], dict], run: Callable[[], dict]) -> dict:
    return object_payload("transfer", lambda: shape(village, run()))


@mutation.field("transferResident")
def resolve_transfer_resident_mutation(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = target_id(input["resident"], "Resident", lambda v: _require_admin(ctx, v))
    village, destination = gid.village, input["destination"]
    with ctx.runtime.db.platform() as conn:
        agreement_ids = covering(conn, RESIDENT_TRANSFER, village, [destination]).get(
            destination, []
        )
    data = {k: input.get(k) for k in ("destination", "consent", "moved_on")}
    return _payload(
        village,
        _outgoing,
        lambda: transfers.do_transfer_resident(
            ctx.tenant(village), ctx.actor, village, int(gid.key), data, agreement_ids=agreement_ids
        ),
    )


@mutation.field("completeResidentTransfer")
def resolve_complete_transfer(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village, transfer_id = _incoming_id(ctx, input["transfer"])
    data = {"id_number": input["id_number"]}
    return _payload(
        village,
        _incoming,
        lambda: transfers.do_complete_transfer(
            ctx.tenant(village), ctx.actor, village, transfer_id, data
        ),
    )


def _incoming_id(ctx: RequestContext, raw: str) -> tuple[str, int]:
    """The village and key of an incoming transfer's ID ("i<id>"): reach checked
    before the key is looked at."""
    gid = decode_id(raw, transfers.TRANSFER)
    _require_admin(ctx, gid.village)
    number = key_number(gid.key[1:]) if gid.key.startswith("i") else None
    if number is None:
        raise NotFound(transfers.TRANSFER)
    return gid.village, number


bindables = [mutation, village_type, transfer_type]

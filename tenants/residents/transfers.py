"""Resident transfers (居民迁移) between neighbouring villages.

The resident's record moves from village A to village B with their consent and
under an agreement in force between the two covering `resident_transfer`:

- in A's transaction (`do_transfer_resident`) the resident row becomes a tombstone
  (注销留档): it keeps its id, name, gender, birth date and ID number, so that A's
  history (requests, points ledger, service orders, health records, all keyed by
  the resident) still says who it was about, plus status `moved_out`, the
  destination and the date; its phone, household, grid and tags are cleared. A
  `resident_transfers` row keeps the consent and the points balance carried; A's
  ledger gets a closing entry so the tombstone's balance is zero; an outbox row
  `ResidentTransfer` meant for B only carries the record;
- the sync hands B its copy (`receive_transfer`, in the sync's transaction under
  B's role): B creates the resident (no household, no grid yet) with the balance as
  an opening entry. An `incoming_transfers` row per (origin, origin id) makes a copy
  delivered twice harmless. When the agreement does not share the ID number, the
  transfer waits for B's admin to register the resident with it
  (`do_complete_transfer`); a resident of B with the same ID number who had moved
  away comes back to life; one still active in B is a conflict for the admins.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validates
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, insert

from villagelink.platform.audit import Actor, record, system_actor
from villagelink.platform.db import TENANT_PREFIX
from villagelink.platform.linkage.catalogue import AUDIENCE_KEY
from villagelink.tenants import id_numbers
from villagelink.tenants import models as m
from villagelink.tenants.activities.points import award_for, balances, do_redeem_points
from villagelink.tenants.fields import choice, messages, name_field, optional_text
from villagelink.tenants.models import ACTIVE_RESIDENT, MOVED_OUT, id_column, metadata, one_of
from villagelink.tenants.outbox import emit
from villagelink.tenants.residents.actions import FORBIDDEN_STATE, do_create_resident
from villagelink.tenants.residents.queries import tags_by_resident
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID,
    NOT_FOUND,
    REQUIRED,
    ActionFailed,
    Coded,
    refused,
    validated,
)

TRANSFER = "ResidentTransfer"  # the outbox's record type and the API's type name
# The points ledger's source of an opening entry (its id: the incoming transfer's);
# the closing entry's source is the TRANSFER itself. Two names, as the two ids are
# of two tables: a resident who comes back must not meet their closing entry's key.
INCOMING_TRANSFER = "IncomingResidentTransfer"
CONSENT_METHODS = ("signed_form", "in_person", "phone", "app")

# Codes of this domain; the generic ones live in villagelink.tenants.user_errors.
NO_AGREEMENT = "NO_AGREEMENT"

# A's side: done when A's transaction commits (B's side is its own row).
SENT = "sent"
# B's side.
RECEIVED = "received"  # the resident is registered in B
PENDING_REGISTRATION = "pending_registration"  # no ID number crossed: B's admin adds it
CONFLICTED = "conflict"  # an active resident of B has that ID number already
INCOMING_STATES = (RECEIVED, PENDING_REGISTRATION, CONFLICTED)

resident_transfers = Table(
    "resident_transfers",
    metadata,
    id_column(),
    # No cascade: the tombstone stays, and so does the record of its leaving.
    Column("resident_id", BigInteger, ForeignKey("residents.id"), nullable=False),
    Column("destination", Text, nullable=False),
    Column("consent_given_by", Text, nullable=False),
    Column("consent_method", Text, nullable=False),
    Column("consent_recorded_at", DateTime(timezone=True), nullable=False),
    Column("consent_note", Text),
    Column("moved_on", Date, nullable=False),
    Column("points_balance", Integer, nullable=False),
    Column("state", Text, nullable=False, server_default=SENT),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(one_of("consent_method", CONSENT_METHODS), name="resident_transfers_method"),
    CheckConstraint(one_of("state", (SENT,)), name="resident_transfers_state"),
    CheckConstraint("points_balance >= 0", name="resident_transfers_points"),
    Index("resident_transfers_resident", "resident_id"),
)

incoming_transfers = Table(
    "incoming_transfers",
    metadata,
    id_column(),
    Column("origin", Text, nullable=False),
    Column("origin_id", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    # The allow-listed fields as they arrived (what a pending registration completes).
    Column("payload", JSONB, nullable=False),
    Column("name", Text, nullable=False),
    Column("moved_on", Date),
    Column("points_balance", Integer, nullable=False, server_default="0"),
    Column("state", Text, nullable=False),
    Column("resident_id", BigInteger, ForeignKey("residents.id", ondelete="SET NULL")),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("registered_at", DateTime(timezone=True)),
    # A copy handed over again (a replayed sync) finds its row and does nothing.
    UniqueConstraint("origin", "origin_id", name="incoming_transfers_once"),
    CheckConstraint(one_of("state", INCOMING_STATES), name="incoming_transfers_state"),
)


# -- validation -----------------------------------------------------------------


class ConsentSchema(Schema):
    given_by = name_field(required=True)
    method = choice(CONSENT_METHODS, "同意方式", required=True)
    recorded_at = fields.AwareDateTime(load_default=None, error_messages=messages())
    note = optional_text("备注", 500)

    @validates("given_by")
    def _given_by(self, value: str, **_kwargs) -> None:
        if not value.strip():
            raise ValidationError(Coded("请填写同意人（居民本人或监护人）", REQUIRED))


class TransferSchema(Schema):
    destination = fields.String(required=True, error_messages=messages())
    consent = fields.Nested(
        ConsentSchema,
        required=True,
        error_messages=messages(required=Coded("须记录居民本人或监护人的同意", REQUIRED)),
    )
    moved_on = fields.Date(load_default=None, error_messages=messages())


# -- A: the resident leaves -----------------------------------------------------


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def do_transfer_resident(
    conn: Connection,
    actor: Actor,
    village: str,
    resident_id: int,
    data: dict[str, Any],
    *,
    agreement_ids: list[int],
) -> dict:
    """Move a resident of `village` to the neighbouring village `data["destination"]`.
    `agreement_ids`: the agreements in force between the two covering
    resident_transfer (the caller asks the platform: `policy.covering`)."""
    if data.get("consent") is None:
        # Checked before anything else: without consent nothing is looked at.
        raise refused("consent", "须记录居民本人或监护人的同意", REQUIRED)
    values = validated(TransferSchema(), data)
    destination = values["destination"]
    if destination == village:
        raise refused("destination", "迁入村不能是本村", INVALID)
    if not agreement_ids:
        raise refused("destination", "本村与迁入村之间没有生效的居民迁移共享协议", NO_AGREEMENT)
    consent = values["consent"]
    with conn.begin_nested():
        r = m.residents
        resident = (
            conn.execute(select(r).where(r.c.id == resident_id).with_for_update())
            .mappings()
            .first()
        )
        if resident is None:
            raise refused("resident", "居民不存在", NOT_FOUND)
        if resident["status"] != ACTIVE_RESIDENT:
            raise refused("resident", "该居民已迁出", FORBIDDEN_STATE)
        moved_on = values["moved_on"] or conn.execute(select(func.current_date())).scalar_one()
        tags = tags_by_resident(conn, [resident_id]).get(resident_id, [])
        balance = balances(conn, [resident_id]).get(resident_id, 0)
        t = resident_transfers
        transfer = dict(
            conn.execute(
                t.insert()
                .values(
                    resident_id=resident_id,
                    destination=destination,
                    consent_given_by=consent["given_by"].strip(),
                    consent_method=consent["method"],
                    consent_recorded_at=consent["recorded_at"] or func.now(),
                    consent_note=consent["note"],
                    moved_on=moved_on,
                    points_balance=balance,
                    created_by=actor.principal.sub,
                )
                .returning(*t.columns)
            )
            .mappings()
            .one()
        )
        if balance > 0:
            # The closing entry (结转): what B opens with, A's tombstone no longer has.
            do_redeem_points(
                conn,
                actor,
                village,
                resident_id,
                {"points": balance, "reason": f"迁出结转至{destination}"},
                allowed_grids=None,
                source_type=TRANSFER,
                source_id=transfer["id"],
            )
        _tombstone(conn, resident, destination, moved_on)
        # The catalogue's resident_transfer fields the record has (no ethnicity is
        # kept in this schema); which of them cross is the agreement's business.
        payload = {
            "name": resident["name"],
            "gender": resident["gender"],
            "birth_date": _iso(resident["birth_date"]),
            "id_number": resident["id_number"],
            "phone": resident["phone"],
            "tags": [{"tag": tag["tag"], "level": tag["level"]} for tag in tags],
            "points_balance": balance,
            "consent": {
                "given_by": transfer["consent_given_by"],
                "method": transfer["consent_method"],
                "recorded_at": _iso(transfer["consent_recorded_at"]),
                "note": transfer["consent_note"],
            },
            "moved_on": _iso(moved_on),
        }
        emit(conn, TRANSFER, transfer["id"], {**payload, AUDIENCE_KEY: [destination]}, version=1)
        record(
            conn,
            actor,
            village=village,
            action="resident.transfer",
            subject_type="Resident",
            subject_id=resident_id,
            fields=["status", "moved_to", "moved_on", "phone", "household_id", "grid_id", "tags"],
            details={
                "transfer_id": transfer["id"],
                "destination": destination,
                "agreement_ids": agreement_ids,
                "points_balance": balance,
                "consent_method": transfer["consent_method"],
            },
        )
    return {**transfer, "name": resident["name"]}


def _tombstone(conn: Connection, resident: dict, destination: str, moved_on: date) -> None:
    """Keep who it was and where they went; drop how to reach them and where they lived."""
    r, h = m.residents, m.households
    conn.execute(
        h.update()
        .where(h.c.head_resident_id == resident["id"])
        .values(head_resident_id=None, updated_at=func.now())
    )
    conn.execute(m.resident_tags.delete().where(m.resident_tags.c.resident_id == resident["id"]))
    conn.execute(
        r.update()
        .where(r.c.id == resident["id"])
        .values(
            status=MOVED_OUT,
            moved_to=destination,
            moved_on=moved_on,
            phone=None,
            household_id=None,
            relation_to_head=None,
            grid_id=None,
            version=r.c.version + 1,
            updated_at=func.now(),
        )
    )


# -- B: the resident arrives ----------------------------------------------------

SYNC = system_actor("sync")


def receive_transfer(
    conn: Connection, origin: str, origin_id: int, version: int, payload: dict
) -> None:
    """The sync hands over a transfer published to this village (the connection is
    under this village's role and search path, inside the sync's transaction).
    Idempotent: a second delivery of the same transfer changes nothing."""
    village = conn.execute(select(func.current_schema())).scalar_one().removeprefix(TENANT_PREFIX)
    moved_on = payload.get("moved_on")
    i = incoming_transfers
    incoming_id = conn.execute(
        insert(i)
        .values(
            origin=origin,
            origin_id=origin_id,
            version=version,
            payload=payload,
            name=payload.get("name") or "",
            moved_on=date.fromisoformat(moved_on) if moved_on else None,
            points_balance=int(payload.get("points_balance") or 0),
            state=PENDING_REGISTRATION,
        )
        .on_conflict_do_nothing(constraint="incoming_transfers_once")
        .returning(i.c.id)
    ).scalar_one_or_none()
    if incoming_id is None:
        _widened(conn, village, origin, origin_id, payload)
        return
    record(
        conn,
        SYNC,
        village=village,
        action="resident.transfer_in",
        subject_type=TRANSFER,
        subject_id=incoming_id,
        fields=sorted(payload),
        details={"origin": origin, "origin_id": origin_id},
    )
    if payload.get("id_number") and payload.get("name"):
        _register(conn, SYNC, village, incoming_id, payload["id_number"], by_sync=True)


def _widened(conn: Connection, village: str, origin: str, origin_id: int, payload: dict) -> None:
    """A transfer handed over again: nothing to do, unless it waits for its ID number
    and the agreement now shares it (the sync republishes the copy with it)."""
    i = incoming_transfers
    waiting = conn.execute(
        i.update()
        .where(
            i.c.origin == origin,
            i.c.origin_id == origin_id,
            i.c.state == PENDING_REGISTRATION,
            i.c.resident_id.is_(None),
        )
        .values(payload=payload, name=payload.get("name") or i.c.name)
        .returning(i.c.id)
    ).scalar_one_or_none()
    if waiting is not None and payload.get("id_number") and payload.get("name"):
        _register(conn, SYNC, village, waiting, payload["id_number"], by_sync=True)


def do_complete_transfer(
    conn: Connection, actor: Actor, village: str, incoming_id: int, data: dict[str, Any]
) -> dict:
    """Register a resident whose transfer arrived without an ID number (the agreement
    does not share it): the admin enters it from the resident's own papers."""
    i = incoming_transfers
    incoming = (
        conn.execute(select(i).where(i.c.id == incoming_id).with_for_update()).mappings().first()
    )
    if incoming is None:
        raise refused("transfer", "迁入记录不存在", NOT_FOUND)
    if incoming["state"] == RECEIVED:
        raise refused("transfer", "该居民已登记", FORBIDDEN_STATE)
    number = data.get("id_number")
    if not number:
        raise refused("idNumber", "请填写身份证号码", REQUIRED)
    with conn.begin_nested():
        _register(conn, actor, village, incoming_id, number, by_sync=False)
    return incoming_by_ids(conn, [incoming_id])[incoming_id]


def _register(
    conn: Connection, actor: Actor, village: str, incoming_id: int, number: str, *, by_sync: bool
) -> None:
    """The resident of an incoming transfer: a new registration, or the tombstone of
    one who once left this village brought back; carries the points over. The sync
    never fails on what arrived (it would hold back the origin's whole outbox): it
    leaves the transfer for the admins (conflict, or pending registration)."""
    i = incoming_transfers
    incoming = conn.execute(select(i).where(i.c.id == incoming_id)).mappings().one()
    payload = incoming["payload"]
    r = m.residents
    normalised = id_numbers.normalise(number)
    known = (
        conn.execute(select(r.c.id, r.c.status).where(r.c.id_number == normalised))
        .mappings()
        .first()
    )
    if known is not None and known["status"] == ACTIVE_RESIDENT:
        conn.execute(i.update().where(i.c.id == incoming_id).values(state=CONFLICTED))
        if not by_sync:
            raise refused("idNumber", "本村已有该身份证号码的在册居民", DUPLICATE)
        return
    if known is not None:
        resident_id = known["id"]
        conn.execute(
            r.update()
            .where(r.c.id == resident_id)
            .values(
                status=ACTIVE_RESIDENT,
                moved_to=None,
                moved_on=None,
                name=incoming["name"],
                phone=payload.get("phone"),
                version=r.c.version + 1,
                updated_at=func.now(),
            )
        )
        record(
            conn,
            actor,
            village=village,
            action="resident.return",
            subject_type="Resident",
            subject_id=resident_id,
            fields=["status", "name", "phone"],
        )
    else:
        try:
            resident_id = do_create_resident(
                conn,
                actor,
                village,
                {"name": incoming["name"], "id_number": number, "phone": payload.get("phone")},
                household_id=None,
                allowed_grids=None,
            )["id"]
        except ActionFailed:
            if by_sync:
                # A number the origin held but this village's rules refuse: the admin
                # registers the resident by hand (`do_complete_transfer`).
                return
            raise
    tags = [t for t in payload.get("tags") or () if t.get("tag") in m.RESIDENT_TAGS]
    if tags:
        conn.execute(
            insert(m.resident_tags)
            .values(
                [
                    {"resident_id": resident_id, "tag": t["tag"], "level": t.get("level")}
                    for t in tags
                ]
            )
            .on_conflict_do_nothing()
        )
    if incoming["points_balance"] > 0:
        award_for(
            conn,
            actor,
            village,
            resident_id=resident_id,
            points=incoming["points_balance"],
            reason=f"自{incoming['origin']}迁入结转",
            source_type=INCOMING_TRANSFER,
            source_id=incoming_id,
        )
    conn.execute(
        i.update()
        .where(i.c.id == incoming_id)
        .values(state=RECEIVED, resident_id=resident_id, registered_at=func.now())
    )


# -- reading --------------------------------------------------------------------


def outgoing_transfers(conn: Connection) -> list[dict]:
    """This village's residents who moved away, newest first, with the tombstone's name."""
    t, r = resident_transfers, m.residents
    query = select(t, r.c.name).join(r, r.c.id == t.c.resident_id).order_by(t.c.id.desc())
    return [dict(row) for row in conn.execute(query).mappings()]


def incoming_by_ids(conn: Connection, ids: list[int]) -> dict[int, dict]:
    query = select(incoming_transfers).where(incoming_transfers.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def incoming(conn: Connection) -> list[dict]:
    query = select(incoming_transfers).order_by(incoming_transfers.c.id.desc())
    return [dict(row) for row in conn.execute(query).mappings()]


def transfers_by_resident(conn: Connection, resident_ids: list[int]) -> dict[int, dict]:
    """The latest outgoing transfer of each resident (a tombstone's consent and points)."""
    t = resident_transfers
    query = (
        select(t).where(t.c.resident_id.in_(list(resident_ids))).order_by(t.c.resident_id, t.c.id)
    )
    return {row["resident_id"]: dict(row) for row in conn.execute(query).mappings()}

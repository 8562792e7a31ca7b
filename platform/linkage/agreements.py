"""Data-sharing agreements (数据共享协议): a village admin proposes what the village
shares with a neighbour or with its whole region; the other parties' admins accept
or decline; either side revokes; agreements expire.

A neighbour agreement has two parties, the proposer and a village it borders. A
region-wide one starts with every active village of the proposer's region (and asks a
village that joins the region later, `join_region_agreements`), each answering for
itself: data moves only among the parties that accepted (`policy.audiences`). The
agreement is `active` from the first acceptance by someone other than the proposer.

Every step locks the agreement row first (`FOR UPDATE`), so two admins answering
at once are taken one after the other, and writes an `agreement_events` row (the
history both sides read) and an audit entry in the same transaction. Steps that
change what moves (accept, revoke, leave, expire) need a reconcile of every party
once committed: the caller enqueues it (`party_villages`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema
from sqlalchemy import Connection, and_, func, or_, select, update

from villagelink.platform import models as pm
from villagelink.platform.audit import Actor, entry, record_many, system_actor
from villagelink.platform.linkage.catalogue import (
    ALERT_BROADCAST,
    JOINT_CASE,
    OPEN_ACTIVITY,
    RECORD_TYPES,
    SHARED_RESOURCE,
    VILLAGE_STATS,
)
from villagelink.platform.linkage.tables import (
    ACCEPTED,
    ACTIVE,
    DECLINED,
    EXPIRED,
    LEFT,
    NEIGHBOUR,
    PENDING,
    PROPOSED,
    REGION,
    REVOKED,
    agreement_events,
    agreement_parties,
    agreements,
)
from villagelink.tenants import clock
from villagelink.tenants.fields import FreeText, messages
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID,
    INVALID_TRANSITION,
    NOT_FOUND,
    REQUIRED,
    ActionFailed,
    Coded,
    UserError,
    refused,
    validated,
)

AGREEMENT = "Agreement"  # audit subject type

# Codes of this domain; the generic ones live in villagelink.tenants.user_errors.
NOT_NEIGHBOUR = "NOT_NEIGHBOUR"

# History actions (agreement_events.action); audited as `agreement.<action>`.
PROPOSE, ACCEPT, DECLINE, REVOKE, LEAVE, EXPIRE, JOIN = (
    "propose",
    "accept",
    "decline",
    "revoke",
    "leave",
    "expire",
    "join",
)

# Who the history and the audit log name for expiries.
EXPIRY_ACTOR = system_actor("agreements")

STATE_LABELS = {
    PROPOSED: "待答复",
    ACTIVE: "生效中",
    DECLINED: "已拒绝",
    REVOKED: "已撤回",
    EXPIRED: "已到期",
}
OPEN_STATES = (PROPOSED, ACTIVE)
PURPOSE_MAX = 500


def _moment(value: Any) -> Any:
    """Python callers pass datetimes, the API ISO strings: the schema reads strings."""
    return value.isoformat() if isinstance(value, datetime) else value


class ProposalSchema(Schema):
    purpose = FreeText(
        "共享目的",
        PURPOSE_MAX,
        required=True,
        error_messages={"required": Coded("请填写共享目的", REQUIRED)},
    )
    valid_from = fields.AwareDateTime(load_default=None, allow_none=True, error_messages=messages())
    valid_until = fields.AwareDateTime(
        load_default=None, allow_none=True, error_messages=messages()
    )

    @validates_schema(skip_on_field_errors=True)
    def _rules(self, data: dict, **_kwargs) -> None:
        errors: dict[str, list] = {}
        now = clock.now()
        start, end = data["valid_from"] or now, data["valid_until"]
        if end is not None and end <= start:
            errors["valid_until"] = [Coded("到期时间须晚于生效时间", INVALID)]
        elif end is not None and end <= now:
            errors["valid_until"] = [Coded("到期时间须在将来", INVALID)]
        if errors:
            raise ValidationError(errors)


def _check_record_types(chosen: dict[str, list[str]]) -> list[UserError]:
    """Each type of the catalogue, with at least one of its fields and none other.
    Errors name the type (`recordTypes.alert_broadcast`), as the form shows them."""
    if not chosen:
        return [UserError("recordTypes", "请至少选择一种共享的数据类型", REQUIRED)]
    errors = []
    for name, wanted in chosen.items():
        known = RECORD_TYPES.get(name)
        field = f"recordTypes.{name}"
        if known is None:
            errors.append(UserError(field, f"未知的数据类型：{name}", INVALID))
        elif not known.agreeable:
            errors.append(UserError(field, f"“{known.label}”只报送片区，不由协议约定", INVALID))
        elif not wanted:
            errors.append(UserError(field, f"请为“{known.label}”至少选择一个字段", REQUIRED))
        elif unknown := sorted(set(wanted) - set(known.fields)):
            errors.append(
                UserError(field, f"“{known.label}”不含字段：{'、'.join(unknown)}", INVALID)
            )
    return errors


# -- reading -------------------------------------------------------------------


def _village(conn: Connection, slug: str) -> dict | None:
    row = conn.execute(
        select(pm.tenants.c.slug, pm.tenants.c.name, pm.tenants.c.region_id).where(
            pm.tenants.c.slug == slug, pm.tenants.c.status == "active"
        )
    ).first()
    return dict(row._mapping) if row else None


def agreements_of(
    conn: Connection, village: str, states: Iterable[str] | None = None
) -> list[dict]:
    """The agreements `village` is a party of (whatever its own answer), oldest first."""
    a, p = agreements, agreement_parties
    query = (
        select(a).join(p, and_(p.c.agreement_id == a.c.id, p.c.village == village)).order_by(a.c.id)
    )
    if states is not None:
        query = query.where(a.c.state.in_(list(states)))
    return [dict(row) for row in conn.execute(query).mappings()]


def agreements_of_region(
    conn: Connection, region_id: str, states: Iterable[str] | None = None
) -> list[dict]:
    """Every agreement proposed within the region, oldest first."""
    query = select(agreements).where(agreements.c.region_id == region_id).order_by(agreements.c.id)
    if states is not None:
        query = query.where(agreements.c.state.in_(list(states)))
    return [dict(row) for row in conn.execute(query).mappings()]


def parties_of(conn: Connection, agreement_ids: list[int]) -> dict[int, list[dict]]:
    """{agreement id: its parties with their village names}, proposer first then by slug."""
    p, t = agreement_parties, pm.tenants
    found: dict[int, list[dict]] = {i: [] for i in agreement_ids}
    rows = conn.execute(
        select(p, t.c.name)
        .join(t, t.c.slug == p.c.village)
        .join(agreements, agreements.c.id == p.c.agreement_id)
        .where(p.c.agreement_id.in_(agreement_ids))
        .order_by(p.c.agreement_id, (p.c.village != agreements.c.proposer), p.c.village)
    ).mappings()
    for row in rows:
        found[row["agreement_id"]].append(dict(row))
    return found


def history_of(conn: Connection, agreement_ids: list[int]) -> dict[int, list[dict]]:
    """{agreement id: its events, oldest first}."""
    e = agreement_events
    found: dict[int, list[dict]] = {i: [] for i in agreement_ids}
    rows = conn.execute(
        select(e).where(e.c.agreement_id.in_(agreement_ids)).order_by(e.c.agreement_id, e.c.id)
    ).mappings()
    for row in rows:
        found[row["agreement_id"]].append(dict(row))
    return found


def in_force(agreement: dict, now: datetime | None = None) -> bool:
    """Active and within its validity: what moves data now (`policy.in_force`)."""
    now = now or clock.now()
    until = agreement["valid_until"]
    return (
        agreement["state"] == ACTIVE
        and agreement["valid_from"] <= now
        and (until is None or until > now)
    )


# -- writing -------------------------------------------------------------------


def _note(
    conn: Connection,
    actor: Actor,
    agreement_id: int,
    villages: Iterable[str],
    action: str,
    details: dict | None = None,
) -> None:
    """The history row, and an audit entry for each village named (the acting one;
    every party for an expiry)."""
    villages = list(villages)
    principal = actor.principal
    conn.execute(
        agreement_events.insert().values(
            agreement_id=agreement_id,
            village=villages[0] if len(villages) == 1 else None,
            action=action,
            actor_sub=principal.sub,
            actor_name=principal.display_name,
            details=details or {},
        )
    )
    record_many(
        conn,
        [
            entry(
                actor,
                village=village,
                action=f"agreement.{action}",
                subject_type=AGREEMENT,
                subject_id=agreement_id,
                details=details,
            )
            for village in villages
        ],
    )


def _lock(conn: Connection, agreement_id: int, village: str) -> tuple[dict, dict, list[dict]]:
    """The agreement (row locked), `village`'s party row and all parties; NOT_FOUND
    unless `village` is a party."""
    not_found = refused("agreement", "协议不存在或本村不是协议一方", NOT_FOUND)
    found = conn.execute(
        select(agreements).where(agreements.c.id == agreement_id).with_for_update()
    ).first()
    if found is None:
        raise not_found
    p = agreement_parties
    parties = [
        dict(r) for r in conn.execute(select(p).where(p.c.agreement_id == agreement_id)).mappings()
    ]
    mine = next((party for party in parties if party["village"] == village), None)
    if mine is None:
        raise not_found
    return dict(found._mapping), mine, parties


def _with_parties(agreement: dict, parties: list[dict]) -> dict:
    return {**agreement, "party_villages": sorted(p["village"] for p in parties)}


def _set_state(conn: Connection, agreement_id: int, state: str) -> dict:
    row = conn.execute(
        update(agreements)
        .where(agreements.c.id == agreement_id)
        .values(state=state, updated_at=func.now())
        .returning(agreements)
    ).one()
    return dict(row._mapping)


def _touch(conn: Connection, agreement_id: int) -> dict:
    """Bump `updated_at`: the sweep reconciles the parties of recently changed
    agreements (`sync.villages_to_reconcile`)."""
    row = conn.execute(
        update(agreements)
        .where(agreements.c.id == agreement_id)
        .values(updated_at=func.now())
        .returning(agreements)
    ).one()
    return dict(row._mapping)


def _answer(conn: Connection, actor: Actor, agreement_id: int, village: str, state: str) -> None:
    conn.execute(
        update(agreement_parties)
        .where(
            agreement_parties.c.agreement_id == agreement_id,
            agreement_parties.c.village == village,
        )
        .values(state=state, decided_at=func.now(), decided_by=actor.principal.sub)
    )


def _equivalent(
    conn: Connection, proposer: str, scope: str, others: list[str], chosen: dict
) -> bool:
    """Whether an open agreement (proposed or active, not past its end) has the same
    scope, parties and allow-list, whoever proposed it: proposing it is a duplicate."""
    a, p = agreements, agreement_parties
    candidates = conn.execute(
        select(a.c.fields, func.array_agg(p.c.village).label("parties"))
        .join(p, p.c.agreement_id == a.c.id)
        .where(
            a.c.id.in_(select(p.c.agreement_id).where(p.c.village == proposer)),
            a.c.scope == scope,
            a.c.state.in_(OPEN_STATES),
            or_(a.c.valid_until.is_(None), a.c.valid_until > func.now()),
        )
        .group_by(a.c.id)
    ).all()
    wanted_parties = {proposer, *others}
    wanted = {k: sorted(v) for k, v in chosen.items()}
    return any(
        set(parties) == wanted_parties and {k: sorted(v) for k, v in stored.items()} == wanted
        for stored, parties in candidates
    )


def do_propose_agreement(
    conn: Connection,
    actor: Actor,
    village: str,
    *,
    counterpart: str | None = None,
    region_wide: bool = False,
    record_types: dict[str, list[str]],
    purpose: str,
    valid_from: datetime | str | None = None,
    valid_until: datetime | str | None = None,
) -> dict:
    """`village` proposes to share `record_types` ({type: [field, ...]}) with a
    neighbour (`counterpart`) or with every other active village of its region
    (`region_wide`). The proposer's party is accepted at once, the others pending."""
    errors = _check_record_types(record_types)
    try:
        data = validated(
            ProposalSchema(),
            {
                "purpose": purpose,
                "valid_from": _moment(valid_from),
                "valid_until": _moment(valid_until),
            },
        )
    except ActionFailed as failed:
        errors = failed.errors + errors
    if errors:
        raise ActionFailed(errors)
    me = _village(conn, village)
    if me is None:
        raise refused("village", f"村庄 {village} 不存在", NOT_FOUND)
    if region_wide and counterpart:
        raise refused("counterpart", "全片区协议不指定对方村庄", INVALID)
    if region_wide:
        others = sorted(
            conn.execute(
                select(pm.tenants.c.slug).where(
                    pm.tenants.c.region_id == me["region_id"],
                    pm.tenants.c.status == "active",
                    pm.tenants.c.slug != village,
                )
            ).scalars()
        )
        if not others:
            raise refused("regionWide", "本片区暂无其他村庄", INVALID)
        scope = REGION
    else:
        if not counterpart:
            raise refused("counterpart", "请选择对方村庄，或选择全片区", REQUIRED)
        if counterpart == village:
            raise refused("counterpart", "不能与本村自己签订协议", INVALID)
        if _village(conn, counterpart) is None:
            raise refused("counterpart", f"村庄 {counterpart} 不存在", NOT_FOUND)
        a, b = sorted((village, counterpart))
        links = pm.neighbour_links
        linked = conn.execute(
            select(links.c.village_a).where(links.c.village_a == a, links.c.village_b == b)
        ).first()
        if linked is None:
            raise refused("counterpart", "只能与相邻的村庄签订协议", NOT_NEIGHBOUR)
        others, scope = [counterpart], NEIGHBOUR

    chosen = {t: sorted(set(f)) for t, f in sorted(record_types.items())}
    if _equivalent(conn, village, scope, others, chosen):
        raise refused(None, "已有一份内容相同、尚未结束的协议", DUPLICATE)
    valid_from = data["valid_from"] or clock.now()
    created = conn.execute(
        agreements.insert()
        .values(
            proposer=village,
            region_id=me["region_id"],
            scope=scope,
            purpose=data["purpose"],
            record_types=list(chosen),
            fields=chosen,
            valid_from=valid_from,
            valid_until=data["valid_until"],
            state=PROPOSED,
        )
        .returning(agreements)
    ).one()
    agreement = dict(created._mapping)
    conn.execute(
        agreement_parties.insert(),
        [
            {
                "agreement_id": agreement["id"],
                "village": village,
                "state": ACCEPTED,
                "decided_at": agreement["created_at"],
                "decided_by": actor.principal.sub,
            },
            *(
                {
                    "agreement_id": agreement["id"],
                    "village": v,
                    "state": PENDING,
                    "decided_at": None,
                    "decided_by": None,
                }
                for v in others
            ),
        ],
    )
    _note(
        conn,
        actor,
        agreement["id"],
        [village],
        PROPOSE,
        {"scope": scope, "parties": [village, *others], "fields": chosen},
    )
    return {**agreement, "party_villages": sorted([village, *others])}


def _open(agreement: dict, verb: str) -> None:
    if agreement["state"] not in OPEN_STATES:
        raise refused(
            "agreement",
            f"协议{STATE_LABELS[agreement['state']]}，不能再{verb}",
            INVALID_TRANSITION,
        )
    until = agreement["valid_until"]
    if until is not None and until <= clock.now():
        raise refused("agreement", f"协议已过有效期，不能再{verb}", INVALID_TRANSITION)


def do_accept_agreement(conn: Connection, actor: Actor, agreement_id: int, village: str) -> dict:
    """A pending party accepts; the agreement is active from the first acceptance."""
    agreement, mine, parties = _lock(conn, agreement_id, village)
    _open(agreement, "同意")
    if mine["state"] != PENDING:
        raise refused("village", "本村已答复过这份协议", INVALID_TRANSITION)
    _answer(conn, actor, agreement_id, village, ACCEPTED)
    if agreement["state"] == PROPOSED:
        agreement = _set_state(conn, agreement_id, ACTIVE)
    else:
        agreement = _touch(conn, agreement_id)
    _note(conn, actor, agreement_id, [village], ACCEPT)
    return _with_parties(agreement, parties)


def do_decline_agreement(
    conn: Connection, actor: Actor, agreement_id: int, village: str, reason: str | None = None
) -> dict:
    """A pending party declines. A neighbour agreement is then declined; a
    region-wide one once every party but the proposer has declined."""
    agreement, mine, parties = _lock(conn, agreement_id, village)
    _open(agreement, "拒绝")
    if mine["state"] != PENDING:
        raise refused("village", "本村已答复过这份协议", INVALID_TRANSITION)
    _answer(conn, actor, agreement_id, village, DECLINED)
    others = [p for p in parties if p["village"] not in (agreement["proposer"], village)]
    if agreement["scope"] == NEIGHBOUR or all(p["state"] == DECLINED for p in others):
        agreement = _set_state(conn, agreement_id, DECLINED)
    else:
        agreement = _touch(conn, agreement_id)
    reason = (reason or "").strip()[:PURPOSE_MAX] or None
    _note(conn, actor, agreement_id, [village], DECLINE, {"reason": reason} if reason else None)
    return _with_parties(agreement, parties)


def do_revoke_agreement(
    conn: Connection, actor: Actor, agreement_id: int, village: str, reason: str | None = None
) -> dict:
    """Revoke (撤回). A neighbour agreement: either party, once active; the proposer
    also withdraws it while proposed. A region-wide one: the proposer revokes it for
    everyone; a member that accepted leaves it (and when no member but the proposer
    remains, it is revoked)."""
    agreement, mine, parties = _lock(conn, agreement_id, village)
    if agreement["state"] not in OPEN_STATES:
        raise refused(
            "agreement",
            f"协议{STATE_LABELS[agreement['state']]}，无需撤回",
            INVALID_TRANSITION,
        )
    reason = (reason or "").strip()[:PURPOSE_MAX] or None
    details: dict[str, Any] = {"reason": reason} if reason else {}
    proposer = village == agreement["proposer"]
    if not proposer and mine["state"] != ACCEPTED:
        raise refused(
            "village",
            "本村尚未同意这份协议：请选择拒绝" if mine["state"] == PENDING else "本村已不在协议中",
            INVALID_TRANSITION,
        )
    if proposer or agreement["scope"] == NEIGHBOUR:
        agreement = _set_state(conn, agreement_id, REVOKED)
        _note(conn, actor, agreement_id, [village], REVOKE, details)
        return _with_parties(agreement, parties)

    _answer(conn, actor, agreement_id, village, LEFT)
    remaining = [
        p
        for p in parties
        if p["village"] not in (agreement["proposer"], village) and p["state"] == ACCEPTED
    ]
    if remaining:
        agreement = _touch(conn, agreement_id)
    else:
        agreement = _set_state(conn, agreement_id, REVOKED)
        details["lastMember"] = True
    _note(conn, actor, agreement_id, [village], LEAVE, details)
    return _with_parties(agreement, parties)


def join_region_agreements(conn: Connection, actor: Actor, village: str) -> list[int]:
    """Make a village new to its region a pending party of every open region-wide
    agreement there (proposed or active, not past its end): a region-wide agreement
    speaks to every village of the region, so the newcomer is asked too, and shares
    nothing until its admin accepts. Idempotent; returns the agreements joined."""
    me = _village(conn, village)
    if me is None:
        return []
    a, p = agreements, agreement_parties
    open_ids = (
        conn.execute(
            select(a.c.id)
            .where(
                a.c.region_id == me["region_id"],
                a.c.scope == REGION,
                a.c.state.in_(OPEN_STATES),
                or_(a.c.valid_until.is_(None), a.c.valid_until > func.now()),
                ~a.c.id.in_(select(p.c.agreement_id).where(p.c.village == village)),
            )
            .order_by(a.c.id)
            # Taken one after the other with the parties' answers (`_lock`).
            .with_for_update()
        )
        .scalars()
        .all()
    )
    for agreement_id in open_ids:
        conn.execute(p.insert().values(agreement_id=agreement_id, village=village, state=PENDING))
        _touch(conn, agreement_id)
        _note(conn, actor, agreement_id, [village], JOIN)
    return list(open_ids)


def expire_due(conn: Connection, now: datetime | None = None) -> list[str]:
    """Mark proposed and active agreements past their end `expired`, with history and
    audit. Returns the parties of those that were active: their copies must go."""
    a = agreements
    moment = now or clock.now()
    due = conn.execute(
        select(a.c.id, a.c.state)
        .where(a.c.state.in_(OPEN_STATES), a.c.valid_until <= moment)
        .order_by(a.c.id)
        .with_for_update(skip_locked=True)
    ).all()
    if not due:
        return []
    ids = [agreement_id for agreement_id, _ in due]
    conn.execute(update(a).where(a.c.id.in_(ids)).values(state=EXPIRED, updated_at=func.now()))
    parties = parties_of(conn, ids)
    affected: set[str] = set()
    for agreement_id, state in due:
        villages = [p["village"] for p in parties[agreement_id]]
        _note(conn, EXPIRY_ACTOR, agreement_id, villages, EXPIRE, {"from": state})
        if state == ACTIVE:
            affected.update(villages)
    return sorted(affected)


# -- demo ------------------------------------------------------------------------

DEMO_REGION_TYPES = (VILLAGE_STATS, JOINT_CASE)
DEMO_NEIGHBOUR_TYPES = (ALERT_BROADCAST, SHARED_RESOURCE, OPEN_ACTIVITY)
DEMO_REGION_PURPOSE = "片区内共享村情汇总统计，联合办理跨村难事，供片区协调员统筹调度。"
DEMO_NEIGHBOUR_PURPOSE = (
    "相邻两村互通火情与走失警情，共享微型消防站、场地、AED和车辆，互相开放活动。"
)
DEMO_VALIDITY = timedelta(days=365)


def seed_demo_agreements(conn: Connection, actor: Actor, villages: list[str]) -> list[int]:
    """The demo region's agreements, proposed and accepted through the actions: one
    region-wide (village stats, joint cases) and one per neighbouring pair of the ring
    `villages` (alerts, shared resources, open activities), every catalogue field.
    Idempotent: an agreement already there is left as it is. Returns the new ids."""
    created: list[int] = []

    def ensure(proposer: str, types: tuple[str, ...], purpose: str, **scope: Any) -> None:
        chosen = {t: list(RECORD_TYPES[t].fields) for t in types}
        try:
            agreement = do_propose_agreement(
                conn,
                actor,
                proposer,
                record_types=chosen,
                purpose=purpose,
                valid_until=clock.now() + DEMO_VALIDITY,
                **scope,
            )
        except ActionFailed as failed:
            if [e.code for e in failed.errors] == [DUPLICATE]:
                return
            raise
        for other in agreement["party_villages"]:
            if other != proposer:
                do_accept_agreement(conn, actor, agreement["id"], other)
        created.append(agreement["id"])

    ensure(villages[0], DEMO_REGION_TYPES, DEMO_REGION_PURPOSE, region_wide=True)
    for i, village in enumerate(villages):
        ensure(
            village,
            DEMO_NEIGHBOUR_TYPES,
            DEMO_NEIGHBOUR_PURPOSE,
            counterpart=villages[(i + 1) % len(villages)],
        )
    return created

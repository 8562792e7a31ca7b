"""Which agreements are in force, and so who may receive what from whom.

The sync job asks `audiences` once per batch of a village's outbox; the actions a
village takes on a neighbour's shared record (booking its resource, signing up for
its activity, reporting a missing person seen) ask `covering` before they write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.orm import aliased

from villagelink.platform import models as pm
from villagelink.platform.linkage.catalogue import RECORD_TYPES
from villagelink.platform.linkage.tables import (
    ACCEPTED,
    ACTIVE,
    REGION_AUDIENCE,
    agreement_parties,
    agreements,
)


@dataclass
class Grant:
    """What one audience may receive of one record type: the agreements that allow
    it and the union of their fields."""

    agreement_ids: list[int] = field(default_factory=list)
    fields: set[str] = field(default_factory=set)


def in_force():
    """The condition of an agreement that moves data now."""
    a = agreements
    return and_(
        a.c.state == ACTIVE,
        a.c.valid_from <= func.now(),
        or_(a.c.valid_until.is_(None), a.c.valid_until > func.now()),
    )


def audiences(conn: Connection, village: str) -> dict[str, dict[str, Grant]]:
    """{record type: {audience: grant}} for what `village` publishes now: every other
    accepted party of an agreement in force, and the region's coordinators for the
    types they govern."""
    a, me, other, t = agreements, agreement_parties, aliased(agreement_parties), pm.tenants
    rows = conn.execute(
        select(a.c.id, a.c.record_types, a.c.fields, other.c.village)
        .join(me, and_(me.c.agreement_id == a.c.id, me.c.village == village))
        .join(other, and_(other.c.agreement_id == a.c.id, other.c.village != village))
        .join(t, and_(t.c.slug == other.c.village, t.c.status == "active"))
        .where(in_force(), me.c.state == ACCEPTED, other.c.state == ACCEPTED)
        .order_by(a.c.id)
    ).all()
    result: dict[str, dict[str, Grant]] = {}
    for agreement_id, record_types, fields, audience in rows:
        for record_type in record_types:
            grant = result.setdefault(record_type, {}).setdefault(audience, Grant())
            if agreement_id not in grant.agreement_ids:
                grant.agreement_ids.append(agreement_id)
            grant.fields.update(fields.get(record_type, ()))
    for record_type in RECORD_TYPES.values():
        if record_type.to_region:
            result.setdefault(record_type.name, {})[REGION_AUDIENCE] = Grant(
                [], set(record_type.fields)
            )
    return result


def covering(
    conn: Connection, record_type: str, village: str, neighbours: Iterable[str]
) -> dict[str, list[int]]:
    """{neighbour: agreement ids} for each of `neighbours` with which `village` has an
    agreement in force covering `record_type` (both accepted)."""
    wanted = set(neighbours)
    grants = audiences(conn, village).get(record_type, {})
    return {v: g.agreement_ids for v, g in grants.items() if v in wanted and g.agreement_ids}

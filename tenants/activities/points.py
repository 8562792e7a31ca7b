"""The points ledger (积分制): append-only entries, balances as their sum.

Points are earned (volunteer check-ins, awards by the village) and spent
(redemptions, e.g. at the points shop). Nothing here updates or deletes an
entry (a trigger refuses it anyway): a mistake is corrected by another entry.
A redemption holds a per-resident lock for the rest of the transaction while
it reads the balance and appends, so two redemptions at once cannot overdraw.

Other domains that move points (service orders paid in points, ...) call
`do_award_points` / `do_redeem_points` with their own `source_type` (their
GraphQL type name) and the record's id: one entry per resident and source.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection, func, select, text
from sqlalchemy.dialects.postgresql import insert

from villagelink.platform.audit import Actor, record
from villagelink.tenants.activities.tables import points_ledger, points_rules
from villagelink.tenants.activities.validation import (
    INSUFFICIENT_POINTS,
    PointsRulesSchema,
    PointsSchema,
)
from villagelink.tenants.residents.queries import Grids, residents_by_ids
from villagelink.tenants.user_errors import NOT_FOUND, ActionFailed, UserError, refused, validated

# What a village awards per hour of volunteer service until it sets its own rate
# (志愿服务积分: ten points an hour is the usual figure of 积分超市 schemes).
DEFAULT_POINTS_PER_VOLUNTEER_HOUR = 10
MANUAL = "manual"
REDEMPTION = "redemption"
POINTS_ENTRY = "PointsEntry"


def session_hours(starts_at: datetime, ends_at: datetime) -> Decimal:
    """A volunteer session's length in hours (to the hundredth, at most a day): what
    check-in records when no hours are given."""
    hours = Decimal(int((ends_at - starts_at).total_seconds() // 60)) / 60
    return min(hours, Decimal(24)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def volunteer_points(hours: Decimal, points_per_hour: int) -> int:
    """The points `hours` of volunteer service earn, rounded half up."""
    return int((hours * points_per_hour).to_integral_value(ROUND_HALF_UP))


def volunteer_reason(title: str, hours: Decimal) -> str:
    """The ledger's reason for points earned at the activity `title`."""
    return f"志愿服务：{title}（{format(hours.normalize(), 'f')}小时）"  # 2.00 → "2", 1.50 → "1.5"


def rules(conn: Connection) -> dict:
    row = conn.execute(select(points_rules)).mappings().first()
    return (
        dict(row)
        if row
        else {"points_per_volunteer_hour": DEFAULT_POINTS_PER_VOLUNTEER_HOUR, "updated_at": None}
    )


def do_update_points_rules(conn: Connection, actor: Actor, village: str, data: dict) -> dict:
    values = validated(PointsRulesSchema(), data)
    with conn.begin_nested():
        statement = insert(points_rules).values(id=1, **values)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["id"], set_={**values, "updated_at": func.now()}
            )
        )
        record(
            conn,
            actor,
            village=village,
            action="points.rules",
            subject_type="PointsRules",
            subject_id=1,
            fields=sorted(values),
            details=values,
        )
    return rules(conn)


def balances(conn: Connection, resident_ids: Iterable[int]) -> dict[int, int]:
    p = points_ledger
    rows = conn.execute(
        select(p.c.resident_id, func.sum(p.c.points))
        .where(p.c.resident_id.in_(list(resident_ids)))
        .group_by(p.c.resident_id)
    ).all()
    return {resident_id: int(total) for resident_id, total in rows}


def entries_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    query = select(points_ledger).where(points_ledger.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def ledger_by_resident(
    conn: Connection, resident_ids: Iterable[int], *, before_id: int | None, limit: int
) -> dict[int, list[dict]]:
    """The newest `limit` entries of each resident (older than `before_id` if given)."""
    p = points_ledger
    newest_first = func.row_number().over(partition_by=p.c.resident_id, order_by=p.c.id.desc())
    inner = select(p, newest_first.label("n")).where(p.c.resident_id.in_(list(resident_ids)))
    if before_id is not None:
        inner = inner.where(p.c.id < before_id)
    ranked = inner.subquery("ranked")
    rows = conn.execute(
        select(*(ranked.c[c.name] for c in p.columns))
        .where(ranked.c.n <= limit)
        .order_by(ranked.c.resident_id, ranked.c.id.desc())
    ).mappings()
    found: dict[int, list[dict]] = {}
    for row in rows:
        found.setdefault(row["resident_id"], []).append(dict(row))
    return found


def entry_counts(conn: Connection, resident_ids: Iterable[int]) -> dict[int, int]:
    p = points_ledger
    rows = conn.execute(
        select(p.c.resident_id, func.count())
        .where(p.c.resident_id.in_(list(resident_ids)))
        .group_by(p.c.resident_id)
    ).all()
    return dict(rows)


def lock_resident(conn: Connection, resident_id: int) -> None:
    """Serialise spending by one resident until the transaction ends. Advisory locks
    are database-wide, so the key names the village schema too."""
    conn.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtextextended("
            "'villagelink.points:' || current_schema() || ':' || :resident, 0))"
        ),
        {"resident": str(resident_id)},
    )


def _append(
    conn: Connection,
    actor: Actor,
    *,
    resident_id: int,
    points: int,
    reason: str,
    source_type: str,
    source_id: int | None,
) -> dict:
    """Append one entry, or return the one this source already wrote for this resident."""
    p = points_ledger
    written = (
        conn.execute(
            insert(p)
            .values(
                resident_id=resident_id,
                points=points,
                reason=reason,
                source_type=source_type,
                source_id=source_id,
                created_by=actor.principal.sub,
            )
            .on_conflict_do_nothing(
                index_elements=["resident_id", "source_type", "source_id"],
                index_where=p.c.source_id.is_not(None),
            )
            .returning(*p.columns)
        )
        .mappings()
        .first()
    )
    if written is not None:
        return dict(written)
    return dict(
        conn.execute(
            select(p).where(
                p.c.resident_id == resident_id,
                p.c.source_type == source_type,
                p.c.source_id == source_id,
            )
        )
        .mappings()
        .one()
    )


def resident_in_reach(conn: Connection, resident_id: int, allowed_grids: Grids) -> dict:
    found = residents_by_ids(conn, [resident_id], allowed_grids=allowed_grids).get(resident_id)
    if found is None:
        raise refused("resident", "居民不存在或不在您的管辖范围内", NOT_FOUND)
    return found


def award_for(
    conn: Connection,
    actor: Actor,
    village: str,
    *,
    resident_id: int,
    points: int,
    reason: str,
    source_type: str,
    source_id: int | None,
) -> dict:
    """Append an earning entry and its audit entry (callers have checked the resident)."""
    entry = _append(
        conn,
        actor,
        resident_id=resident_id,
        points=points,
        reason=reason,
        source_type=source_type,
        source_id=source_id,
    )
    _audit(conn, actor, village, "points.award", entry)
    return entry


def _audit(conn: Connection, actor: Actor, village: str, action: str, entry: dict) -> None:
    record(
        conn,
        actor,
        village=village,
        action=action,
        subject_type=POINTS_ENTRY,
        subject_id=entry["id"],
        details={
            "resident_id": entry["resident_id"],
            "points": entry["points"],
            "source_type": entry["source_type"],
            "source_id": entry["source_id"],
        },
    )


def do_award_points(
    conn: Connection,
    actor: Actor,
    village: str,
    resident_id: int,
    data: dict[str, Any],
    *,
    allowed_grids: Grids,
    source_type: str = MANUAL,
    source_id: int | None = None,
) -> dict:
    values = validated(PointsSchema(), data)
    resident_in_reach(conn, resident_id, allowed_grids)
    with conn.begin_nested():
        return award_for(
            conn,
            actor,
            village,
            resident_id=resident_id,
            points=values["points"],
            reason=values["reason"],
            source_type=source_type,
            source_id=source_id,
        )


def do_redeem_points(
    conn: Connection,
    actor: Actor,
    village: str,
    resident_id: int,
    data: dict[str, Any],
    *,
    allowed_grids: Grids,
    source_type: str = REDEMPTION,
    source_id: int | None = None,
) -> dict:
    """Spend points: a negative entry, refused with INSUFFICIENT_POINTS beyond the balance."""
    values = validated(PointsSchema(), data)
    resident_in_reach(conn, resident_id, allowed_grids)
    with conn.begin_nested():
        return spend_for(
            conn,
            actor,
            village,
            resident_id=resident_id,
            points=values["points"],
            reason=values["reason"],
            source_type=source_type,
            source_id=source_id,
        )


def spend_for(
    conn: Connection,
    actor: Actor,
    village: str,
    *,
    resident_id: int,
    points: int,
    reason: str,
    source_type: str,
    source_id: int | None,
    field: str = "points",
) -> dict:
    """Append a spending entry and its audit entry under the resident's lock, refused
    with INSUFFICIENT_POINTS (naming `field`) beyond the balance; callers hold a
    savepoint and have checked the resident."""
    lock_resident(conn, resident_id)
    balance = balances(conn, [resident_id]).get(resident_id, 0)
    if points > balance:
        raise ActionFailed(
            [UserError(field, f"积分不足，当前余额为{balance}分", INSUFFICIENT_POINTS)]
        )
    entry = _append(
        conn,
        actor,
        resident_id=resident_id,
        points=-points,
        reason=reason,
        source_type=source_type,
        source_id=source_id,
    )
    _audit(conn, actor, village, "points.redeem", entry)
    return entry

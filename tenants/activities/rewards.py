"""Points rewards (积分兑换) where the village offers them: the village lists rewards
(name, cost in points, stock, active), a resident redeems one, the village hands it
over and marks it so.

A redemption takes the resident's points lock (`points.lock_resident`) and then the
reward's row, always in that order, so redemptions at once neither deadlock nor
overdraw: the stock is taken by an UPDATE that only matches while some is left (two
residents after the last one: the second finds none), and the balance is read under
the resident's lock (`points.spend_for`). Stock, ledger entry and redemption are
written in one savepoint: a refusal leaves all of them as they were.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select

from villagelink.platform.audit import Actor, record
from villagelink.tenants.activities import points
from villagelink.tenants.activities.tables import points_redemptions, points_rewards
from villagelink.tenants.activities.validation import (
    OUT_OF_STOCK,
    RewardSchema,
)
from villagelink.tenants.querying import limit_of
from villagelink.tenants.residents.queries import Grids
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID_TRANSITION,
    NOT_FOUND,
    refused,
    validated,
)

REWARD = "PointsReward"
REDEMPTION = "PointsRedemption"


# -- reads ----------------------------------------------------------------------


def rewards_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    query = select(points_rewards).where(points_rewards.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def reward_page(
    conn: Connection, *, active_only: bool, after_id: int | None, limit: int
) -> list[dict]:
    r = points_rewards
    query = select(r).order_by(r.c.id).limit(limit_of(limit))
    if active_only:
        query = query.where(r.c.active)
    if after_id is not None:
        query = query.where(r.c.id > after_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def reward_count(conn: Connection, *, active_only: bool) -> int:
    r = points_rewards
    query = select(func.count()).select_from(r)
    return conn.execute(query.where(r.c.active) if active_only else query).scalar_one()


def redemptions_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, dict]:
    query = select(points_redemptions).where(points_redemptions.c.id.in_(list(ids)))
    return {row["id"]: dict(row) for row in conn.execute(query).mappings()}


def _redemption_conditions(state: str | None, resident_id: int | None) -> list:
    d = points_redemptions
    conditions = []
    if state is not None:
        conditions.append(d.c.state == state)
    if resident_id is not None:
        conditions.append(d.c.resident_id == resident_id)
    return conditions


def redemption_page(
    conn: Connection,
    *,
    state: str | None,
    resident_id: int | None,
    after_id: int | None,
    limit: int,
) -> list[dict]:
    """Newest first: the counter hands over what was redeemed last."""
    d = points_redemptions
    query = select(d).where(*_redemption_conditions(state, resident_id)).order_by(d.c.id.desc())
    if after_id is not None:
        query = query.where(d.c.id < after_id)
    return [dict(row) for row in conn.execute(query.limit(limit_of(limit))).mappings()]


def redemption_count(conn: Connection, *, state: str | None, resident_id: int | None) -> int:
    conditions = _redemption_conditions(state, resident_id)
    query = select(func.count()).select_from(points_redemptions).where(*conditions)
    return conn.execute(query).scalar_one()


# -- the village's rewards -----------------------------------------------------------


def _name_taken(conn: Connection, name: str, reward_id: int | None) -> None:
    r = points_rewards
    query = select(r.c.id).where(r.c.name == name)
    if reward_id is not None:
        query = query.where(r.c.id != reward_id)
    if conn.execute(query).first() is not None:
        raise refused("name", "已有同名奖品", DUPLICATE)


def _audit_reward(
    conn: Connection, actor: Actor, village: str, action: str, reward: dict, fields: list[str]
) -> None:
    record(
        conn,
        actor,
        village=village,
        action=f"points.reward.{action}",
        subject_type=REWARD,
        subject_id=reward["id"],
        fields=fields,
    )


def do_create_points_reward(conn: Connection, actor: Actor, village: str, data: dict) -> dict:
    values = validated(RewardSchema(), data)
    with conn.begin_nested():
        _name_taken(conn, values["name"], None)
        reward = dict(
            conn.execute(points_rewards.insert().values(**values).returning(*points_rewards.c))
            .mappings()
            .one()
        )
        _audit_reward(conn, actor, village, "create", reward, sorted(values))
    return reward


def do_update_points_reward(
    conn: Connection, actor: Actor, village: str, reward_id: int, changes: dict
) -> dict:
    values = validated(RewardSchema(partial=True), changes)
    r = points_rewards
    with conn.begin_nested():
        before = (
            conn.execute(select(r).where(r.c.id == reward_id).with_for_update()).mappings().first()
        )
        if before is None:
            raise refused("id", "奖品不存在", NOT_FOUND)
        changed = {k: v for k, v in values.items() if before[k] != v}
        if not changed:
            return dict(before)
        if "name" in changed:
            _name_taken(conn, changed["name"], reward_id)
        reward = dict(
            conn.execute(
                r.update()
                .where(r.c.id == reward_id)
                .values(**changed, version=r.c.version + 1, updated_at=func.now())
                .returning(*r.c)
            )
            .mappings()
            .one()
        )
        _audit_reward(conn, actor, village, "update", reward, sorted(changed))
    return reward


# -- redeeming and handing over ----------------------------------------------------


def do_redeem_points_reward(
    conn: Connection,
    actor: Actor,
    village: str,
    reward_id: int,
    resident_id: int,
    *,
    allowed_grids: Grids,
) -> dict:
    """The resident spends the reward's cost and takes one of its stock, or nothing
    happens: refused with OUT_OF_STOCK, INSUFFICIENT_POINTS or NOT_FOUND."""
    r, d = points_rewards, points_redemptions
    points.resident_in_reach(conn, resident_id, allowed_grids)
    with conn.begin_nested():
        points.lock_resident(conn, resident_id)
        reward = (
            conn.execute(
                r.update()
                .where(r.c.id == reward_id, r.c.active, r.c.stock > 0)
                .values(stock=r.c.stock - 1, version=r.c.version + 1, updated_at=func.now())
                .returning(*r.c)
            )
            .mappings()
            .first()
        )
        if reward is None:
            found = rewards_by_ids(conn, [reward_id]).get(reward_id)
            if found is None:
                raise refused("reward", "奖品不存在", NOT_FOUND)
            raise refused(
                "reward",
                "该奖品已兑完" if found["active"] else "该奖品已下架",
                OUT_OF_STOCK,
            )
        redemption = dict(
            conn.execute(
                d.insert()
                .values(reward_id=reward_id, resident_id=resident_id, points=reward["points_cost"])
                .returning(*d.c)
            )
            .mappings()
            .one()
        )
        entry = points.spend_for(
            conn,
            actor,
            village,
            resident_id=resident_id,
            points=reward["points_cost"],
            reason=f"积分兑换：{reward['name']}",
            source_type=REDEMPTION,
            source_id=redemption["id"],
            field="reward",
        )
        record(
            conn,
            actor,
            village=village,
            action="points.redeem_reward",
            subject_type=REDEMPTION,
            subject_id=redemption["id"],
            details={
                "reward_id": reward_id,
                "resident_id": resident_id,
                "points": reward["points_cost"],
                "entry_id": entry["id"],
                "stock_left": reward["stock"],
            },
        )
    return redemption


def do_hand_over_redemption(
    conn: Connection, actor: Actor, village: str, redemption_id: int
) -> dict[str, Any]:
    """The village gave the reward to the resident (已领取): once."""
    d = points_redemptions
    with conn.begin_nested():
        handed = (
            conn.execute(
                d.update()
                .where(d.c.id == redemption_id, d.c.state == "pending")
                .values(
                    state="handed_over",
                    handed_over_at=func.now(),
                    handed_over_by=actor.principal.sub,
                )
                .returning(*d.c)
            )
            .mappings()
            .first()
        )
        if handed is None:
            if redemption_id not in redemptions_by_ids(conn, [redemption_id]):
                raise refused("redemption", "兑换记录不存在", NOT_FOUND)
            raise refused("redemption", "该兑换已领取", INVALID_TRANSITION)
        record(
            conn,
            actor,
            village=village,
            action="points.hand_over",
            subject_type=REDEMPTION,
            subject_id=redemption_id,
            fields=["state"],
        )
    return dict(handed)

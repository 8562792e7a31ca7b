"""The points shop (积分兑换) in the API: rewards and redemptions under Village and
ResidentSelf, their nodes and mutations.

The village's managers list rewards and hand redemptions over; anyone who reads
the village sees its rewards; a resident redeems for themselves and sees their own
redemptions. Staff may redeem for a resident at the counter.
"""

from __future__ import annotations

from ariadne import MutationType, ObjectType

from villagelink.graphql.activities.mutations import MANAGED
from villagelink.graphql.core.context import RequestContext
from villagelink.graphql.core.ids import input_key, target_id
from villagelink.graphql.core.loaders import BatchLoader
from villagelink.graphql.core.nodes import (
    as_node,
    connection_object,
    fetch_by_int_key,
    node_object,
    register_node_type,
)
from villagelink.graphql.core.pagination import page_args, paginate
from villagelink.graphql.core.payloads import act_on, node_payload
from villagelink.graphql.residents.acting import staff_or_resident_target
from villagelink.graphql.residents.types import resident_loader
from villagelink.tenants.activities import rewards
from villagelink.tenants.activities.rewards import REDEMPTION, REWARD
from villagelink.tenants.user_errors import NOT_FOUND, REQUIRED, refused

village_type = ObjectType("Village")
self_type = ObjectType("ResidentSelf")
reward_type = node_object(REWARD)
redemption_type = node_object(REDEMPTION)
mutation = MutationType()


def reward_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    return ctx.loader(
        slug,
        REWARD,
        lambda conn, ids: {
            k: as_node(REWARD, slug, v) for k, v in rewards.rewards_by_ids(conn, ids).items()
        },
    )


def redemption_loader(ctx: RequestContext, slug: str) -> BatchLoader:
    """A redemption is a resident's: a resident sees only their own, staff those of
    the residents they reach."""
    own = ctx.resident_of(slug)

    def fetch(conn, ids: list[int]) -> dict[int, dict]:
        found = rewards.redemptions_by_ids(conn, ids)
        if own is not None:
            found = {k: v for k, v in found.items() if v["resident_id"] == own["id"]}
        else:
            visible = resident_loader(ctx, slug)
            visible.expect(v["resident_id"] for v in found.values())
            found = {k: v for k, v in found.items() if visible.load(v["resident_id"]) is not None}
        return {k: as_node(REDEMPTION, slug, v) for k, v in found.items()}

    return ctx.loader(slug, REDEMPTION, fetch)


def _rewards(ctx: RequestContext, slug: str, first, after, *, active_only: bool):
    page = page_args(first, after, ctx.settings.max_page_size)
    conn = ctx.tenant(slug)
    return paginate(
        lambda limit: rewards.reward_page(
            conn, active_only=active_only, after_id=page.after_id, limit=limit
        ),
        page,
        count=lambda: rewards.reward_count(conn, active_only=active_only),
        node=lambda row: as_node(REWARD, slug, row),
    )


def _redemptions(ctx: RequestContext, slug: str, first, after, *, state, resident_id):
    page = page_args(first, after, ctx.settings.max_page_size)
    conn = ctx.tenant(slug)

    def fetch(limit: int) -> list[dict]:
        rows = rewards.redemption_page(
            conn, state=state, resident_id=resident_id, after_id=page.after_id, limit=limit
        )
        shown = rows[: page.first]
        reward_loader(ctx, slug).expect(r["reward_id"] for r in shown)
        resident_loader(ctx, slug).expect(r["resident_id"] for r in shown)
        return rows

    return paginate(
        fetch,
        page,
        count=lambda: rewards.redemption_count(conn, state=state, resident_id=resident_id),
        node=lambda row: as_node(REDEMPTION, slug, row),
    )


@village_type.field("pointsRewards")
def resolve_village_rewards(village: dict, info, first=None, after=None, active_only=False):
    return _rewards(info.context, village["slug"], first, after, active_only=active_only)


@village_type.field("pointsRedemptions")
def resolve_village_redemptions(village: dict, info, first=None, after=None, state=None):
    ctx: RequestContext = info.context
    ctx.require_manage(village["slug"], MANAGED)
    return _redemptions(ctx, village["slug"], first, after, state=state, resident_id=None)


@self_type.field("pointsRewards")
def resolve_self_rewards(me: dict, info, first=None, after=None):
    return _rewards(info.context, me["village"], first, after, active_only=True)


@self_type.field("pointsRedemptions")
def resolve_self_redemptions(me: dict, info, first=None, after=None):
    return _redemptions(info.context, me["village"], first, after, state=None, resident_id=me["id"])


@redemption_type.field("reward")
def resolve_redemption_reward(redemption: dict, info) -> dict:
    return reward_loader(info.context, redemption["village"]).load(redemption["reward_id"])


@redemption_type.field("resident")
def resolve_redemption_resident(redemption: dict, info) -> dict | None:
    return resident_loader(info.context, redemption["village"]).load(redemption["resident_id"])


# -- mutations ------------------------------------------------------------------

REWARD_FIELDS = ("name", "description", "points_cost", "stock", "active")


@mutation.field("createPointsReward")
def resolve_create_reward(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    village = input["village"]
    ctx.require_manage(village, MANAGED)
    data = {k: input[k] for k in REWARD_FIELDS if input.get(k) is not None}
    return node_payload(
        "reward",
        REWARD,
        village,
        lambda: rewards.do_create_points_reward(ctx.tenant(village), ctx.actor, village, data),
    )


@mutation.field("updatePointsReward")
def resolve_update_reward(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = target_id(input["id"], REWARD, lambda v: ctx.require_manage(v, MANAGED))
    changes = {k: input[k] for k in REWARD_FIELDS if k in input}
    return node_payload(
        "reward",
        REWARD,
        gid.village,
        act_on(ctx, gid, rewards.do_update_points_reward, changes),
    )


@mutation.field("redeemPointsReward")
def resolve_redeem_reward(_obj, info, input: dict) -> dict:
    """A resident redeems for themselves; staff name the resident at the counter."""
    ctx: RequestContext = info.context
    gid, resident = staff_or_resident_target(ctx, input["reward"], REWARD)
    village = gid.village

    def run() -> dict:
        named = input_key(village, input.get("resident"), "Resident", "resident")
        if resident is not None:
            # Points are the resident's own: not even their household spends them.
            if named is not None and named != resident["id"]:
                raise refused("resident", "只能用自己的积分兑换", NOT_FOUND)
            named = resident["id"]
        elif named is None:
            raise refused("resident", "请选择兑换的居民", REQUIRED)
        return rewards.do_redeem_points_reward(
            ctx.tenant(village),
            ctx.actor,
            village,
            int(gid.key),
            named,
            allowed_grids=ctx.allowed_grids(village),
        )

    return node_payload("redemption", REDEMPTION, village, run)


@mutation.field("markPointsRedemptionHandedOver")
def resolve_hand_over(_obj, info, input: dict) -> dict:
    ctx: RequestContext = info.context
    gid = target_id(input["redemption"], REDEMPTION, lambda v: ctx.require_manage(v, MANAGED))
    return node_payload(
        "redemption",
        REDEMPTION,
        gid.village,
        act_on(ctx, gid, rewards.do_hand_over_redemption),
    )


register_node_type(REWARD, fetch_by_int_key(reward_loader))
register_node_type(REDEMPTION, fetch_by_int_key(redemption_loader))

bindables = [
    village_type,
    self_type,
    reward_type,
    redemption_type,
    mutation,
    connection_object("PointsRewardConnection"),
    connection_object("PointsRedemptionConnection"),
]

"""The points shop (积分兑换): the village lists rewards, a resident redeems one from the
app (ledger debit and stock taken together, or neither), the village hands it over.
Redemptions at once never overdraw a balance nor take more than the stock."""

from __future__ import annotations

import threading

from sqlalchemy import select

from villagelink.tenants.activities import points, rewards
from villagelink.tenants.activities.tables import points_redemptions
from villagelink.tenants.user_errors import ActionFailed

from .test_activities import actor, key
from .test_resident_accounts import bind, code, data, errors, place, resident_token  # noqa: F401

CREATE = """mutation($input: CreatePointsRewardInput!) { createPointsReward(input: $input) {
  reward { id name pointsCost stock active version } userErrors { field message code } } }"""
UPDATE = """mutation($input: UpdatePointsRewardInput!) { updatePointsReward(input: $input) {
  reward { id stock active version } userErrors { field code } } }"""
REDEEM = """mutation($reward: ID!, $resident: ID) {
  redeemPointsReward(input: {reward: $reward, resident: $resident}) {
    redemption { id points state reward { id stock } }
    userErrors { field message code } } }"""
HAND_OVER = """mutation($id: ID!) { markPointsRedemptionHandedOver(input: {redemption: $id}) {
  redemption { id state handedOverAt } userErrors { field code } } }"""
SHOP = """{ me { resident { pointsBalance
  pointsRewards(first: 10) { edges { node { id name stock } } }
  pointsRedemptions(first: 10) { totalCount edges { node { id state reward { name } } } }
  pointsLedger(first: 1) { edges { node { points reason sourceType source } } } } } }"""
COUNTER = """query($slug: String!, $state: PointsRedemptionState) { village(slug: $slug) {
  pointsRewards(first: 10) { totalCount edges { node { id stock active } } }
  pointsRedemptions(first: 10, state: $state) { totalCount
    edges { node { id state points resident { id } reward { name } } } } } }"""


def award(db, slug: str, resident_id: int, amount: int) -> None:
    with db.tenant(slug) as conn:
        points.do_award_points(
            conn,
            actor(),
            slug,
            resident_id,
            {"points": amount, "reason": "志愿服务"},
            allowed_grids=None,
        )


def reward(gql, admin: str, slug: str, **values) -> dict:
    created = data(gql(CREATE, admin, {"input": {"village": slug, **values}}))["createPointsReward"]
    assert created["userErrors"] == [], created
    return created["reward"]


def test_a_resident_redeems_and_the_village_hands_it_over(db, gql, token, place):  # noqa: F811 (the fixture imported above)
    slug, me = place["slug"], place["me"]
    admin = token("village-admin", village=slug)
    bind(gql, admin, me, "shopper-1")
    caller = resident_token(token, slug, "shopper-1")
    award(db, slug, me.id, 120)

    soap = reward(gql, admin, slug, name="洗衣液", pointsCost=50, stock=2)
    refused = data(
        gql(
            CREATE,
            admin,
            {"input": {"village": slug, "name": "洗衣液", "pointsCost": 0, "stock": -1}},
        )
    )["createPointsReward"]
    assert sorted(errors(refused)) == [("pointsCost", "INVALID"), ("stock", "INVALID")]
    duplicate = data(
        gql(
            CREATE,
            admin,
            {"input": {"village": slug, "name": "洗衣液", "pointsCost": 5, "stock": 1}},
        )
    )["createPointsReward"]
    assert errors(duplicate) == [("name", "DUPLICATE")]
    hidden = reward(gql, admin, slug, name="保温杯", pointsCost=10, stock=5, active=False)
    costly = reward(gql, admin, slug, name="电饭煲", pointsCost=500, stock=1)
    assert (
        code(
            gql(
                CREATE,
                caller,
                {"input": {"village": slug, "name": "x", "pointsCost": 1, "stock": 1}},
            )
        )
        == "FORBIDDEN"
    )

    shop = data(gql(SHOP, caller))["me"]["resident"]
    assert [e["node"]["name"] for e in shop["pointsRewards"]["edges"]] == ["洗衣液", "电饭煲"]

    redeemed = data(gql(REDEEM, caller, {"reward": soap["id"]}))["redeemPointsReward"]
    assert redeemed["userErrors"] == []
    assert redeemed["redemption"]["state"] == "PENDING" and redeemed["redemption"]["points"] == 50
    assert redeemed["redemption"]["reward"]["stock"] == 1
    shop = data(gql(SHOP, caller))["me"]["resident"]
    assert shop["pointsBalance"] == 70
    assert shop["pointsLedger"]["edges"][0]["node"] == {
        "points": -50,
        "reason": "积分兑换：洗衣液",
        "sourceType": "PointsRedemption",
        "source": redeemed["redemption"]["id"],
    }
    assert shop["pointsRedemptions"]["totalCount"] == 1

    # Refusals write nothing: no entry, no stock taken, no redemption.
    poor = data(gql(REDEEM, caller, {"reward": costly["id"]}))["redeemPointsReward"]
    assert errors(poor) == [("reward", "INSUFFICIENT_POINTS")]
    assert poor["userErrors"][0]["message"] == "积分不足，当前余额为70分"
    off = data(gql(REDEEM, caller, {"reward": hidden["id"]}))["redeemPointsReward"]
    assert errors(off) == [("reward", "OUT_OF_STOCK")]
    assert off["userErrors"][0]["message"] == "该奖品已下架"
    theirs = data(gql(REDEEM, caller, {"reward": soap["id"], "resident": place["kin"].gid}))
    assert errors(theirs["redeemPointsReward"]) == [("resident", "NOT_FOUND")]
    counter = data(gql(COUNTER, admin, {"slug": slug}))["village"]
    stocks = {e["node"]["id"]: e["node"]["stock"] for e in counter["pointsRewards"]["edges"]}
    assert stocks == {soap["id"]: 1, hidden["id"]: 5, costly["id"]: 1}
    assert data(gql(SHOP, caller))["me"]["resident"]["pointsBalance"] == 70

    # Staff redeem at the counter for a resident they name; the last one goes.
    at_counter = data(gql(REDEEM, admin, {"reward": soap["id"], "resident": me.gid}))
    assert at_counter["redeemPointsReward"]["redemption"]["reward"]["stock"] == 0
    gone = data(gql(REDEEM, caller, {"reward": soap["id"]}))["redeemPointsReward"]
    assert errors(gone) == [("reward", "OUT_OF_STOCK")]
    assert gone["userErrors"][0]["message"] == "该奖品已兑完"
    restocked = data(gql(UPDATE, admin, {"input": {"id": soap["id"], "stock": 10}}))
    assert restocked["updatePointsReward"]["reward"]["stock"] == 10

    pending = data(gql(COUNTER, admin, {"slug": slug, "state": "PENDING"}))["village"]
    assert pending["pointsRedemptions"]["totalCount"] == 2
    first = redeemed["redemption"]["id"]
    assert code(gql(HAND_OVER, caller, {"id": first})) == "FORBIDDEN"
    handed = data(gql(HAND_OVER, admin, {"id": first}))["markPointsRedemptionHandedOver"]
    assert handed["redemption"]["state"] == "HANDED_OVER" and handed["redemption"]["handedOverAt"]
    again = data(gql(HAND_OVER, admin, {"id": first}))["markPointsRedemptionHandedOver"]
    assert errors(again) == [("redemption", "INVALID_TRANSITION")]
    pending = data(gql(COUNTER, admin, {"slug": slug, "state": "PENDING"}))["village"]
    assert pending["pointsRedemptions"]["totalCount"] == 1


def _at_once(db, slug: str, attempts: list[tuple[int, int]]) -> list[str]:
    """Redeem (reward, resident) pairs in threads released together: each outcome."""
    start = threading.Barrier(len(attempts))
    outcomes: list[str] = []

    def redeem(reward_id: int, resident_id: int) -> None:
        try:
            with db.tenant(slug) as conn:
                start.wait()
                rewards.do_redeem_points_reward(
                    conn, actor(), slug, reward_id, resident_id, allowed_grids=None
                )
            outcomes.append("redeemed")
        except ActionFailed as failed:
            outcomes.append(failed.errors[0].code)

    threads = [threading.Thread(target=redeem, args=pair) for pair in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


def test_redemptions_at_once_take_neither_more_stock_nor_more_points(db, gql, token, place):  # noqa: F811 (the fixture imported above)
    slug = place["slug"]
    admin = token("village-admin", village=slug)
    me, other = place["me"].id, place["other"].id
    for resident_id in (me, other):
        award(db, slug, resident_id, 100)
    last = key(reward(gql, admin, slug, name="最后一把伞", pointsCost=30, stock=1)["id"])
    # Two residents after the last one: one wins.
    assert _at_once(db, slug, [(last, me), (last, other)]) == ["OUT_OF_STOCK", "redeemed"]

    # One resident with points for one of two rewards, redeeming both at once.
    kettle = key(reward(gql, admin, slug, name="电水壶", pointsCost=60, stock=5)["id"])
    fan = key(reward(gql, admin, slug, name="电风扇", pointsCost=60, stock=5)["id"])
    spender = other if _balance(db, slug, other) == 100 else me
    assert _at_once(db, slug, [(kettle, spender), (fan, spender)]) == [
        "INSUFFICIENT_POINTS",
        "redeemed",
    ]
    assert _balance(db, slug, spender) == 40
    with db.tenant(slug) as conn:
        stock = {
            r["id"]: r["stock"] for r in rewards.rewards_by_ids(conn, [last, kettle, fan]).values()
        }
        redeemed = conn.execute(select(points_redemptions.c.reward_id)).scalars().all()
    assert stock[last] == 0 and stock[kettle] + stock[fan] == 9
    assert sorted(redeemed) == sorted([last, kettle if stock[kettle] == 4 else fan])


def _balance(db, slug: str, resident_id: int) -> int:
    with db.tenant(slug) as conn:
        return points.balances(conn, [resident_id]).get(resident_id, 0)
